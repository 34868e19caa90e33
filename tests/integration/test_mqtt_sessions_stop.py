"""Stopping the hub's MQTT sessions closes all of them at once, through a real broker.

A redundant pair shares client ids: the node that takes over connects under the same ids as the
node that stepped down. Were the step-down to stop its receiving children one after another, a
child still connected while an earlier one hands over would see the other node take its
sessions, reconnect, and take them back (found by test_ha_pair's cut-off test). So every child
is told to stop before any is waited for. Here the persistent sessions' child is frozen
(SIGSTOP): the critical sessions' child must still stop while the frozen one has not."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import pytest

from connectors.mqtt import MqttConfig, MqttSessions, sessions_for
from connectors.mqtt.sessions import critical_lanes
from safety_hub.ingest.telemetry import status_topic, telemetry_subscription
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hubproc import process_alive, wait_for

pytestmark = pytest.mark.integration

CODES = ("e1", "e2")


def test_a_frozen_child_does_not_keep_the_others_sessions_open(
    mosquitto: MosquittoProcess,
) -> None:
    base = MqttConfig(host="127.0.0.1", port=mosquitto.port, client_id="hub-stop")
    lanes = [(c, (telemetry_subscription(c), status_topic(c)), ()) for c in CODES]
    configs, publisher = sessions_for(base, [*lanes, *critical_lanes(CODES, 10)], None)
    sessions = MqttSessions(configs, publisher, in_processes=True)
    sessions.start(lambda message: None)
    assert sessions.wait_connected(20)
    bulk, critical = sessions._receivers  # the children are what is tested
    assert bulk is not None and critical is not None
    bulk_pid, critical_pid = bulk.pid, critical.pid
    assert bulk_pid is not None and critical_pid is not None
    os.kill(bulk_pid, signal.SIGSTOP)  # it cannot read "stop" nor exit until it is killed
    stopper = threading.Thread(target=sessions.stop, daemon=True)
    try:
        stopper.start()
        wait_for(
            lambda: not process_alive(critical_pid), 30, "the critical sessions' child to stop"
        )
        # one after another, the critical child was only told once the frozen one was killed
        assert process_alive(bulk_pid), (
            "the critical child stopped only after the frozen one was gone"
        )
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed by the stop's timeout
            os.kill(bulk_pid, signal.SIGCONT)
        stopper.join(30)
    assert not stopper.is_alive()
    assert not process_alive(bulk_pid)
