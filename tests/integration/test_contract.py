"""The MQTT contract against a real broker: rejection reports, gateway status, the v2 write path."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.integration.hubproc import HubProcess, wait_for
from tests.integration.streams import Streamer

pytestmark = pytest.mark.integration

PLANT = Path(__file__).parent.parent / "data" / "special_plant.yaml"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def subscriber(port: int, topic: str) -> tuple[mqtt.Client, queue.Queue[Any]]:
    got: queue.Queue[Any] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    subscribed = queue.Queue[int]()
    client.on_message = lambda c, u, m: got.put((m.topic, json.loads(m.payload)))
    client.on_subscribe = lambda *a: subscribed.put(1)
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    subscribed.get(timeout=10)
    return client, got


def test_rejections_reach_the_sender_and_the_rest_is_stored(
    mosquitto: Any, influxdb1: Any, influx_db: str, tmp_path: Path
) -> None:
    """A batch with bad readings: the sender gets index and reason on its rejected topic."""
    hub = HubProcess(
        tmp_path / "hub",
        {
            "SAFETY_HUB_PLANT": str(PLANT),
            "SAFETY_HUB_MQTT_URL": mosquitto.url,
            "SAFETY_HUB_INFLUX_URL": influxdb1.url,
            "SAFETY_HUB_INFLUX_API": "v1",
            "SAFETY_HUB_INFLUX_BUCKET": influx_db,
        },
    )
    hub.start()
    client, got = subscriber(mosquitto.port, "hazard/v1/e2-coal/rejected")
    try:
        ts = now_ms()
        body = {
            "seq": 77,
            "readings": [
                {"tag": "PT-2001", "v": 1.5, "ts": ts},
                {"tag": "LT-3001", "v": 2.0, "ts": ts},  # another enterprise's tag
                {"tag": "PT-2002", "v": "high", "ts": ts},
                {"tag": "PT-2003", "v": 3.0, "ts": ts + 8 * 86_400_000},  # beyond the horizon
                {"tag": "PT-2004", "v": 4.0, "ts": ts},
            ],
        }
        client.publish("hazard/v1/e2-coal/telemetry", json.dumps(body), qos=1).wait_for_publish(5)
        topic, report = got.get(timeout=10)
        assert topic == "hazard/v1/e2-coal/rejected"
        assert report["seq"] == 77 and report["total"] == 5 and report["accepted"] == 2
        assert [(r["index"], r["reason"]) for r in report["rejected"]] == [
            (1, "wrong_enterprise"),
            (2, "invalid_reading"),
            (3, "future_timestamp"),
        ]
        client.publish("hazard/v1/e2-coal/telemetry", b"not json", qos=1)
        _, report = got.get(timeout=10)
        assert report["rejected"][0]["reason"] == "malformed_json"
        wait_for(
            lambda: influxdb1.count(influx_db, "reading") == 2, 20, "the two good readings stored"
        )
        assert (
            hub.metric(
                'safety_hub_readings_rejected_total{enterprise="e2-coal",reason="wrong_enterprise"}'
            )
            == 1
        )
        assert (
            hub.metric(
                'safety_hub_messages_rejected_total{enterprise="e2-coal",reason="malformed_json"}'
            )
            == 1
        )
    finally:
        client.loop_stop()
        client.disconnect()
        hub.stop()


def test_gateway_last_will_marks_the_enterprise_offline(mosquitto: Any, tmp_path: Path) -> None:
    """A gateway that dies without a goodbye: its last-will reaches the hub as offline."""
    hub = HubProcess(
        tmp_path / "hub", {"SAFETY_HUB_PLANT": str(PLANT), "SAFETY_HUB_MQTT_URL": mosquitto.url}
    )
    hub.start()
    try:
        gateway = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-e3", protocol=mqtt.MQTTv5)
        gateway.will_set(
            "hazard/v1/e3-tank/status", json.dumps({"state": "offline"}), qos=1, retain=True
        )
        gateway.connect("127.0.0.1", mosquitto.port, keepalive=5)
        gateway.loop_start()
        gateway.publish(
            "hazard/v1/e3-tank/status", json.dumps({"state": "online"}), qos=1, retain=True
        ).wait_for_publish(5)

        def state() -> Any:
            gateways = hub.get("/api/v1/system").json()["gateways"]
            return next(g["online"] for g in gateways if g["enterprise"] == "e3-tank")

        wait_for(lambda: state() is True, 10, "the gateway online")
        gateway.loop_stop()
        gateway._sock_close()  # an abrupt end: no DISCONNECT, so the will fires
        wait_for(lambda: state() is False, 20, "the last-will to mark the gateway offline")
        assert hub.metric('safety_hub_gateway_online{enterprise="e3-tank"}') == 0
    finally:
        hub.stop()


def test_v2_write_path_through_influxdb_client(
    mosquitto: Any, victoria_metrics: Any, tmp_path: Path
) -> None:
    """SAFETY_HUB_INFLUX_API=v2 writes through influxdb-client to a real /api/v2/write server."""
    hub = HubProcess(
        tmp_path / "hub",
        {
            "SAFETY_HUB_PLANT": str(PLANT),
            "SAFETY_HUB_MQTT_URL": mosquitto.url,
            "SAFETY_HUB_INFLUX_URL": victoria_metrics.url,
            "SAFETY_HUB_INFLUX_API": "v2",
            "SAFETY_HUB_INFLUX_TOKEN": "test-token",
            "SAFETY_HUB_INFLUX_ORG": "park",
            "SAFETY_HUB_INFLUX_BUCKET": "safety_hub",
        },
    )
    hub.start()
    try:
        tags = [f"PT-{2001 + i}" for i in range(100)]
        stream = Streamer(
            "127.0.0.1",
            mosquitto.port,
            "e2-coal",
            tags,
            messages=200,
            per_message=100,
            rate=400,
            base_ts=now_ms() - 600_000,
        )
        stream.start()
        stream.finish()
        wait_for(
            lambda: hub.metric("safety_hub_sink_readings_written_total") >= 20_000,
            60,
            "20,000 written",
        )
        assert (
            victoria_metrics.wait_for_samples(20_000, '{__name__="reading_value"}', timeout=30)
            == 20_000
        )
        series = victoria_metrics.export('{__name__="reading_value",tag="PT-2001"}')
        assert series[0]["metric"]["enterprise"] == "e2-coal"
        assert series[0]["metric"]["kind"] == "pressure"
        assert len(series[0]["values"]) == 200
        assert hub.metric("safety_hub_sink_errors_total") == 0
    finally:
        hub.stop()


def test_data_influxdb_refuses_is_dead_lettered_and_the_rest_written(
    mosquitto: Any, influxdb1: Any, influx_db: str, tmp_path: Path
) -> None:
    """A real HTTP 400 (field type conflict) dead-letters only the refused message; nothing silent."""
    old = now_ms() - 20 * 86_400_000
    # A string 'value' in the old shard makes InfluxDB refuse float values there.
    influxdb1.write(influx_db, f'reading,enterprise=x,tag=y value="text" {old}')
    hub = HubProcess(
        tmp_path / "hub",
        {
            "SAFETY_HUB_PLANT": str(PLANT),
            "SAFETY_HUB_MQTT_URL": mosquitto.url,
            "SAFETY_HUB_INFLUX_URL": influxdb1.url,
            "SAFETY_HUB_INFLUX_API": "v1",
            "SAFETY_HUB_INFLUX_BUCKET": influx_db,
            "SAFETY_HUB_HORIZON_S": str(30 * 86_400),
        },
    )
    hub.start()
    client, _ = subscriber(mosquitto.port, "hazard/v1/e3-tank/rejected")
    try:
        fresh = now_ms()
        for ts in (fresh, old, fresh + 1):
            body = {
                "readings": [
                    {"tag": "LT-3001", "v": 1.0, "ts": ts},
                    {"tag": "LT-3002", "v": 2.0, "ts": ts},
                ]
            }
            client.publish("hazard/v1/e3-tank/telemetry", json.dumps(body), qos=1).wait_for_publish(
                5
            )
        wait_for(
            lambda: hub.get("/api/v1/system").json()["spool"]["dead_letters"] == 1,
            30,
            "one dead letter",
        )
        system = hub.get("/api/v1/system").json()
        assert system["spool"]["readings"] == 0
        assert "field type conflict" in system["dead_letters"][0]["error"]
        assert system["dead_letters"][0]["readings"] == 2
        assert any(a["name"] == "dead_letters" and a["active"] for a in system["system_alarms"])
        assert hub.metric('safety_hub_sink_errors_total{kind="bad_data"}') >= 1
        fresh_count = influxdb1.query(
            f'SELECT count("value") FROM "reading" WHERE "enterprise" = \'e3-tank\' AND time >= {fresh}ms',
            influx_db,
        )["results"][0]["series"][0]["values"][0][1]
        assert fresh_count == 4
    finally:
        client.loop_stop()
        client.disconnect()
        hub.stop()
