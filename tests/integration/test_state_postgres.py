"""The hub with its state in PostgreSQL, as its own process against real Mosquitto and InfluxDB:
a new hub on an empty data directory carries on where a killed one stopped, and a PostgreSQL
restart under load loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.postgres import PostgresProcess
from tests.integration.hubproc import HubProcess, free_port, wait_for

pytestmark = pytest.mark.integration

ENT = "e01-chloralkali"
DB = "state"


class Gateway:
    """Publishes one message of three gas readings every ``period`` s (QoS 1), each with its
    own timestamp, and counts what it published; a watcher collects the alarm events."""

    def __init__(self, port: int, period: float = 0.05) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(f"hazard/v1/{ENT}/alarms", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(10)
        self.period = period
        self.published = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ts = int(time.time() * 1000) - 60_000

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self.events.append(json.loads(message.payload))

    def event_seqs(self) -> Counter[int]:
        with self._lock:
            return Counter(int(e["seq"]) for e in self.events)

    def raised(self) -> set[str]:
        with self._lock:
            return {e["alarm"]["alert"] for e in self.events if e["action"] == "raise"}

    def _run(self) -> None:
        while not self._stop.is_set():
            self._ts += 10
            readings = [
                {"tag": "GT-1101", "v": 0.8, "ts": self._ts},
                {"tag": "GT-1102", "v": 0.0, "ts": self._ts},
                {"tag": "GT-1103", "v": 0.0, "ts": self._ts},
            ]
            info = self.client.publish(
                f"hazard/v1/{ENT}/telemetry", json.dumps({"readings": readings}), qos=1
            )
            info.wait_for_publish(10)
            self.published += 1
            self._stop.wait(self.period)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        """Stop publishing; returns how many readings were published (3 per message)."""
        self._stop.set()
        self._thread.join(15)
        return 3 * self.published

    def close(self) -> None:
        self._stop.set()
        self.client.loop_stop()
        self.client.disconnect()


def outbox_depth(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM alarm_outbox").fetchone()
    assert row is not None
    return int(row[0])


def readings(influx: Any) -> int:
    try:
        body = influx.query('SELECT count("value") FROM "reading"', DB)
    except Exception:
        return -1
    series = body["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def env(mosquitto: Any, influx: Any, state_url: str) -> dict[str, str]:
    return {
        "SAFETY_HUB_MQTT_URL": mosquitto.url,
        "SAFETY_HUB_INFLUX_URL": influx.url,
        "SAFETY_HUB_INFLUX_API": "v1",
        "SAFETY_HUB_INFLUX_BUCKET": DB,
        "SAFETY_HUB_STATE_URL": state_url,
        "SAFETY_HUB_NOTIFY": "off",
    }


def alarms(hub: HubProcess) -> dict[str, tuple[int, str]]:
    rows = hub.get(f"/api/v1/alarms?enterprise={ENT}").json()
    return {a["alert"]: (a["id"], a["state"]) for a in rows}


def test_a_new_hub_on_an_empty_data_dir_takes_over_the_state_of_a_killed_one(
    mosquitto: Any, influxdb1_private: Any, pg_url: str, tmp_path: Path
) -> None:
    influx = influxdb1_private
    first = HubProcess(tmp_path / "hub-a", env(mosquitto, influx, pg_url))
    first.start()
    gateway = Gateway(mosquitto.port)
    second: HubProcess | None = None
    try:
        gateway.start()
        wait_for(lambda: {"ToxicGasLevel1", "ToxicGasLevel2"} <= gateway.raised(), 30, "the alarms")
        wait_for(lambda: readings(influx) > 0, 30, "the first readings in InfluxDB")
        influx.stop()  # from now on readings wait in the spool, which is in PostgreSQL
        wait_for(
            lambda: first.metric("safety_hub_spool_readings") >= 60, 30, "readings in the spool"
        )
        level1 = alarms(first)["ToxicGasLevel1"][0]
        first.post(f"/api/v1/alarms/{level1}/acknowledge", {"comment": "seen"}).raise_for_status()
        before = alarms(first)
        # The kill lands after the ack's event left the outbox: a kill between a PUBACK and the
        # row's delete would send that one event twice (at least once, by design), which is
        # not what this test is about.
        wait_for(lambda: outbox_depth(pg_url) == 0, 30, "the outbox to drain")
        first.kill9()
        time.sleep(1.0)  # the gateway goes on into the broker while no hub runs
        published = gateway.stop()
        influx.start()

        second = HubProcess(tmp_path / "hub-b", env(mosquitto, influx, pg_url))  # empty dir
        second.start()
        assert not any(p.suffix == ".sqlite" for p in second.data_dir.iterdir())
        wait_for(lambda: readings(influx) >= published, 90, f"{published} readings in InfluxDB")
        wait_for(lambda: second.metric("safety_hub_spool_readings") == 0, 30, "an empty spool")
        assert readings(influx) == published

        after = alarms(second)
        assert {k: after[k] for k in before} == before  # same ids, same states (the ack too)
        journal = second.journal()
        seqs = [e["id"] for e in journal]
        assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
        assert [(e["alarm_id"], e["comment"]) for e in journal if e["action"] == "ack"] == [
            (level1, "seen")
        ]
        published_seqs = {e["id"] for e in journal if e["alarm_id"] is not None}
        wait_for(
            lambda: published_seqs <= set(gateway.event_seqs()), 30, "every alarm event on MQTT"
        )
        twice = {seq: n for seq, n in gateway.event_seqs().items() if n > 1}
        assert twice == {}, f"alarm events delivered more than once: {twice}"
    finally:
        gateway.close()
        first.stop()
        if second is not None:
            second.stop()


def test_postgres_restart_under_load_loses_nothing(
    mosquitto: Any,
    influxdb1_private: Any,
    postgres_private: PostgresProcess,
    tmp_path: Path,
) -> None:
    influx = influxdb1_private
    url = postgres_private.create_database()
    hub = HubProcess(tmp_path / "hub", env(mosquitto, influx, url))
    hub.start()
    gateway = Gateway(mosquitto.port)
    try:
        gateway.start()
        wait_for(lambda: readings(influx) >= 30, 30, "the first readings in InfluxDB")
        postgres_private.stop()

        def unready() -> bool:
            r = httpx.get(f"{hub.url}/readyz", timeout=5)
            return r.status_code == 503 and "state database unreachable" in r.text

        wait_for(unready, 30, "/readyz 503 naming the state database")
        away = httpx.get(f"{hub.url}/api/v1/alarms/journal", headers=hub.auth, timeout=10)
        assert away.status_code == 503, away.text  # not a 500: retry later
        assert "state database unreachable" in away.json()["detail"]
        time.sleep(2.0)  # readings go on arriving while the database is away
        postgres_private.start()
        wait_for(
            lambda: httpx.get(f"{hub.url}/readyz", timeout=5).status_code == 200,
            60,
            "the hub to recover by itself",
        )
        wait_for(lambda: "ToxicGasLevel2" in gateway.raised(), 30, "the alarms")
        published = gateway.stop()
        wait_for(lambda: readings(influx) >= published, 90, f"{published} readings in InfluxDB")
        wait_for(lambda: hub.metric("safety_hub_spool_readings") == 0, 30, "an empty spool")
        assert readings(influx) == published
        journal = hub.journal()
        assert [e["id"] for e in journal] == list(range(1, len(journal) + 1))
        raises = Counter(e["key"] for e in journal if e["action"] == "raise")
        assert raises[f"ToxicGasLevel2|{ENT}|GT-1101"] == 1
        twice = {seq: n for seq, n in gateway.event_seqs().items() if n > 1}
        assert twice == {}
    finally:
        gateway.close()
        hub.stop()


def test_an_unreachable_state_database_at_start_stops_the_hub_with_a_clear_error(
    tmp_path: Path,
) -> None:
    """No database at the URL: exit code 1, a message naming the state database, the password
    never shown."""
    hub = HubProcess(
        tmp_path / "hub",
        {"SAFETY_HUB_STATE_URL": f"postgresql://hub:s3cret-pw@127.0.0.1:{free_port()}/state"},
    )
    done = subprocess.run(
        [sys.executable, "-m", "safety_hub.cli", "run"],
        env=hub.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "state database unreachable (schema migration)" in done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr
