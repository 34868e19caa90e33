"""Runs the rule engine and the alarm service inside the hub, and feeds their outputs.

- Readings arrive from the ingest worker *before* their MQTT messages are acknowledged, and
  the engine's snapshot is saved after every batch that raised or cleared anything, so a
  killed hub restarts with its raised conditions where they were; redelivered readings are
  late for the engine and raise nothing twice. Latched and acknowledged alarms live in the
  alarm journal. The snapshot holds the whole engine (every tag's slot), so its cost grows
  with the plant: 2 ms for the sample park, 0.45 s for 50,000 tags. After a batch that
  changed no condition it is therefore saved only once the last save is ten times its own
  duration ago (``SNAPSHOT_MAX_SHARE``; at least every tick when it is that cheap): a kill -9
  loses at most that much of such quiet state (watermarks, windows, an on-delay started:
  it starts again with the next reading).
- A ticker advances the engine's timers (on/off delays, stale and silence watchdogs) and the
  service's shelve expiry once a second.
- Every transition goes, after the journal commit, to the durable outbox (MQTT topic
  ``hazard/v1/{enterprise}/alarms``, QoS 1) and into the spool as an ``alarm_event`` line.
  The outbox row comes first, so the event's way to MQTT waits for one fsync (the journal's;
  the outbox commits without one, the journal is the record it is recovered from). The line
  follows: at once, or, for transitions of readings the ingest worker hands over in chunks,
  with the batch's ``save_snapshot`` before the batch is acknowledged. Each store has its own
  marker (the newest journal seq it holds), so after a crash the runtime re-sends exactly
  what each one is missing.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

import msgspec

from safety_hub.alarms import (
    Action,
    AlarmJournal,
    AlarmService,
    Condition,
    OutOfService,
    Priority,
    Transition,
)
from safety_hub.alarms.journal import JournalStore
from safety_hub.alarms.model import OOS_REGISTRY
from safety_hub.clock import Clock
from safety_hub.errors import DiskFullError
from safety_hub.ingest.intake import LogBudget
from safety_hub.ingest.lineproto import escape_string_field, series_prefix
from safety_hub.ingest.spool import SpoolStore
from safety_hub.ingest.telemetry import Reading
from safety_hub.registry import Plant
from safety_hub.rules import RuleEngine, RulePack, SuppressionChange
from safety_hub.runtime.outbox import OutboxStore
from safety_hub.statefile import DiskReserve, StateFile, StateFileKind

log = logging.getLogger("safety_hub.alarms.runtime")

ALARM_EVENT_MEASUREMENT = "alarm_event"
MAX_PENDING_CONDITIONS = 100_000
MAX_PENDING_LINES = 100_000
SNAPSHOT_MAX_SHARE = 0.1
"""at most this share of the time goes to snapshots saved after batches that changed nothing"""

ProblemListener = Callable[[str | None], None]


def alarm_topic(enterprise: str) -> str:
    return f"hazard/v1/{enterprise}/alarms"


def alarm_event_line(t: Transition) -> str:
    """The ``alarm_event`` line of a transition (schema in docs/storage.md)."""
    a = t.alarm
    prefix = series_prefix(
        ALARM_EVENT_MEASUREMENT,
        {
            "alert": a.alert,
            "enterprise": a.enterprise,
            "hazard_source": a.hazard_source,
            "tag": a.tag or "",
            "zone": a.zone or "",
            "priority": a.priority.value,
            "alarm_class": a.alarm_class.value,
            "action": t.action.value,
        },
    )
    fields = [
        f"alarm_id={a.id}i",
        f"seq={t.seq}i",
        f'state="{t.to_state.value}"',
        f'from_state="{t.from_state.value}"',
        f"annunciated={'true' if t.annunciated else 'false'}",
        f"active={'true' if a.active else 'false'}",
    ]
    if a.value is not None:
        fields.append(f"value={float(a.value)!r}")
    if t.user:
        fields.append(f'user="{escape_string_field(t.user)}"')
    if t.action is Action.DISPOSE and a.disposal is not None:
        fields.append(f'category="{a.disposal.category}"')
    return prefix + ",".join(fields) + f" {t.ts_ms}"


def registry_out_of_service(plant: Plant) -> dict[tuple[str, str], OutOfService]:
    """Who, why and since of every tag the plant registry holds out of service, for their
    alarms' ``out_of_service`` (docs/registry.md)."""
    return {
        key: OutOfService(oos.by, oos.reason, int(oos.since.timestamp() * 1000), OOS_REGISTRY)
        for key, info in plant.tags.items()
        if (oos := info.out_of_service) is not None
    }


