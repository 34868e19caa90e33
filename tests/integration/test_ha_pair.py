"""A redundant pair (issue 14): two hub processes, one private Mosquitto with persistence, one
PostgreSQL holding the lease, one InfluxDB. kill -9 the active node mid-stream: the standby takes
over on the same MQTT sessions, nothing is lost; cut the active node off from PostgreSQL: it
stops acting within its lease time and the other takes over; after healing it rejoins as standby.

Until the state stores move to PostgreSQL (branch i-pg), each hub keeps its alarm journal, outbox
and spool in its own SQLite files: the standby's engine has not seen the active node's readings
and its journal numbers its transitions from its own start. So the assertions on alarm events
are per node (no duplicate id among one node's events, nothing published by a standby), and the
killed node is restarted to drain the readings left in its own spool. The lead tightens these
after the merge: one journal sequence without gap or duplicate across the handover, every event
id unique across both nodes, and no restart needed for the exact count.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.postgres import PostgresProcess
from tests.fixtures.tcprelay import TcpRelay
from tests.integration.hubproc import HubProcess, wait_for
from tests.integration.streams import Streamer

pytestmark = pytest.mark.integration

PLANT = Path(__file__).parent.parent / "data" / "special_plant.yaml"
E1, E2 = "e1-chlor", "e2-coal"
GAS_TAGS = ["GT 1101", "GT,1102", "GT=1103", "氯气-1104"] + [f"GT-{1105 + i}" for i in range(96)]
PRESSURE_TAGS = [f"PT-{2001 + i}" for i in range(100)]
LEASE_S = 4.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def pair_env(node: str, mosquitto: Any, state_url: str, **extra: str) -> dict[str, str]:
    return {
        "SAFETY_HUB_PLANT": str(PLANT),
        "SAFETY_HUB_MQTT_URL": mosquitto.url,
        "SAFETY_HUB_HA": "on",
        "SAFETY_HUB_NODE_ID": node,
        "SAFETY_HUB_STATE_URL": state_url,
        "SAFETY_HUB_HA_LEASE_S": str(LEASE_S),
        "SAFETY_HUB_NOTIFY": "off",
        **extra,
    }


def make_pair(
    tmp_path: Path, mosquitto: Any, url_a: str, url_b: str, **extra: str
) -> tuple[HubProcess, HubProcess]:
    a = HubProcess(tmp_path / "a", pair_env("hub-a", mosquitto, url_a, **extra))
    b = HubProcess(tmp_path / "b", pair_env("hub-b", mosquitto, url_b, **extra))
    # each names its own API for the other's 409s (same admin token: one deployment)
    a.env["SAFETY_HUB_API_PUBLIC_URL"] = a.url
    b.env["SAFETY_HUB_API_PUBLIC_URL"] = b.url
    b.env["SAFETY_HUB_ADMIN_TOKEN"] = a.token
    b.token, b.auth = a.token, a.auth
    return a, b


class EventWatcher:
    """Every alarm event on ``hazard/v1/+/alarms``, with the monotonic time it arrived."""

    def __init__(self, port: int) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        ready: queue.Queue[int] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.events.append(
            (time.monotonic(), json.loads(m.payload))
        )
        self.client.on_subscribe = lambda *a: ready.put(1)
        self.client.on_connect = lambda c, *a: c.subscribe("hazard/v1/+/alarms", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        ready.get(timeout=10)

    def between(self, start: float, end: float) -> list[dict[str, Any]]:
        return [e for t, e in list(self.events) if start <= t < end]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def readings_in(influx: Any, db: str) -> int:
    try:
        body = influx.query('SELECT count("value") FROM "reading"', db)
    except Exception:
        return -1
    series = body["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def role_of(hub: HubProcess) -> str | None:
    """The node's role, or None while its API does not answer in time."""
    try:
        return str(hub.ha()["role"])
    except httpx.TimeoutException:
        return None


