"""The hub's state stores keep one contract on both backends: the SQLite files and PostgreSQL
(``SAFETY_HUB_STATE_URL``). Each contract test runs against both; the PostgreSQL-only ones
cover what SQLite has no counterpart for: fencing, the shared journal sequence under
concurrent writers, and a database that goes away and comes back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors.postgres import migrate, pending_migrations
from connectors.postgres.journal import PgAlarmJournal
from connectors.postgres.notify_outbox import PgNotificationOutbox
from connectors.postgres.outbox import PgOutbox, PgSnapshotStore
from connectors.postgres.spool import PgSpool
from connectors.postgres.store import StateHealth
from connectors.postgres.uplink_queue import PgUplinkQueue
from safety_hub.alarms import AlarmJournal, AlarmService, AlarmState, InvalidAction
from safety_hub.alarms.journal import JournalBatch
from safety_hub.clock import VirtualClock
from safety_hub.errors import FencedError, StateDatabaseError
from safety_hub.ingest.spool import Spool
from safety_hub.runtime.alarm_runtime import SqliteSnapshotStore
from safety_hub.runtime.notify_outbox import NotificationOutbox
from safety_hub.runtime.outbox import Outbox, OutboxPublisher
from safety_hub.runtime.state import build_state
from safety_hub.settings import load_settings
from safety_hub.uplink import OutRecord, UplinkQueue
from tests.fixtures.postgres import PostgresProcess
from tests.integration.hubproc import wait_for
from tests.scenarios import SCENARIOS, run_scenario
from tests.unit.test_alarms_journal import PRESSURE, _history
from tests.unit.test_alarms_support import CL2_SOURCE, DAY, GRADES, MINUTE, T0, Rig
from tests.unit.test_notify_runtime import Setup


@dataclass
class Backend:
    """Opens each store on one backend; opening again is what a restarted hub does."""

    name: str
    dir: Path
    url: str | None

    def journal(self) -> Any:
        return (
            AlarmJournal(self.dir / "alarms.sqlite")
            if self.url is None
            else (PgAlarmJournal(self.url))
        )

    def spool(self, **limits: int) -> Any:
        if self.url is None:
            return Spool(self.dir / "spool.sqlite", **limits)
        return PgSpool(self.url, **limits)

    def outbox(self) -> Any:
        return Outbox(self.dir / "outbox.sqlite") if self.url is None else PgOutbox(self.url)

    def snapshots(self) -> Any:
        if self.url is None:
            return SqliteSnapshotStore(self.dir / "engine.sqlite")
        return PgSnapshotStore(self.url)

    def notify_outbox(self) -> Any:
        if self.url is None:
            return NotificationOutbox(self.dir / "notifications.sqlite")
        return PgNotificationOutbox(self.url)

    def uplink_queue(self) -> Any:
        if self.url is None:
            return UplinkQueue(self.dir / "uplink.sqlite")
        return PgUplinkQueue(self.url)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", tmp_path, None)
        return
    url: str = request.getfixturevalue("pg_url")
    migrate(url)
    yield Backend("postgresql", tmp_path, url)


# -- alarm journal ----------------------------------------------------------------------------


def test_a_new_service_on_the_same_journal_has_the_same_alarms(backend: Backend) -> None:
    """Alarms, journal, first-out and suppressions come back; the sequence goes on without gap."""
    rig = Rig(journal=backend.journal())
    _history(rig)
    svc = rig.svc
    before = (
        svc.list(include_normal=True),
        svc.journal(),
        svc.first_out(CL2_SOURCE),
        svc.suppressions(),
        svc.kpis(),
    )
    reborn = AlarmService(backend.journal(), VirtualClock(rig.clock.now_ms()), GRADES)
    after = (
        reborn.list(include_normal=True),
        reborn.journal(),
        reborn.first_out(CL2_SOURCE),
        reborn.suppressions(),
        reborn.kpis(),
    )
    assert after == before
    seqs = [e.id for e in before[1]]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 10
    [new] = reborn.apply(rig.condition("New|e01-chloralkali|PT-9", True))
    assert new.seq == seqs[-1] + 1
    assert [e.id for e in reborn.journal(limit=2)] == [seqs[-1], seqs[-1] + 1]


def test_prune_keeps_366_days_on_both(backend: Backend) -> None:
    rig = Rig(journal=backend.journal())
    rig.on(PRESSURE)
    rig.clock.set(T0 + 200 * DAY)
    rig.off(PRESSURE)
    rig.clock.set(T0 + 366 * DAY)
    with pytest.raises(InvalidAction, match="within the 366-day retention"):
        rig.svc.prune(T0 + 1)
    rig.clock.set(T0 + 366 * DAY + 1)
    assert rig.svc.prune(T0 + 1) == 1
    assert [e.ts_ms for e in rig.svc.journal()] == [T0 + 200 * DAY]


def test_journal_filters_page_the_same_way(backend: Backend) -> None:
    rig = Rig(journal=backend.journal())
    for _ in range(5):
        rig.advance(MINUTE)
        rig.on(PRESSURE)
        rig.off(PRESSURE)
    rows = rig.svc.journal()
    assert [e.id for e in rig.svc.journal(limit=3)] == [e.id for e in rows[-3:]]
    assert [e.id for e in rig.svc.journal(since_ms=rows[4].ts_ms, limit=3)] == [5, 6, 7]
    assert rig.svc.journal(alarm_id=999) == []
    assert len(rig.journal.annunciations(until_ms=rig.clock.now_ms())) == 5


def test_postgres_journal_is_append_only(pg_url: str) -> None:
    migrate(pg_url)
    _history(Rig(journal=PgAlarmJournal(pg_url)))
    with psycopg.connect(pg_url, autocommit=True) as raw:
        with pytest.raises(psycopg.Error, match="append-only"):
            raw.execute("UPDATE transitions SET user_name = 'mallory' WHERE id = 1")
        with pytest.raises(psycopg.Error, match="append-only"):
            raw.execute("DELETE FROM transitions WHERE id = 1")
        with pytest.raises(psycopg.Error, match="append-only"):
            raw.execute("TRUNCATE transitions")
        with pytest.raises(psycopg.errors.CheckViolation):
            raw.execute("INSERT INTO retention (pruned_before_ms, at_ms) VALUES (1, 1)")


def test_postgres_journal_sequence_has_no_gap_under_two_writers_and_failures(
    pg_url: str,
) -> None:
    """Two journals (two hubs) write at once, and some writes fail half-way: the sequence is
    1..N with neither gap nor duplicate (a failed write gives its numbers back)."""
    migrate(pg_url)
    entry = Rig(journal=PgAlarmJournal(pg_url))
    entry.on(PRESSURE)
    template = entry.journal.entries()[0]
    start = len(entry.journal.entries())
    failed = 0

    def writer(journal: PgAlarmJournal) -> None:
        nonlocal failed
        for i in range(60):
            batch = JournalBatch(entries=[template, template])
            if i % 7 == 0:  # an alarm row that breaks the unique key: the write rolls back
                bad = entry.alarm(PRESSURE)
                batch.alarms = [bad, replace(bad, id=bad.id + 1)]
            try:
                journal.write(batch)
            except psycopg.errors.UniqueViolation:
                failed += 1

    journals = [PgAlarmJournal(pg_url), PgAlarmJournal(pg_url)]
    threads = [threading.Thread(target=writer, args=(j,)) for j in journals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [e.id for e in journals[0].entries()]
    assert failed == 2 * 9
    assert ids == list(range(1, len(ids) + 1))
    assert len(ids) == start + 2 * 2 * (60 - 9)


def test_fenced_writes_need_the_current_lease_token(pg_url: str) -> None:
    """With a fence, every write first checks the lease: a stale token is FencedError and
    nothing is written; the current one writes; no fence (single node) writes unchecked."""
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as raw:
        raw.execute(
            "INSERT INTO hub_lease VALUES ('active', 'hub-a', 5, now(), now(), "
            "now() + interval '1 hour', NULL)"
        )
    token = [4]
    health = StateHealth()
    told: list[str] = []
    health.on_fenced(told.append)
    fenced = Rig(journal=PgAlarmJournal(pg_url, fence=lambda: token[0], health=health))
    with pytest.raises(FencedError, match="fenced"):
        fenced.on(PRESSURE)
    assert len(told) == 1 and told[0].startswith("alarm journal: fenced")
    assert health.problem is None  # fenced is no outage
    spool = PgSpool(pg_url, fence=lambda: token[0])
    with pytest.raises(FencedError):
        spool.append([("m v=1 1", 1)], 1)
    assert spool.depth().batches == 0
    assert PgAlarmJournal(pg_url).entries() == []
    token[0] = 5
    spool.append([("m v=1 1", 1)], 1)
    fenced.svc.apply(fenced.condition(PRESSURE, True))
    assert [e.action.value for e in PgAlarmJournal(pg_url).entries()] == ["raise"]
    Rig(journal=PgAlarmJournal(pg_url)).svc.acknowledge(1, "op1")  # unfenced: single node


# -- spool ------------------------------------------------------------------------------------


def test_spool_contract(backend: Backend) -> None:
    """Append, peek (batch size, at least one), remove once, dead-letter, depth after reopen."""
    spool = backend.spool()
    spool.append([("a1\na2", 2), ("b1", 1), ("", 0)], created_ms=1000)
    spool.append([("c", 5), ("d", 5), ("e", 5)], created_ms=2000)
    depth = spool.depth()
    assert (depth.batches, depth.readings, depth.oldest_ms) == (5, 18, 1000)
    assert [b.lines for b in spool.peek(10)] == ["a1\na2", "b1", "c"]
    assert [b.lines for b in spool.peek(1)] == ["a1\na2"]
    first = spool.peek(3)
    spool.remove(first)
    spool.remove(first)  # twice: counted once
    assert spool.depth().readings == 15
    [c] = spool.peek(5)
    spool.dead_letter([c], "HTTP 400: bad field", 3000)
    assert [d["error"] for d in spool.dead_letters()] == ["HTTP 400: bad field"]
    reopened = backend.spool()
    depth = reopened.depth()
    assert (depth.batches, depth.readings, depth.oldest_ms, depth.dead_letters) == (2, 10, 2000, 1)
    assert [b.lines for b in reopened.peek(100)] == ["d", "e"]
    spool.close()
    reopened.close()


def test_spool_alarm_marker_moves_with_its_lines_and_never_back(backend: Backend) -> None:
    """The alarm runtime's marker (the newest journal seq whose alarm_event line is spooled):
    committed with the lines, kept after a reopen, never moved back; no lines and no marker
    writes nothing."""
    spool = backend.spool()
    assert spool.alarm_marker() is None
    spool.append([("alarm_event a", 1), ("alarm_event b", 1)], 1000, alarm_seq=7)
    assert spool.alarm_marker() == 7 and spool.depth().readings == 2
    spool.append([("alarm_event c", 1)], 1000, alarm_seq=5)  # an older seq: the marker stays
    assert spool.alarm_marker() == 7
    spool.append([], 1000, alarm_seq=9)  # the marker alone
    spool.append([], 1000)  # nothing at all
    assert spool.depth().readings == 3
    reopened = backend.spool()
    assert reopened.alarm_marker() == 9
    spool.close()
    reopened.close()


def test_spool_reports_no_room_at_its_limit(backend: Backend) -> None:
    spool = backend.spool(max_readings=10)
    spool.append([("x", 9)], 1)
    assert spool.has_room()
    spool.append([("y", 1)], 1)
    assert not spool.has_room()
    spool.remove(spool.peek(1))
    assert spool.wait_for_room(0.1)


# -- outboxes, snapshot -------------------------------------------------------------------------


def test_outbox_contract_and_publisher(backend: Backend) -> None:
    box = backend.outbox()
    assert box.marker() is None
    box.put("a/1", b"one", 1, seq=3)
    box.put("a/2", b"two", 2)
    box.set_marker(2)  # never backwards
    again = backend.outbox()
    assert again.marker() == 3
    assert [(r.topic, r.payload) for r in again.pending()] == [("a/1", b"one"), ("a/2", b"two")]
    sent: list[bytes] = []
    publisher = OutboxPublisher(again, lambda topic, payload, timeout: sent.append(payload) or True)
    publisher.start()
    try:
        wait_for(lambda: again.depth() == 0, 10, "the outbox to drain")
    finally:
        publisher.stop()
    assert sent == [b"one", b"two"]


def test_snapshot_round_trip(backend: Backend) -> None:
    store = backend.snapshots()
    assert store.load() is None
    store.save({"version": 1, "tags": [["e", "t", 5, 6]], "名": "氯"})
    store.save({"version": 1, "tags": [["e", "t", 7, 8]], "名": "氯"})
    assert backend.snapshots().load() == {"version": 1, "tags": [["e", "t", 7, 8]], "名": "氯"}


def test_outbox_wait_after_an_unread_put_returns_at_once(backend: Backend) -> None:
    """No lost wake-up: a put between the publisher's read of the pending rows and its wait
    (the notify came before anyone waited) ends the next wait at once, not after its timeout."""
    outbox = backend.outbox()
    assert outbox.pending() == []  # the publisher's read: nothing yet
    outbox.put("hazard/v1/e/alarms", b"{}", 1000, seq=1)  # a put before it waits
    waiter = threading.Thread(target=outbox.wait, args=(60,))
    waiter.start()
    waiter.join(20)
    assert not waiter.is_alive(), "the wait missed the put and sleeps its full timeout"
    outbox.wake()  # a plain wake still ends a wait with nothing put
    waiter = threading.Thread(target=outbox.wait, args=(60,))
    waiter.start()
    while waiter.is_alive():
        outbox.wake()
        waiter.join(0.1)
    outbox.close()


def test_notification_outbox_restart_sends_a_pending_step_once(backend: Backend) -> None:
    first = Setup(outbox=backend.notify_outbox())
    first.raise_red()
    first.run_until(2 * MINUTE)
    assert len(first.sender.sent) == 1
    second = Setup(rig=first.rig, outbox=backend.notify_outbox())
    second.run_until(5 * MINUTE - 1000)
    assert second.sender.sent == []
    second.run_until(6 * MINUTE)
    assert [url for _, url, _ in second.sender.who()] == ["json://h/li"]
    second.rig.svc.acknowledge(second.rig.alarm("ToxicGasLevel2|e|GT-1101").id, "op")
    second.run_until(30 * MINUTE, 10_000)
    (row,) = second.runtime.outbox.rows(status="cancelled", enterprise="e01-chloralkali")
    assert (row.person_id, row.last_error) == ("wang", "acknowledged")
    assert second.runtime.outbox.rows(enterprise="elsewhere") == []
    assert second.runtime.outbox.pending_by_channel() == {}


# -- uplink queue ---------------------------------------------------------------------------------


def rec(kind: str, n: int) -> OutRecord:
    return OutRecord(kind, f"id-{kind}-{n}", f"k{n}", {"n": n})


def test_uplink_queue_is_fifo_deduplicates_and_survives_reopen(backend: Backend) -> None:
    """In order, one row per dataId, cursors in the same commit, all still there after reopening."""
    queue = backend.uplink_queue()
    result = queue.put(
        "a", [rec("reading", i) for i in range(5)], 1000, max_records=100, cursors={"r:x": "5"}
    )
    assert result.added == 5 and result.duplicates == 0
    assert result.added_kinds == (("reading", 5),)
    again = queue.put("a", [rec("reading", 3), rec("reading", 5)], 2000, max_records=100)
    assert (again.added, again.duplicates) == (1, 1)
    queue.put("b", [rec("warning", 1)], 3000, max_records=100)
    queue.put("c", [], 3000, max_records=100, cursors={"journal": "7"})  # a cursor alone
    queue.close()
    queue = backend.uplink_queue()
    assert [q.record.data["n"] for q in queue.peek("a", 10)] == [0, 1, 2, 3, 4, 5]
    assert queue.peek("a", 1)[0].record == rec("reading", 0)
    assert queue.cursors("a") == {"r:x": "5"} and queue.depth("a").oldest_ms == 1000
    first = queue.peek("a", 2)
    queue.remove("a", [q.seq for q in first])
    queue.remove("a", [q.seq for q in first])  # twice: nothing else goes
    assert [q.record.data["n"] for q in queue.peek("a", 10)] == [2, 3, 4, 5]
    assert queue.depth("b").records == 1 and queue.destinations() == ["a", "b", "c"]
    assert queue.cursors("c") == {"journal": "7"}
    assert (queue.depth("c").records, queue.depth("c").oldest_ms) == (0, None)
    queue.close()


def test_full_uplink_queue_drops_oldest_readings_then_refuses(backend: Backend) -> None:
    """Bounded: readings make room first; with none left the new records are refused, counted."""
    queue = backend.uplink_queue()
    queue.put("a", [rec("warning", 0), rec("reading", 1), rec("reading", 2)], 0, max_records=4)
    queue.put("other", [rec("reading", 9)], 0, max_records=4)  # another destination's bound
    made_room = queue.put("a", [rec("warning", 3), rec("warning", 4)], 0, max_records=4)
    assert (made_room.added, made_room.dropped_readings, made_room.refused) == (2, 1, 0)
    assert [q.record.data["n"] for q in queue.peek("a", 10)] == [0, 3, 4, 2]  # warnings first
    full = queue.put("a", [rec("warning", 5), rec("warning", 6)], 0, max_records=4)
    assert (full.added, full.dropped_readings, full.refused) == (1, 1, 1)
    assert full.refused_kinds == ("warning",) and full.refused_ids == ("id-warning-6",)
    assert [q.record.data["n"] for q in queue.peek("a", 10)] == [0, 3, 4, 5]
    assert [q.record.data["n"] for q in queue.peek("other", 10)] == [9]
    queue.close()


def test_uplink_queue_sends_base_data_and_warnings_before_a_backlog_of_readings(
    backend: Backend,
) -> None:
    """Send order: every kind but readings in queue order, then readings in queue order (a
    warning never waits behind readings; each tag's readings keep their order)."""
    queue = backend.uplink_queue()
    queue.put("a", [rec("base", 0)] + [rec("reading", n) for n in range(1, 6)], 0, max_records=99)
    queue.put("a", [rec("warning", 6), rec("reading", 7), rec("warning", 8)], 0, max_records=99)
    assert [q.record.data["n"] for q in queue.peek("a", 3)] == [0, 6, 8]
    assert [q.record.data["n"] for q in queue.peek("a", 5)] == [0, 6, 8, 1, 2]
    queue.remove("a", [q.seq for q in queue.peek("a", 4)])
    assert [q.record.data["n"] for q in queue.peek("a", 10)] == [2, 3, 4, 5, 7]
    queue.put("a", [rec("warning", 9)], 0, max_records=99)
    assert [q.record.data["n"] for q in queue.peek("a", 2)] == [9, 2]
    queue.close()


def test_fenced_uplink_queue_writes_nothing_without_the_lease(pg_url: str) -> None:
    """A node that lost the lease can neither queue, move a cursor nor forget a record; the
    records and cursors stay for the node that holds it, which reads the same queue."""
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as raw:
        raw.execute(
            "INSERT INTO hub_lease VALUES ('active', 'hub-b', 7, now(), now(), "
            "now() + interval '1 hour', NULL)"
        )
    token = [7]
    active = PgUplinkQueue(pg_url, fence=lambda: token[0])
    active.put("a", [rec("warning", 1), rec("reading", 2)], 5, max_records=10, cursors={"j": "1"})
    stale = PgUplinkQueue(pg_url, fence=lambda: 6)
    with pytest.raises(FencedError):
        stale.put("a", [rec("warning", 3)], 6, max_records=10, cursors={"j": "2"})
    with pytest.raises(FencedError):
        stale.remove("a", [q.seq for q in stale.peek("a", 10)])
    assert [q.record.data["n"] for q in stale.peek("a", 10)] == [1, 2]  # reads are not fenced
    assert stale.cursors("a") == {"j": "1"}
    active.remove("a", [active.peek("a", 1)[0].seq])
    assert [q.record.data["n"] for q in PgUplinkQueue(pg_url).peek("a", 10)] == [2]


# -- the database goes away and comes back --------------------------------------------------------


def test_a_lost_database_is_a_clear_error_and_the_store_reconnects(
    postgres_private: PostgresProcess,
) -> None:
    url = postgres_private.create_database()
    migrate(url)
    health = StateHealth()
    spool = PgSpool(url, health=health)
    journal = PgAlarmJournal(url, health=health)
    rig = Rig(journal=journal)
    spool.append([("a", 1)], 1)
    postgres_private.stop()
    with pytest.raises(StateDatabaseError, match=r"state database unreachable \(spool\)"):
        spool.append([("b", 1)], 2)
    assert spool.depth().readings == 1  # nothing counted that was not written
    assert spool.peek(10) == []  # the sink polls on; the problem is reported
    with pytest.raises(StateDatabaseError):
        rig.on(PRESSURE)
    assert rig.svc.list() == [] and rig.events == []  # nothing changed, nobody told
    assert health.problem is not None and "state database unreachable" in health.problem
    postgres_private.start()
    spool.append([("b", 1)], 2)
    rig.on(PRESSURE)
    assert health.problem is None
    assert [b.lines for b in spool.peek(10)] == ["a", "b"]
    assert rig.alarm(PRESSURE).state == AlarmState.UNACKNOWLEDGED


def test_a_store_idle_through_a_database_restart_reads_at_once_when_it_is_back(
    postgres_private: PostgresProcess,
) -> None:
    """The journal's connection sits idle while the database restarts; the spool's next write
    finds the restart. The journal's next read then succeeds at the first try, on a new
    connection: it does not use the one the server closed (the API answered 500 so)."""
    url = postgres_private.create_database()
    migrate(url)
    health = StateHealth()
    spool = PgSpool(url, health=health)
    journal = PgAlarmJournal(url, health=health)
    spool.append([("a", 1)], 1)
    assert journal.entries(limit=10) == []  # its connection is open now, and then idle
    postgres_private.stop()
    postgres_private.start()
    with pytest.raises(StateDatabaseError, match="spool"):
        spool.append([("b", 1)], 2)  # the first to find out
    assert journal.entries(limit=10) == []
    spool.append([("b", 1)], 2)
    assert health.problem is None
    assert [b.lines for b in spool.peek(10)] == ["a", "b"]


# -- the composition root's choice ----------------------------------------------------------------


def test_the_state_url_chooses_the_stores(tmp_path: Path, pg_url: str) -> None:
    """Unset: SQLite files in the data dir; sqlite:///DIR: the files in DIR; postgresql://: the
    database, migrated first, and nothing written to the data dir."""
    default = build_state(load_settings(data_dir=tmp_path / "data"))
    assert isinstance(default.spool, Spool) and default.journal is None
    assert not (tmp_path / "data" / "uplink.sqlite").exists()  # opened only with an uplink
    assert isinstance(default.uplink_queue(), UplinkQueue)
    assert (tmp_path / "data" / "uplink.sqlite").exists()
    assert (tmp_path / "data" / "spool.sqlite").exists()
    elsewhere = build_state(
        load_settings(data_dir=tmp_path / "data2", state_url=f"sqlite:///{tmp_path / 'state'}")
    )
    assert elsewhere.state_dir == tmp_path / "state"
    assert (tmp_path / "state" / "outbox.sqlite").exists()
    assert not (tmp_path / "data2").exists()
    pg = build_state(load_settings(data_dir=tmp_path / "data3", state_url=pg_url))
    assert isinstance(pg.spool, PgSpool) and isinstance(pg.journal, PgAlarmJournal)
    assert isinstance(pg.uplink_queue(), PgUplinkQueue)
    assert pending_migrations(pg_url) == []
    assert pg.problem() is None
    assert "postgresql://postgres@" in pg.description
    pg.spool.append([("m v=1 1", 1)], 1)
    assert PgSpool(pg_url).depth().readings == 1
    assert not (tmp_path / "data3").exists()


def test_a_replay_never_uses_the_state_database_the_environment_names(
    monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    """A scenario replay (virtual clock) keeps SQLite files in its temp dir even with
    SAFETY_HUB_STATE_URL set: the named database gets no table and no row."""
    monkeypatch.setenv("SAFETY_HUB_STATE_URL", pg_url)
    result = run_scenario(SCENARIOS / "hcn_leak_2oo3.yaml")
    assert result.passed, result.failures
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)
