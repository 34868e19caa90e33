"""MQTT connector: telemetry ingest (paho-mqtt) and the embedded broker for local mode."""

from connectors.mqtt.embedded import EmbeddedBroker, packet_limit
from connectors.mqtt.ingest import MqttConfig, MqttIngest
from connectors.mqtt.sessions import MqttSessions, Retiring, sessions_for

__all__ = [
    "EmbeddedBroker",
    "MqttConfig",
    "MqttIngest",
    "MqttSessions",
    "Retiring",
    "packet_limit",
    "sessions_for",
]
