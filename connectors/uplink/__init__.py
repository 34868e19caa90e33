"""Transports of the provincial uplink (``safety_hub.uplink.UplinkTransport``): the TCP
envelope with AES (``TcpEnvelopeTransport``), HTTP(S) JSON batches (``HttpBatchTransport``) and
the MQTT bridge to another safety-hub (``MqttBridgeTransport``);
``build_transport`` makes one from a destination and the environment."""

from connectors.uplink.aes import AesCodec
from connectors.uplink.build import build_transport
from connectors.uplink.http_batch import HttpBatchTransport
from connectors.uplink.mqtt_bridge import MqttBridgeTransport, records_topic
from connectors.uplink.tcp_envelope import FRAME_END, TcpEnvelopeTransport, envelope

__all__ = [
    "FRAME_END",
    "AesCodec",
    "HttpBatchTransport",
    "MqttBridgeTransport",
    "TcpEnvelopeTransport",
    "build_transport",
    "envelope",
    "records_topic",
]
