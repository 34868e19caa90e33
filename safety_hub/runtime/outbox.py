"""A durable outbox for messages the hub must publish at least once (alarm events).

Rows are committed before anything is sent; a publisher thread sends them in order with QoS 1
and deletes a row only after the broker acknowledged it. After a crash or a broker outage the
rest is sent when the hub runs again, so an alarm event is never lost on the way out. On a full
disk ``put`` raises DiskFullError with nothing written; a row sent while the disk was too full
to delete it is not sent again, only deleted once there is room.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from safety_hub.statefile import StateFile, StateFileKind

if TYPE_CHECKING:
    from safety_hub.metrics import HubMetrics

log = logging.getLogger("safety_hub.outbox")

# publish(topic, payload, timeout_s) -> True once the broker acknowledged it
ConfirmedPublish = Callable[[str, bytes, float], bool]
# publish_many([(topic, payload), ...], timeout_s) -> how many of the first ones the broker
# acknowledged, in order (all sent at once: one round trip for them all, not one each)
ConfirmedPublishMany = Callable[[Sequence[tuple[str, bytes]], float], int]


def one_at_a_time(publish: ConfirmedPublish) -> ConfirmedPublishMany:
    """A ``publish_many`` from a single publish: each waits for its acknowledgement."""

    def publish_many(messages: Sequence[tuple[str, bytes]], timeout_s: float) -> int:
        for done, (topic, payload) in enumerate(messages):
            try:
                ok = publish(topic, payload, timeout_s)
            except Exception:
                log.exception("outbox: publish to %s failed", topic)
                ok = False
            if not ok:
                return done
        return len(messages)

    return publish_many


OUTBOX = StateFileKind(
    name="outbox",
    schema="""
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
-- The newest alarm-journal sequence number put here, committed with its row: after a crash
-- between the journal commit and ``put``, the runtime re-sends what is missing.
CREATE TABLE IF NOT EXISTS marker (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER);
""",
    holds="the alarm events not yet published over MQTT",
    if_moved_aside="those alarm events are never published (the alarm journal still records "
    "every transition); the hub starts with an empty outbox",
    salvage=False,
    wal_autocheckpoint_pages=64,
    # No fsync per commit: a power cut may take the newest rows and marker moves with it, and
    # the alarm runtime re-sends from the journal (which syncs fully) what the marker misses.
    # Saves an fsync on every alarm event's way to MQTT.
    synchronous="NORMAL",
)


PENDING_BATCH = 100
"""rows the publisher reads (and sends) at a time"""


class PendingEvent(NamedTuple):
    """A row of the outbox: sent in ``id`` order; ``created_ms`` is when it was put (the
    alarm runtime puts an event right after the rule engine's decision and its journal
    commit)."""

    id: int
    topic: str
    payload: bytes
    created_ms: int


class OutboxStore(Protocol):
    """The alarm-event outbox: this SQLite file, or the PostgreSQL outbox of
    connectors/postgres (``SAFETY_HUB_STATE_URL``)."""

    def put(self, topic: str, payload: bytes, created_ms: int, seq: int | None = None) -> None: ...

    def marker(self) -> int | None: ...

    def set_marker(self, seq: int) -> None: ...

    def pending(self, limit: int = PENDING_BATCH) -> list[PendingEvent]: ...

    def done(self, row_id: int) -> None: ...

    def done_many(self, row_ids: Sequence[int]) -> None:
        """Delete the rows in one transaction."""

    def depth(self) -> int: ...

    def wait(self, timeout: float) -> None: ...

    def wake(self) -> None: ...

    def close(self) -> None: ...


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = StateFile(path, OUTBOX)
        self._conn = self._file.open()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._put_since_wait = False  # a put the publisher may not have read yet (no lost wake-up)

    def put(self, topic: str, payload: bytes, created_ms: int, seq: int | None = None) -> None:
        """Commit one message; with ``seq`` the marker moves to it in the same transaction."""
        with self._changed:
            with self._file.transaction(self._conn) as cursor:
                cursor.execute(
                    "INSERT INTO outbox (topic, payload, created_ms) VALUES (?,?,?)",
                    (topic, payload, created_ms),
                )
                if seq is not None:
                    self._set_marker(seq)
            self._put_since_wait = True
            self._changed.notify_all()

    def marker(self) -> int | None:
        """The newest sequence number put with a message (None: never set)."""
        with self._lock:
            row = self._conn.execute("SELECT seq FROM marker WHERE id = 1").fetchone()
        return None if row is None else int(row[0])

    def set_marker(self, seq: int) -> None:
        with self._lock, self._file.guard():
            self._set_marker(seq)

    def _set_marker(self, seq: int) -> None:
        self._conn.execute(
            "INSERT INTO marker (id, seq) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET seq = max(seq, excluded.seq)",
            (seq,),
        )

    def pending(self, limit: int = PENDING_BATCH) -> list[PendingEvent]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, topic, payload, created_ms FROM outbox ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [PendingEvent(int(r[0]), str(r[1]), bytes(r[2]), int(r[3])) for r in rows]

    def done(self, row_id: int) -> None:
        self.done_many([row_id])

    def done_many(self, row_ids: Sequence[int]) -> None:
        with self._lock, self._file.transaction(self._conn) as cursor:
            cursor.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in row_ids])

    def depth(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

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
        with self._lock:
            self._conn.close()


class OutboxPublisher:
    """Sends the outbox in order; one unacknowledged message blocks the ones behind it.

    The pending rows go out together (``publish_many``: a level-1 and a level-2 event of one
    reading take one round trip to the broker, not one each) and are deleted together once
    acknowledged; what was not acknowledged is sent again from the first such row.

    With ``metrics``: each acknowledged event's delay from its row's ``created_ms`` to the
    broker's acknowledgement (by ``now_ms``, the clock the rows were stamped with), the events
    published, and after every read of the outbox the events waiting and the oldest one's
    age (docs/api.md, "Metrics")."""

    def __init__(
        self,
        outbox: OutboxStore,
        publish: ConfirmedPublish,
        *,
        timeout_s: float = 5.0,
        publish_many: ConfirmedPublishMany | None = None,
        metrics: HubMetrics | None = None,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._outbox = outbox
        self._metrics = metrics
        self._now_ms = now_ms
        self._publish_many = publish_many or one_at_a_time(publish)
        self._timeout = timeout_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # published, but their delete failed (full disk): deleted later, never sent again
        self._sent_not_done: list[int] = []
        self.sent = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._outbox.wake()
        if self._thread is not None:
            self._thread.join(self._timeout + 2)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                rows = self._outbox.pending()
            except Exception as exc:  # the state database away: poll again, keep the thread
                log.warning("outbox: cannot read pending events: %s", exc)
                self._stopping.wait(1.0)
                continue
            self._show_waiting(rows)
            if not rows:
                self._outbox.wait(1.0)
                continue
            earlier = set(self._sent_not_done)
            todo = [row for row in rows if row.id not in earlier]
            acked = 0
            if todo:
                try:
                    acked = self._publish_many([(r.topic, r.payload) for r in todo], self._timeout)
                except Exception:
                    log.exception("outbox: publishing %d events failed", len(todo))
                self.sent += acked
                self._count_published(todo[:acked])
            sent = self._sent_not_done + [row.id for row in todo[:acked]]
            if sent:
                try:
                    self._outbox.done_many(sent)
                    self._sent_not_done = []
                except Exception as exc:  # a full disk: delete them later, never send twice
                    log.warning("outbox: sent rows %s not deleted yet: %s", sent[:5], exc)
                    self._sent_not_done = sent
                    self._stopping.wait(1.0)
                    continue
            if acked < len(todo):
                self._stopping.wait(1.0)  # broker away: retry from the first unsent row, in order

    def _show_waiting(self, rows: Sequence[PendingEvent]) -> None:
        if self._metrics is None:
            return
        try:
            waiting = len(rows) if len(rows) < PENDING_BATCH else self._outbox.depth()
        except Exception:  # the state database away: the gauges keep their last values
            return
        self._metrics.alarm_outbox_events.set(waiting)
        oldest = (self._now_ms() - rows[0].created_ms) / 1000 if rows else 0.0
        self._metrics.alarm_outbox_age.set(max(0.0, oldest))

    def _count_published(self, rows: Sequence[PendingEvent]) -> None:
        if self._metrics is None or not rows:
            return
        now = self._now_ms()
        for row in rows:
            self._metrics.alarm_event_delay.observe(max(0, now - row.created_ms) / 1000)
        self._metrics.alarm_events_published.inc(len(rows))
