"""The hub measures its broker's round trip and flags one that looks like Nagle's algorithm.

Two private Mosquittos: the fixture's (``set_tcp_nodelay true``) and a plain one without it.
On this machine's loopback the plain broker did not show the Nagle delay reliably (docs/
benchmarks.md), so for it the test asserts that the hub's flag, warning and figures agree with
the decision rule on the samples it measured; the rule itself is tested on figures in
tests/unit/test_broker_probe.py. With set_tcp_nodelay true the flag must be off.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from safety_hub.runtime.broker_probe import NAGLE_MIN_GAP_MS, NAGLE_MIN_RATIO
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hubproc import HubProcess, wait_for


def _round_trip(tmp_path: Path, broker: MosquittoProcess) -> tuple[HubProcess, dict[str, Any]]:
    hub = HubProcess(
        tmp_path / "hub",
        {"SAFETY_HUB_MQTT_URL": broker.url, "SAFETY_HUB_MQTT_PROBE_INTERVAL_S": "0"},
    )
    hub.start()
    shown: dict[str, Any] = {}

    def measured() -> bool:
        system = hub.get("/api/v1/system").json()
        shown.update(system)
        return system["broker_round_trip"] is not None

    wait_for(measured, 60, "the broker round trip in /api/v1/system", interval=0.2)
    return hub, shown["broker_round_trip"]


@pytest.mark.parametrize("nodelay", [True, False], ids=["set_tcp_nodelay", "plain"])
def test_the_round_trip_is_measured_shown_and_judged(
    tmp_path: Path, mosquitto_factory: Callable[..., MosquittoProcess], nodelay: bool
) -> None:
    broker = mosquitto_factory(tcp_nodelay=nodelay)
    assert ("set_tcp_nodelay true" in broker.config_path.read_text()) is nodelay
    hub, trip = _round_trip(tmp_path, broker)
    try:
        assert trip["samples"] == 5
        assert 0 < trip["first_reply_ms"] <= trip["second_reply_ms"]
        assert trip["round_trip_ms"] > 0
        rule = (
            trip["second_reply_ms"] - trip["first_reply_ms"] >= NAGLE_MIN_GAP_MS
            and trip["second_reply_ms"] >= NAGLE_MIN_RATIO * trip["first_reply_ms"]
        )
        assert trip["nagle_suspected"] is rule
        if nodelay:
            assert trip["nagle_suspected"] is False and trip["advice"] is None
        metrics = hub.metrics_text()
        assert f"safety_hub_mqtt_nagle_suspected {float(rule)}" in metrics
        gauge = hub.metric("safety_hub_mqtt_round_trip_seconds")
        assert gauge == pytest.approx(trip["round_trip_ms"] / 1000, rel=1e-6)
        warned = [ln for ln in hub.log_lines() if "set_tcp_nodelay true" in ln]
        assert bool(warned) is rule
    finally:
        hub.stop()


def test_a_broker_that_denies_the_probe_topic_gives_no_figures_and_no_flag(
    tmp_path: Path, mosquitto_factory: Callable[..., MosquittoProcess]
) -> None:
    broker = mosquitto_factory(
        acl_text="topic readwrite hazard/v1/#\n", users={"hub": "secret-hub-pw"}
    )
    hub = HubProcess(
        tmp_path / "hub",
        {
            "SAFETY_HUB_MQTT_URL": broker.url_with_credentials("hub"),
            "SAFETY_HUB_MQTT_PROBE_INTERVAL_S": "0",
        },
    )
    hub.start()
    try:
        wait_for(
            lambda: any("no round trip measured" in ln for ln in hub.log_lines()),
            60,
            "the probe to give up",
            interval=0.2,
        )
        system = hub.get("/api/v1/system").json()
        assert system["broker_round_trip"] is None
        assert system["mqtt_connected"] is True
        assert hub.metric("safety_hub_mqtt_nagle_suspected") == 0
    finally:
        hub.stop()
