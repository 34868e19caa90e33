"""Province mode's state file (docs/province.md): the ``dataId``s already taken (bounded: the
oldest are forgotten beyond ``max_seen``) and the latest state of each entity of each park,
from which the view is rebuilt at start. A record's ``dataId`` and its entity's new state are
committed in one transaction before the message is acknowledged, so a repeated message (a
re-send after a lost PUBACK, a broker redelivery after a restart) is dropped exactly once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safety_hub.statefile import StateFile, StateFileKind
from safety_hub.uplink.province import InRecord

PROVINCE_FILE = "province.sqlite"
PROVINCE_STATE = StateFileKind(
    name="province state",
    schema="""
CREATE TABLE IF NOT EXISTS province_seen (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    data_id TEXT NOT NULL UNIQUE,
    park TEXT NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS province_entity (
    park TEXT NOT NULL,
    kind TEXT NOT NULL,
    entity TEXT NOT NULL,
    body TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (park, kind, entity)
);
""",
    holds="the dataIds of the federation records already taken and the province's view of "
    "its parks",
    if_moved_aside="the view starts empty and fills again as the parks send; records re-sent "
    "by a park hub after that are taken again once",
    salvage=False,
    synchronous="NORMAL",
    version=1,
)


class ProvinceStore:
    def __init__(self, path: Path | str, max_seen: int = 1_000_000) -> None:
        self.file = StateFile(path, PROVINCE_STATE)
        self._conn = self.file.open()
        self._lock = threading.Lock()
        self.max_seen = max_seen
        with self.file.guard():
            self._seen = int(self._conn.execute("SELECT count(*) FROM province_seen").fetchone()[0])

    def take(self, record: InRecord, state: dict[str, Any] | None, received_ms: int) -> bool:
        """Commit the record's ``dataId`` and its entity's state; False: seen before (nothing
        written)."""
        with self._lock, self.file.transaction(self._conn) as cur:
            cur.execute(
                "INSERT OR IGNORE INTO province_seen (data_id, park, received_ms) VALUES (?, ?, ?)",
                (record.data_id, record.park, received_ms),
            )
            if cur.rowcount == 0:
                return False
            key = (record.park, record.kind, record.entity)
            if state is None:
                cur.execute(
                    "DELETE FROM province_entity WHERE park = ? AND kind = ? AND entity = ?", key
                )
            else:
                cur.execute(
                    "INSERT OR REPLACE INTO province_entity VALUES (?, ?, ?, ?, ?)",
                    (*key, json.dumps(state, ensure_ascii=False, default=str), received_ms),
                )
            self._seen += 1
            if self._seen > self.max_seen * 1.1:
                cur.execute(
                    "DELETE FROM province_seen WHERE seq <= "
                    "(SELECT max(seq) FROM province_seen) - ?",
                    (self.max_seen,),
                )
                self._seen = int(cur.execute("SELECT count(*) FROM province_seen").fetchone()[0])
        return True

    def seen(self, data_id: str) -> bool:
        with self._lock, self.file.guard():
            row = self._conn.execute(
                "SELECT 1 FROM province_seen WHERE data_id = ?", (data_id,)
            ).fetchone()
        return row is not None

    def entities(self) -> Iterator[tuple[str, str, dict[str, Any], int]]:
        """(park, kind, state, received_ms) of every kept entity."""
        with self._lock, self.file.guard():
            rows = self._conn.execute(
                "SELECT park, kind, body, received_ms FROM province_entity ORDER BY park"
            ).fetchall()
        for park, kind, body, received_ms in rows:
            yield str(park), str(kind), json.loads(body), int(received_ms)

    @property
    def seen_count(self) -> int:
        return self._seen

    def close(self) -> None:
        with self._lock:
            self._conn.close()
