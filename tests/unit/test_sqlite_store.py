"""The embedded store of local mode keeps readings and every other measurement the hub writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.influx import SqliteStore
from safety_hub.clock import VirtualClock
from safety_hub.errors import SinkError
from safety_hub.ports import InboundMessage
from safety_hub.runtime.hub import Hub, Storage
from safety_hub.settings import load_settings
from tests.fixtures.tmpfs import SmallFs, small_tmpfs_fixture  # noqa: F401
from tests.unit.fakes import MemorySource

NOW = 1_790_000_000_000


def test_alarm_events_are_stored_not_dead_lettered(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "readings.sqlite")
    hub = Hub(
        load_settings(data_dir=tmp_path),
        clock=VirtualClock(NOW),
        storage=Storage(store, store, "test store"),
        source=MemorySource(),
    )
    body = {"readings": [{"tag": "GT-1101", "v": 0.8, "ts": NOW - 1000}]}
    hub.ingest.process(
        [InboundMessage("hazard/v1/e01-chloralkali/telemetry", json.dumps(body).encode(), NOW)]
    )
    hub.sink_worker._write(hub.spool.peek(10_000))
    assert hub.spool.dead_letters() == []
    assert hub.spool.depth().readings == 0
    assert store.count() == 1
    events = store.points("alarm_event")
    alerts = {tags["alert"] for _, tags, _ in events}
    assert {"ToxicGasLevel1", "ToxicGasLevel2"} <= alerts
    ts, tags, fields = events[0]
    assert ts == NOW  # the transition's clock time
    assert tags["enterprise"] == "e01-chloralkali" and tags["action"] == "raise"
    assert fields["state"] == "unacknowledged" and isinstance(fields["alarm_id"], int)


def test_points_overwrite_like_influxdb_and_need_a_timestamp(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    store.write('alarm_event,alert=A,tag=T\\ 1 alarm_id=1i,state="x" 5\nother,k=v n=1 5')
    store.write('alarm_event,alert=A,tag=T\\ 1 alarm_id=1i,state="y" 5')
    assert store.points("alarm_event") == [
        (5, {"alert": "A", "tag": "T 1"}, {"alarm_id": 1, "state": "y"})
    ]
    assert store.points("other") == [(5, {"k": "v"}, {"n": 1.0})]
    with pytest.raises(SinkError, match="no timestamp"):
        store.write("alarm_event,alert=A alarm_id=1i")


def test_a_full_disk_is_a_retryable_sink_error_naming_the_file(small_tmpfs: SmallFs) -> None:
    """On a full disk the store's write is retryable (the batch stays in the spool) and says
    "database or disk is full" with the file; once there is room the same write goes in."""
    store = SqliteStore(small_tmpfs.path / "readings.sqlite")
    lines = "\n".join(
        f'reading,enterprise=e01,tag=GT-{i} value={i}.5,quality="good" {i}' for i in range(3000)
    )
    small_tmpfs.fill()
    with pytest.raises(SinkError) as caught:
        store.write(lines)
    assert caught.value.retryable
    assert caught.value.detail.startswith(f"{store.path}: readings store: database or disk is full")
    assert store.count() == 0
    small_tmpfs.unfill()
    store.write(lines)
    assert store.count() == 3000
    store.close()
