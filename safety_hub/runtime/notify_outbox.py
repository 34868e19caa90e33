"""The durable notification outbox: every planned notification, its due time and its fate.

One SQLite state file (``notifications.sqlite`` in the data directory, through
:mod:`safety_hub.statefile`). What the planner plans for a transition is committed in one
transaction together with the transition's journal sequence number (the marker), so a crash
loses nothing: at start the runtime re-plans the transitions after the marker, and as every
notification has a stable id (``INSERT OR IGNORE``) re-planning adds nothing twice. A row is
``pending`` until the dispatcher sends it (``sent``), gives up on it (``failed``) or an ack,
a shelve or a new annunciation cancels it (``cancelled``). A send is marked in the same file right
after the channel took it; a crash between the two re-sends it once, with the same
notification id (docs/notifications.md, "Nothing lost, nothing twice").
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from safety_hub.notify.contacts import ContactPoint
from safety_hub.notify.planner import Cancel, Plan, Scheduled
from safety_hub.statefile import StateFile, StateFileKind

NOTIFY_OUTBOX = StateFileKind(
    name="notification outbox",
    schema="""
CREATE TABLE IF NOT EXISTS notification (
    id TEXT PRIMARY KEY,
    alarm_id INTEGER NOT NULL,
    annunciation INTEGER NOT NULL,
    policy TEXT NOT NULL,
    step TEXT NOT NULL,
    kind TEXT NOT NULL,
    person_id TEXT NOT NULL,
    person_name TEXT NOT NULL,
    channel TEXT NOT NULL,
    url TEXT NOT NULL,
    due_ms INTEGER NOT NULL,
    next_ms INTEGER NOT NULL,
    cancel_on_ack INTEGER NOT NULL,
    facts TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_ms INTEGER NOT NULL,
    done_ms INTEGER,
    message_id TEXT
);
CREATE INDEX IF NOT EXISTS notification_next ON notification (status, next_ms);
CREATE INDEX IF NOT EXISTS notification_alarm ON notification (alarm_id, annunciation);
CREATE INDEX IF NOT EXISTS notification_sent ON notification (person_id, url, done_ms);
-- The newest alarm-journal sequence number planned: after a crash between the journal commit
-- and the plan's commit, the runtime re-plans what is missing.
CREATE TABLE IF NOT EXISTS marker (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER);
""",
    holds="the notifications planned for alarms (pending escalation steps, what was sent)",
    if_moved_aside="pending escalation steps and reminders are never sent and the record of "
    "sent notifications is gone; alarms raised from then on are notified as usual",
    salvage=True,
    wal_autocheckpoint_pages=64,
)

PENDING, SENT, FAILED, CANCELLED = "pending", "sent", "failed", "cancelled"
STATUSES = (PENDING, SENT, FAILED, CANCELLED)
COLUMNS = (
    "id, alarm_id, annunciation, policy, step, kind, person_id, person_name, channel, url, "
    "due_ms, next_ms, cancel_on_ack, facts, status, attempts, last_error, created_ms, done_ms, "
    "message_id"
)


@dataclass(frozen=True, slots=True)
class Row:
    """One notification as the outbox holds it."""

    id: str
    alarm_id: int
    annunciation: int
    policy: str
    step: str
    kind: str
    person_id: str
    person_name: str
    contact: ContactPoint
    due_ms: int
    next_ms: int
    cancel_on_ack: bool
    facts: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    created_ms: int
    done_ms: int | None
    message_id: str | None

    def as_json(self) -> dict[str, Any]:
        """For the API: the contact URL redacted, never whole."""
        return {
            "notification_id": self.id,
            "alarm_id": self.alarm_id,
            "annunciation": self.annunciation,
            "policy": self.policy,
            "step": self.step,
            "kind": self.kind,
            "person_id": self.person_id,
            "person_name": self.person_name,
            "channel": self.contact.channel,
            "contact": self.contact.redacted(),
            "due_ms": self.due_ms,
            "next_ms": self.next_ms,
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_ms": self.created_ms,
            "done_ms": self.done_ms,
            "message_id": self.message_id,
        }


def _row(r: tuple[Any, ...]) -> Row:
    return Row(
        id=r[0],
        alarm_id=int(r[1]),
        annunciation=int(r[2]),
        policy=r[3],
        step=r[4],
        kind=r[5],
        person_id=r[6],
        person_name=r[7],
        contact=ContactPoint(r[8], r[9]),
        due_ms=int(r[10]),
        next_ms=int(r[11]),
        cancel_on_ack=bool(r[12]),
        facts=json.loads(r[13]),
        status=r[14],
        attempts=int(r[15]),
        last_error=r[16],
        created_ms=int(r[17]),
        done_ms=None if r[18] is None else int(r[18]),
        message_id=r[19],
    )


class NotificationOutboxStore(Protocol):
    """The notification outbox: this SQLite file, or the PostgreSQL one of
    connectors/postgres (``SAFETY_HUB_STATE_URL``)."""

    def apply(self, plan: Plan, seq: int | None, now_ms: int) -> int: ...

    def marker(self) -> int | None: ...

    def set_marker(self, seq: int) -> None: ...

    def due(self, now_ms: int, limit: int = 500) -> list[Row]: ...

    def next_due_ms(self) -> int | None: ...

    def last_sent_ms(self, person_id: str, url: str) -> int | None: ...

    def mark(
        self,
        ids: Iterable[str],
        status: str,
        now_ms: int,
        *,
        message_id: str | None = None,
        error: str | None = None,
        next_ms: int | None = None,
    ) -> None: ...

    def rows(
        self,
        *,
        alarm_id: int | None = None,
        status: str | None = None,
        enterprise: str | None = None,
        limit: int = 100,
    ) -> list[Row]: ...

    def pending_by_channel(self) -> dict[str, int]: ...

    def prune(self, older_than_ms: int) -> int: ...

    def close(self) -> None: ...


def row_from_tuple(r: tuple[Any, ...]) -> Row:
    """A Row from the columns of ``COLUMNS`` in order (facts as JSON text or a decoded dict)."""
    if not isinstance(r[13], str):
        r = (*r[:13], json.dumps(r[13], ensure_ascii=False), *r[14:])
    return _row(r)


class NotificationOutbox:
    def __init__(self, path: Path | str) -> None:
        self._file = StateFile(path, NOTIFY_OUTBOX)
        self._conn = self._file.open()
        self._lock = threading.Lock()

    # -- planning ----------------------------------------------------------------------------
    def apply(self, plan: Plan, seq: int | None, now_ms: int) -> int:
        """Commit a plan (and the marker, with ``seq``) in one transaction; returns how many
        notifications were new (a re-planned one is there already)."""
        with self._lock, self._file.transaction(self._conn) as cur:
            for cancel in plan.cancel:
                self._cancel(cur, cancel, now_ms)
            added = 0
            for item in plan.schedule:
                added += self._insert(cur, item, now_ms)
            if seq is not None:
                cur.execute(
                    "INSERT INTO marker (id, seq) VALUES (1, ?) "
                    "ON CONFLICT (id) DO UPDATE SET seq = max(seq, excluded.seq)",
                    (seq,),
                )
        return added

    @staticmethod
    def _insert(cur: Any, item: Scheduled, now_ms: int) -> int:
        cur.execute(
            f"INSERT OR IGNORE INTO notification ({COLUMNS}) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,NULL,?,NULL,NULL)",
            (
                item.notification_id,
                item.alarm_id,
                item.annunciation,
                item.policy,
                item.step,
                item.kind,
                item.person_id,
                item.person_name,
                item.contact.channel,
                item.contact.url,
                item.due_ms,
                item.due_ms,
                int(item.cancel_on_ack),
                json.dumps(item.facts, ensure_ascii=False),
                PENDING,
                now_ms,
            ),
        )
        return int(cur.rowcount)

    @staticmethod
    def _cancel(cur: Any, cancel: Cancel, now_ms: int) -> None:
        where = ["status = ?", "alarm_id = ?"]
        args: list[Any] = [PENDING, cancel.alarm_id]
        if cancel.annunciation is not None:
            where.append("annunciation = ?")
            args.append(cancel.annunciation)
        if cancel.before is not None:
            where.append("annunciation < ?")
            args.append(cancel.before)
        if cancel.ack_only:
            where.append("cancel_on_ack = 1")
        cur.execute(
            f"UPDATE notification SET status = ?, done_ms = ?, last_error = ? "
            f"WHERE {' AND '.join(where)}",
            (CANCELLED, now_ms, cancel.reason, *args),
        )

    def marker(self) -> int | None:
        with self._lock, self._file.guard():
            row = self._conn.execute("SELECT seq FROM marker WHERE id = 1").fetchone()
        return None if row is None else int(row[0])

    def set_marker(self, seq: int) -> None:
        self.apply(Plan(), seq, 0)

    # -- dispatching -------------------------------------------------------------------------
    def due(self, now_ms: int, limit: int = 500) -> list[Row]:
        """Pending notifications whose (next) try is due, oldest due first."""
        with self._lock, self._file.guard():
            rows = self._conn.execute(
                f"SELECT {COLUMNS} FROM notification WHERE status = ? AND next_ms <= ? "
                "ORDER BY next_ms, id LIMIT ?",
                (PENDING, now_ms, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def next_due_ms(self) -> int | None:
        with self._lock, self._file.guard():
            row = self._conn.execute(
                "SELECT min(next_ms) FROM notification WHERE status = ?", (PENDING,)
            ).fetchone()
        return None if row[0] is None else int(row[0])

    def last_sent_ms(self, person_id: str, url: str) -> int | None:
        with self._lock, self._file.guard():
            row = self._conn.execute(
                "SELECT max(done_ms) FROM notification "
                "WHERE person_id = ? AND url = ? AND status = ?",
                (person_id, url, SENT),
            ).fetchone()
        return None if row[0] is None else int(row[0])

    def mark(
        self,
        ids: Iterable[str],
        status: str,
        now_ms: int,
        *,
        message_id: str | None = None,
        error: str | None = None,
        next_ms: int | None = None,
    ) -> None:
        """Record the fate of a send: ``sent``/``failed`` (done), or ``pending`` again with the
        next try at ``next_ms`` (a retry); attempts count up either way."""
        ids = list(ids)
        with self._lock, self._file.transaction(self._conn) as cur:
            for row_id in ids:
                if status == PENDING:
                    cur.execute(
                        "UPDATE notification SET attempts = attempts + 1, last_error = ?, "
                        "next_ms = ? WHERE id = ? AND status = ?",
                        (error, next_ms, row_id, PENDING),
                    )
                else:
                    cur.execute(
                        "UPDATE notification SET status = ?, attempts = attempts + 1, "
                        "last_error = ?, done_ms = ?, message_id = ? WHERE id = ? AND status = ?",
                        (status, error, now_ms, message_id, row_id, PENDING),
                    )

    # -- reading -----------------------------------------------------------------------------
    def rows(
        self,
        *,
        alarm_id: int | None = None,
        status: str | None = None,
        enterprise: str | None = None,
        limit: int = 100,
    ) -> list[Row]:
        """The newest notifications (by due time), newest first."""
        where: list[str] = []
        args: list[Any] = []
        if enterprise is not None:
            where.append("json_extract(facts, '$.enterprise') = ?")
            args.append(enterprise)
        if alarm_id is not None:
            where.append("alarm_id = ?")
            args.append(alarm_id)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        with self._lock, self._file.guard():
            rows = self._conn.execute(
                f"SELECT {COLUMNS} FROM notification {clause}ORDER BY due_ms DESC, id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def pending_by_channel(self) -> dict[str, int]:
        with self._lock, self._file.guard():
            rows = self._conn.execute(
                "SELECT channel, COUNT(*) FROM notification WHERE status = ? GROUP BY channel",
                (PENDING,),
            ).fetchall()
        return {str(c): int(n) for c, n in rows}

    def prune(self, older_than_ms: int) -> int:
        """Forget sent, failed and cancelled notifications done before ``older_than_ms``."""
        with self._lock, self._file.transaction(self._conn) as cur:
            cur.execute(
                "DELETE FROM notification WHERE status != ? AND done_ms < ?",
                (PENDING, older_than_ms),
            )
            return int(cur.rowcount)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
