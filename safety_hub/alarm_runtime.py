"""Runs the rule engine and the alarm service inside the hub, and feeds their outputs.

- Readings arrive from the ingest worker *before* their MQTT messages are acknowledged, and
  the engine's snapshot is saved after every batch, so a killed hub restarts with its pending
  timers and raised conditions where they were; redelivered readings are late for the engine
  and raise nothing twice. Latched and acknowledged alarms live in the alarm journal.
- A ticker advances the engine's timers (on/off delays, stale and silence watchdogs) and the
  service's shelve expiry once a second.
- Every transition goes, after the journal commit, to the durable outbox (MQTT topic
  ``hazard/v1/{enterprise}/alarms``, QoS 1) and into the spool as an ``alarm_event`` line.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import msgspec

from safety_hub.alarms import AlarmJournal, AlarmService, Condition, Transition
from safety_hub.clock import Clock
from safety_hub.lineproto import escape_string_field, series_prefix
from safety_hub.outbox import Outbox
from safety_hub.registry import Plant
from safety_hub.rules import RuleEngine, RulePack
from safety_hub.spool import Spool
from safety_hub.telemetry import Reading

log = logging.getLogger("safety_hub.alarms.runtime")

ALARM_EVENT_MEASUREMENT = "alarm_event"


def alarm_topic(enterprise: str) -> str:
    return f"hazard/v1/{enterprise}/alarms"


def alarm_event_line(t: Transition) -> str:
    """The ``alarm_event`` line of a transition (schema in docs/storage.md)."""
    a = t.alarm
    prefix = series_prefix(
        ALARM_EVENT_MEASUREMENT,
        {
            "alert": a.alert,
            "enterprise": a.enterprise,
            "hazard_source": a.hazard_source,
            "tag": a.tag or "",
            "zone": a.zone or "",
            "priority": a.priority.value,
            "alarm_class": a.alarm_class.value,
            "action": t.action.value,
        },
    )
    fields = [
        f"alarm_id={a.id}i",
        f"seq={t.seq}i",
        f'state="{t.to_state.value}"',
        f'from_state="{t.from_state.value}"',
        f"annunciated={'true' if t.annunciated else 'false'}",
        f"active={'true' if a.active else 'false'}",
    ]
    if a.value is not None:
        fields.append(f"value={float(a.value)!r}")
    if t.user:
        fields.append(f'user="{escape_string_field(t.user)}"')
    return prefix + ",".join(fields) + f" {t.ts_ms}"


class _SnapshotStore:
    """The engine snapshot in SQLite: survives kill -9 (WAL; the OS has it once committed)."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT)"
        )

    def load(self) -> dict[str, object] | None:
        row = self._conn.execute("SELECT data FROM snapshot WHERE id = 1").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def save(self, data: Mapping[str, object]) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO snapshot (id, data) VALUES (1, ?)",
            (msgspec.json.encode(data).decode(),),
        )

    def close(self) -> None:
        self._conn.close()


class AlarmRuntime:
    def __init__(
        self,
        *,
        plant: Plant,
        pack: RulePack,
        data_dir: Path,
        clock: Clock,
        spool: Spool,
        outbox: Outbox,
        durable_engine: bool = True,
    ) -> None:
        self._clock = clock
        # False only for replay: an in-process run on a virtual clock has no crash to survive,
        # and saving the engine snapshot after every batch would dominate its run time.
        self._durable_engine = durable_engine
        self._spool = spool
        self._outbox = outbox
        self._lock = threading.RLock()
        grades = {code: hs.computed_grade for code, hs in plant.hazard_sources.items()}
        journal = AlarmJournal(data_dir / "alarms.sqlite")
        self.service = AlarmService(journal, clock, grades)
        self._snapshots = _SnapshotStore(data_dir / "engine.sqlite")
        saved = self._snapshots.load()
        self.engine: RuleEngine
        if saved is not None:
            try:
                self.engine = RuleEngine.restore(pack, plant, clock, saved)
                log.info("rule engine restored from its snapshot")
            except (ValueError, KeyError, TypeError) as exc:
                log.error("rule engine snapshot unusable, starting fresh: %s", exc)
                self.engine = RuleEngine(pack, plant, clock)
        else:
            self.engine = RuleEngine(pack, plant, clock)
        self.recovered = self._recover_outputs(journal)
        self.service.subscribe(self._on_transition)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.transitions = 0

    # -- inputs ------------------------------------------------------------------------------
    def on_readings(self, readings: list[Reading], received_ms: int | None = None) -> None:
        with self._lock:
            now = self._clock.now_ms() if received_ms is None else received_ms
            self._apply(self.engine.on_readings(readings, now))
            if self._durable_engine:
                self._snapshots.save(self.engine.snapshot())

    def on_gateway_status(self, enterprise: str, online: bool, ts_ms: int) -> None:
        with self._lock:
            self._apply(self.engine.on_gateway_status(enterprise, online, ts_ms))
            if self._durable_engine:
                self._snapshots.save(self.engine.snapshot())

    def tick(self) -> None:
        with self._lock:
            self._apply(self.engine.advance(self._clock.now_ms()))
            self.service.tick()
            if self._durable_engine:
                self._snapshots.save(self.engine.snapshot())

    def _apply(self, conditions: Iterable[Condition]) -> None:
        for condition in conditions:
            self.service.apply(condition)
        for change in self.engine.suppression_changes():
            if change.hold:
                self.service.suppress(change.cause, change.keys)
            else:
                self.service.release(change.cause, change.keys)

    def _on_transition(self, t: Transition) -> None:
        self.transitions += 1
        self._emit(t, t.as_json())

    def _emit(self, t: Transition, event: Mapping[str, object]) -> None:
        # The spool line first, then the outbox row with the journal seq as its marker: a crash
        # in between re-sends both on restart (InfluxDB keeps one point per series and time).
        now = self._clock.now_ms()
        self._spool.append([(alarm_event_line(t), 1)], now)
        self._outbox.put(alarm_topic(t.alarm.enterprise), msgspec.json.encode(event), now, t.seq)

    def _recover_outputs(self, journal: AlarmJournal) -> int:
        """Re-send the transitions the journal committed but the outbox never received (a
        crash between the two). Their events carry ``"recovered": true`` and the alarm as it is
        now. Returns how many were re-sent."""
        marker = self._outbox.marker()
        if marker is None:
            # A new outbox (or one from before the marker): start from the journal's end.
            newest = journal.entries(limit=1, newest=True)
            self._outbox.set_marker(newest[0].id if newest else 0)
            return 0
        count = 0
        for entry in journal.entries(after_id=marker):
            if entry.alarm_id is None or entry.from_state is None or entry.to_state is None:
                self._outbox.set_marker(entry.id)  # a suppression note: nothing to publish
                continue
            t = Transition(
                seq=entry.id,
                alarm=self.service.get(entry.alarm_id),
                action=entry.action,
                from_state=entry.from_state,
                to_state=entry.to_state,
                ts_ms=entry.ts_ms,
                user=entry.user,
                comment=entry.comment,
            )
            self._emit(t, {**t.as_json(), "recovered": True})
            count += 1
        if count:
            log.warning("re-sent %d alarm events the outbox missed before a crash", count)
        return count

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, interval_s: float = 1.0) -> None:
        def run() -> None:
            while not self._stopping.wait(interval_s):
                try:
                    self.tick()
                except Exception:
                    log.exception("alarm runtime: tick failed")

        self._thread = threading.Thread(target=run, name="alarm-ticker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            self._snapshots.save(self.engine.snapshot())
            self._snapshots.close()
