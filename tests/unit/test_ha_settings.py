"""The redundant-pair settings: what SAFETY_HUB_HA=on needs, and the renew period."""

from __future__ import annotations

import socket

import pytest

from safety_hub.errors import ConfigError
from safety_hub.settings import load_settings

PG = "postgresql://hub:s3cret-pw@pg:5432/safety_hub"
MQTT = "mqtt://hub:pw@broker:1883"


def test_ha_is_off_by_default_and_the_node_is_the_host() -> None:
    settings = load_settings()
    assert settings.ha is False
    assert settings.node_id == socket.gethostname()
    assert settings.ha_renew_interval_s == pytest.approx(settings.ha_lease_s / 3)


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"mqtt_url": MQTT}, "SAFETY_HUB_STATE_URL"),
        ({"mqtt_url": MQTT, "state_url": "sqlite:///data"}, "SAFETY_HUB_STATE_URL"),
        ({"state_url": PG}, "SAFETY_HUB_MQTT_URL"),
        ({"state_url": PG, "mqtt_url": MQTT, "ha_lease_s": 4, "ha_renew_s": 3}, "at most half"),
    ],
)
def test_ha_on_refuses_what_a_pair_cannot_run_on(overrides: dict[str, object], names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(ha=True, node_id="hub-a", **overrides)
    assert caught.value.variable == "SAFETY_HUB_HA"
    assert names in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)


def test_ha_on_with_a_shared_database_and_broker() -> None:
    settings = load_settings(ha="on", node_id="hub-b", state_url=PG, mqtt_url=MQTT, ha_lease_s=9)
    assert settings.ha is True and settings.node_id == "hub-b"
    assert settings.ha_renew_interval_s == 3
    assert "s3cret-pw" not in repr(settings)


@pytest.mark.parametrize("node", ["", "has space", "-leading-dash", "x" * 64])
def test_a_node_id_is_a_plain_name(node: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(node_id=node)
    assert caught.value.variable == "SAFETY_HUB_NODE_ID"
