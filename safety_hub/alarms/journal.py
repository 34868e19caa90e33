"""The alarm journal: the durable system of record of the alarm service (SQLite, WAL, FULL sync).

Tables:
- ``transitions``: append-only, one row per transition (who, when, why). Triggers refuse UPDATE
  and refuse DELETE except of rows older than a recorded retention cut-off (``prune``).
- ``alarms``: the current state, one row (JSON) per alarm instance.
- ``suppressions``: which design causes suppress which alarm keys (also keys with no alarm yet).
- ``first_out``: the pinned first-out alarm of each hazard source's current episode.
- ``retention``: every prune, append-only; a CHECK keeps each cut-off at least 366 days old.

`write` puts one service call's rows and state changes in a single transaction, so that the
current state and the transitions never disagree, even after a crash. A damaged or foreign file
raises StateFileError naming it and how to salvage it (``.recover``); a full disk, DiskFullError.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from safety_hub.alarms.errors import InvalidAction
from safety_hub.alarms.model import Action, Alarm, AlarmState, JournalEntry, Priority
from safety_hub.statefile import StateFile, StateFileKind

DAY_MS = 86_400_000
# MEM rules: alarm journals are kept at least one year; 366 days covers a leap year.
RETENTION_MS = 366 * DAY_MS

_SCHEMA_VERSION = 1

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alarm_id INTEGER,
    key TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    event_ts_ms INTEGER,
    action TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    user TEXT,
    comment TEXT,
    value REAL,
    priority TEXT,
    raised_ms INTEGER,
    annunciated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_alarm ON transitions (alarm_id, id);
CREATE INDEX IF NOT EXISTS transitions_ts ON transitions (ts_ms);
CREATE INDEX IF NOT EXISTS transitions_annunciated ON transitions (annunciated, ts_ms);

CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS suppressions (
    key TEXT NOT NULL,
    cause TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (key, cause)
);

CREATE TABLE IF NOT EXISTS first_out (
    hazard_source TEXT PRIMARY KEY,
    alarm_id INTEGER NOT NULL,
    since_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS retention (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pruned_before_ms INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    CHECK (pruned_before_ms <= at_ms - {RETENTION_MS})
);

CREATE TRIGGER IF NOT EXISTS transitions_no_update BEFORE UPDATE ON transitions
BEGIN
    SELECT RAISE(ABORT, 'alarm journal is append-only: transitions cannot be updated');
END;

CREATE TRIGGER IF NOT EXISTS transitions_no_delete BEFORE DELETE ON transitions
WHEN NOT EXISTS (SELECT 1 FROM retention WHERE OLD.ts_ms < pruned_before_ms)
BEGIN
    SELECT RAISE(ABORT, 'alarm journal is append-only: only rows past retention can be pruned');
END;

CREATE TRIGGER IF NOT EXISTS retention_no_update BEFORE UPDATE ON retention
BEGIN
    SELECT RAISE(ABORT, 'retention records cannot be changed');
END;

CREATE TRIGGER IF NOT EXISTS retention_no_delete BEFORE DELETE ON retention
BEGIN
    SELECT RAISE(ABORT, 'retention records cannot be deleted');
END;
"""

_COLUMNS = (
    "id, alarm_id, key, ts_ms, event_ts_ms, action, from_state, to_state, user, comment, "
    "value, priority, raised_ms"
)


JOURNAL = StateFileKind(
    name="alarm journal",
    schema=_SCHEMA,
    holds="the alarm history and every alarm's current state; it is the system of record, "
    "so keep the damaged file",
    if_moved_aside="the hub starts with an empty journal, and the alarm history and the current "
    "state of every alarm are lost",
    salvage=True,
    version=_SCHEMA_VERSION,
    wal_autocheckpoint_pages=64,
)


@dataclass(frozen=True, slots=True)
class JournalState:
    """What the service restores at start: the alarms, the suppressions, the first-outs."""

    alarms: list[Alarm]
    suppressions: dict[str, tuple[str, ...]]  # alarm key -> causes, sorted
    first_out: dict[str, int]  # hazard source -> alarm id


