"""The uplink inside the hub (in process, virtual clock): a full queue is never silent, the
state shows in /api/v1/system and /metrics; a missing key stops the start with its name."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safety_hub.errors import ConfigError
from tests.fixtures.processes import free_port
from tests.fixtures.uplink_receiver import EnvelopeReceiver
from tests.integration.hubproc import wait_for
from tests.unit.api_support import ADMIN_HEADERS, NOW, make_app, make_hub, publish

KEY = "0123456789abcdef"
CONFIG = """\
version: 1
destinations:
  - name: province
    transport: tcp_envelope
    tcp:
      host: 127.0.0.1
      port: {port}
      app_id: app
      service_id: svc
      district_code: "152921"
      key_env: SAFETY_HUB_UPLINK_UNIT_KEY
    send:
      hazard_grades: []
      hazard_sources: [HS-E01-01]
    max_records: {max_records}
    retry_max_s: 2  # a slow answer under a loaded CI machine must not back off past the waits
"""


def config(tmp_path: Path, max_records: int, port: int | None = None) -> Path:
    path = tmp_path / "uplink.yaml"
    port = port or free_port()
    path.write_text(CONFIG.format(port=port, max_records=max_records), encoding="utf-8")
    return path


def test_full_queue_holds_base_data_drops_readings_and_raises_a_system_alarm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More base data than the bound: the rest is held back (put again once there is room), a
    reading that does not fit is dropped and counted, a system alarm says so; API and metrics
    show it; once the platform takes records, all base data arrives and the alarm clears."""
    monkeypatch.setenv("SAFETY_HUB_UPLINK_UNIT_KEY", KEY)
    port = free_port()
    hub = make_hub(tmp_path, uplink=config(tmp_path, 10, port))
    assert hub.uplink is not None
    (lane,) = hub.uplink.lanes
    hub.uplink.queue_base(lane)
    expected = 2 + len(lane.tags)  # enterprise, hazard source, tags
    (alarm,) = [a for a in hub.system_alarms.active() if a.name == "uplink_queue_full:province"]
    assert f"{expected - 10} new tag record(s) held back" in alarm.message
    publish(hub, "e01-chloralkali", [{"tag": "LT-1101", "v": 1.0, "ts": NOW - 1000}])
    hub.uplink.queue_readings(lane)
    (state,) = hub.uplink.states()
    assert (state["backlog"], state["queued"], state["dropped"]) == (10, 10, 1)
    receiver = EnvelopeReceiver(KEY.encode())
    receiver.port = port
    with TestClient(make_app(hub, tmp_path), headers=ADMIN_HEADERS) as client:
        (shown,) = client.get("/api/v1/system").json()["uplinks"]
        assert (shown["name"], shown["dropped"]) == ("province", 1)
        metrics = client.get("/metrics").text
        assert 'safety_hub_uplink_dropped_records_total{destination="province"} 1.0' in metrics
        assert 'safety_hub_system_alarm{name="uplink_queue_full:province"} 1.0' in metrics
        receiver.start()
        try:
            wait_for(lambda: len(receiver.unique()) == expected, 30, "all base data")
            wait_for(
                lambda: (
                    not any(
                        a.name.startswith("uplink_queue_full") for a in hub.system_alarms.active()
                    )
                ),
                10,
                "the alarm cleared",
            )
        finally:
            receiver.stop()
    assert receiver.problems == [] and len(receiver.received()) == expected  # each once
    bits = {e.records[0].get("BIT_NO") for e in receiver.unique().values()} - {None}
    assert bits == {t.tag for t in lane.tags}


