"""Contract v1.1's ``hazard/v1/{enterprise}/critical`` topic, end to end: real Mosquitto, the hub
as its own process. Gas and SIS readings published there are read on persistent sessions of
their own, in a child process of their own (connectors/mqtt/sessions.py), so they never queue
behind the enterprise's process data: not behind a second's burst, and not behind the backlog a
gateway sends after an outage, which the broker delivers first in, first out on one session.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.mqtt.receiver import CRITICAL_RECEIVER_PROCESS_NAME
from safety_hub.registry import default_plant_path, load_plant
from safety_hub.registry.checks import GAS_KINDS, SIS_KINDS
from simulators.gateway import normal_value
from simulators.park import sim_tags
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hostile import (
    DETECTORS,
    ENT,
    HIGH,
    NORMAL,
    REJECTED,
    TELEMETRY,
    AlarmWatcher,
    Publisher,
    TopicCollector,
    back_to_normal,
    flood_qos1,
    now_ms,
    raise_level2,
    reading,
    rejection_total,
    shipped_size_limits,
    wait_ingesting,
)
from tests.integration.hubproc import HubProcess, wait_for
from tests.integration.test_hostile_input import UNKNOWN_COUNTER, check_report_bounded, start_hub
from tests.integration.test_mqtt_processes import child_named
from tests.integration.test_sink_process import alive

pytestmark = pytest.mark.integration

CRITICAL = f"hazard/v1/{ENT}/critical"
ACCEPTED = "safety_hub_readings_accepted_total"
OTHERS = "safety_hub_critical_topic_other_readings_total"
BACKLOG_MESSAGES = 2_000  # of 100 readings: a gateway's buffer after an outage
PER_MESSAGE = 100


@pytest.fixture
def broker(mosquitto_factory: Callable[..., MosquittoProcess]) -> MosquittoProcess:
    """A private Mosquitto with the shipped config's size limits."""
    return mosquitto_factory(extra_config=shipped_size_limits())


def process_tags() -> list[Any]:
    """ENT's in-service tags that are neither gas detectors nor SIS: its process data."""
    tags = sim_tags(load_plant(default_plant_path()))[ENT]
    return [t for t in tags if t.kind not in GAS_KINDS | SIS_KINDS]


def backlog(messages: int) -> Iterator[tuple[str, bytes]]:
    """ENT's process data of an hour ago, as a gateway sends its buffer after an outage: every
    reading with a timestamp of its own, so none overwrites another."""
    tags, rng = process_tags(), random.Random(7)
    start = now_ms() - 3_600_000
    n = 0
    for _ in range(messages):
        readings = []
        for _ in range(PER_MESSAGE):
            tag, ts = tags[n % len(tags)], start + n // len(tags) * 10
            readings.append({"tag": tag.tag, "v": normal_value(tag, ts / 1000, rng), "ts": ts})
            n += 1
        yield TELEMETRY, json.dumps({"readings": readings}).encode()


def wait_critical_ingesting(hub: HubProcess, pub: Publisher) -> None:
    """Until a reading on the critical topic is accepted (its session subscribed)."""
    start = hub.metric(ACCEPTED)

    def moved() -> bool:
        pub.publish(CRITICAL, reading(DETECTORS[-2], NORMAL, now_ms()))
        return hub.metric(ACCEPTED) > start

    wait_for(moved, 20, f"the hub to ingest its critical topic\n{hub.log_tail(15)}", 0.5)


def raised(watcher: AlarmWatcher, since: Any, tag: str) -> bool:
    return bool(watcher.matching(since, ("raise", "reactivate"), tag))


def raise_on(topic: str, pub: Publisher, watcher: AlarmWatcher, hub: HubProcess, tag: str) -> None:
    """A level-2 reading of ``tag`` on ``topic`` raises its alarm within 10 s (GB 16808), and a
    normal one clears it again."""
    raise_level2(pub, watcher, hub, tag, f"readings on {topic}", topic)
    back_to_normal(pub, watcher, hub, tag, topic)


@pytest.mark.parametrize("topic", ["critical", "telemetry"])
def test_a_gas_reading_on_the_critical_topic_overtakes_its_gateways_backlog(
    broker: MosquittoProcess, tmp_path: Path, topic: str
) -> None:
    """While the hub is down its enterprise's gateway sends 200,000 buffered readings, then a
    chlorine reading past level 2. Sent on ``critical``, the alarm is raised before the hub has
    taken in the backlog; sent on ``telemetry`` (as a v1.0 gateway does) it waits behind
    nearly all of it, which is what the critical topic is for. Nothing is lost either way."""
    hub = start_hub(tmp_path / "hub", broker.url)
    pub = Publisher(broker.port)
    watcher = AlarmWatcher(broker.port)
    try:
        wait_ingesting(hub, pub)
        wait_critical_ingesting(hub, pub)
        hub.stop()  # its persistent sessions stay with the broker and queue
        assert flood_qos1(broker.port, backlog(BACKLOG_MESSAGES)) == BACKLOG_MESSAGES
        since = watcher.mark()
        pub.publish(f"hazard/v1/{ENT}/{topic}", reading(DETECTORS[0], HIGH, now_ms()))
        hub.start()
        wait_for(lambda: raised(watcher, since, DETECTORS[0]), 120, "the level-2 alarm", 0.005)
        taken = hub.metric(ACCEPTED)  # read after the alarm: if anything, later than it
        total = BACKLOG_MESSAGES * PER_MESSAGE
        if topic == "critical":
            assert taken < total, f"the alarm came only after {taken:,.0f} of {total:,} readings"
        else:
            assert taken >= 0.9 * total, f"the alarm overtook the backlog ({taken:,.0f})"
        wait_for(lambda: hub.metric(ACCEPTED) >= total + 1, 180, "the backlog taken in", 0.5)
        assert hub.metric(ACCEPTED) == total + 1
    finally:
        for client in (pub, watcher):
            client.close()
        hub.stop()


