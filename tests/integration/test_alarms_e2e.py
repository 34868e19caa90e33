"""Alarms end to end through a real Mosquitto: MQTT alarm events, the API, kill -9 and restart."""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.integration.hubproc import HubProcess, metric_sum, wait_for
from tests.integration.rulepack import rules_with

pytestmark = pytest.mark.integration

ENT = "e01-chloralkali"
# GasVoteDiscrepancy's on-delay (30 s as shipped): long enough for the kill -9 and the restart to
# happen while it is pending, so that it fires in the restarted hub
ON_DELAY_S = 15


def client_for(port: int, topic: str) -> tuple[mqtt.Client, queue.Queue[dict[str, Any]]]:
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    ready: queue.Queue[int] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.put(json.loads(m.payload))
    client.on_subscribe = lambda *a: ready.put(1)
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.get(timeout=10)
    return client, got


def alarms(hub: HubProcess) -> dict[str, dict[str, Any]]:
    return {a["alert"]: a for a in hub.get(f"/api/v1/alarms?enterprise={ENT}").json()}


def test_readings_raise_alarms_on_mqtt_and_api_and_survive_kill_9(
    mosquitto: Any, tmp_path: Path
) -> None:
    """Cl2 over level 2: alarms on the MQTT topic and the API; after kill -9 the same list, no
    second raise, and a pending on-delay still fires on its original schedule."""
    rules = rules_with(
        tmp_path / "rules",
        "gas.yaml",
        "report: discrepancy, setpoint: l2, deadband: 1%, on_delay: 30s}",
        f"report: discrepancy, setpoint: l2, deadband: 1%, on_delay: {ON_DELAY_S}s}}",
    )
    hub = HubProcess(
        tmp_path / "hub", {"SAFETY_HUB_MQTT_URL": mosquitto.url, "SAFETY_HUB_RULES": str(rules)}
    )
    hub.start()
    watcher, events = client_for(mosquitto.port, f"hazard/v1/{ENT}/alarms")
    stop = threading.Event()
    try:
        t0 = int(time.time() * 1000)
        # The zone's three detectors keep reporting (one high), as a live gateway would, so
        # that none goes stale while the discrepancy's on-delay runs.

        def gateway() -> None:
            ts = t0
            while not stop.is_set():
                readings = [
                    {"tag": "GT-1101", "v": 0.8, "ts": ts},
                    {"tag": "GT-1102", "v": 0.0, "ts": ts},
                    {"tag": "GT-1103", "v": 0.0, "ts": ts},
                ]
                topic = f"hazard/v1/{ENT}/telemetry"
                watcher.publish(topic, json.dumps({"readings": readings}), qos=1)
                stop.wait(2)
                ts = int(time.time() * 1000)

        threading.Thread(target=gateway, daemon=True).start()
        raised: set[str] = set()
        deadline = time.monotonic() + 15
        while not {"ToxicGasLevel1", "ToxicGasLevel2"} <= raised and time.monotonic() < deadline:
            event = events.get(timeout=15)
            assert event["schema"] == "safety-hub/alarm-event/v1"
            if event["action"] == "raise":
                raised.add(event["alarm"]["alert"])
                assert event["alarm"]["tag"] == "GT-1101"
        assert {"ToxicGasLevel1", "ToxicGasLevel2"} <= raised
        # /metrics counts the events the broker acknowledged and each one's delay from its
        # commit; nothing is left waiting once they are out (the gauge follows within 1 s).
        exposition = hub.metrics_text()
        published = metric_sum(exposition, "safety_hub_alarm_events_published_total")
        assert published >= 2
        assert metric_sum(exposition, "safety_hub_alarm_event_delay_seconds_count") == published
        wait_for(lambda: hub.metric("safety_hub_alarm_outbox_events") == 0, 10, "an empty outbox")
        before = alarms(hub)
        assert before["ToxicGasLevel2"]["state"] == "unacknowledged"
        assert "GasVoteDiscrepancy" not in before  # its on-delay is pending
        hub.post(
            f"/api/v1/alarms/{before['ToxicGasLevel1']['id']}/acknowledge", {"comment": "seen"}
        ).raise_for_status()
        before = alarms(hub)

        hub.kill9()
        hub.start()
        after = alarms(hub)
        assert {k: (v["id"], v["state"], v["latched"]) for k, v in after.items()} == {
            k: (v["id"], v["state"], v["latched"]) for k, v in before.items()
        }
        wait_for(lambda: "GasVoteDiscrepancy" in alarms(hub), 45, "the pending on-delay to fire")
        discrepancy = alarms(hub)["GasVoteDiscrepancy"]
        # On schedule: the on-delay after the reading's event time, not after the restart.
        on_delay_ms = ON_DELAY_S * 1000
        assert t0 + on_delay_ms <= discrepancy["raised_ms"] <= t0 + on_delay_ms + 4_000
        journal = hub.get("/api/v1/alarms/journal").json()
        level2_raises = [
            e
            for e in journal
            if e["action"] == "raise" and e["alarm_id"] == before["ToxicGasLevel2"]["id"]
        ]
        assert len(level2_raises) == 1
        # The acknowledgement is journalled with the token's user (the admin token), and
        # survived the kill.
        acks = [e for e in journal if e["action"] == "ack"]
        assert [(e["alarm_id"], e["user"], e["comment"]) for e in acks] == [
            (before["ToxicGasLevel1"]["id"], "admin", "seen")
        ]
    finally:
        stop.set()
        watcher.loop_stop()
        watcher.disconnect()
        hub.stop()
