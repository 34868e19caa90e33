"""The MQTT catch-all session in its own process (SAFETY_HUB_CATCH_ALL_PROCESS, on by default):
real Mosquitto, the hub as its own process; the child killed, the hub killed, the switch off."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from safety_hub.runtime.interpreter import CATCH_ALL_PROCESS_NAME
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hostile import (
    DETECTORS,
    Publisher,
    assert_alarm_still_fires,
    now_ms,
    reading,
)
from tests.integration.hubproc import HubProcess, wait_for
from tests.integration.test_hostile_input import UNKNOWN_COUNTER, Clients, start_hub
from tests.integration.test_sink_process import alive, named_children

pytestmark = pytest.mark.integration

STRANGER = "x9-not-registered"


def catch_all_child(hub: HubProcess) -> int:
    wait_for(
        lambda: len(named_children(hub.pid, CATCH_ALL_PROCESS_NAME)) == 1,
        60,
        "the catch-all process",
    )
    return named_children(hub.pid, CATCH_ALL_PROCESS_NAME)[0]


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
        second = catch_all_child(hub)
        assert second != first
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


def test_catch_all_child_exits_when_the_hub_is_killed(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    hub = start_hub(tmp_path / "hub", mosquitto.url)
    try:
        child = catch_all_child(hub)
        hub.kill9()
        wait_for(lambda: not alive(child), 30, "the orphaned catch-all process to exit")
    finally:
        hub.stop()


def test_with_the_switch_off_the_catch_all_runs_in_the_hub(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    hub = start_hub(tmp_path / "hub", mosquitto.url, SAFETY_HUB_CATCH_ALL_PROCESS="off")
    clients = Clients(hub, mosquitto.port)
    try:
        wait_stranger_counted(hub, clients.pub)
        assert named_children(hub.pid, CATCH_ALL_PROCESS_NAME) == []
        assert_alarm_still_fires(clients.pub, clients.watcher, hub, DETECTORS[0], "a stranger")
    finally:
        clients.close()
