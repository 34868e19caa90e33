"""The receiving MQTT sessions in child processes (SAFETY_HUB_MQTT_PROCESS, on by default): the
persistent sessions in one (connectors/mqtt/receiver.py), the catch-all in another
(catch_all.py). Real Mosquitto and InfluxDB, the hub as its own process; either child killed,
the hub killed, the switch off."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from connectors.mqtt.catch_all import CATCH_ALL_PROCESS_NAME
from connectors.mqtt.receiver import RECEIVER_PROCESS_NAME
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hostile import (
    DETECTORS,
    Publisher,
    assert_alarm_still_fires,
    reading,
)
from tests.integration.hubproc import HubProcess, wait_for
from tests.integration.streams import Streamer
from tests.integration.test_hostile_input import UNKNOWN_COUNTER, Clients, start_hub
from tests.integration.test_no_loss import E2, TAGS, count, hub_env, now_ms, safe_count
from tests.integration.test_sink_process import alive, named_children

pytestmark = pytest.mark.integration

STRANGER = "x9-not-registered"


def child_named(hub: HubProcess, name: str, other_than: int | None = None) -> int:
    """The hub's one child process of that name (one that is not ``other_than``)."""

    def found() -> bool:
        pids = named_children(hub.pid, name)
        return len(pids) == 1 and pids[0] != other_than

    wait_for(found, 60, f"the hub's {name} process")
    return named_children(hub.pid, name)[0]


def catch_all_child(hub: HubProcess, other_than: int | None = None) -> int:
    return child_named(hub, CATCH_ALL_PROCESS_NAME, other_than)


def receiver_child(hub: HubProcess, other_than: int | None = None) -> int:
    return child_named(hub, RECEIVER_PROCESS_NAME, other_than)


def wait_stranger_counted(hub: HubProcess, pub: Publisher) -> None:
    """An unregistered enterprise's telemetry reaches the hub (through the catch-all session)
    and is counted as such; published again until it is (the session may be reconnecting)."""
    before = hub.metric(UNKNOWN_COUNTER)

    def counted() -> bool:
        pub.publish(f"hazard/v1/{STRANGER}/telemetry", reading("GT-1101", 0.1, now_ms()))
        return hub.metric(UNKNOWN_COUNTER) > before

    wait_for(
        counted, 30, f"a message of an unregistered enterprise counted\n{hub.log_tail(15)}", 0.5
    )


def test_catch_all_child_killed_is_restarted_and_the_park_still_alarms(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    hub = start_hub(tmp_path / "hub", mosquitto.url)
    clients = Clients(hub, mosquitto.port)
    second = None
    try:
        first = catch_all_child(hub)
        wait_stranger_counted(hub, clients.pub)

        os.kill(first, signal.SIGKILL)
        # The registered enterprises' sessions are the hub's own: alarms go on meanwhile.
        assert_alarm_still_fires(
            clients.pub, clients.watcher, hub, DETECTORS[0], "the catch-all process was killed"
        )
        second = catch_all_child(hub, other_than=first)
        wait_stranger_counted(hub, clients.pub)
        assert "catch-all process exited; restarting" in hub.log_tail(200)
        wait_for(lambda: hub.get("/readyz").status_code == 200, 30, "the hub ready again")
        assert_alarm_still_fires(
            clients.pub, clients.watcher, hub, DETECTORS[1], "the catch-all process restarted"
        )
    finally:
        clients.close()
    assert second is not None
    wait_for(lambda: not alive(second), 10, "the catch-all process to end with the hub's stop")


def test_receiver_child_killed_mid_stream_is_restarted_and_loses_nothing(
    mosquitto: Any, influxdb1: Any, influx_db: str, tmp_path: Path
) -> None:
    """kill -9 of the child that holds the enterprise sessions while QoS 1 readings stream in:
    the hub starts it again, the broker delivers what was not acknowledged again, and InfluxDB
    ends up with every reading exactly once."""
    hub = HubProcess(tmp_path / "hub", hub_env(mosquitto, influxdb1.url, influx_db))
    hub.start()
    try:
        first = receiver_child(hub)
        stream = Streamer(
            "127.0.0.1",
            mosquitto.port,
            E2,
            TAGS[E2],
            messages=300,
            per_message=100,
            rate=100,
            base_ts=now_ms() - 3_600_000,
        )
        stream.start()
        wait_for(lambda: safe_count(influxdb1, influx_db) >= 5_000, 60, "the first readings stored")
        os.kill(first, signal.SIGKILL)
        second = receiver_child(hub, other_than=first)
        stream.finish()
        wait_for(lambda: safe_count(influxdb1, influx_db) >= 30_000, 120, "30,000 readings stored")
        wait_for(lambda: hub.metric("safety_hub_spool_readings") == 0, 90, "an empty spool")
        assert count(influxdb1, influx_db) == 30_000
        assert "receiver process exited; restarting" in hub.log_tail(400)
        wait_for(lambda: hub.get("/readyz").status_code == 200, 30, "the hub ready again")
        assert hub.metric("safety_hub_mqtt_in_flight_messages") == 0
    finally:
        hub.stop()
    wait_for(lambda: not alive(second), 10, "the receiver process to end with the hub's stop")


def test_a_gas_alarm_fires_after_the_receiver_child_is_killed(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    hub = start_hub(tmp_path / "hub", mosquitto.url)
    clients = Clients(hub, mosquitto.port)
    try:
        first = receiver_child(hub)
        assert_alarm_still_fires(clients.pub, clients.watcher, hub, DETECTORS[0], "a clean start")
        os.kill(first, signal.SIGKILL)
        # Published while the child is away: the broker keeps it in the session for the next.
        assert_alarm_still_fires(
            clients.pub, clients.watcher, hub, DETECTORS[1], "the receiver process was killed"
        )
        receiver_child(hub, other_than=first)
    finally:
        clients.close()


def test_both_children_exit_when_the_hub_is_killed(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    hub = start_hub(tmp_path / "hub", mosquitto.url)
    try:
        children = [catch_all_child(hub), receiver_child(hub)]
        hub.kill9()
        wait_for(lambda: not any(map(alive, children)), 30, f"the orphaned children {children}")
    finally:
        hub.stop()


def test_with_the_switch_off_the_sessions_run_in_the_hub(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    hub = start_hub(tmp_path / "hub", mosquitto.url, SAFETY_HUB_MQTT_PROCESS="off")
    clients = Clients(hub, mosquitto.port)
    try:
        wait_stranger_counted(hub, clients.pub)
        assert named_children(hub.pid, CATCH_ALL_PROCESS_NAME) == []
        assert named_children(hub.pid, RECEIVER_PROCESS_NAME) == []
        assert_alarm_still_fires(clients.pub, clients.watcher, hub, DETECTORS[0], "a stranger")
    finally:
        clients.close()
