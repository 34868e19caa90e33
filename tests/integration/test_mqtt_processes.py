"""The receiving MQTT sessions in child processes (SAFETY_HUB_MQTT_PROCESS, on by default): the
persistent sessions in one (connectors/mqtt/receiver.py), the catch-all in another
(catch_all.py). Real Mosquitto and InfluxDB, the hub as its own process; either child killed,
the hub killed, the switch off."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.mqtt.acl import generate, read_credentials
from connectors.mqtt.catch_all import CATCH_ALL_PROCESS_NAME
from connectors.mqtt.receiver import RECEIVER_PROCESS_NAME
from safety_hub.registry import default_plant_path, load_plant
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hostile import (
    DETECTORS,
    ENT,
    TELEMETRY,
    AlarmWatcher,
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
COPIES = "safety_hub_mqtt_catch_all_copies_total"


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
        # An open broker sends the catch-all a copy of each registered enterprise's message too:
        # it drops and counts them (the fenced user of the next test gets none).
        clients.pub.publish(TELEMETRY, reading("GT-1101", 0.0, now_ms()))
        wait_for(lambda: hub.metric(COPIES) > 0, 10, "the catch-all's copies counted")
        copies = hub.metric(COPIES)

        os.kill(first, signal.SIGKILL)
        # The registered enterprises' sessions are the hub's own: alarms go on meanwhile.
        assert_alarm_still_fires(
            clients.pub, clients.watcher, hub, DETECTORS[0], "the catch-all process was killed"
        )
        second = catch_all_child(hub, other_than=first)
        wait_stranger_counted(hub, clients.pub)
        assert hub.metric(COPIES) >= copies  # the count survives the child's restart
        assert "catch-all process exited; restarting" in hub.log_tail(200)
        wait_for(lambda: hub.get("/readyz").status_code == 200, 30, "the hub ready again")
        assert_alarm_still_fires(
            clients.pub, clients.watcher, hub, DETECTORS[1], "the catch-all process restarted"
        )
    finally:
        clients.close()
    assert second is not None
    wait_for(lambda: not alive(second), 10, "the catch-all process to end with the hub's stop")


def test_a_fenced_catch_all_user_gets_no_copies_and_strangers_are_still_counted(
    mosquitto_factory: Any, tmp_path: Path
) -> None:
    """The broker as `safety-hub broker` configures it, the hub's catch-all connected as its
    own user (SAFETY_HUB_MQTT_CATCH_ALL_USER): an unregistered enterprise's message is still
    counted, a registered one's gas reading alarms, and the catch-all gets no copy of it."""
    out = tmp_path / "broker-files"
    generate(
        load_plant(default_plant_path()),
        out,
        simulator_user="simulator",
        env={"MQTT_HUB_PASSWORD": "hub-secret"},
    )
    creds = read_credentials(out)
    broker = mosquitto_factory(
        users={"hub": creds["hub"]},
        password_file_text=(out / "passwd").read_text(),
        acl_text=(out / "acl").read_text(),
    )
    hub = start_hub(
        tmp_path / "hub",
        broker.url_with_credentials("hub"),
        SAFETY_HUB_MQTT_CATCH_ALL_USER="hub-unregistered",
    )
    enterprise = (ENT, creds[ENT])
    pub = Publisher(broker.port, auth=enterprise)
    watcher = AlarmWatcher(broker.port, auth=enterprise)
    stranger = Publisher(broker.port, auth=("simulator", creds["simulator"]))
    try:
        catch_all_child(hub)
        wait_stranger_counted(hub, stranger)
        accepted = hub.metric("safety_hub_readings_accepted_total")
        for k in range(20):
            # in the past: none may be newer than the level-2 reading that follows, or the
            # engine would take that one as late (older than the newest) and not evaluate it
            pub.publish(TELEMETRY, reading("GT-1101", 0.0, now_ms() - 1_000 + k))
        wait_for(
            lambda: hub.metric("safety_hub_readings_accepted_total") >= accepted + 20,
            30,
            "the registered enterprise's readings taken in",
        )
        assert_alarm_still_fires(pub, watcher, hub, DETECTORS[0], "a fenced catch-all user")
        wait_stranger_counted(hub, stranger)  # after the registered messages, and still up
        time.sleep(1.5)  # the child reports its count every 0.5 s
        assert hub.metric(COPIES) == 0
        assert hub.metric("safety_hub_mqtt_connected") == 1
    finally:
        for client in (pub, watcher, stranger):
            client.close()
        hub.stop()


def test_the_embedded_broker_fences_the_catch_all_too(tmp_path: Path) -> None:
    """Local mode (make demo): the embedded broker lets any client do anything, except that the
    hub's catch-all user gets no copy of a registered enterprise's messages."""
    hub = start_hub(tmp_path / "hub", None, SAFETY_HUB_EMBEDDED_MQTT_PORT="0")
    clients: Clients | None = None
    try:
        port = int(hub.get("/api/v1/system").json()["mqtt_url"].rsplit(":", 1)[1])
        clients = Clients(hub, port)
        catch_all_child(hub)
        wait_stranger_counted(hub, clients.pub)
        assert_alarm_still_fires(
            clients.pub, clients.watcher, hub, DETECTORS[0], "the embedded broker's fence"
        )
        wait_stranger_counted(hub, clients.pub)  # after the registered messages, and still up
        time.sleep(1.5)  # the child reports its count every 0.5 s
        assert hub.metric(COPIES) == 0
        assert (tmp_path / "hub" / "broker" / "acl").exists()
    finally:
        if clients is not None:
            clients.close()
        else:
            hub.stop()


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