def suppression_ordered(
    conditions: Iterable[Condition], changes: Iterable[SuppressionChange]
) -> list[Condition | SuppressionChange]:
    """One engine call's output in the order the alarm service must take it: new holds first,
    so an alarm raised in the same call under a cause that now holds it (a child raised with its
    parent) is suppressed from its first activation and never annunciates; releases last, so
    an alarm that clears in the same call as its cause is released already cleared, quietly."""
    changes = list(changes)
    return [
        *(c for c in changes if c.hold),
        *conditions,
        *(c for c in changes if not c.hold),
    ]


class SnapshotStore(Protocol):
    """Where the engine snapshot lives: a SQLite file here, or PostgreSQL (connectors/postgres)."""

    def load(self) -> dict[str, object] | None: ...

    def save(self, data: Mapping[str, object]) -> None: ...

    def close(self) -> None: ...


class SqliteSnapshotStore:
    """The engine snapshot in SQLite: survives kill -9 (WAL; the OS has it once committed)."""

    def __init__(self, path: Path) -> None:
        kind = StateFileKind(
            name="engine snapshot",
            schema="CREATE TABLE IF NOT EXISTS snapshot "
            "(id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT);",
            holds="the rule engine's state between restarts (running delays, timers, latches)",
            if_moved_aside="the rule engine starts fresh and rebuilds its state from the next "
            "readings (running on/off delays start over); alarms stay in the alarm journal",
            salvage=False,
            synchronous="NORMAL",
            wal_autocheckpoint_pages=256,
        )
        self._file = StateFile(path, kind)
        self._conn: sqlite3.Connection = self._file.open()

    def load(self) -> dict[str, object] | None:
        with self._file.guard():
            row = self._conn.execute("SELECT data FROM snapshot WHERE id = 1").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def save(self, data: Mapping[str, object]) -> None:
        """Replace the snapshot; DiskFullError on a full disk (the previous one stays)."""
        with self._file.guard():
            self._conn.execute(
                "INSERT OR REPLACE INTO snapshot (id, data) VALUES (1, ?)",
                (msgspec.json.encode(data).decode(),),
            )

    def close(self) -> None:
        self._conn.close()


