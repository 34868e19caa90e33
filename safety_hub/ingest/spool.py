"""Durable on-disk spool between ingest and the storage sink.

A SQLite database in WAL mode. Ingest appends one row per MQTT message (its readings already
encoded as line protocol) and commits before the message is acknowledged; the sink reads the
oldest rows, writes them, and deletes them only after the database accepted them. Rows whose
data the database refused (HTTP 4xx) move to a dead-letter table with the reason, never
silently away.

Durability: ``sync="full"`` (the default) fsyncs every commit, surviving power loss;
``sync="normal"`` survives a killed process (kill -9) but not a power cut. Commits are grouped:
one commit covers every message waiting at that moment.

A damaged spool stops the start with a StateFileError naming the file and how to salvage its
readings; a full disk makes ``append`` raise DiskFullError with nothing written and the counts
unchanged, and appends work again as soon as there is space.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from safety_hub.statefile import StateFile, StateFileKind

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    lines TEXT NOT NULL
);
-- Covers the totals read at start: without it they read a leaf page per row, spread over the
-- whole file (9.1 s cold for a 1 GB spool, 88 ms with it); appends cost no measurable more.
CREATE INDEX IF NOT EXISTS batch_totals ON batch (n, bytes, created_ms);
-- The newest alarm-journal sequence number whose alarm_event line is here (or was, and went
-- on to storage), committed with that line: after a crash the alarm runtime writes the lines
-- of the transitions after it again (safety_hub/runtime/alarm_runtime.py).
CREATE TABLE IF NOT EXISTS alarm_marker (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    failed_ms INTEGER NOT NULL,
    error TEXT NOT NULL,
    n INTEGER NOT NULL,
    lines TEXT NOT NULL
);
"""

SPOOL = StateFileKind(
    name="spool",
    schema=_SCHEMA,
    holds="the readings not yet written to storage (and the dead letters)",
    if_moved_aside="the hub starts with an empty spool and those readings are lost",
    salvage=True,
    busy_timeout_ms=10_000,
    # Every spooled row is deleted once stored: zeroing each (the default of some SQLite
    # builds) wrote the spool's whole volume a second time (docs/benchmarks.md).
    secure_delete="FAST",
    # Pages of 16 KB: a row (a message's lines, ~20 KB) chains 1-2 overflow pages instead of
    # 5-6; about half the CPU per spooled reading measured (docs/benchmarks.md). The WAL is
    # checkpointed at 250 of them, the 4 MB of SQLite's default.
    page_size=16_384,
    wal_autocheckpoint_pages=250,
)


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    id: int
    created_ms: int
    n: int
    lines: str


@dataclass(frozen=True, slots=True)
class SpoolDepth:
    batches: int
    readings: int
    bytes: int
    oldest_ms: int | None
    dead_letters: int


class SpoolStore(Protocol):
    """What ingest, the sink, the alarm runtime and the API need of the spool: this SQLite
    file, or the PostgreSQL spool of connectors/postgres (``SAFETY_HUB_STATE_URL``).

    ``append`` returns only once the rows are durable (the messages are acknowledged after it)
    and raises with nothing written; ``remove``/``dead_letter`` count a batch once."""

    def has_room(self) -> bool: ...

    def wait_for_room(self, timeout: float) -> bool: ...

    def append(
        self, batches: Sequence[tuple[str, int]], created_ms: int, *, alarm_seq: int | None = None
    ) -> None:
        """With ``alarm_seq``: the alarm marker moves to it in the same transaction."""

    def alarm_marker(self) -> int | None:
        """The newest alarm-journal seq whose alarm_event line was appended; None: never set."""

    def peek(self, max_readings: int, after_id: int = 0) -> list[SpoolBatch]: ...

    def wait_for_data(self, timeout: float) -> bool: ...

    def wake(self) -> None: ...

    def remove(self, batches: Sequence[SpoolBatch]) -> None: ...

    def dead_letter(self, batches: Sequence[SpoolBatch], error: str, failed_ms: int) -> None: ...

    def dead_letters(self, limit: int = 100) -> list[dict[str, object]]: ...

    def depth(self) -> SpoolDepth: ...

    def recount(self) -> None:
        """Count the depth from the store again (a shared store others wrote to)."""

    def close(self) -> None: ...