def test_the_critical_receiver_killed_loses_nothing_and_the_park_still_alarms(
    broker: MosquittoProcess, influxdb1: Any, influx_db: str, tmp_path: Path
) -> None:
    """kill -9 of the child that holds the critical sessions while gas readings stream in on
    ``critical``: the hub starts it again, the broker delivers what was not acknowledged, and
    InfluxDB ends up with every reading exactly once; a level-2 reading sent while the child is
    dead is alarmed once it is back."""
    env = {
        "SAFETY_HUB_MQTT_URL": broker.url,
        "SAFETY_HUB_INFLUX_URL": influxdb1.url,
        "SAFETY_HUB_INFLUX_API": "v1",
        "SAFETY_HUB_INFLUX_BUCKET": influx_db,
        "SAFETY_HUB_SPOOL_SYNC": "normal",
    }
    hub = HubProcess(tmp_path / "hub", env)
    hub.start()
    pub = Publisher(broker.port)
    watcher = AlarmWatcher(broker.port)
    try:
        wait_critical_ingesting(hub, pub)
        first = child_named(hub, CRITICAL_RECEIVER_PROCESS_NAME)
        start, messages = now_ms() - 3_600_000, 300
        since = watcher.mark()
        for n in range(messages):
            ts = start + n * 1000
            body = {"readings": [{"tag": tag, "v": NORMAL, "ts": ts} for tag in DETECTORS]}
            pub.send(CRITICAL, json.dumps(body).encode())
            if n == messages // 3:
                pub.wait_all_acked(30)
                os.kill(first, signal.SIGKILL)
                pub.publish(CRITICAL, reading(DETECTORS[1], HIGH, now_ms()))
            time.sleep(0.005)
        pub.wait_all_acked(30)
        second = child_named(hub, CRITICAL_RECEIVER_PROCESS_NAME, other_than=first)
        wait_for(lambda: raised(watcher, since, DETECTORS[1]), 60, "the alarm sent while dead")
        assert "critical receiver process exited; restarting" in hub.log_tail(400)
        expected = messages * len(DETECTORS)
        past = f"time < {start + messages * 1000}ms"

        def stored() -> int:
            body = influxdb1.query(f'SELECT count("value") FROM "reading" WHERE {past}', influx_db)
            series = body["results"][0].get("series")
            return int(series[0]["values"][0][1]) if series else 0

        wait_for(lambda: stored() >= expected, 60, f"{expected} readings stored")
        assert stored() == expected
        raise_on(CRITICAL, pub, watcher, hub, DETECTORS[2])
    finally:
        for client in (pub, watcher):
            client.close()
        hub.stop()
    wait_for(lambda: not alive(second), 10, "the critical receiver to end with the hub's stop")


def test_poison_and_strangers_on_the_critical_topic_are_reported_and_the_park_still_alarms(
    broker: MosquittoProcess, tmp_path: Path
) -> None:
    """Broken payloads on ``critical`` are rejected, counted and reported to the enterprise as
    on telemetry; an unregistered enterprise's critical topic is counted as such; a flood of
    bad messages there stops no alarm, on either topic."""
    hub = start_hub(tmp_path / "hub", broker.url)
    pub = Publisher(broker.port)
    watcher = AlarmWatcher(broker.port)
    reports = TopicCollector(broker.port, REJECTED)
    try:
        wait_critical_ingesting(hub, pub)
        rejected, unknown, seen = rejection_total(hub), hub.metric(UNKNOWN_COUNTER), reports.count()
        pub.publish(CRITICAL, b'{"readings": [{"tag": "GT-1101", "v": ')  # truncated
        pub.publish(CRITICAL, b"\xff\xfe not utf-8")
        pub.publish(CRITICAL, reading("NO-SUCH-TAG", 1.0, now_ms()))
        wait_for(lambda: reports.count() - seen >= 3, 30, "three rejection reports")
        got = [check_report_bounded(raw) for raw in reports.payloads(seen)]
        reasons = sorted(e["reason"] for r in got for e in r["rejected"])
        assert reasons == ["malformed_json", "malformed_json", "unknown_tag"], reasons
        assert rejection_total(hub) - rejected >= 3
        pub.publish("hazard/v1/x9-not-registered/critical", reading("GT-1101", HIGH, now_ms()))
        wait_for(lambda: hub.metric(UNKNOWN_COUNTER) > unknown, 30, "a stranger counted")
        flood = ((CRITICAL, b"[" * 200 + b"]" * 200) for _ in range(3_000))
        assert flood_qos1(broker.port, flood) == 3_000
        raise_on(CRITICAL, pub, watcher, hub, DETECTORS[3])
        raise_on(TELEMETRY, pub, watcher, hub, DETECTORS[4])
        # process data on the critical topic is taken (never lost) and counted as misplaced
        assert hub.metric(OTHERS) == 0
        tag = process_tags()[0]
        value = normal_value(tag, time.time(), random.Random(1))
        pub.publish(CRITICAL, reading(tag.tag, value, now_ms()))
        wait_for(lambda: hub.metric(OTHERS) == 1, 30, "a misplaced reading counted")
        assert hub.metric("safety_hub_critical_topic_messages_total") >= 3_000 + 5
        assert hub.get("/readyz").status_code == 200
    finally:
        for client in (pub, watcher, reports):
            client.close()
        hub.stop()