def test_missing_key_stops_the_start_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No AES key in the environment: ConfigError names the variable; a wrong length too,
    without echoing the key."""
    monkeypatch.delenv("SAFETY_HUB_UPLINK_UNIT_KEY", raising=False)
    with pytest.raises(ConfigError, match="SAFETY_HUB_UPLINK_UNIT_KEY"):
        make_hub(tmp_path, uplink=config(tmp_path, 100))
    monkeypatch.setenv("SAFETY_HUB_UPLINK_UNIT_KEY", "short-secret")
    with pytest.raises(ConfigError, match="must be 16, 24 or 32 bytes") as info:
        make_hub(tmp_path, uplink=config(tmp_path, 100))
    assert "short-secret" not in str(info.value)


WARNINGS_ONLY = CONFIG.replace(
    "      hazard_sources: [HS-E01-01]\n",
    "      hazard_sources: [HS-E01-01]\n      base: false\n      readings: false\n",
)


def test_full_queue_holds_warnings_back_in_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More journal rows than the queue takes: the rest waits (the journal marker stays), and
    as the queue drains every row goes up once, in journal order; nothing is dropped."""
    monkeypatch.setenv("SAFETY_HUB_UPLINK_UNIT_KEY", KEY)
    path = tmp_path / "uplink.yaml"
    path.write_text(WARNINGS_ONLY.format(port=free_port(), max_records=10), encoding="utf-8")
    hub = make_hub(tmp_path, uplink=path)
    assert hub.uplink is not None
    (lane,) = hub.uplink.lanes
    assert hub.uplink.queue_warnings(lane) == 0  # a new destination starts at the journal's end
    publish(hub, "e01-chloralkali", [{"tag": "GT-1101", "v": 0.8, "ts": NOW - 1000}])
    (alarm, *_) = [a for a in hub.alarms.service.list() if a.tag == "GT-1101"]
    service = hub.alarms.service
    for _ in range(8):
        service.shelve(alarm.id, "op", "test", NOW + 3_600_000)
        service.unshelve(alarm.id, "op")
    rows = [e for e in hub.alarms.journal.entries() if e.alarm_id is not None]
    ours = [e.id for e in rows if service.get(e.alarm_id).hazard_source == "HS-E01-01"]
    assert len(ours) > 10
    hub.uplink.queue_warnings(lane)
    assert hub.uplink.queue.depth("province").records == 10 and lane.warnings_pending
    assert hub.uplink.queue.cursors("province")["journal"] != str(rows[-1].id)
    assert any(a.name == "uplink_queue_full:province" for a in hub.system_alarms.active())
    sent: list[str] = []
    while True:
        waiting = hub.uplink.queue.peek("province", 4)
        if not waiting and not lane.warnings_pending:
            break
        sent += [q.record.data["ALARM_EVENT"] for q in waiting]
        hub.uplink.queue.remove("province", [q.seq for q in waiting])
        hub.uplink.queue_warnings(lane)
    assert len(sent) == len(ours) and hub.uplink.states()[0]["dropped"] == 0
    assert sent.count("shelve") == 8 and sent.count("unshelve") == 8
    assert hub.uplink.queue.cursors("province")["journal"] == str(rows[-1].id)


def test_a_restarted_uplink_goes_on_from_the_cursors_another_node_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node of a pair that acts again reads the cursors anew at start: what the other node
    queued meanwhile (journal row, reading times, base data) is not queued a second time, and
    what this node held in memory before is forgotten."""
    monkeypatch.setenv("SAFETY_HUB_UPLINK_UNIT_KEY", KEY)
    hub = make_hub(tmp_path, uplink=config(tmp_path, 1000))
    uplink = hub.uplink
    assert uplink is not None
    (lane,) = uplink.lanes
    uplink.start()
    try:
        wait_for(lambda: lane.base_done and lane.journal_marker is not None, 10, "first term")
    finally:
        uplink.stop()
    base = uplink.queue.cursors("province")["base"]
    # the other node's term: it queued a reading of LT-1101 and journal rows up to 99
    other = {"journal": "99", "r:e01-chloralkali/LT-1101": str(NOW), "base": base}
    uplink.queue.put("province", [], NOW, max_records=1000, cursors=other)
    queued = uplink.states()[0]["queued"]
    publish(hub, "e01-chloralkali", [{"tag": "LT-1101", "v": 1.0, "ts": NOW - 1000}])
    uplink.start()
    try:
        wait_for(lambda: lane.loaded and lane.base_done, 10, "the cursors read again")
        assert lane.journal_marker == 99
        assert lane.reading_ts["e01-chloralkali/LT-1101"] == NOW
        uplink.queue_readings(lane)  # older than the other node's: not queued
    finally:
        uplink.stop()
    assert uplink.states()[0]["queued"] == queued
