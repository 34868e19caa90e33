"""MQTT connector: telemetry ingest (paho-mqtt), the embedded broker for local mode, and the
broker's users and ACL generated from the plant registry (``connectors.mqtt.acl``, the
``safety-hub broker`` command; not imported here)."""

from connectors.mqtt.embedded import EMBEDDED_CATCH_ALL_USER, EmbeddedBroker, packet_limit
from connectors.mqtt.ingest import MqttConfig, MqttIngest
from connectors.mqtt.probe import PROBE_PREFIX, RoundTripProbe
from connectors.mqtt.sessions import (
    MqttSessions,
    Retiring,
    critical_lanes,
    enterprise_lanes,
    of_enterprises,
    session_groups,
    sessions_for,
)

__all__ = [
    "EMBEDDED_CATCH_ALL_USER",
    "PROBE_PREFIX",
    "EmbeddedBroker",
    "MqttConfig",
    "MqttIngest",
    "MqttSessions",
    "Retiring",
    "RoundTripProbe",
    "critical_lanes",
    "enterprise_lanes",
    "of_enterprises",
    "packet_limit",
    "session_groups",
    "sessions_for",
]
