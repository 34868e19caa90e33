"""The uplink's durable queue: one FIFO per destination, in one state file (docs/uplink.md,
"Delivery").

A record is committed here before anything is sent and deleted only once its destination took
it (or refused it for good), so an outage or a ``kill -9`` loses nothing: after a restart the
rest goes out in the same order, with the same ``dataId``. A ``dataId`` already waiting is not
queued twice. Cursors (the newest reading time per tag, the alarm journal row last queued, the
base data already queued) are committed with their records (``put(..., cursors=)``) or right
after them: a crash in between puts the same records again, with the same ``dataId``.

Sending order (``SEND_ORDER``): base data and warnings before readings, each in the order
queued. A warning never waits behind a backlog of readings (after an outage, or a rate limit
slower than the readings come); readings keep their order among themselves, so each tag's
still arrive in source-time order.

The queue is bounded per destination (``max_records``). When a put does not fit, the oldest
waiting *readings* of that destination are dropped to make room (a reading is a snapshot that
newer ones supersede; base data and warnings are never dropped for room); when there are no
readings left to drop, the newest records of the put are refused. Both are reported in the
returned :class:`PutResult`; the runtime drops refused readings (counted, logged, system alarm)
and holds refused base data and warnings back to put them again once there is room.

:class:`UplinkQueueStore` is the contract the runtime uses. :class:`UplinkQueue` keeps it in a
SQLite file (``uplink.sqlite`` in the data directory, through
:class:`~safety_hub.statefile.StateFile`); a redundant pair keeps it in the shared PostgreSQL
database instead (``connectors/postgres/uplink_queue.py``, chosen by ``runtime/state.py``), so
the node that takes over sends what the other one left.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from safety_hub.statefile import StateFile, StateFileKind
from safety_hub.uplink.records import OutRecord

QUEUE_FILE = "uplink.sqlite"
"""the SQLite queue's file name, in the data directory"""

UPLINK_QUEUE = StateFileKind(
    name="uplink queue",
    schema="""
CREATE TABLE IF NOT EXISTS uplink_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    data_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (destination, data_id)
);
CREATE INDEX IF NOT EXISTS uplink_queue_kind ON uplink_queue (destination, kind, seq);
CREATE TABLE IF NOT EXISTS uplink_cursor (
    destination TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (destination, name)
);
""",
    holds="the records waiting to go up to the provincial platform(s), and how far the "
    "readings and the alarm journal have been queued",
    if_moved_aside="the records still waiting are never sent; the hub queues the base data "
    "again, and the warnings from the newest alarm journal row on",
    salvage=True,
    version=1,
)


SEND_ORDER = ("base", "warning", "reading")
"""what a destination sends first: every kind but readings in queue order, then readings"""


@dataclass(frozen=True, slots=True)
class Queued:
    seq: int
    record: OutRecord
    created_ms: int


@dataclass(frozen=True, slots=True)
class PutResult:
    added: int
    duplicates: int
    dropped_readings: int
    refused: int
    refused_kinds: tuple[str, ...] = ()
    refused_ids: tuple[str, ...] = ()
    """the dataIds refused, in order (the tail of what was new)"""
    added_kinds: tuple[tuple[str, int], ...] = ()
    """how many of each kind were added"""


@dataclass(frozen=True, slots=True)
class Depth:
    records: int
    oldest_ms: int | None


def put_result(
    records: Sequence[OutRecord],
    fresh: Sequence[OutRecord],
    taken: Sequence[OutRecord],
    dropped_readings: int,
) -> PutResult:
    """What became of a put of ``records``: ``fresh`` were not waiting yet, ``taken`` (their
    head) were queued, the rest of ``fresh`` refused; ``dropped_readings`` made room."""
    refused = fresh[len(taken) :]
    return PutResult(
        added=len(taken),
        duplicates=len(records) - len(fresh),
        dropped_readings=dropped_readings,
        refused=len(refused),
        refused_kinds=tuple(sorted({r.kind for r in refused})),
        refused_ids=tuple(r.data_id for r in refused),
        added_kinds=tuple(sorted(Counter(r.kind for r in taken).items())),
    )


class UplinkQueueStore(Protocol):
    """The durable uplink queue (this module's docstring): one FIFO per destination, a
    ``dataId`` waiting at most once, bounded, cursors committed with their records."""

    def put(
        self,
        destination: str,
        records: Sequence[OutRecord],
        now_ms: int,
        *,
        max_records: int,
        cursors: Mapping[str, str] | None = None,
    ) -> PutResult:
        """Queue ``records`` in order and move ``cursors``, in one transaction."""
        ...

    def peek(self, destination: str, limit: int) -> list[Queued]:
        """The oldest ``limit`` records of ``destination``, oldest first."""
        ...

    def remove(self, destination: str, seqs: Sequence[int]) -> None:
        """Forget records the destination took (or refused for good)."""
        ...

    def depth(self, destination: str) -> Depth: ...

    def cursors(self, destination: str) -> dict[str, str]: ...

    def destinations(self) -> list[str]:
        """Every destination with records waiting or cursors (for ``uplink status``)."""
        ...

    def close(self) -> None: ...