class AlarmRuntime:
    def __init__(
        self,
        *,
        plant: Plant,
        pack: RulePack,
        data_dir: Path,
        clock: Clock,
        spool: SpoolStore,
        outbox: OutboxStore,
        durable_engine: bool = True,
        max_lead_ms: int = 2_000,
        disk_reserve: DiskReserve | None = None,
        on_write_problem: ProblemListener | None = None,
        disposal_limits: Mapping[Priority, int | None] | None = None,
        journal: JournalStore | None = None,
        snapshots: SnapshotStore | None = None,
        recover: bool = True,
    ) -> None:
        """``journal`` and ``snapshots`` default to the SQLite files in ``data_dir``.
        ``recover`` False: do not re-send what the outbox missed now (a standby of a redundant
        pair may not write; :meth:`take_over` does it when the node becomes active)."""
        self._clock = clock
        self._reserve = disk_reserve
        # Told (problem text, or None once writes succeed again) when the journal, the outbox,
        # the spool or the snapshot cannot be written: the hub raises a system alarm.
        self._on_problem = on_write_problem
        self._problems: dict[str, str] = {}  # what cannot be written -> why
        self._notified: str | None = None
        # Conditions (and suppression changes) the journal could not take yet, in order; new
        # ones queue behind them so an alarm's raise is never overtaken by its clear.
        self._pending: deque[Condition | SuppressionChange] = deque()
        # alarm_event lines (line, created_ms, journal seq) not in the spool yet: waiting for
        # the end of an ingest batch, or refused by the spool (full disk) and retried every tick.
        self._pending_lines: deque[tuple[str, int, int]] = deque()
        self._defer_lines = False
        self._failure_log = LogBudget(log, "alarm write failure", lines=5)
        self.dropped_lines = 0
        # False only for replay: an in-process run on a virtual clock has no crash to survive,
        # and saving the engine snapshot after every batch would dominate its run time.
        self._durable_engine = durable_engine
        self._snapshot_next = 0.0  # monotonic time before which a quiet batch does not save
        self._changed_since_save = False  # a condition changed since the last snapshot
        self.snapshots_saved = 0
        self.snapshots_deferred = 0
        self._spool = spool
        self._outbox = outbox
        self._lock = threading.RLock()
        # The last status applied per gateway; keys are registered enterprises only (the
        # ingest worker passes no other), so the map is bounded by the registry.
        self._gateway_online: dict[str, bool] = {}
        grades = {code: hs.computed_grade for code, hs in plant.hazard_sources.items()}
        if journal is None:
            journal = AlarmJournal(data_dir / "alarms.sqlite")
        self.journal = journal  # read by the notifications' recovery after a crash
        self.service = AlarmService(
            journal,
            clock,
            grades,
            registry_out_of_service=registry_out_of_service(plant),
            disposal_limits=disposal_limits,
        )
        self._snapshots = snapshots or SqliteSnapshotStore(data_dir / "engine.sqlite")
        self._engine_parts = (pack, plant, max_lead_ms)
        self.engine = self._restored_engine()
        self.recovered = self._recover_outputs(journal) if recover else 0
        self.service.subscribe(self._on_transition)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.transitions = 0
        # The plant states the rules know before any reading (tags out of service in the
        # registry) hold their keys from the start, so the first reading of such a tag does not
        # annunciate before its out of service is applied.
        self._apply(())

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the runtime's lock: what is done inside (operator actions of a replay) is not
        interleaved with a batch of readings or a tick."""
        with self._lock:
            yield

    # -- inputs ------------------------------------------------------------------------------
    def on_readings(
        self, readings: list[Reading], received_ms: int | None = None, *, save: bool = True
    ) -> None:
        """Evaluate readings; the engine snapshot is saved after, unless ``save`` is False
        (the ingest worker hands a batch over in chunks and calls :meth:`save_snapshot` once,
        before the batch is spooled and acknowledged)."""
        with self._lock:
            now = self._clock.now_ms() if received_ms is None else received_ms
            self._defer_lines = not save
            try:
                conditions = self.engine.on_readings(readings, now)
                self._apply(conditions)
            finally:
                self._defer_lines = False
            self._changed_since_save = self._changed_since_save or bool(conditions)
            if save:
                self.save_snapshot()

    def save_snapshot(self) -> None:
        """The alarm_event lines of the chunks evaluated since the last call into the spool,
        then the engine snapshot: at once after readings that raised or cleared a condition,
        else at most every so often (a quiet batch's state is a cost per second, not per
        reading: docs/rules.md)."""
        with self._lock:
            self._flush_lines()
            self._save_snapshot(force=self._changed_since_save)
            self._changed_since_save = False

    def on_gateway_status(self, enterprise: str, online: bool, ts_ms: int) -> None:
        with self._lock:
            # A repeated status (a gateway re-publishing "online", the broker replaying the
            # retained one at every reconnect) changes nothing: no engine call, no snapshot.
            if self._gateway_online.get(enterprise) == online:
                return
            self._gateway_online[enterprise] = online
            self._apply(self.engine.on_gateway_status(enterprise, online, ts_ms))
            self._flush_lines()
            self._save_snapshot(force=True)

    def tick(self) -> None:
        with self._lock:
            conditions = self.engine.advance(self._clock.now_ms())
            self._apply(conditions)
            self._write(self.service.tick, "alarm journal (shelve expiry)")
            self._flush_lines()
            self._save_snapshot(force=bool(conditions))
            if self._reserve is not None and self._reserve.released:
                self._reserve.restore()  # once the disk has room again

    # -- outputs, robust to a full disk ------------------------------------------------------
    def _apply(self, conditions: Iterable[Condition]) -> None:
        pending = self._pending
        pending.extend(suppression_ordered(conditions, self.engine.suppression_changes()))
        if len(pending) > MAX_PENDING_CONDITIONS:  # never reached short of a days-long outage
            log.error("alarm journal: %d conditions waiting; dropping the oldest", len(pending))
            while len(pending) > MAX_PENDING_CONDITIONS:
                pending.popleft()
        while pending:
            # The conditions up to the next suppression change go in one journal transaction.
            run: list[Condition | SuppressionChange] = [pending[0]]
            if not isinstance(run[0], SuppressionChange):
                for item in itertools.islice(pending, 1, None):
                    if isinstance(item, SuppressionChange):
                        break
                    run.append(item)
            if not self._write(functools.partial(self._journal, run), "alarm journal"):
                return  # kept, in order: the next batch or tick tries again
            for _ in run:
                pending.popleft()
        self._sync_problem()

    def _journal(self, run: list[Condition | SuppressionChange]) -> None:
        """One suppression change, or conditions (journaled in one transaction)."""
        item = run[0]
        if isinstance(item, SuppressionChange):
            if item.hold:
                self.service.suppress(item.cause, item.keys)
            else:
                self.service.release(item.cause, item.keys)
        else:
            self.service.apply_all([c for c in run if isinstance(c, Condition)])

    def _write(self, action: Callable[[], object], what: str) -> bool:
        """Run a write; on a full disk release the reserve and try once more. False (and the
        problem reported) when it still fails; True when it succeeded."""
        for attempt in (1, 2):
            try:
                action()
            except DiskFullError as exc:
                if attempt == 1 and self._reserve is not None and self._reserve.release():
                    log.warning("%s: disk full; released the disk reserve for the alarms", what)
                    continue
                self._report(what, f"{what} cannot be written: {exc}")
                return False
            except Exception as exc:
                self._report(what, f"{what} cannot be written: {exc!r}")
                return False
            else:
                self._report(what, None)
                return True
        return False

    def _report(self, what: str, problem: str | None) -> None:
        if problem is None:
            self._problems.pop(what, None)
        else:
            self._problems[what] = problem
            if self._failure_log.allow():
                log.error("alarm runtime: %s", problem)
        self._sync_problem()

    def _sync_problem(self) -> None:
        now = self.write_problem
        if now != self._notified:
            self._notified = now
            if self._on_problem is not None:
                self._on_problem(now)

    @property
    def write_problem(self) -> str | None:
        """What the runtime cannot write now (journal, outbox, spool, snapshot), or None."""
        if not self._problems:
            return None
        problems = list(self._problems.values())
        # What waits is part of the story only while a write fails (a condition is briefly
        # "pending" while it is being journaled, which is no problem).
        if self._pending:
            problems.append(f"{len(self._pending)} alarm condition(s) wait for the journal")
        if self._pending_lines:
            problems.append(f"{len(self._pending_lines)} alarm_event line(s) wait for the spool")
        return "; ".join(problems)

    def _save_snapshot(self, *, force: bool = True) -> None:
        """Save the engine snapshot; unless ``force``, only when the last save is long enough
        ago (see the module doc)."""
        if not self._durable_engine:
            return
        started = time.monotonic()
        if not force and started < self._snapshot_next:
            self.snapshots_deferred += 1
            return
        self._write(lambda: self._snapshots.save(self.engine.snapshot()), "engine snapshot")
        self.snapshots_saved += 1
        took = time.monotonic() - started
        self._snapshot_next = started + took / SNAPSHOT_MAX_SHARE

    def _on_transition(self, t: Transition) -> None:
        self.transitions += 1
        self._emit(t, t.as_json())

    def _emit(self, t: Transition, event: Mapping[str, object], *, put: bool = True) -> None:
        # The outbox row first (its marker moves to the journal seq in the same commit), then
        # the spool line (with the spool's own marker), so the MQTT event waits for no spool
        # commit; a crash in between re-sends what each store misses (InfluxDB keeps one
        # point per series and time). A spool that cannot take the line (full disk) never holds
        # back the MQTT event: the line waits in memory and is retried every tick.
        now = self._clock.now_ms()
        if put:
            self._write(
                lambda: self._outbox.put(
                    alarm_topic(t.alarm.enterprise), msgspec.json.encode(event), now, t.seq
                ),
                "alarm outbox",
            )
        self._queue_line(alarm_event_line(t), now, t.seq)
        if not self._defer_lines:
            self._flush_lines()

    def _queue_line(self, line: str, now: int, seq: int) -> None:
        if len(self._pending_lines) >= MAX_PENDING_LINES:
            self._pending_lines.popleft()
            self.dropped_lines += 1
        self._pending_lines.append((line, now, seq))

    def _flush_lines(self) -> None:
        """Every waiting alarm_event line into the spool in one commit, in order."""
        lines = self._pending_lines
        if not lines:
            return
        batch = list(lines)
        if self._write(
            lambda: self._spool.append(
                [(line, 1) for line, _, _ in batch],
                batch[0][1],
                alarm_seq=max(seq for _, _, seq in batch),
            ),
            "spool (alarm_event lines)",
        ):
            for _ in batch:
                lines.popleft()
            self._sync_problem()

    def _recover_outputs(self, journal: JournalStore) -> int:
        """Re-send the transitions the journal committed but the outbox never received (a
        crash between the two), and write the alarm_event lines the spool never received. The
        events carry ``"recovered": true`` and the alarm as it is now. Returns how many events
        were re-sent."""
        marker = self._outbox.marker()
        if marker is None:
            # A new outbox (or one from before the marker): start from the journal's end.
            newest = journal.entries(limit=1, newest=True)
            marker = newest[0].id if newest else 0
            self._outbox.set_marker(marker)
        # A spool from before its marker wrote each line before the outbox row: it holds the
        # lines up to the outbox's marker. A new spool: the lines of the past went with the old.
        lines_marker = self._spool.alarm_marker()
        if lines_marker is None:
            lines_marker = marker
        count = 0
        for entry in journal.entries(after_id=min(marker, lines_marker)):
            if entry.alarm_id is None or entry.from_state is None or entry.to_state is None:
                if entry.id > marker:
                    self._outbox.set_marker(entry.id)  # a suppression note: nothing to publish
                continue
            t = Transition(
                seq=entry.id,
                alarm=self.service.get(entry.alarm_id),
                action=entry.action,
                from_state=entry.from_state,
                to_state=entry.to_state,
                ts_ms=entry.ts_ms,
                user=entry.user,
                comment=entry.comment,
            )
            if entry.id > marker:
                self._emit(t, {**t.as_json(), "recovered": True})
                count += 1
            elif entry.id > lines_marker:
                self._emit(t, {}, put=False)  # only its alarm_event line is missing
        if count:
            log.warning("re-sent %d alarm events the outbox missed before a crash", count)
        return count

    def _restored_engine(self) -> RuleEngine:
        """The rule engine from its snapshot, or a fresh one (none, or an unusable one)."""
        pack, plant, max_lead_ms = self._engine_parts
        saved = self._snapshots.load()
        if saved is not None:
            try:
                engine = RuleEngine.restore(
                    pack, plant, self._clock, saved, max_lead_ms=max_lead_ms
                )
                log.info("rule engine restored from its snapshot")
                return engine
            except (ValueError, KeyError, TypeError) as exc:
                log.error("rule engine snapshot unusable, starting fresh: %s", exc)
        return RuleEngine(pack, plant, self._clock, max_lead_ms=max_lead_ms)

    def take_over(self) -> None:
        """A standby of a redundant pair becoming active: the other node wrote the shared
        journal and engine snapshot (PostgreSQL state). Read both again, send what that node
        journaled but never handed to the outbox, and count the watchdogs from now."""
        with self._lock:
            self.service.reload()
            self.engine = self._restored_engine()
            self.recovered += self._recover_outputs(self.journal)
            self.engine.resume(self._clock.now_ms())
            self._save_snapshot()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, interval_s: float = 1.0) -> None:
        """Start the ticker (again after :meth:`pause`)."""
        self._stopping.clear()

        def run() -> None:
            while not self._stopping.wait(interval_s):
                try:
                    self.tick()
                except Exception:
                    log.exception("alarm runtime: tick failed")

        self._thread = threading.Thread(target=run, name="alarm-ticker", daemon=True)
        self._thread.start()

    def resume(self) -> None:
        """Before :meth:`start` on a node that did not listen for a while (a standby taking
        over): the watchdogs count from now (``RuleEngine.resume``)."""
        with self._lock:
            self.engine.resume(self._clock.now_ms())
            self._save_snapshot()

    def pause(self) -> None:
        """Stop the ticker, keep the stores open (a standby of a redundant pair: its timers
        must not raise alarms from readings it does not receive)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def stop(self) -> None:
        self.pause()
        with self._lock:
            self._save_snapshot()
            self._snapshots.close()
