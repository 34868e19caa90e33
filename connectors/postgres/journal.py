"""The alarm journal in PostgreSQL: the same contract as the SQLite journal
(safety_hub/alarms/journal.py, ``JournalStore``), the tables of migration 0010.

The journal sequence (``transitions.id``) comes from the one row of ``journal_counter``,
moved on in the write transaction itself: concurrent writers queue on that row lock, and a
rolled-back write gives its numbers back, so the sequence has no gap and no duplicate.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from connectors.postgres.store import Fence, PgConnection, StateHealth
from safety_hub.alarms.journal import (
    JournalBatch,
    JournalState,
    check_prune,
    dump_alarm,
    entry_from_row,
)
from safety_hub.alarms.model import Action, Alarm, JournalEntry

_COLUMNS = (
    "id, alarm_id, key, ts_ms, event_ts_ms, action, from_state, to_state, user_name, comment, "
    "value, priority, raised_ms"
)


class PgAlarmJournal:
    """The alarm journal of a hub (or a hub pair) in one PostgreSQL database."""

    def __init__(
        self, url: str, *, health: StateHealth | None = None, fence: Fence | None = None
    ) -> None:
        self.path = "postgresql alarm journal"
        self._db = PgConnection(url, "alarm journal", health, fence)

    def load(self) -> JournalState:
        with self._db.cursor() as cur:
            cur.execute("SELECT data FROM alarms ORDER BY id")
            alarms = [Alarm.from_json(json.loads(data)) for (data,) in cur.fetchall()]
            cur.execute("SELECT key, cause FROM suppressions ORDER BY key, cause")
            causes: dict[str, list[str]] = {}
            for key, cause in cur.fetchall():
                causes.setdefault(key, []).append(cause)
            cur.execute("SELECT hazard_source, alarm_id FROM first_out")
            first_out = {str(s): int(a) for s, a in cur.fetchall()}
        return JournalState(alarms, {k: tuple(v) for k, v in causes.items()}, first_out)

    def write(self, batch: JournalBatch) -> list[JournalEntry]:
        """Commit the batch in one transaction; returns its entries with their sequence ids."""
        stored: list[JournalEntry] = []
        with self._db.transaction() as cur:
            if batch.entries:
                cur.execute(
                    "UPDATE journal_counter SET last = last + %s WHERE id = 1 RETURNING last",
                    (len(batch.entries),),
                )
                row = cur.fetchone()
                assert row is not None, "journal_counter has no row: migration 0010 not applied"
                first = int(row[0]) - len(batch.entries) + 1
                stored = [replace(e, id=first + i) for i, e in enumerate(batch.entries)]
                cur.executemany(
                    f"INSERT INTO transitions ({_COLUMNS}, annunciated) "
                    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    [_row(e) for e in stored],
                )
            if batch.alarms:
                cur.executemany(
                    "INSERT INTO alarms (id, key, data) VALUES (%s,%s,%s) "
                    "ON CONFLICT (id) DO UPDATE SET key = excluded.key, data = excluded.data",
                    [(a.id, a.key, dump_alarm(a)) for a in batch.alarms],
                )
            if batch.suppressed:
                cur.executemany(
                    "INSERT INTO suppressions (key, cause, since_ms) VALUES (%s,%s,%s) "
                    "ON CONFLICT DO NOTHING",
                    batch.suppressed,
                )
            if batch.released:
                cur.executemany(
                    "DELETE FROM suppressions WHERE key = %s AND cause = %s", batch.released
                )
            for source, pinned in batch.first_out.items():
                if pinned is None:
                    cur.execute("DELETE FROM first_out WHERE hazard_source = %s", (source,))
                else:
                    cur.execute(
                        "INSERT INTO first_out (hazard_source, alarm_id, since_ms) "
                        "VALUES (%s,%s,%s) ON CONFLICT (hazard_source) DO UPDATE SET "
                        "alarm_id = excluded.alarm_id, since_ms = excluded.since_ms",
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
        """As ``AlarmJournal.entries``: oldest first, the same filters."""
        where: list[str] = []
        args: list[Any] = []
        for clause, value in (
            ("action = %s", None if action is None else action.value),
            ("alarm_id = %s", alarm_id),
            ("id > %s", after_id),
            ("ts_ms >= %s", since_ms),
            ("ts_ms <= %s", until_ms),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM transitions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC" if newest else " ORDER BY id"
        if limit is not None:
            sql += " LIMIT %s"
            args.append(limit)
        with self._db.cursor() as cur:
            cur.execute(sql, args)
            rows = cur.fetchall()
        if newest:
            rows.reverse()
        return [entry_from_row(tuple(r)) for r in rows]

    def annunciations(self, *, until_ms: int) -> list[tuple[int, int]]:
        with self._db.cursor() as cur:
            cur.execute(
                "SELECT ts_ms, alarm_id FROM transitions WHERE annunciated AND ts_ms <= %s "
                "ORDER BY id",
                (until_ms,),
            )
            return [(int(ts), int(a)) for ts, a in cur.fetchall()]

    def prune(self, older_than_ms: int, *, now_ms: int) -> int:
        check_prune(older_than_ms, now_ms)
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO retention (pruned_before_ms, at_ms) VALUES (%s,%s)",
                (older_than_ms, now_ms),
            )
            cur.execute("DELETE FROM transitions WHERE ts_ms < %s", (older_than_ms,))
            return int(cur.rowcount)

    def close(self) -> None:
        self._db.close()


def _row(e: JournalEntry) -> tuple[Any, ...]:
    return (
        e.id,
        e.alarm_id,
        e.key,
        e.ts_ms,
        e.event_ts_ms,
        e.action.value,
        None if e.from_state is None else str(e.from_state),
        None if e.to_state is None else str(e.to_state),
        e.user,
        e.comment,
        e.value,
        None if e.priority is None else str(e.priority),
        e.raised_ms,
        e.annunciated,
    )
