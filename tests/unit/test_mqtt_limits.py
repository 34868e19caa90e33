"""The payload limit is the same everywhere: hub, embedded broker, shipped broker config."""

from __future__ import annotations

import re
from pathlib import Path

from connectors.mqtt import EmbeddedBroker, packet_limit
from safety_hub.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _setting(text: str, name: str) -> int:
    match = re.search(rf"^{name} (\d+)$", text, re.MULTILINE)
    assert match, f"{name} missing"
    return int(match.group(1))


def test_shipped_broker_config_matches_the_default_payload_limit() -> None:
    """deploy/mosquitto refuses exactly what the hub would reject, and disconnects far larger."""
    default = Settings.model_fields["max_payload_bytes"].default
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    assert _setting(conf, "message_size_limit") == default
    assert _setting(conf, "max_packet_size") == packet_limit(default)


def test_embedded_broker_config_follows_the_hub_setting(tmp_path: Path) -> None:
    """The embedded broker writes its limits from the hub's payload limit, and Mosquitto starts
    with them (it refuses a config with an option it does not know)."""
    broker = EmbeddedBroker(tmp_path, 0, max_payload_bytes=65_536)
    broker.start()
    try:
        text = (tmp_path / "mosquitto.conf").read_text()
    finally:
        broker.stop()
    assert _setting(text, "message_size_limit") == 65_536
    assert _setting(text, "max_packet_size") == 65_536 + 65_536 + 1024
