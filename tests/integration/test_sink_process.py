"""The sink in its own process (SAFETY_HUB_SINK_PROCESS=on): real Mosquitto, InfluxDB, the hub
as its own process; the child killed, the hub killed, counts and metrics relayed."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from safety_hub.runtime.interpreter import SINK_PROCESS_NAME
from tests.integration.hubproc import HubProcess, wait_for
from tests.integration.streams import Streamer
from tests.integration.test_no_loss import E2, TAGS, count, hub_env, now_ms, safe_count

pytestmark = pytest.mark.integration


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, the fields after the last ')' do not
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def named_children(pid: int, name: str) -> list[int]:
    """The hub's child processes of that name (runtime/interpreter.py names them; not
    multiprocessing's resource tracker)."""
    out = []
    for child in children(pid):
        try:
            comm = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            continue
        if comm == name and alive(child):
            out.append(child)
    return out


def sink_children(pid: int) -> list[int]:
    """The hub's sink processes."""
    return named_children(pid, SINK_PROCESS_NAME)


def sink_child(hub: HubProcess) -> int:
    wait_for(lambda: len(sink_children(hub.pid)) == 1, 60, "the sink process")
    return sink_children(hub.pid)[0]


def test_sink_child_killed_mid_stream_is_restarted_and_loses_nothing(
    mosquitto: Any, influxdb1: Any, influx_db: str, tmp_path: Path
) -> None:
    env = hub_env(mosquitto, influxdb1.url, influx_db, SAFETY_HUB_SINK_PROCESS="on")
    hub = HubProcess(tmp_path / "hub", env)
    hub.start()
    try:
        first = sink_child(hub)
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
        wait_for(
            lambda: hub.metric('safety_hub_sink_errors_total{kind="crash"}') == 1,
            30,
            "the hub to notice the sink process died",
        )
        second = sink_child(hub)
        assert second != first
        stream.finish()
        wait_for(lambda: safe_count(influxdb1, influx_db) >= 30_000, 120, "30,000 readings stored")
        wait_for(lambda: hub.metric("safety_hub_spool_readings") == 0, 90, "an empty spool")
        assert count(influxdb1, influx_db) == 30_000
        # relayed from the child: at least every reading (a batch written before the kill but
        # not yet deleted is written again), the spool counts exact, the sink up
        assert hub.metric("safety_hub_sink_readings_written_total") >= 30_000
        assert hub.metric("safety_hub_spool_batches") == 0
        assert hub.metric("safety_hub_sink_up") == 1
        assert hub.get("/readyz").status_code == 200
    finally:
        hub.stop()
    wait_for(lambda: not alive(second), 10, "the sink process to end with the hub's stop")


def test_sink_child_exits_when_the_hub_is_killed(
    mosquitto: Any, influxdb1: Any, influx_db: str, tmp_path: Path
) -> None:
    env = hub_env(mosquitto, influxdb1.url, influx_db, SAFETY_HUB_SINK_PROCESS="on")
    hub = HubProcess(tmp_path / "hub", env)
    hub.start()
    child = sink_child(hub)
    hub.kill9()
    wait_for(lambda: not alive(child), 30, "the orphaned sink process to exit")
