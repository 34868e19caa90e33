"""Nothing lost: real Mosquitto, real InfluxDB, the hub as its own process; kill and restart."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.hubproc import HubProcess, wait_for
from tests.integration.streams import Streamer, payload_for

pytestmark = pytest.mark.integration

PLANT = Path(__file__).parent.parent / "data" / "special_plant.yaml"
# Enterprises and tags of the test plant: Chinese names, tags with spaces, commas and '='.
E1, E2, E3 = "e1-chlor", "e2-coal", "e3-tank"
TAGS = {
    E1: ["GT 1101", "GT,1102", "GT=1103", "氯气-1104"] + [f"GT-{1105 + i}" for i in range(96)],
    E2: [f"PT-{2001 + i}" for i in range(100)],
    E3: [f"LT-{3001 + i}" for i in range(100)],
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def hub_env(mosquitto: Any, influx_url: str, db: str, **extra: str) -> dict[str, str]:
    return {
        "SAFETY_HUB_PLANT": str(PLANT),
        "SAFETY_HUB_MQTT_URL": mosquitto.url,
        "SAFETY_HUB_INFLUX_URL": influx_url,
        "SAFETY_HUB_INFLUX_API": "v1",
        "SAFETY_HUB_INFLUX_BUCKET": db,
        "SAFETY_HUB_SPOOL_SYNC": "normal",
        "SAFETY_HUB_SINK_PROCESS": "on",  # the default (tests/conftest.py turns it off for speed)
        **extra,
    }


def count(influx: Any, db: str, enterprise: str | None = None) -> int:
    where = f" WHERE \"enterprise\" = '{enterprise}'" if enterprise else ""
    body = influx.query(f'SELECT count("value") FROM "reading"{where}', db)
    series = body["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def safe_count(influx: Any, db: str) -> int:
    try:
        return count(influx, db)
    except Exception:
        return -1


class MosquittoPubStream:
    """`mosquitto_pub -l`, a client we did not write: one message per stdin line, QoS 1."""

    def __init__(
        self, port: int, enterprise: str, tags: list[str], messages: int, base_ts: int
    ) -> None:
        self.proc = subprocess.Popen(
            [
                "mosquitto_pub",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-q",
                "1",
                "-V",
                "mqttv5",
                "-i",
                f"mosquitto-pub-{enterprise}",
                "-t",
                f"hazard/v1/{enterprise}/telemetry",
                "-l",
            ],
            stdin=subprocess.PIPE,
            text=True,
        )
        import json

        assert self.proc.stdin is not None
        for k in range(messages):
            self.proc.stdin.write(
                json.dumps(payload_for(tags, k, 100, base_ts), ensure_ascii=False) + "\n"
            )
        self.proc.stdin.flush()

    def close(self) -> None:
        # Closing stdin while messages are unsent would discard them: the caller waits until
        # the hub has seen everything before calling this.
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(30) == 0


def test_100k_readings_from_three_publishers_land_exactly(
    mosquitto: Any, influxdb1: Any, influx_db: str, tmp_path: Path
) -> None:
    """100,000 readings from two paho gateways and mosquitto_pub all land: exact count, values, tags."""
    hub = HubProcess(tmp_path / "hub", hub_env(mosquitto, influxdb1.url, influx_db))
    hub.start()
    base = now_ms() - 3_600_000
    try:
        a = Streamer(
            "127.0.0.1",
            mosquitto.port,
            E1,
            TAGS[E1],
            messages=334,
            per_message=100,
            rate=400,
            base_ts=base,
        )
        b = Streamer(
            "127.0.0.1",
            mosquitto.port,
            E2,
            TAGS[E2],
            messages=333,
            per_message=100,
            rate=400,
            base_ts=base,
        )
        a.start()
        b.start()
        c = MosquittoPubStream(mosquitto.port, E3, TAGS[E3], 333, base)
        wait_for(
            lambda: (
                hub.metric('safety_hub_readings_accepted_total{enterprise="e3-tank"}') >= 33_300
            ),
            120,
            "the hub to receive every mosquitto_pub message",
        )
        c.close()
        a.finish()
        b.finish()
        wait_for(
            lambda: safe_count(influxdb1, influx_db) >= 100_000, 120, "100,000 readings in InfluxDB"
        )
        wait_for(lambda: hub.metric("safety_hub_spool_readings") == 0, 30, "an empty spool")
        assert count(influxdb1, influx_db) == 100_000
        assert count(influxdb1, influx_db, E1) == 33_400
        assert count(influxdb1, influx_db, E2) == 33_300
        assert count(influxdb1, influx_db, E3) == 33_300
        assert hub.metric("safety_hub_readings_rejected_total") == 0
        # Values and tags of the tags whose names need escaping in line protocol.
        for tag in ("GT 1101", "GT,1102", "GT=1103", "氯气-1104"):
            body = influxdb1.query(
                f'SELECT "value", "quality", "hazard_source", "kind", "unit", "equipment" FROM "reading" '
                f"WHERE \"enterprise\" = '{E1}' AND \"tag\" = '{tag}' ORDER BY time ASC LIMIT 1",
                influx_db,
            )
            row = body["results"][0]["series"][0]["values"][0]
            position = TAGS[E1].index(tag)
            _time, value, quality, hazard_source, kind, unit, equipment = row
            assert value == pytest.approx(round(position * 0.001, 3))
            assert (quality, hazard_source, kind) == ("good", "HS-氯气储罐区", "toxic_gas")
            assert (unit, equipment) == ("U 01", "TK,101")
        # The history API reads the same data back through InfluxQL.
        hist = hub.get(
            f"/api/v1/tags/{E1}/GT%201101/history?start={base - 1}&end={base + 10_000}"
        ).json()
        # Every message of E1 carries each of its 100 tags once, at ts = base + message index.
        assert [p["ts"] for p in hist["points"]] == [base + k for k in range(334)]
        assert [p["value"] for p in hist["points"][:3]] == [0.0, 0.25, 0.5]
        assert all(p["quality"] == "good" for p in hist["points"])
    finally:
        hub.stop()


def test_kill_9_the_hub_mid_stream_loses_nothing(
    mosquitto: Any, influxdb1: Any, influx_db: str, tmp_path: Path
) -> None:
    """kill -9 the hub in the middle of a stream and restart it: exact count in InfluxDB."""
    hub = HubProcess(
        tmp_path / "hub", hub_env(mosquitto, influxdb1.url, influx_db, SAFETY_HUB_SPOOL_SYNC="full")
    )
    hub.start()
    stream = Streamer(
        "127.0.0.1",
        mosquitto.port,
        E2,
        TAGS[E2],
        messages=600,
        per_message=100,
        rate=100,
        base_ts=now_ms() - 3_600_000,
    )
    stream.start()
    wait_for(
        lambda: hub.metric("safety_hub_readings_accepted_total") >= 15_000,
        60,
        "a third of the stream",
    )
    hub.kill9()
    killed_at = stream.published
    assert killed_at < 600, "the stream ended before the kill: not a mid-stream test"
    time.sleep(1.0)  # the stream goes on into the broker while the hub is dead
    hub.start()
    stream.finish()
    wait_for(
        lambda: safe_count(influxdb1, influx_db) >= 60_000, 120, "60,000 readings after the restart"
    )
    wait_for(lambda: hub.metric("safety_hub_spool_readings") == 0, 30, "an empty spool")
    assert count(influxdb1, influx_db) == 60_000
    hub.stop()


def test_influxdb_down_30s_mid_stream(
    mosquitto: Any, influxdb1_private: Any, tmp_path: Path
) -> None:
    """InfluxDB stopped for 30 s mid-stream: the spool holds the readings, metrics show it, it drains."""
    influx = influxdb1_private
    db = "outage"
    hub = HubProcess(tmp_path / "hub", hub_env(mosquitto, influx.url, db))
    hub.start()
    stream = Streamer(
        "127.0.0.1",
        mosquitto.port,
        E3,
        TAGS[E3],
        messages=400,
        per_message=100,
        rate=10,
        base_ts=now_ms() - 3_600_000,
    )
    stream.start()
    wait_for(lambda: safe_count(influx, db) >= 2_000, 60, "the first readings in InfluxDB")
    influx.stop()
    seen_outage = threading.Event()
    spool_peak = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        spool = hub.metric("safety_hub_spool_readings")
        spool_peak = max(spool_peak, int(spool))
        if hub.metric("safety_hub_sink_up") == 0 and hub.metric("safety_hub_sink_errors_total") > 0:
            seen_outage.set()
        time.sleep(0.5)
    assert seen_outage.is_set(), "the metrics never showed the outage"
    assert spool_peak >= 20_000, f"spool peaked at {spool_peak}: readings did not wait in the spool"
    system = hub.get("/api/v1/system").json()
    assert not system["storage_ok"]
    assert any(a["name"] == "storage_unavailable" and a["active"] for a in system["system_alarms"])
    assert hub.get("/readyz").status_code == 200  # ingest goes on into the spool
    influx.start()
    stream.finish(timeout=120)
    wait_for(lambda: safe_count(influx, db) >= 40_000, 120, "the spool to drain into InfluxDB")
    wait_for(lambda: hub.metric("safety_hub_spool_readings") == 0, 30, "an empty spool")
    assert count(influx, db) == 40_000
    assert hub.metric("safety_hub_sink_up") == 1
    hub.stop()


def test_broker_restart_mid_stream(
    mosquitto: Any, influxdb1: Any, influx_db: str, tmp_path: Path
) -> None:
    """Restart the broker mid-stream: the hub reconnects, resubscribes, and no message is lost."""
    hub = HubProcess(tmp_path / "hub", hub_env(mosquitto, influxdb1.url, influx_db))
    hub.start()
    stream = Streamer(
        "127.0.0.1",
        mosquitto.port,
        E1,
        TAGS[E1],
        messages=500,
        per_message=100,
        rate=50,
        base_ts=now_ms() - 3_600_000,
        client_id="gw-restart-test",
    )
    stream.start()
    wait_for(
        lambda: hub.metric("safety_hub_readings_accepted_total") >= 10_000,
        60,
        "a part of the stream",
    )
    mosquitto.restart()
    assert stream.published < 500, "the stream ended before the restart: not a mid-stream test"
    wait_for(lambda: hub.metric("safety_hub_mqtt_connects_total") >= 2, 60, "the hub to reconnect")
    stream.finish()
    wait_for(lambda: safe_count(influxdb1, influx_db) >= 50_000, 120, "50,000 readings")
    wait_for(lambda: hub.metric("safety_hub_spool_readings") == 0, 30, "an empty spool")
    assert count(influxdb1, influx_db) == 50_000
    hub.stop()
