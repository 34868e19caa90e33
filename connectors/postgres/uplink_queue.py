"""The uplink's durable queue in PostgreSQL (contract: ``UplinkQueueStore`` in
safety_hub/uplink/queue.py; tables of migration 0020).

The same rules as the SQLite file, on the database a redundant pair shares: one FIFO per
destination in ``seq`` order, a ``dataId`` waiting at most once per destination, bounded with
the oldest readings dropped first, cursors committed in the transaction of their records. Every
write (``put``, ``remove``) is fenced like the other shared stores, so a node that lost the
lease cannot queue, move a cursor or forget a record; the node that takes the lease over reads
the cursors and the queue the other node left and sends the backlog, in order, with the same
``dataId``s.

Thread-safe: a writer connection (the producer's puts, the senders' removes) and a reader
(the senders' peeks, ``/api/v1/system`` and ``/metrics``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from connectors.postgres.store import Fence, PgConnection, StateHealth
from safety_hub.uplink.queue import Depth, PutResult, Queued, put_result
from safety_hub.uplink.records import OutRecord

_SET_CURSOR = (
    "INSERT INTO uplink_cursor (destination, name, value) VALUES (%s,%s,%s) "
    "ON CONFLICT (destination, name) DO UPDATE SET value = excluded.value"
)


class PgUplinkQueue:
    def __init__(
        self, url: str, *, health: StateHealth | None = None, fence: Fence | None = None
    ) -> None:
        self.path = "postgresql uplink queue"
        health = health or StateHealth()
        self._writer = PgConnection(url, "uplink queue", health, fence)
        self._reader = PgConnection(url, "uplink queue (reader)", health, fence)

    def put(
        self,
        destination: str,
        records: Sequence[OutRecord],
        now_ms: int,
        *,
        max_records: int,
        cursors: Mapping[str, str] | None = None,
    ) -> PutResult:
        """Queue ``records`` in order and move ``cursors``, in one fenced transaction."""
        with self._writer.transaction() as cur:
            fresh: list[OutRecord] = []
            dropped = 0
            if records:
                cur.execute(
                    "SELECT data_id FROM uplink_queue WHERE destination = %s AND data_id = ANY(%s)",
                    (destination, [r.data_id for r in records]),
                )
                waiting = {str(row[0]) for row in cur.fetchall()}
                fresh = [r for r in records if r.data_id not in waiting]
            taken: list[OutRecord] = []
            if fresh:
                cur.execute(
                    "SELECT count(*) FROM uplink_queue WHERE destination = %s", (destination,)
                )
                row = cur.fetchone()
                depth = 0 if row is None else int(row[0])
                over = depth + len(fresh) - max_records
                if over > 0:
                    cur.execute(
                        "DELETE FROM uplink_queue WHERE seq IN (SELECT seq FROM uplink_queue "
                        "WHERE destination = %s AND kind = 'reading' ORDER BY seq LIMIT %s)",
                        (destination, over),
                    )
                    dropped = cur.rowcount
                taken = fresh[: max(max_records - (depth - dropped), 0)]
            if taken:
                cur.executemany(
                    "INSERT INTO uplink_queue (destination, data_id, kind, body, created_ms) "
                    "VALUES (%s,%s,%s,%s,%s)",
                    [(destination, r.data_id, r.kind, r.body(), now_ms) for r in taken],
                )
            if cursors:
                cur.executemany(
                    _SET_CURSOR, [(destination, name, value) for name, value in cursors.items()]
                )
        return put_result(records, fresh, taken, dropped)

    def peek(self, destination: str, limit: int) -> list[Queued]:
        """The next ``limit`` records of ``destination`` to send: base data and warnings first,
        oldest first, then the oldest readings (``SEND_ORDER``, as the SQLite queue)."""
        with self._reader.cursor() as cur:
            cur.execute(
                "SELECT seq, data_id, body, created_ms FROM uplink_queue WHERE destination = %s "
                "AND kind <> 'reading' ORDER BY seq LIMIT %s",
                (destination, limit),
            )
            rows = cur.fetchall()
            if len(rows) < limit:
                cur.execute(
                    "SELECT seq, data_id, body, created_ms FROM uplink_queue "
                    "WHERE destination = %s AND kind = 'reading' ORDER BY seq LIMIT %s",
                    (destination, limit - len(rows)),
                )
                rows += cur.fetchall()
        return [Queued(int(s), OutRecord.from_body(str(d), str(b)), int(c)) for s, d, b, c in rows]

    def remove(self, destination: str, seqs: Sequence[int]) -> None:
        """Forget records the destination took (or refused for good); fenced."""
        if not seqs:
            return
        with self._writer.transaction() as cur:
            cur.execute(
                "DELETE FROM uplink_queue WHERE destination = %s AND seq = ANY(%s)",
                (destination, list(seqs)),
            )

    def depth(self, destination: str) -> Depth:
        with self._reader.cursor() as cur:
            cur.execute(
                "SELECT count(*), min(created_ms) FROM uplink_queue WHERE destination = %s",
                (destination,),
            )
            row = cur.fetchone()
        if row is None:
            return Depth(0, None)
        return Depth(int(row[0]), None if row[1] is None else int(row[1]))

    def cursors(self, destination: str) -> dict[str, str]:
        with self._reader.cursor() as cur:
            cur.execute(
                "SELECT name, value FROM uplink_cursor WHERE destination = %s", (destination,)
            )
            rows = cur.fetchall()
        return {str(n): str(v) for n, v in rows}

    def destinations(self) -> list[str]:
        """Every destination with records waiting or cursors (for ``uplink status``)."""
        with self._reader.cursor() as cur:
            cur.execute(
                "SELECT destination FROM uplink_queue UNION SELECT destination FROM uplink_cursor"
            )
            rows = cur.fetchall()
        return sorted(str(r[0]) for r in rows)

    def close(self) -> None:
        self._writer.close()
        self._reader.close()
