"""The alarm journal: the durable state of the alarm service, immutable and kept a year."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from safety_hub.alarms import AlarmJournal, AlarmService, AlarmState, InvalidAction
from safety_hub.clock import VirtualClock
from safety_hub.errors import DiskFullError
from tests.fixtures.tmpfs import SmallFs, small_tmpfs_fixture  # noqa: F401
from tests.unit.test_alarms_support import CL2_SOURCE, DAY, GRADES, HOUR, MINUTE, T0, Rig, gas

L1 = "Cl2Level1|e01-chloralkali|GT-1101"
L2 = "Cl2Level2|e01-chloralkali|GT-1101"
PRESSURE = "HighPressure|e01-chloralkali|PT-2001"
FLOW = "FlowLow|e01-chloralkali|FT-2002"
TEMP = "HighTemp|e01-chloralkali|TT-2003"


def _history(rig: Rig) -> None:
    """A bit of everything: latches, acks, a shelve, suppressions, out of service, first-out."""
    svc = rig.svc
    rig.on(L1, **gas(1), value=1.4)
    rig.advance(MINUTE)
    rig.on(L2, **gas(2), value=2.2)
    rig.off(L1, **gas(1), value=0.8)
    svc.acknowledge(rig.alarm(L2).id, "op1", comment="evacuating unit 1")
    rig.on(PRESSURE, value=1.9)
    svc.shelve(
        rig.alarm(PRESSURE).id, "op1", "transmitter fault, WO 4711", rig.clock.now_ms() + HOUR
    )
    svc.suppress("SIS trip SIF-101", [FLOW, TEMP])
    rig.on(FLOW)
    rig.on(TEMP)
    svc.release("SIS trip SIF-101", [TEMP])
    rig.on("Oxygen|e01-chloralkali|AT-3001", priority="high")
    svc.remove_from_service(rig.alarm("Oxygen|e01-chloralkali|AT-3001").id, "tech1", "recal")
    rig.advance(MINUTE)
    rig.on(L1, **gas(1), value=1.1)  # the gas is back while L1's latch holds: a return


def test_restart_from_the_journal_restores_the_same_alarms(tmp_path: Path) -> None:
    """A service built on the same file (as after a kill) has the same list, journal and pins."""
    path = tmp_path / "alarms.db"
    rig = Rig(path)
    _history(rig)
    svc = rig.svc
    before = (
        svc.list(include_normal=True),
        svc.journal(),
        svc.first_out(CL2_SOURCE),
        svc.suppressions(),
        svc.kpis(),
    )
    # the first service is not closed: a killed process does not get to clean up
    clock = VirtualClock(rig.clock.now_ms())
    reborn = AlarmService(AlarmJournal(path), clock, GRADES)
    after = (
        reborn.list(include_normal=True),
        reborn.journal(),
        reborn.first_out(CL2_SOURCE),
        reborn.suppressions(),
        reborn.kpis(),
    )
    assert after == before
    assert len(before[0]) == 6 and len(before[1]) > 10
    returned = reborn.find(L1)
    assert returned is not None
    assert (returned.returns, returned.last_active_ms) == (1, rig.clock.now_ms())

    # and it carries on where the old one stopped
    clock.advance(HOUR)
    [expired] = reborn.tick()
    assert (expired.alarm.key, expired.to_state) == (PRESSURE, AlarmState.UNACKNOWLEDGED)
    [new] = reborn.apply(rig.condition("New|e01-chloralkali|PT-9", True))
    assert new.alarm.id == max(a.id for a in before[0]) + 1
    assert new.seq == before[1][-1].id + 2


def test_alarm_rows_from_before_returns_and_arrival_still_load(tmp_path: Path) -> None:
    """A journal written before ``returns``, ``last_active_ms``, ``arrived_ms`` and the
    out-of-service ``source`` existed loads: the new fields take their defaults."""
    path = tmp_path / "alarms.db"
    rig = Rig(path)
    _history(rig)
    with closing(sqlite3.connect(path)) as raw, raw:
        for alarm_id, data in raw.execute("SELECT id, data FROM alarms").fetchall():
            old = json.loads(data)
            for name in ("returns", "last_active_ms", "arrived_ms"):
                del old[name]
            if old["out_of_service"] is not None:
                del old["out_of_service"]["source"]
            raw.execute("UPDATE alarms SET data = ? WHERE id = ?", (json.dumps(old), alarm_id))
    reborn = AlarmService(AlarmJournal(path), VirtualClock(rig.clock.now_ms()), GRADES)
    oxygen = reborn.find("Oxygen|e01-chloralkali|AT-3001")
    latched = reborn.find(L1)
    assert oxygen is not None and oxygen.out_of_service is not None
    assert (oxygen.state, oxygen.out_of_service.source) == (AlarmState.OUT_OF_SERVICE, "operator")
    assert latched is not None
    assert (latched.returns, latched.last_active_ms, latched.arrived_ms) == (0, None, None)


def test_journal_rows_cannot_be_updated_or_deleted(tmp_path: Path) -> None:
    """Triggers refuse UPDATE and DELETE on the transitions, even through a raw connection."""
    path = tmp_path / "alarms.db"
    _history(Rig(path))
    with closing(sqlite3.connect(path)) as raw:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("UPDATE transitions SET user = 'mallory' WHERE id = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM transitions WHERE id = 1")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # no forged young cut-off
            raw.execute("INSERT INTO retention (pruned_before_ms, at_ms) VALUES (?,?)", (T0, T0))


def test_prune_keeps_at_least_366_days(tmp_path: Path) -> None:
    """prune refuses a cut-off younger than 366 days and deletes only rows older than it."""
    rig = Rig(tmp_path / "alarms.db")
    rig.on(PRESSURE)
    rig.clock.set(T0 + 200 * DAY)
    rig.off(PRESSURE)
    rig.clock.set(T0 + 366 * DAY)
    with pytest.raises(InvalidAction, match="within the 366-day retention"):
        rig.svc.prune(T0 + 1)
    rig.clock.set(T0 + 366 * DAY + 1)
    assert rig.svc.prune(T0 + 1) == 1
    assert [e.ts_ms for e in rig.svc.journal()] == [T0 + 200 * DAY]
    assert rig.alarm(PRESSURE).count == 1  # the current state is not the journal's to prune


def test_failed_journal_write_changes_nothing(tmp_path: Path) -> None:
    """When the journal cannot take a transition, the alarm stays as it was and nobody is told."""
    rig = Rig(tmp_path / "alarms.db")
    rig.on(PRESSURE)
    alarm = rig.alarm(PRESSURE)
    rig.journal.close()
    with pytest.raises(sqlite3.ProgrammingError):
        rig.svc.acknowledge(alarm.id, "op1")
    assert rig.svc.get(alarm.id) == alarm
    assert len(rig.events) == 1


def test_journal_is_wal_with_full_sync(tmp_path: Path) -> None:
    """The journal file is in WAL mode and its connection syncs fully on every commit."""
    path = tmp_path / "alarms.db"
    journal = AlarmJournal(path)
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert journal._conn.execute("PRAGMA synchronous").fetchone() == (2,)  # 2 = FULL


def test_one_call_is_one_transaction(tmp_path: Path) -> None:
    """A call over several alarms is one transaction: a failure half-way leaves no row behind."""
    path = tmp_path / "alarms.db"
    rig = Rig(path)
    for key in (FLOW, TEMP):
        rig.on(key)
    with closing(sqlite3.connect(path)) as raw:  # make the second alarm's state write fail
        raw.execute(
            f"CREATE TRIGGER fail_temp BEFORE UPDATE ON alarms WHEN NEW.key = '{TEMP}' "
            "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
        )
        raw.commit()
    with pytest.raises(sqlite3.IntegrityError, match="disk trouble"):
        rig.svc.suppress("unit U2 out of service", [FLOW, TEMP])
    assert rig.svc.suppressions() == {}
    assert [a.state for a in rig.svc.list()] == [AlarmState.UNACKNOWLEDGED] * 2
    assert len(rig.svc.journal()) == 2
    assert rig.journal.load().suppressions == {}


def test_journal_query_pages_from_a_time_or_from_the_end() -> None:
    """journal() gives the newest rows by default, the first rows from since_ms, oldest first."""
    rig = Rig()
    for _ in range(5):
        rig.advance(MINUTE)
        rig.on(PRESSURE)
        rig.off(PRESSURE)
    rows = rig.svc.journal()
    assert [e.id for e in rig.svc.journal(limit=3)] == [e.id for e in rows[-3:]]
    since = rows[4].ts_ms
    assert [e.id for e in rig.svc.journal(since_ms=since, limit=3)] == [5, 6, 7]
    assert rig.svc.journal(alarm_id=999) == []


def test_a_full_disk_refuses_the_action_and_changes_nothing(small_tmpfs: SmallFs) -> None:
    """On a full disk an acknowledge fails with DiskFullError naming the journal; the alarm
    stays unacknowledged, nobody is told, and the same action works once there is room."""
    path = small_tmpfs.path / "alarms.sqlite"
    rig = Rig(path)
    rig.on(PRESSURE)
    alarm = rig.alarm(PRESSURE)
    small_tmpfs.fill()
    with pytest.raises(DiskFullError, match=r"alarms\.sqlite: alarm journal: database or disk"):
        rig.svc.acknowledge(alarm.id, "op1", comment="x" * 10_000)
    assert rig.svc.get(alarm.id) == alarm
    assert len(rig.events) == 1
    assert not rig.journal._conn.in_transaction
    small_tmpfs.unfill()
    rig.svc.acknowledge(alarm.id, "op1", comment="x" * 10_000)
    assert rig.alarm(PRESSURE).state == AlarmState.ACKNOWLEDGED
    assert [e.action.value for e in AlarmJournal(path).entries()][-1] == "ack"