@dataclass(slots=True)
class JournalBatch:
    """Everything one service call changes; written in one transaction."""

    entries: list[JournalEntry] = field(default_factory=list)  # ids are assigned on write
    alarms: list[Alarm] = field(default_factory=list)  # inserted or replaced
    suppressed: list[tuple[str, str, int]] = field(default_factory=list)  # key, cause, since
    released: list[tuple[str, str]] = field(default_factory=list)  # key, cause
    first_out: Mapping[str, tuple[int, int] | None] = field(default_factory=dict)


class JournalStore(Protocol):
    """What the alarm service needs of its journal: this SQLite file, or the PostgreSQL
    journal of connectors/postgres (chosen by ``SAFETY_HUB_STATE_URL`` in runtime/state.py).

    ``write`` is one transaction and gives the entries their ids, the journal sequence: gap-free
    and increasing, never reused."""

    def load(self) -> JournalState: ...

    def write(self, batch: JournalBatch) -> list[JournalEntry]: ...

    def entries(
        self,
        *,
        alarm_id: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
        newest: bool = False,
        after_id: int | None = None,
        action: Action | None = None,
    ) -> list[JournalEntry]: ...

    def annunciations(self, *, until_ms: int) -> list[tuple[int, int]]: ...

    def prune(self, older_than_ms: int, *, now_ms: int) -> int: ...

    def close(self) -> None: ...


def check_prune(older_than_ms: int, now_ms: int) -> None:
    """Refuse a prune cut-off within the retention (InvalidAction naming the latest allowed)."""
    if older_than_ms > now_ms - RETENTION_MS:
        raise InvalidAction(
            "prune",
            f"older_than_ms {older_than_ms} is within the {RETENTION_MS // DAY_MS}-day "
            f"retention (the latest allowed is {now_ms - RETENTION_MS})",
        )


def dump_alarm(alarm: Alarm) -> str:
    """An alarm's row data (compact JSON, keys sorted)."""
    return _dumps(alarm.as_json())


def entry_from_row(row: tuple[Any, ...]) -> JournalEntry:
    """A journal entry from a row of its columns (id, alarm_id, key, ts_ms, event_ts_ms,
    action, from_state, to_state, user, comment, value, priority, raised_ms)."""
    return _entry(row)


