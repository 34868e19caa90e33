"""The notification outbox in PostgreSQL (contract: ``NotificationOutboxStore`` in
safety_hub/runtime/notify_outbox.py; table ``notification`` of migration 0010). A plan and its
marker commit in one transaction; a re-planned notification is there already (stable id,
``ON CONFLICT DO NOTHING``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg.types.json import Jsonb

from connectors.postgres.store import Fence, PgConnection, StateHealth
from safety_hub.notify.planner import Cancel, Plan, Scheduled
from safety_hub.runtime.notify_outbox import CANCELLED, COLUMNS, PENDING, SENT, Row, row_from_tuple


class PgNotificationOutbox:
    def __init__(
        self, url: str, *, health: StateHealth | None = None, fence: Fence | None = None
    ) -> None:
        self._db = PgConnection(url, "notification outbox", health, fence)

    # -- planning ----------------------------------------------------------------------------
    def apply(self, plan: Plan, seq: int | None, now_ms: int) -> int:
        """Commit a plan (and the marker, with ``seq``) in one transaction; returns how many
        notifications were new."""
        added = 0
        with self._db.transaction() as cur:
            for cancel in plan.cancel:
                _cancel(cur, cancel, now_ms)
            for item in plan.schedule:
                cur.execute(
                    f"INSERT INTO notification ({COLUMNS}) VALUES "
                    "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,0,NULL,%s,NULL,NULL) "
                    "ON CONFLICT (id) DO NOTHING",
                    _values(item, now_ms),
                )
                added += cur.rowcount
            if seq is not None:
                cur.execute(
                    "INSERT INTO notification_marker (id, seq) VALUES (1, %s) ON CONFLICT (id) "
                    "DO UPDATE SET seq = GREATEST(notification_marker.seq, excluded.seq)",
                    (seq,),
                )
        return added

    def marker(self) -> int | None:
        return self._one("SELECT seq FROM notification_marker WHERE id = 1", ())

    def set_marker(self, seq: int) -> None:
        self.apply(Plan(), seq, 0)

    # -- dispatching -------------------------------------------------------------------------
    def due(self, now_ms: int, limit: int = 500) -> list[Row]:
        return self._rows(
            f"SELECT {COLUMNS} FROM notification WHERE status = %s AND next_ms <= %s "
            "ORDER BY next_ms, id LIMIT %s",
            (PENDING, now_ms, limit),
        )

    def next_due_ms(self) -> int | None:
        return self._one("SELECT min(next_ms) FROM notification WHERE status = %s", (PENDING,))

    def last_sent_ms(self, person_id: str, url: str) -> int | None:
        return self._one(
            "SELECT max(done_ms) FROM notification WHERE person_id = %s AND url = %s "
            "AND status = %s",
            (person_id, url, SENT),
        )

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
        ids = list(ids)
        with self._db.transaction() as cur:
            if status == PENDING:
                cur.execute(
                    "UPDATE notification SET attempts = attempts + 1, last_error = %s, "
                    "next_ms = %s WHERE id = ANY(%s) AND status = %s",
                    (error, next_ms, ids, PENDING),
                )
            else:
                cur.execute(
                    "UPDATE notification SET status = %s, attempts = attempts + 1, "
                    "last_error = %s, done_ms = %s, message_id = %s "
                    "WHERE id = ANY(%s) AND status = %s",
                    (status, error, now_ms, message_id, ids, PENDING),
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
        where: list[str] = []
        args: list[Any] = []
        for clause, value in (
            ("facts ->> 'enterprise' = %s", enterprise),
            ("alarm_id = %s", alarm_id),
            ("status = %s", status),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        return self._rows(
            f"SELECT {COLUMNS} FROM notification {clause}ORDER BY due_ms DESC, id DESC LIMIT %s",
            (*args, limit),
        )

    def pending_by_channel(self) -> dict[str, int]:
        with self._db.cursor() as cur:
            cur.execute(
                "SELECT channel, COUNT(*) FROM notification WHERE status = %s GROUP BY channel",
                (PENDING,),
            )
            return {str(c): int(n) for c, n in cur.fetchall()}

    def prune(self, older_than_ms: int) -> int:
        with self._db.transaction() as cur:
            cur.execute(
                "DELETE FROM notification WHERE status <> %s AND done_ms < %s",
                (PENDING, older_than_ms),
            )
            return int(cur.rowcount)

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        with self._db.cursor() as cur:
            cur.execute(sql, args)
            return [row_from_tuple(tuple(r)) for r in cur.fetchall()]

    def _one(self, sql: str, args: tuple[Any, ...]) -> int | None:
        with self._db.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])


def _values(item: Scheduled, now_ms: int) -> tuple[Any, ...]:
    return (
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
        item.cancel_on_ack,
        Jsonb(item.facts),
        PENDING,
        now_ms,
    )


def _cancel(cur: Any, cancel: Cancel, now_ms: int) -> None:
    where = ["status = %s", "alarm_id = %s"]
    args: list[Any] = [PENDING, cancel.alarm_id]
    if cancel.annunciation is not None:
        where.append("annunciation = %s")
        args.append(cancel.annunciation)
    if cancel.before is not None:
        where.append("annunciation < %s")
        args.append(cancel.before)
    if cancel.ack_only:
        where.append("cancel_on_ack")
    cur.execute(
        f"UPDATE notification SET status = %s, done_ms = %s, last_error = %s "
        f"WHERE {' AND '.join(where)}",
        (CANCELLED, now_ms, cancel.reason, *args),
    )
