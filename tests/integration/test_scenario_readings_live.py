"""A scenario's injected readings (``type: reading``) published by the scenario player into a
real Mosquitto reach a real hub process through the same decode path as replay: the readings
replay expects rejected are rejected live too, with the same reasons, on the sender's
``rejected`` topic."""

from __future__ import annotations

import json
import queue
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from safety_hub.scenarios import load_scenario
from simulators.player import ScenarioPlayer
from tests.integration.hubproc import HubProcess
from tests.scenarios import assert_passed, run_scenario

pytestmark = pytest.mark.integration

ENT = "e01-chloralkali"
SPEED = 4  # payload offsets shrink by the speed: +30d and -30d stay past the 7-day horizon

SCENARIO = f"""\
scenario: 1
name: odd timestamps, live
duration: 20s
enterprises: [{ENT}]
timeline:
  - {{at: 4s, type: reading, tag: GT-1102, value: 0.1, ts: +30d, expect_rejected: future_timestamp}}
  - {{at: 6s, type: reading, tag: GT-1103, value: 0.1, ts: -30d, expect_rejected: too_old}}
"""


def test_injected_readings_are_rejected_live_as_in_replay(mosquitto: Any, tmp_path: Path) -> None:
    assert_passed(run_scenario(SCENARIO))

    hub = HubProcess(tmp_path / "hub", {"SAFETY_HUB_MQTT_URL": mosquitto.url})
    hub.start()
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    subscribed: queue.Queue[int] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.put(json.loads(m.payload))
    client.on_subscribe = lambda *a: subscribed.put(1)
    client.on_connect = lambda c, *a: c.subscribe(f"hazard/v1/{ENT}/rejected", qos=1)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        subscribed.get(timeout=10)
        player = ScenarioPlayer(
            load_scenario(SCENARIO), "127.0.0.1", mosquitto.port, speed=SPEED, stay_online=True
        )
        stats = player.run()
        assert stats.scenario_ms == 20_000
        reasons = []
        while len(reasons) < 2:
            report = got.get(timeout=30)
            reasons.extend((r["tag"], r["reason"]) for r in report["rejected"])
        assert sorted(reasons) == [("GT-1102", "future_timestamp"), ("GT-1103", "too_old")]
    finally:
        client.loop_stop()
        client.disconnect()
        hub.stop()