def active_seen_by(hub: HubProcess) -> str | None:
    """The active node as ``hub`` sees it, or None (none, or its API did not answer in time)."""
    try:
        active = hub.ha()["active_node"]
    except httpx.TimeoutException:
        return None
    return None if active is None else str(active)


def knows_none_active(hub: HubProcess) -> bool:
    """The node says no node is active (False while its API does not answer in time)."""
    try:
        return hub.ha()["active_node"] is None
    except httpx.TimeoutException:
        return False


def alarms_answer(hub: HubProcess) -> bool:
    try:
        return httpx.get(f"{hub.url}/api/v1/alarms", headers=hub.auth, timeout=2).is_success
    except httpx.TimeoutException:
        return False


def ready(hub: HubProcess) -> bool:
    try:
        return httpx.get(f"{hub.url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def assert_standby_refuses_actions(standby: HubProcess, active: HubProcess) -> None:
    """Reads served, actions 409 naming the active node, readiness 503 with the role."""
    ha = standby.ha()
    assert ha["enabled"] and ha["role"] == "standby" and ha["token"] is None
    assert ha["active_node"] == active.ha()["node_id"]
    assert ha["active_api_url"] == active.url
    readyz = httpx.get(f"{standby.url}/readyz", timeout=5)
    assert readyz.status_code == 503 and readyz.json()["role"] == "standby"
    assert standby.get("/api/v1/alarms").status_code == 200
    refused = standby.post("/api/v1/alarms/1/acknowledge", {"comment": "from the standby"})
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["active_node"] == ha["active_node"]
    assert body["active_api_url"] == active.url
    assert refused.headers["location"] == f"{active.url}/api/v1/alarms/1/acknowledge"
    unauthenticated = httpx.post(f"{standby.url}/api/v1/alarms/1/acknowledge", json={})
    assert unauthenticated.status_code == 401  # who is active is not told to strangers


def test_kill_9_of_the_active_node_mid_stream_the_standby_takes_over_nothing_lost(
    mosquitto: Any, influxdb1: Any, influx_db: str, pg_url: str, tmp_path: Path
) -> None:
    extra = {
        "SAFETY_HUB_INFLUX_URL": influxdb1.url,
        "SAFETY_HUB_INFLUX_API": "v1",
        "SAFETY_HUB_INFLUX_BUCKET": influx_db,
        "SAFETY_HUB_SPOOL_SYNC": "full",
    }
    a, b = make_pair(tmp_path, mosquitto, pg_url, pg_url, **extra)
    watcher = EventWatcher(mosquitto.port)
    try:
        a.start()
        b.start(standby=True)
        assert a.ha()["role"] == "active" and a.ha()["token"] >= 1
        assert_standby_refuses_actions(b, a)
        streams = [
            Streamer(
                "127.0.0.1",
                mosquitto.port,
                enterprise,
                tags,
                messages=400,
                per_message=50,
                rate=25,
                base_ts=now_ms() - 600_000,
            )
            for enterprise, tags in ((E1, GAS_TAGS), (E2, PRESSURE_TAGS))
        ]
        for s in streams:
            s.start()
        wait_for(
            lambda: a.metric("safety_hub_readings_accepted_total") >= 8_000, 60, "a part of it"
        )
        wait_for(lambda: len(watcher.events) > 0, 30, "alarm events from the active node")
        token_a = a.ha()["token"]
        assert b.metric("safety_hub_ha_role") == 0
        a.kill9()
        killed = time.monotonic()
        assert all(s.published < 400 for s in streams), "not a mid-stream kill"
        wait_for(lambda: ready(b), 30, "the standby to take over")
        took_over = time.monotonic()
        print(f"takeover after kill -9: {took_over - killed:.2f} s (lease {LEASE_S:g} s)")
        ha_b = b.ha()
        assert ha_b["role"] == "active" and ha_b["active_node"] == "hub-b"
        assert ha_b["token"] > token_a
        assert b.metric("safety_hub_ha_takeovers_total") == 1
        for s in streams:
            s.finish()
        # The killed node comes back as standby (and drains its own spool: see the docstring).
        a.start(standby=True)
        assert_standby_refuses_actions(a, b)
        total = 2 * 400 * 50
        wait_for(lambda: readings_in(influxdb1, influx_db) >= total, 120, "every reading")
        wait_for(lambda: a.metric("safety_hub_spool_readings") == 0, 30, "a's spool drained")
        wait_for(lambda: b.metric("safety_hub_spool_readings") == 0, 30, "b's spool drained")
        assert readings_in(influxdb1, influx_db) == total
        before = watcher.between(0, killed)
        after = watcher.between(killed, time.monotonic() + 1)
        assert before and after, "both nodes published alarm events in their term"
        for events in (before, after):
            seqs = [e["seq"] for e in events]
            assert len(seqs) == len(set(seqs)), "an alarm event published twice by one node"
        assert a.metric("safety_hub_ha_role") == 0 and b.metric("safety_hub_ha_role") == 1
    finally:
        watcher.close()
        for hub in (a, b):
            hub.stop()


def test_active_node_cut_off_from_postgres_steps_down_and_rejoins_as_standby(
    mosquitto: Any, postgres_private: PostgresProcess, tmp_path: Path
) -> None:
    """No split brain: the active node loses its database connection (a relay in between is
    cut): within its lease time it stops publishing and answers 503; the other node takes over;
    healed, the first one is standby and stays so."""
    url = postgres_private.create_database()
    relay = TcpRelay(postgres_private.host, postgres_private.port).start()
    url_a = url.replace(f":{postgres_private.port}/", f":{relay.port}/")
    a, b = make_pair(tmp_path, mosquitto, url_a, url)
    watcher = EventWatcher(mosquitto.port)
    stop = threading.Event()

    def gateway() -> None:  # a gas reading that keeps one alarm's events coming (raise/clear)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        k = 0
        while not stop.wait(0.5):
            value = 50.0 if k % 4 < 2 else 0.0
            body = {"ts": now_ms(), "readings": [{"tag": "GT-1105", "v": value}]}
            client.publish(f"hazard/v1/{E1}/telemetry", json.dumps(body), qos=1)
            k += 1
        client.loop_stop()
        client.disconnect()

    feeder = threading.Thread(target=gateway, daemon=True)
    try:
        a.start()
        b.start(standby=True)
        feeder.start()
        wait_for(lambda: len(watcher.events) >= 2, 60, "alarm events from the active node")
        relay.cut()
        cut = time.monotonic()
        # /readyz says 503 at once (the state database is away); the role follows within the
        # lease time
        # (its API can stall while a journal write waits on the cut connection, up to the
        # connection's TCP timeout: a read that times out counts as "not yet")
        wait_for(lambda: role_of(a) == "standby", LEASE_S + 30, "the cut-off node to step down")
        stepped_down = time.monotonic()
        print(f"cut-off node stopped acting {stepped_down - cut:.2f} s after the cut")
        assert not ready(a)
        assert a.ha()["token"] is None
        wait_for(lambda: ready(b), 30, "the other node to take over")
        print(f"other node active {time.monotonic() - cut:.2f} s after the cut")
        # were a to connect its sessions again (same client ids), the broker would end b's
        b_connects = b.metric("safety_hub_mqtt_connects_total")
        # a, cut off, still reaches the broker; it must publish nothing any more: every event
        # from now on is b's, so no seq repeats (b numbers from its own journal)
        relay.heal()
        wait_for(lambda: active_seen_by(a) == "hub-b", 60, "a to see b active")
        # its connections to the database that hung on the cut are given up after their TCP
        # timeout and made again; until then a read that needs the alarm lock may wait
        wait_for(lambda: alarms_answer(a), 60, "a to answer alarm reads again")
        assert_standby_refuses_actions(a, b)
        wait_for(
            lambda: len(watcher.between(stepped_down + 1, time.monotonic())) >= 2,
            60,
            "alarm events from the node that took over",
        )
        assert a.metric("safety_hub_ha_role") == 0
        assert (
            a.metric('safety_hub_ha_step_downs_total{reason="lease_timeout"}')
            + a.metric('safety_hub_ha_step_downs_total{reason="lease_lost"}')
            == 1
        )
        assert a.ha()["role"] == "standby" and b.ha()["role"] == "active"
        after = [e["seq"] for e in watcher.between(stepped_down, time.monotonic())]
        assert len(after) == len(set(after))
        assert b.metric("safety_hub_mqtt_connects_total") == b_connects
    finally:
        stop.set()
        watcher.close()
        for hub in (a, b):
            hub.stop()
        relay.close()


def test_active_node_cut_off_from_the_broker_hands_over_to_the_node_that_reaches_it(
    mosquitto: Any, pg_url: str, tmp_path: Path
) -> None:
    """The active node loses the broker (its MQTT goes through a relay that is cut): after the
    grace time it gives the lease up, and the other node, which reaches the broker, acts."""
    relay = TcpRelay("127.0.0.1", mosquitto.port).start()
    a, b = make_pair(tmp_path, mosquitto, pg_url, pg_url, SAFETY_HUB_HA_BROKER_GRACE_S="2")
    a.env["SAFETY_HUB_MQTT_URL"] = f"mqtt://127.0.0.1:{relay.port}"
    try:
        a.start()
        b.start(standby=True)
        token_a = a.ha()["token"]
        relay.cut()
        cut = time.monotonic()
        wait_for(lambda: ready(b), 30, "the node that reaches the broker to take over")
        print(f"broker cut-off: other node active {time.monotonic() - cut:.2f} s after the cut")
        assert b.ha()["token"] > token_a
        ha_a = a.ha()
        assert ha_a["role"] == "standby" and ha_a["broker_reachable"] is False
        assert a.metric('safety_hub_ha_step_downs_total{reason="broker_unreachable"}') == 1
        relay.heal()
        wait_for(lambda: a.ha()["broker_reachable"] is True, 30, "a to reach the broker again")
        assert_standby_refuses_actions(a, b)
        assert b.ha()["role"] == "active"
    finally:
        for hub in (a, b):
            hub.stop()
        relay.close()


def test_no_node_active_while_the_database_is_away_actions_answer_503(
    mosquitto: Any, postgres_private: PostgresProcess, tmp_path: Path
) -> None:
    """Both nodes lose PostgreSQL: neither acts (no lease to hold), both refuse actions with 503
    and Retry-After and name no active node; with the database back one acts again."""
    url = postgres_private.create_database()
    relays = [TcpRelay(postgres_private.host, postgres_private.port).start() for _ in range(2)]
    url_a, url_b = (url.replace(f":{postgres_private.port}/", f":{r.port}/") for r in relays)
    a, b = make_pair(tmp_path, mosquitto, url_a, url_b)
    try:
        a.start()
        b.start(standby=True)
        for relay in relays:
            relay.cut()
        wait_for(
            lambda: knows_none_active(a) and knows_none_active(b),
            LEASE_S + 30,
            "both nodes to know no node is active",
        )
        assert not ready(a) and not ready(b)
        for hub in (a, b):
            refused = hub.post("/api/v1/alarms/1/acknowledge", {"comment": "nobody acts"})
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "2"
            assert refused.json()["active_node"] is None
            assert "location" not in refused.headers
            assert hub.ha()["last_error"], hub.ha()  # the lease database problem, said
        for relay in relays:
            relay.heal()
        wait_for(lambda: ready(a) or ready(b), 30, "one node to act again")
        active, standby = (a, b) if ready(a) else (b, a)
        wait_for(lambda: standby.ha()["active_node"] is not None, 30, "the standby to see it")
        assert_standby_refuses_actions(standby, active)
    finally:
        for hub in (a, b):
            hub.stop()
        for relay in relays:
            relay.close()
