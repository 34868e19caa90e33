"""MQTT connector: telemetry ingest (paho-mqtt) and the embedded broker for local mode."""

from connectors.mqtt.embedded import EmbeddedBroker, packet_limit
from connectors.mqtt.ingest import MqttConfig, MqttIngest

__all__ = ["EmbeddedBroker", "MqttConfig", "MqttIngest", "packet_limit"]
