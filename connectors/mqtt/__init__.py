"""MQTT connector: telemetry ingest (paho-mqtt) and the embedded broker for local mode."""

from connectors.mqtt.embedded import EmbeddedBroker
from connectors.mqtt.ingest import MqttConfig, MqttIngest

__all__ = ["EmbeddedBroker", "MqttConfig", "MqttIngest"]
