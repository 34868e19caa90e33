"""The MQTT alarm-event outbox and the engine snapshot in PostgreSQL (contracts:
``OutboxStore`` in safety_hub/runtime/outbox.py, ``SnapshotStore`` in
safety_hub/runtime/alarm_runtime.py; tables of migration 0010)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import msgspec

from connectors.postgres.store import Fence, PgConnection, StateHealth
from safety_hub.runtime.outbox import PENDING_BATCH, PendingEvent

_SET_MARKER = (
    "INSERT INTO alarm_outbox_marker (id, seq) VALUES (1, %s) "
    "ON CONFLICT (id) DO UPDATE SET seq = GREATEST(alarm_outbox_marker.seq, excluded.seq)"
)


class PgOutbox:
    """Rows committed before anything is sent; the publisher deletes a row once the broker
    acknowledged it (at least once; each event carries its journal seq to tell a repeat)."""

    def __init__(
        self, url: str, *, health: StateHealth | None = None, fence: Fence | None = None
    ) -> None:
        self.path = "postgresql alarm outbox"
        self._db = PgConnection(url, "alarm outbox", health, fence)
        self._changed = threading.Condition()
        self._put_since_wait = False  # a put the publisher may not have read yet (no lost wake-up)

    def put(self, topic: str, payload: bytes, created_ms: int, seq: int | None = None) -> None:
        """Commit one message; with ``seq`` the marker moves to it in the same transaction."""
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO alarm_outbox (topic, payload, created_ms) VALUES (%s,%s,%s)",
                (topic, payload, created_ms),
            )
            if seq is not None:
                cur.execute(_SET_MARKER, (seq,))
        with self._changed:
            self._put_since_wait = True
            self._changed.notify_all()

    def marker(self) -> int | None:
        with self._db.cursor() as cur:
            cur.execute("SELECT seq FROM alarm_outbox_marker WHERE id = 1")
            row = cur.fetchone()
        return None if row is None else int(row[0])

    def set_marker(self, seq: int) -> None:
        with self._db.transaction() as cur:
            cur.execute(_SET_MARKER, (seq,))

    def pending(self, limit: int = PENDING_BATCH) -> list[PendingEvent]:
        with self._db.cursor() as cur:
            cur.execute(
                "SELECT id, topic, payload, created_ms FROM alarm_outbox ORDER BY id LIMIT %s",
                (limit,),
            )
            return [
                PendingEvent(int(r[0]), str(r[1]), bytes(r[2]), int(r[3])) for r in cur.fetchall()
            ]

    def done(self, row_id: int) -> None:
        self.done_many([row_id])

    def done_many(self, row_ids: Sequence[int]) -> None:
        with self._db.transaction() as cur:
            cur.execute("DELETE FROM alarm_outbox WHERE id = ANY(%s)", (list(row_ids),))

    def depth(self) -> int:
        with self._db.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM alarm_outbox")
            row = cur.fetchone()
        return 0 if row is None else int(row[0])

    def wait(self, timeout: float) -> None:
        """Until a put or :meth:`wake`, at most ``timeout`` s; at once when a put came since the
        last wait (between the publisher's read of the pending rows and this call)."""
        with self._changed:
            if not self._put_since_wait:
                self._changed.wait(timeout)
            self._put_since_wait = False

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def close(self) -> None:
        self._db.close()


class PgSnapshotStore:
    """The rule engine's snapshot: one row, replaced after every batch of readings."""

    def __init__(
        self, url: str, *, health: StateHealth | None = None, fence: Fence | None = None
    ) -> None:
        self._db = PgConnection(url, "engine snapshot", health, fence)

    def load(self) -> dict[str, object] | None:
        with self._db.cursor() as cur:
            cur.execute("SELECT data FROM engine_snapshot WHERE id = 1")
            row = cur.fetchone()
        return None if row is None else dict(msgspec.json.decode(row[0]))

    def save(self, data: Mapping[str, object]) -> None:
        """Replace the snapshot. Committed without waiting for the WAL flush (as the SQLite
        snapshot's ``synchronous=NORMAL``): it survives a killed hub, and a crash of the database
        server loses at most its last few hundred ms, which the next readings rebuild; the
        journal, spool and outboxes keep the full ``synchronous_commit``."""
        with self._db.transaction() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")
            cur.execute(
                "INSERT INTO engine_snapshot (id, data) VALUES (1, %s) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                (msgspec.json.encode(data).decode(),),
            )

    def close(self) -> None:
        self._db.close()
