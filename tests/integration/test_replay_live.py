"""Live equivalence: a scenario published by `safety-hub simulate` into a real Mosquitto, with a
real hub subprocess running, raises the same alarms in the same order as its replay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.hubproc import HubProcess, wait_for
from tests.scenarios import SCENARIOS, assert_passed, run_scenario

pytestmark = pytest.mark.integration

SCENARIO = SCENARIOS / "chlorine_tank_leak.yaml"
ENT = "e01-chloralkali"


def live_alarm_keys(hub: HubProcess) -> list[str]:
    """The hub's alarms of the enterprise in the order they were created (first raised)."""
    alarms: list[dict[str, Any]] = hub.get(
        f"/api/v1/alarms?enterprise={ENT}&include_normal=true&limit=1000"
    ).json()
    return [a["key"] for a in sorted(alarms, key=lambda a: a["id"])]


def test_simulate_into_mosquitto_raises_what_replay_raises(mosquitto: Any, tmp_path: Path) -> None:
    """simulate --speed 80 against a running hub gives replay's alarm keys, in replay's order."""
    replayed = run_scenario(SCENARIO)
    assert_passed(replayed)
    expected = replayed.keys_raised()
    assert len(expected) == 5

    hub = HubProcess(tmp_path / "hub", {"SAFETY_HUB_MQTT_URL": mosquitto.url})
    hub.start()
    try:
        sim = subprocess.run(
            [
                sys.executable,
                "-m",
                "safety_hub.cli",
                "simulate",
                str(SCENARIO),
                "--url",
                mosquitto.url,
                "--speed",
                "80",
                "--stay-online",
                "--progress",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sim.returncode == 0, sim.stderr
        assert "simulate: done" in sim.stderr and "operator action not played" in sim.stderr
        wait_for(lambda: len(live_alarm_keys(hub)) >= len(expected), 20, "the live alarms")
        live = live_alarm_keys(hub)
        assert live == expected, (live, expected)
    finally:
        hub.stop()
