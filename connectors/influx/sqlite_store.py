"""The embedded store of local mode: readings in SQLite, answering the same history queries.

It takes the same line protocol as InfluxDB (so the spool and the sink worker are the same)
and keeps InfluxDB's semantics for a repeated point: the same series and timestamp overwrite.
A write that fails on a full disk or a damaged file is a retryable SinkError whose message names
the file and the real cause, so the batch stays in the spool.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from safety_hub.errors import SafetyHubError, SinkError
from safety_hub.ingest.lineproto import READING_MEASUREMENT, parse_line
from safety_hub.ports import HistoryPoint
from safety_hub.statefile import StateFile, StateFileKind

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reading (
    enterprise TEXT NOT NULL,
    tag TEXT NOT NULL,
    ts INTEGER NOT NULL,
    value REAL NOT NULL,
    quality TEXT NOT NULL,
    hazard_source TEXT,
    kind TEXT,
    PRIMARY KEY (enterprise, tag, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS point (
    measurement TEXT NOT NULL,
    series TEXT NOT NULL,
    ts INTEGER NOT NULL,
    tags TEXT NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (measurement, series, ts)
) WITHOUT ROWID;
"""

READINGS_STORE = StateFileKind(
    name="readings store",
    schema=_SCHEMA,
    holds="the readings history of local mode (and the alarm events written as points)",
    if_moved_aside="the history starts empty; readings still in the spool are written to the "
    "new file",
    salvage=True,
    synchronous="NORMAL",
)


class SqliteStore:
    name = "sqlite-store"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = StateFile(path, READINGS_STORE)
        self._conn = self._file.open()
        self._lock = threading.Lock()

    def write(self, lines: str) -> None:
        rows = []
        others: list[tuple[str, str, int, str, str]] = []
        for number, line in enumerate(lines.split("\n"), start=1):
            if not line:
                continue
            try:
                parsed = parse_line(line)
            except ValueError as exc:
                raise SinkError(self.name, f"line {number}: {exc}", retryable=False) from exc
            if parsed.timestamp is None:
                raise SinkError(self.name, f"line {number}: no timestamp", retryable=False)
            if parsed.measurement != READING_MEASUREMENT:
                # Any other measurement (alarm_event, ...): kept as tags and fields, with the
                # same overwrite rule as InfluxDB (one point per series and time).
                series = ",".join(f"{k}={v}" for k, v in sorted(parsed.tags.items()))
                others.append(
                    (
                        parsed.measurement,
                        series,
                        parsed.timestamp,
                        json.dumps(parsed.tags, ensure_ascii=False, sort_keys=True),
                        json.dumps(parsed.fields, ensure_ascii=False, sort_keys=True),
                    )
                )
                continue
            value = parsed.fields.get("value")
            if not isinstance(value, float | int) or isinstance(value, bool):
                raise SinkError(self.name, f"line {number}: value is not a number", retryable=False)
            rows.append(
                (
                    parsed.tags.get("enterprise", ""),
                    parsed.tags.get("tag", ""),
                    parsed.timestamp,
                    float(value),
                    str(parsed.fields.get("quality", "good")),
                    parsed.tags.get("hazard_source"),
                    parsed.tags.get("kind"),
                )
            )
        with self._lock:
            try:
                with self._file.transaction(self._conn) as cursor:
                    cursor.executemany(
                        "INSERT OR REPLACE INTO reading VALUES (?,?,?,?,?,?,?)", rows
                    )
                    if others:
                        cursor.executemany(
                            "INSERT OR REPLACE INTO point VALUES (?,?,?,?,?)", others
                        )
            except SafetyHubError as exc:  # DiskFullError, StateFileError: they name the file
                raise SinkError(self.name, str(exc), retryable=True) from exc
            except sqlite3.Error as exc:
                raise SinkError(self.name, f"{self.path}: sqlite: {exc}", retryable=True) from exc

    def points(self, measurement: str) -> list[tuple[int, dict[str, str], dict[str, object]]]:
        """Every stored point of a measurement other than readings: (ts, tags, fields)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT ts, tags, fields FROM point WHERE measurement = ? ORDER BY ts, series",
                (measurement,),
            ).fetchall()
        return [(int(r[0]), json.loads(r[1]), json.loads(r[2])) for r in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM reading").fetchone()[0])

    def history(
        self,
        enterprise: str,
        tag: str,
        start_ms: int,
        end_ms: int,
        *,
        limit: int = 10_000,
        every_s: int | None = None,
    ) -> list[HistoryPoint]:
        args = (enterprise, tag, start_ms, end_ms)
        with self._lock:
            if every_s:
                width = every_s * 1000
                rows = self._conn.execute(
                    f"SELECT (ts / {width}) * {width} AS bucket, AVG(value), MIN(value), "
                    "MAX(value), COUNT(value) FROM reading "
                    "WHERE enterprise = ? AND tag = ? AND ts >= ? AND ts < ? "
                    "GROUP BY bucket ORDER BY bucket LIMIT ?",
                    (*args, limit),
                ).fetchall()
                return [HistoryPoint(r[0], r[1], None, r[2], r[3], r[4]) for r in rows]
            rows = self._conn.execute(
                "SELECT ts, value, quality FROM reading "
                "WHERE enterprise = ? AND tag = ? AND ts >= ? AND ts < ? ORDER BY ts LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [HistoryPoint(r[0], r[1], r[2]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
