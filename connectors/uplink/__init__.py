"""Transports of the provincial uplink (``safety_hub.uplink.UplinkTransport``): the TCP
envelope with AES (``TcpEnvelopeTransport``) and HTTP(S) JSON batches (``HttpBatchTransport``);
``build_transport`` makes one from a destination and the environment."""

from connectors.uplink.aes import AesCodec
from connectors.uplink.build import build_transport
from connectors.uplink.http_batch import HttpBatchTransport
from connectors.uplink.tcp_envelope import FRAME_END, TcpEnvelopeTransport, envelope

__all__ = [
    "FRAME_END",
    "AesCodec",
    "HttpBatchTransport",
    "TcpEnvelopeTransport",
    "build_transport",
    "envelope",
]