class AlarmJournal:
    """One SQLite file (or ``":memory:"`` for tests that need no restart)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._file = StateFile(path, JOURNAL)
        self._conn = self._file.open()
        self._lock = threading.Lock()

    def load(self) -> JournalState:
        with self._lock, self._file.guard():
            alarms = [
                Alarm.from_json(json.loads(data))
                for (data,) in self._conn.execute("SELECT data FROM alarms ORDER BY id")
            ]
            causes: dict[str, list[str]] = {}
            for key, cause in self._conn.execute(
                "SELECT key, cause FROM suppressions ORDER BY key, cause"
            ):
                causes.setdefault(key, []).append(cause)
            first_out = dict(
                self._conn.execute("SELECT hazard_source, alarm_id FROM first_out").fetchall()
            )
        return JournalState(alarms, {k: tuple(v) for k, v in causes.items()}, first_out)

    def write(self, batch: JournalBatch) -> list[JournalEntry]:
        """Commit the batch; returns its entries with the ids the journal gave them."""
        with self._lock, self._transaction() as cur:
            stored: list[JournalEntry] = []
            for entry in batch.entries:
                cur.execute(
                    "INSERT INTO transitions (alarm_id, key, ts_ms, event_ts_ms, action, "
                    "from_state, to_state, user, comment, value, priority, raised_ms, annunciated) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        entry.alarm_id,
                        entry.key,
                        entry.ts_ms,
                        entry.event_ts_ms,
                        entry.action.value,
                        _opt(entry.from_state),
                        _opt(entry.to_state),
                        entry.user,
                        entry.comment,
                        entry.value,
                        _opt(entry.priority),
                        entry.raised_ms,
                        int(entry.annunciated),
                    ),
                )
                assert cur.lastrowid is not None
                stored.append(replace(entry, id=cur.lastrowid))
            for alarm in batch.alarms:
                cur.execute(
                    "INSERT INTO alarms (id, key, data) VALUES (?,?,?) "
                    "ON CONFLICT (id) DO UPDATE SET key = excluded.key, data = excluded.data",
                    (alarm.id, alarm.key, _dumps(alarm.as_json())),
                )
            cur.executemany(
                "INSERT OR IGNORE INTO suppressions (key, cause, since_ms) VALUES (?,?,?)",
                batch.suppressed,
            )
            cur.executemany("DELETE FROM suppressions WHERE key = ? AND cause = ?", batch.released)
            for source, pinned in batch.first_out.items():
                if pinned is None:
                    cur.execute("DELETE FROM first_out WHERE hazard_source = ?", (source,))
                else:
                    cur.execute(
                        "INSERT OR REPLACE INTO first_out (hazard_source, alarm_id, since_ms) "
                        "VALUES (?,?,?)",
                        (source, *pinned),
                    )
        return stored

    def entries(
        self,
        *,
        alarm_id: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
        newest: bool = False,
        after_id: int | None = None,
        action: Action | None = None,
    ) -> list[JournalEntry]:
        """Journal rows, oldest first; ``since_ms``/``until_ms`` bound the clock time (inclusive).

        ``limit`` keeps the first rows, or with ``newest`` the last ones (still oldest first);
        ``after_id`` keeps the rows after that journal id; ``action`` only rows of that action.
        """
        where: list[str] = []
        args: list[Any] = []
        if action is not None:
            where.append("action = ?")
            args.append(action.value)
        if alarm_id is not None:
            where.append("alarm_id = ?")
            args.append(alarm_id)
        if after_id is not None:
            where.append("id > ?")
            args.append(after_id)
        if since_ms is not None:
            where.append("ts_ms >= ?")
            args.append(since_ms)
        if until_ms is not None:
            where.append("ts_ms <= ?")
            args.append(until_ms)
        sql = f"SELECT {_COLUMNS} FROM transitions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC" if newest else " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock, self._file.guard():
            rows = self._conn.execute(sql, args).fetchall()
        if newest:
            rows.reverse()
        return [_entry(row) for row in rows]

    def annunciations(self, *, until_ms: int) -> list[tuple[int, int]]:
        """``(ts_ms, alarm_id)`` of every annunciation up to ``until_ms``, in order (for floods)."""
        with self._lock, self._file.guard():
            rows = self._conn.execute(
                "SELECT ts_ms, alarm_id FROM transitions WHERE annunciated = 1 AND ts_ms <= ? "
                "ORDER BY id",
                (until_ms,),
            ).fetchall()
        return [(int(ts), int(alarm_id)) for ts, alarm_id in rows]

    def prune(self, older_than_ms: int, *, now_ms: int) -> int:
        """Delete transitions older than ``older_than_ms``; refuses a cut-off under 366 days old."""
        check_prune(older_than_ms, now_ms)
        with self._lock, self._transaction() as cur:
            cur.execute(
                "INSERT INTO retention (pruned_before_ms, at_ms) VALUES (?,?)",
                (older_than_ms, now_ms),
            )
            cur.execute("DELETE FROM transitions WHERE ts_ms < ?", (older_than_ms,))
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _transaction(self) -> AbstractContextManager[sqlite3.Cursor]:
        """One write: a full disk raises DiskFullError, damage StateFileError, both naming
        the file; anything else (a trigger refusing a change) as SQLite raised it."""
        return self._file.transaction(self._conn)


def _opt(value: str | None) -> str | None:
    return None if value is None else str(value)


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    (
        entry_id,
        alarm_id,
        key,
        ts_ms,
        event_ts_ms,
        action,
        from_state,
        to_state,
        user,
        comment,
        value,
        priority,
        raised_ms,
    ) = row
    return JournalEntry(
        id=entry_id,
        alarm_id=alarm_id,
        key=key,
        ts_ms=ts_ms,
        event_ts_ms=event_ts_ms,
        action=Action(action),
        from_state=None if from_state is None else AlarmState(from_state),
        to_state=None if to_state is None else AlarmState(to_state),
        user=user,
        comment=comment,
        value=value,
        priority=None if priority is None else Priority(priority),
        raised_ms=raised_ms,
    )
