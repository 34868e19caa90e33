"""A gateway whose clock is 1 h ahead, through a real Mosquitto, the hub as its own process and a
real InfluxDB: the skew is named (an MQTT alarm event), a level-2 gas reading still alarms, and
storage keeps the readings at the receive time with the sent time and the flag beside them."""

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

from tests.integration.hubproc import HubProcess, wait_for
from tests.integration.rulepack import rules_with

pytestmark = pytest.mark.integration

ENT = "e01-chloralkali"
HOUR = 3_600_000
TOPIC = f"hazard/v1/{ENT}/telemetry"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def subscriber(port: int, topics: list[str]) -> tuple[mqtt.Client, queue.Queue[tuple[str, Any]]]:
    got: queue.Queue[tuple[str, Any]] = queue.Queue()
    ready: queue.Queue[int] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.put((m.topic, json.loads(m.payload)))
    client.on_subscribe = lambda *a: ready.put(1)
    client.on_connect = lambda c, *a: c.subscribe([(t, 1) for t in topics])
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.get(timeout=10)
    return client, got


def raised_alarm(
    events: queue.Queue[tuple[str, Any]], alert: str, timeout: float
) -> dict[str, Any]:
    """The alarm of the first MQTT raise event of ``alert`` (other messages are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no raise event of {alert} within {timeout} s")
        try:
            topic, body = events.get(timeout=left)
        except queue.Empty:
            continue
        if topic.endswith("/alarms") and body["action"] == "raise":
            alarm: dict[str, Any] = body["alarm"]
            if alarm["alert"] == alert:
                return alarm


def test_a_gateway_clock_an_hour_ahead_is_named_and_its_gas_alarm_still_sounds(
    mosquitto: Any, influxdb1: Any, influx_db: str, tmp_path: Path
) -> None:
    # EnterpriseClockSkew with a 5 s on-delay (20 s as shipped, which alert_rules/tests/
    # comms_test.yaml checks): this test is about the skew being named live, not how soon
    rules = rules_with(
        tmp_path / "rules",
        "comms.yaml",
        "{type: clock_skew, threshold: 10s, on_delay: 20s}",
        "{type: clock_skew, threshold: 10s, on_delay: 5s}",
    )
    hub = HubProcess(
        tmp_path / "hub",
        {
            "SAFETY_HUB_RULES": str(rules),
            "SAFETY_HUB_MQTT_URL": mosquitto.url,
            "SAFETY_HUB_INFLUX_URL": influxdb1.url,
            "SAFETY_HUB_INFLUX_API": "v1",
            "SAFETY_HUB_INFLUX_BUCKET": influx_db,
        },
    )
    hub.start()
    client, events = subscriber(
        mosquitto.port, [f"hazard/v1/{ENT}/alarms", f"hazard/v1/{ENT}/rejected"]
    )
    stop = threading.Event()
    h2 = {"value": 0.0}  # GT-1301 (H2, level 2 at 40 %LEL)

    def gateway() -> None:  # every 2 s, every reading stamped 1 h ahead of the real time
        while not stop.is_set():
            ts = now_ms() + HOUR
            readings = [
                {"tag": "GT-1101", "v": 0.01, "ts": ts},
                {"tag": "GT-1102", "v": 0.02, "ts": ts},
                {"tag": "GT-1103", "v": 0.01, "ts": ts},
                {"tag": "GT-1301", "v": h2["value"], "ts": ts},
            ]
            client.publish(TOPIC, json.dumps({"readings": readings}), qos=1)
            stop.wait(2)

    sender = threading.Thread(target=gateway, daemon=True)
    try:
        sender.start()
        skew = raised_alarm(events, "EnterpriseClockSkew", 60)
        assert skew["labels"]["skew"].startswith("-36")  # "-3600s" (or a second off)
        assert skew["enterprise"] == ENT and skew["alarm_class"] == "comms"

        h2["value"] = 45.0
        level2 = raised_alarm(events, "CombustibleGasLevel2", 30)
        assert (level2["tag"], level2["value"], level2["priority"]) == ("GT-1301", 45.0, "high")
        # evaluated at about the hub's receive time, not an hour ahead
        assert level2["active_since_ms"] < now_ms() + 60_000

        def stored() -> list[list[Any]]:
            body = influxdb1.query(
                'SELECT "value", "source_ts", "ts_quality" FROM "reading" '
                'WHERE "tag" = \'GT-1301\' AND "value" = 45',
                influx_db,
                epoch="ms",
            )
            series = body["results"][0].get("series")
            return series[0]["values"] if series else []

        wait_for(lambda: bool(stored()), 30, "the level-2 reading in InfluxDB")
        time_ms, value, source_ts, quality = stored()[0]
        assert (value, quality) == (45.0, "skewed")
        assert time_ms <= now_ms()  # stored at the receive time, not in the future
        assert HOUR - 5_000 <= source_ts - time_ms <= HOUR + 5_000
        # the existing queries still read it
        body = influxdb1.query(
            'SELECT "value", "quality" FROM "reading" WHERE "tag" = \'GT-1301\' '
            "AND time > now() - 10m",
            influx_db,
        )
        assert any(row[1] == 45.0 for row in body["results"][0]["series"][0]["values"])
        assert hub.metric("safety_hub_readings_skewed_total") > 0
        assert hub.metric("safety_hub_readings_rejected_total") == 0
    finally:
        stop.set()
        sender.join(5)
        client.loop_stop()
        client.disconnect()
        hub.stop()


def test_skewed_readings_are_reported_to_the_gateway_as_a_warning(
    mosquitto: Any, tmp_path: Path
) -> None:
    """The sender learns its clock is wrong: a report on its rejected topic lists the skewed
    readings, with nothing rejected."""
    hub = HubProcess(tmp_path / "hub", {"SAFETY_HUB_MQTT_URL": mosquitto.url})
    hub.start()
    client, events = subscriber(mosquitto.port, [f"hazard/v1/{ENT}/rejected"])
    try:
        body = {"seq": 3, "readings": [{"tag": "GT-1101", "v": 0.0, "ts": now_ms() + HOUR}]}
        client.publish(TOPIC, json.dumps(body), qos=1)
        topic, report = events.get(timeout=30)
        assert topic == f"hazard/v1/{ENT}/rejected"
        assert (report["seq"], report["accepted"], report["rejected_count"]) == (3, 1, 0)
        assert report["skewed_count"] == 1
        assert report["skewed"][0]["reason"] == "skewed_timestamp"
        assert report["skewed"][0]["tag"] == "GT-1101"
    finally:
        client.loop_stop()
        client.disconnect()
        hub.stop()