class UplinkQueue:
    """The queue in a SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._file = StateFile(path, UPLINK_QUEUE)
        self._conn = self._file.open()
        self._lock = threading.Lock()

    def put(
        self,
        destination: str,
        records: Sequence[OutRecord],
        now_ms: int,
        *,
        max_records: int,
        cursors: Mapping[str, str] | None = None,
    ) -> PutResult:
        """Queue ``records`` in order and move ``cursors``, in one transaction."""
        with self._lock, self._file.transaction(self._conn) as cur:
            fresh = [r for r in records if not self._has(cur, destination, r.data_id)]
            depth = int(
                cur.execute(
                    "SELECT COUNT(*) FROM uplink_queue WHERE destination = ?", (destination,)
                ).fetchone()[0]
            )
            over = depth + len(fresh) - max_records
            dropped = 0
            if over > 0:
                cur.execute(
                    "DELETE FROM uplink_queue WHERE seq IN (SELECT seq FROM uplink_queue "
                    "WHERE destination = ? AND kind = 'reading' ORDER BY seq LIMIT ?)",
                    (destination, over),
                )
                dropped = cur.rowcount
            room = max_records - (depth - dropped)
            taken = fresh[: max(room, 0)]
            cur.executemany(
                "INSERT INTO uplink_queue (destination, data_id, kind, body, created_ms) "
                "VALUES (?,?,?,?,?)",
                [(destination, r.data_id, r.kind, r.body(), now_ms) for r in taken],
            )
            for name, value in (cursors or {}).items():
                cur.execute(
                    "INSERT INTO uplink_cursor (destination, name, value) VALUES (?,?,?) "
                    "ON CONFLICT (destination, name) DO UPDATE SET value = excluded.value",
                    (destination, name, value),
                )
        return put_result(records, fresh, taken, dropped)

    @staticmethod
    def _has(cur: object, destination: str, data_id: str) -> bool:
        row = cur.execute(  # type: ignore[attr-defined]
            "SELECT 1 FROM uplink_queue WHERE destination = ? AND data_id = ?",
            (destination, data_id),
        ).fetchone()
        return row is not None

    def peek(self, destination: str, limit: int) -> list[Queued]:
        """The next ``limit`` records of ``destination`` to send: base data and warnings first,
        oldest first, then the oldest readings (``SEND_ORDER``)."""
        with self._lock, self._file.guard():
            rows = self._conn.execute(
                "SELECT seq, data_id, body, created_ms FROM uplink_queue WHERE destination = ? "
                "AND kind <> 'reading' ORDER BY seq LIMIT ?",
                (destination, limit),
            ).fetchall()
            if len(rows) < limit:
                rows += self._conn.execute(
                    "SELECT seq, data_id, body, created_ms FROM uplink_queue "
                    "WHERE destination = ? AND kind = 'reading' ORDER BY seq LIMIT ?",
                    (destination, limit - len(rows)),
                ).fetchall()
        return [Queued(int(s), OutRecord.from_body(str(d), str(b)), int(c)) for s, d, b, c in rows]

    def remove(self, destination: str, seqs: Sequence[int]) -> None:
        """Forget records the destination took (or refused for good)."""
        if not seqs:
            return
        with self._lock, self._file.transaction(self._conn) as cur:
            cur.executemany(
                "DELETE FROM uplink_queue WHERE destination = ? AND seq = ?",
                [(destination, s) for s in seqs],
            )

    def depth(self, destination: str) -> Depth:
        with self._lock, self._file.guard():
            count, oldest = self._conn.execute(
                "SELECT COUNT(*), MIN(created_ms) FROM uplink_queue WHERE destination = ?",
                (destination,),
            ).fetchone()
        return Depth(int(count), None if oldest is None else int(oldest))

    def cursors(self, destination: str) -> dict[str, str]:
        with self._lock, self._file.guard():
            rows = self._conn.execute(
                "SELECT name, value FROM uplink_cursor WHERE destination = ?", (destination,)
            ).fetchall()
        return {str(n): str(v) for n, v in rows}

    def destinations(self) -> list[str]:
        """Every destination with records waiting or cursors (for ``uplink status``)."""
        with self._lock, self._file.guard():
            rows = self._conn.execute(
                "SELECT destination FROM uplink_queue UNION SELECT destination FROM uplink_cursor"
            ).fetchall()
        return sorted(str(r[0]) for r in rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
