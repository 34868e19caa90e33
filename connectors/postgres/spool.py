"""The ingest spool in PostgreSQL: readings acknowledged to the broker and not yet in InfluxDB,
on the shared database instead of one machine's disk (same contract as
safety_hub/ingest/spool.py, ``SpoolStore``).

One intake batch is one transaction: the fence check, then a ``COPY`` of its rows (one per MQTT
message), committed before the messages are acknowledged. The sink reads the oldest rows over a
second connection and deletes them once InfluxDB took them; refused ones move to
``spool_dead_letter`` with the reason. The depth is counted in memory from the table's totals at
start, as in the SQLite spool.

When the database is unreachable ``append`` raises StateDatabaseError (ingest holds the acks and
retries); ``peek`` reports the problem to the shared health record and returns nothing after a
short pause, so the sink keeps polling instead of dying.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from connectors.postgres.store import Fence, PgConnection, StateHealth
from safety_hub.errors import StateDatabaseError
from safety_hub.ingest.spool import SpoolBatch, SpoolDepth

log = logging.getLogger("safety_hub.postgres.spool")

DEAD_LETTERS_KEPT = 100
"""the newest dead letters kept in memory for the status page"""
PEEK_PAUSE_S = 0.5
"""how long ``peek`` waits after a failed read before it returns nothing"""


class PgSpool:
    """Thread-safe: a writer connection (ingest, alarm events) and a reader (sink, API)."""

    def __init__(
        self,
        url: str,
        *,
        max_readings: int = 20_000_000,
        max_bytes: int = 4 * 1024**3,
        health: StateHealth | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.path = "postgresql spool"
        self.max_readings = max_readings
        self.max_bytes = max_bytes
        health = health or StateHealth()
        self._writer = PgConnection(url, "spool", health, fence)
        self._reader = PgConnection(url, "spool (sink)", health, fence)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._batches = self._readings = self._bytes = self._dead = 0
        self._oldest: int | None = None
        self._dead_letters: list[dict[str, object]] = []
        self.recount()
        self._closed = False
        self._pause = threading.Event()

    # -- ingest side -------------------------------------------------------------------------
    def has_room(self) -> bool:
        with self._lock:
            return self._readings < self.max_readings and self._bytes < self.max_bytes

    def wait_for_room(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: (
                    self._closed
                    or (self._readings < self.max_readings and self._bytes < self.max_bytes)
                ),
                timeout,
            )

    def append(
        self, batches: Sequence[tuple[str, int]], created_ms: int, *, alarm_seq: int | None = None
    ) -> None:
        """Durably append ``(lines, n)`` rows in one transaction (one COPY); returns once
        committed. With ``alarm_seq`` the alarm marker moves to it in the same transaction.
        StateDatabaseError/FencedError: nothing written, counts unchanged."""
        rows = [(created_ms, n, len(lines), lines) for lines, n in batches if n > 0]
        if not rows and alarm_seq is None:
            return
        copy_sql = "COPY spool_batch (created_ms, n, bytes, lines) FROM STDIN"
        with self._writer.transaction() as cur:
            if rows:
                with cur.copy(copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            if alarm_seq is not None:
                cur.execute(
                    "INSERT INTO spool_alarm_marker (id, seq) VALUES (1, %s) ON CONFLICT (id) "
                    "DO UPDATE SET seq = GREATEST(spool_alarm_marker.seq, excluded.seq)",
                    (alarm_seq,),
                )
        if not rows:
            return
        with self._changed:
            self._batches += len(rows)
            self._readings += sum(r[1] for r in rows)
            self._bytes += sum(r[2] for r in rows)
            if self._oldest is None:
                self._oldest = created_ms
            self._changed.notify_all()

    def alarm_marker(self) -> int | None:
        """The newest alarm-journal sequence number whose alarm_event line was appended (None:
        never set)."""
        with self._writer.cursor() as cur:
            cur.execute("SELECT seq FROM spool_alarm_marker WHERE id = 1")
            row = cur.fetchone()
        return None if row is None else int(row[0])

    # -- sink side ---------------------------------------------------------------------------
    def peek(self, max_readings: int, after_id: int = 0) -> list[SpoolBatch]:
        """The oldest batches, up to about ``max_readings`` readings (at least one batch)."""
        out: list[SpoolBatch] = []
        total = 0
        try:
            with self._reader.cursor() as cur:
                cur.execute(
                    "SELECT id, created_ms, n, lines FROM spool_batch WHERE id > %s ORDER BY id "
                    "LIMIT %s",
                    (after_id, max(1, max_readings)),
                )
                for row in cur:
                    if out and total + row[2] > max_readings:
                        break
                    out.append(SpoolBatch(int(row[0]), int(row[1]), int(row[2]), row[3]))
                    total += row[2]
        except StateDatabaseError as exc:
            log.warning("spool: cannot read: %s", exc)
            self._pause.wait(PEEK_PAUSE_S)
            return []
        return out

    def recount(self) -> None:
        """Count the depth from the table again: at start, and when this node of a redundant
        pair becomes active (the other node appended to and drained the shared table)."""
        with self._reader.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*), COALESCE(SUM(n), 0), COALESCE(SUM(bytes), 0), MIN(created_ms) "
                "FROM spool_batch"
            )
            row = cur.fetchone()
            cur.execute("SELECT COUNT(*) FROM spool_dead_letter")
            dead = cur.fetchone()
        assert row is not None and dead is not None
        letters = self._read_dead_letters()
        with self._changed:
            self._dead_letters = letters
            self._batches, self._readings, self._bytes = int(row[0]), int(row[1]), int(row[2])
            self._oldest = None if row[3] is None else int(row[3])
            self._dead = int(dead[0])
            self._changed.notify_all()

    def wait_for_data(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._closed or self._batches > 0, timeout)

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def remove(self, batches: Sequence[SpoolBatch]) -> None:
        if batches:
            self._delete(batches, None, 0)

    def dead_letter(self, batches: Sequence[SpoolBatch], error: str, failed_ms: int) -> None:
        if batches:
            self._delete(batches, error, failed_ms)

    def _delete(self, batches: Sequence[SpoolBatch], error: str | None, failed_ms: int) -> None:
        by_id = {b.id: b for b in batches}
        letter_ids: list[int] = []
        with self._reader.transaction() as cur:
            # Only rows that were still here count (a batch removed twice counts once).
            cur.execute("DELETE FROM spool_batch WHERE id = ANY(%s) RETURNING id", (list(by_id),))
            gone = [by_id[int(r[0])] for r in cur.fetchall()]
            if error is not None and gone:
                cur.executemany(
                    "INSERT INTO spool_dead_letter (batch_id, created_ms, failed_ms, error, n, "
                    "lines) VALUES (%s,%s,%s,%s,%s,%s) RETURNING id",
                    [(b.id, b.created_ms, failed_ms, error, b.n, b.lines) for b in gone],
                    returning=True,
                )
                while True:
                    got = cur.fetchone()
                    if got is not None:
                        letter_ids.append(int(got[0]))
                    if not cur.nextset():
                        break
            cur.execute("SELECT created_ms FROM spool_batch ORDER BY id LIMIT 1")
            row = cur.fetchone()
            oldest = None if row is None else int(row[0])
        with self._changed:
            self._batches -= len(gone)
            self._readings -= sum(b.n for b in gone)
            self._bytes -= sum(len(b.lines) for b in gone)
            self._oldest = oldest
            if error is not None:
                self._dead += len(gone)
                new = [
                    {
                        "id": i,
                        "batch_id": b.id,
                        "created_ms": b.created_ms,
                        "failed_ms": failed_ms,
                        "error": error,
                        "readings": b.n,
                    }
                    for i, b in zip(letter_ids, gone, strict=True)
                ]
                self._dead_letters = (new[::-1] + self._dead_letters)[:DEAD_LETTERS_KEPT]
            self._changed.notify_all()

    def dead_letters(self, limit: int = 100) -> list[dict[str, object]]:
        """The newest dead letters, from memory: read at start and at :meth:`recount`, added to
        as this node dead-letters. The status page that lists them never waits on a database
        that does not answer."""
        with self._lock:
            return [dict(d) for d in self._dead_letters[:limit]]

    def _read_dead_letters(self) -> list[dict[str, object]]:
        with self._reader.cursor() as cur:
            cur.execute(
                "SELECT id, batch_id, created_ms, failed_ms, error, n FROM spool_dead_letter "
                "ORDER BY id DESC LIMIT %s",
                (DEAD_LETTERS_KEPT,),
            )
            rows = cur.fetchall()
        keys = ("id", "batch_id", "created_ms", "failed_ms", "error", "readings")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # -- both --------------------------------------------------------------------------------
    def depth(self) -> SpoolDepth:
        with self._lock:
            return SpoolDepth(self._batches, self._readings, self._bytes, self._oldest, self._dead)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._pause.set()
        self._writer.close()
        self._reader.close()