class Spool:
    """Thread-safe: one writer connection (ingest) and one reader connection (sink)."""

    def __init__(
        self,
        path: Path,
        *,
        max_readings: int = 20_000_000,
        max_bytes: int = 4 * 1024**3,
        sync: Literal["full", "normal"] = "full",
    ) -> None:
        self.path = path
        self.max_readings = max_readings
        self.max_bytes = max_bytes
        self._file = StateFile(path, SPOOL, synchronous="FULL" if sync == "full" else "NORMAL")
        self._write_conn = self._file.open()
        try:
            with self._file.guard():  # damage met here is named too
                row = self._write_conn.execute(
                    "SELECT COUNT(*), COALESCE(SUM(n), 0), COALESCE(SUM(bytes), 0), "
                    "MIN(created_ms) FROM batch"
                ).fetchone()
                dead = self._write_conn.execute("SELECT COUNT(*) FROM dead_letter").fetchone()
            self._read_conn = self._file.connect()
        except BaseException:
            self._write_conn.close()
            raise
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()  # the sink and the API share the read connection
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._batches, self._readings, self._bytes, self._oldest = (
            int(row[0]),
            int(row[1]),
            int(row[2]),
            row[3],
        )
        self._dead = int(dead[0])
        self._closed = False

    # -- ingest side -------------------------------------------------------------------------
    def has_room(self) -> bool:
        with self._lock:
            return self._readings < self.max_readings and self._bytes < self.max_bytes

    def wait_for_room(self, timeout: float) -> bool:
        """Block until the spool has room again or the timeout passes; True when it has room."""
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
        """Durably append ``(lines, n)`` rows in one transaction; returns once committed. With
        ``alarm_seq`` the alarm marker moves to it in the same transaction.

        Raises DiskFullError when the disk (or the database) is full: nothing was written and
        the counts are unchanged."""
        rows = [(created_ms, n, len(lines), lines) for lines, n in batches if n > 0]
        if not rows and alarm_seq is None:
            return
        conn = self._write_conn
        # The write lock: ingest, and alarm events from the API and ticker threads.
        with self._write_lock, self._file.transaction(conn) as cursor:
            cursor.executemany(
                "INSERT INTO batch (created_ms, n, bytes, lines) VALUES (?,?,?,?)", rows
            )
            if alarm_seq is not None:
                cursor.execute(
                    "INSERT INTO alarm_marker (id, seq) VALUES (1, ?) "
                    "ON CONFLICT (id) DO UPDATE SET seq = max(seq, excluded.seq)",
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
        never set, a spool from before the marker or a new one)."""
        with self._write_lock, self._file.guard():
            row = self._write_conn.execute("SELECT seq FROM alarm_marker WHERE id = 1").fetchone()
        return None if row is None else int(row[0])

    # -- sink side ---------------------------------------------------------------------------
    def peek(self, max_readings: int, after_id: int = 0) -> list[SpoolBatch]:
        """The oldest batches, up to about ``max_readings`` readings (at least one batch)."""
        out: list[SpoolBatch] = []
        total = 0
        with self._read_lock, self._file.guard():  # damage met at run time names the file too
            cursor = self._read_conn.execute(
                "SELECT id, created_ms, n, lines FROM batch WHERE id > ? ORDER BY id", (after_id,)
            )
            for row in cursor:
                if out and total + row[2] > max_readings:
                    break
                out.append(SpoolBatch(row[0], row[1], row[2], row[3]))
                total += row[2]
            cursor.close()
        return out

    def wait_for_data(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._closed or self._batches > 0, timeout)

    def wake(self) -> None:
        """Wake every waiter (a worker that is stopping re-checks its flag at once)."""
        with self._changed:
            self._changed.notify_all()

    def remove(self, batches: Sequence[SpoolBatch]) -> None:
        if not batches:
            return
        self._delete(batches, None, 0)

    def dead_letter(self, batches: Sequence[SpoolBatch], error: str, failed_ms: int) -> None:
        """Move batches the database refused to the dead-letter table, with the reason."""
        if not batches:
            return
        self._delete(batches, error, failed_ms)

    def _delete(self, batches: Sequence[SpoolBatch], error: str | None, failed_ms: int) -> None:
        conn = self._read_conn
        # The write lock too: appends wait on it and wake the moment the delete commits. Left
        # to SQLite, an append that meets this transaction sleep-polls in its busy handler
        # (1, 2, 5 ... 100 ms steps): the alarm latency tail this lock removes.
        with self._read_lock, self._write_lock, self._file.transaction(conn) as cursor:
            # Only rows that were still here count: a batch removed twice (two writers racing)
            # must not drive the counters below what the file holds.
            gone: list[SpoolBatch] = []
            for b in batches:
                cursor.execute("DELETE FROM batch WHERE id = ?", (b.id,))
                if cursor.rowcount:
                    gone.append(b)
            if error is not None and gone:
                cursor.executemany(
                    "INSERT INTO dead_letter (batch_id, created_ms, failed_ms, error, n, lines) "
                    "VALUES (?,?,?,?,?,?)",
                    [(b.id, b.created_ms, failed_ms, error, b.n, b.lines) for b in gone],
                )
            # The first batch by id is the oldest (ids grow with appends): one index step
            # instead of a scan of everything still spooled.
            row = cursor.execute("SELECT created_ms FROM batch ORDER BY id LIMIT 1").fetchone()
            oldest = None if row is None else row[0]
        with self._changed:
            self._batches -= len(gone)
            self._readings -= sum(b.n for b in gone)
            self._bytes -= sum(len(b.lines) for b in gone)
            self._oldest = oldest
            if error is not None:
                self._dead += len(gone)
            self._changed.notify_all()

    def note_removed(
        self, batches: int, readings: int, nbytes: int, dead: int, oldest_ms: int | None
    ) -> None:
        """Count what another process (the sink process, runtime/sink_process.py) removed from
        this file, exactly as it reported it; ``oldest_ms``: the oldest batch it saw left."""
        with self._changed:
            self._batches -= batches
            self._readings -= readings
            self._bytes -= nbytes
            self._dead += dead
            if self._batches <= 0:
                self._oldest = None
            elif oldest_ms is not None:
                self._oldest = oldest_ms
            self._changed.notify_all()

    def dead_letters(self, limit: int = 100) -> list[dict[str, object]]:
        with self._read_lock:
            rows = self._read_conn.execute(
                "SELECT id, batch_id, created_ms, failed_ms, error, n FROM dead_letter "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        keys = ("id", "batch_id", "created_ms", "failed_ms", "error", "readings")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # -- both --------------------------------------------------------------------------------
    def depth(self) -> SpoolDepth:
        with self._lock:
            return SpoolDepth(self._batches, self._readings, self._bytes, self._oldest, self._dead)

    def recount(self) -> None:
        """Nothing to do: this file is this hub's own, its counts are always right."""

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._write_conn.close()
        self._read_conn.close()
