"""Replay a scenario through the real hub, in process, on a virtual clock.

The scenario's gateways produce contract v1 payloads (``World.stream()``); each instant's
messages go as one batch into the hub's ``IngestWorker`` (decode against the registry → spool →
rule engine → alarm service, the same objects ``safety-hub run`` wires), the engine's timers and
shelve expiry tick once per virtual second, operator actions call the alarm service. Every alarm
transition is recorded; the expectations are checked against that timeline at the end.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safety_hub.alarm_runtime import ALARM_EVENT_MEASUREMENT
from safety_hub.alarms import Transition
from safety_hub.alarms.errors import AlarmError
from safety_hub.clock import VirtualClock
from safety_hub.hub import Hub, Storage
from safety_hub.ports import HistoryPoint, InboundMessage
from safety_hub.rules.schema import format_duration
from safety_hub.scenarios import schema as s
from safety_hub.scenarios.loader import Scenario
from safety_hub.scenarios.world import FieldNote, OperatorAction, World
from safety_hub.settings import load_settings
from simulators.gateway import Publication

LineCallback = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One alarm transition, as the alarm service journaled it."""

    t_ms: int
    """scenario time: ms since the scenario's start"""
    ts_ms: int
    seq: int
    action: str
    alert: str
    enterprise: str
    subject: str
    """the tag, zone, hazard source or enterprise the alarm is about"""
    tag: str | None
    zone: str | None
    hazard_source: str
    key: str
    from_state: str
    to_state: str
    priority: str
    annunciated: bool
    value: float | None
    user: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "t": format_clock(self.t_ms),
            "t_ms": self.t_ms,
            "ts_ms": self.ts_ms,
            "seq": self.seq,
            "action": self.action,
            "alert": self.alert,
            "enterprise": self.enterprise,
            "subject": self.subject,
            "tag": self.tag,
            "zone": self.zone,
            "hazard_source": self.hazard_source,
            "key": self.key,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "priority": self.priority,
            "annunciated": self.annunciated,
            "value": self.value,
            "user": self.user,
        }


@dataclass
class ReplayResult:
    """What a replay found. ``failures`` empty means every expectation held."""

    scenario: str
    path: str
    start_ms: int
    duration_ms: int
    timeline: list[TimelineRow] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    """the alarm list at the end (every alarm instance, normal ones included)"""
    failures: list[str] = field(default_factory=list)
    notes: list[FieldNote] = field(default_factory=list)
    floods: list[dict[str, Any]] = field(default_factory=list)
    messages: int = 0
    readings: int = 0
    rejected: int = 0
    wall_s: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def raised(self) -> list[TimelineRow]:
        return [r for r in self.timeline if r.action == "raise"]

    def keys_raised(self) -> list[str]:
        """Alarm keys in the order they were first raised."""
        out: list[str] = []
        for r in self.raised:
            if r.key not in out:
                out.append(r.key)
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": "safety-hub/replay-report/v1",
            "scenario": self.scenario,
            "path": self.path,
            "passed": self.passed,
            "start_ms": self.start_ms,
            "duration_ms": self.duration_ms,
            "failures": self.failures,
            "timeline": [r.as_json() for r in self.timeline],
            "alarms": self.alarms,
            "floods": self.floods,
            "field_events": [
                {"t": format_clock(n.at_ms - self.start_ms), "ts_ms": n.at_ms, "text": n.text}
                for n in self.notes
            ],
            "stats": {
                "messages": self.messages,
                "readings": self.readings,
                "rejected_readings": self.rejected,
                "wall_s": round(self.wall_s, 3),
            },
        }


def format_clock(ms: int) -> str:
    """Scenario time as ``H:MM:SS`` (``+`` form for times past a day)."""
    seconds, milli = divmod(ms, 1000)
    h, rest = divmod(seconds, 3600)
    m, sec = divmod(rest, 60)
    text = f"{h}:{m:02d}:{sec:02d}"
    return text + (f".{milli:03d}" if milli else "")


class _NullStorage:
    """Where the spooled lines go in a replay: to ``on_lines`` if given, else nowhere."""

    name = "replay"

    def __init__(self, on_lines: LineCallback | None) -> None:
        self.on_lines = on_lines
        self.lines = 0

    def write(self, lines: str) -> None:
        self.lines += lines.count("\n") + 1
        if self.on_lines is not None:
            self.on_lines(lines)

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
        return []

    def close(self) -> None:
        pass


class _ReplaySource:
    """The hub's message source in a replay: acks are no-ops, rejection reports are kept."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, bytes]] = []

    @property
    def connected(self) -> bool:
        return True

    def start(self, handler: Callable[[InboundMessage], None]) -> None:
        pass

    def ack(self, message: InboundMessage) -> None:
        pass

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        if topic.endswith("/rejected"):
            self.reports.append((topic, payload))

    def publish_confirmed(self, topic: str, payload: bytes, timeout_s: float) -> bool:
        return True

    def stop(self) -> None:
        pass


class ReplayHub:
    """An in-process hub on a virtual clock, fed message by message (also used for recordings)."""

    def __init__(
        self,
        scenario_plant: Any,
        pack: Any,
        start_ms: int,
        data_dir: Path,
        on_lines: LineCallback | None = None,
    ) -> None:
        self.clock = VirtualClock(start_ms)
        self.start_ms = start_ms
        settings = load_settings(data_dir=data_dir, spool_sync="normal")
        self.storage = _NullStorage(on_lines)
        self.source = _ReplaySource()
        self.hub = Hub(
            settings,
            clock=self.clock,
            plant=scenario_plant,
            storage=Storage(self.storage, self.storage, "replay"),
            source=self.source,
            rules=pack,
            durable_engine=False,
        )
        self.hub.ingest.attach(self.source)
        self.transitions: list[Transition] = []
        self.hub.alarms.service.subscribe(self.transitions.append)
        self.messages = 0
        self.readings = 0
        self._next_tick = start_ms

    def advance(self, now_ms: int) -> None:
        """Move the clock to ``now_ms``, ticking the timers once per second on the way."""
        while self._next_tick <= now_ms:
            self.clock.set(self._next_tick)
            self.hub.alarms.tick()
            self._next_tick += 1000
        if now_ms > self.clock.now_ms():
            self.clock.set(now_ms)

    def deliver(self, now_ms: int, batch: list[tuple[str, bytes]]) -> None:
        """Messages received at ``now_ms``, processed as one ingest batch."""
        self.advance(now_ms)
        msgs = [InboundMessage(topic, payload, now_ms) for topic, payload in batch]
        self.hub.ingest.process(msgs)
        self.messages += len(msgs)
        spool = self.hub.spool
        batches = spool.peek(1_000_000)
        if batches:
            for b in batches:
                self.storage.write(b.lines)
                if not b.lines.startswith(ALARM_EVENT_MEASUREMENT):
                    self.readings += b.n
            spool.remove(batches)

    def close(self) -> None:
        self.hub.stop(drain_timeout=0)


def replay(
    scenario: Scenario,
    *,
    on_lines: LineCallback | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Run ``scenario`` through an in-process hub; ``on_lines`` receives the line protocol the
    hub's sink would write (readings and alarm events), ``progress(t_ms, duration_ms)`` is called
    about every simulated minute."""
    started = time.perf_counter()
    result = ReplayResult(scenario.name, scenario.path, scenario.start_ms, scenario.duration_ms)
    world = World(scenario)
    with tempfile.TemporaryDirectory(prefix="safety-hub-replay-") as tmp:
        rh = ReplayHub(scenario.plant, scenario.pack, scenario.start_ms, Path(tmp), on_lines)
        try:
            pending: list[tuple[str, bytes]] = []
            pending_at = scenario.start_ms
            next_progress = scenario.start_ms + 60_000
            for item in world.stream():
                if pending and item.at_ms != pending_at:
                    rh.deliver(pending_at, pending)
                    pending = []
                if progress is not None and item.at_ms >= next_progress:
                    progress(item.at_ms - scenario.start_ms, scenario.duration_ms)
                    next_progress += 60_000
                if isinstance(item, Publication):
                    pending.append((item.topic, item.payload))
                    pending_at = item.at_ms
                else:
                    rh.advance(item.at_ms)
                    _operate(rh, scenario, item, result.failures)
            if pending:
                rh.deliver(pending_at, pending)
            rh.advance(scenario.start_ms + scenario.duration_ms)
            service = rh.hub.alarms.service
            result.alarms = [a.as_json() for a in service.list(include_normal=True, limit=100_000)]
            result.floods = [f.as_json() for f in service.floods()]
            result.timeline = [_row(t, scenario.start_ms) for t in rh.transitions]
            result.messages = rh.messages
            result.readings = rh.readings
            for _topic, payload in rh.source.reports:
                report = json.loads(payload)
                result.rejected += len(report.get("rejected", ()))
                result.failures.append(
                    f"{scenario.path}: the hub rejected {len(report.get('rejected', ()))} "
                    f"reading(s) of {report.get('topic')}: "
                    + "; ".join(r.get("detail", "") for r in report.get("rejected", [])[:3])
                )
        finally:
            rh.close()
    result.notes = world.notes
    check_expectations(scenario, result)
    result.wall_s = time.perf_counter() - started
    return result


def _row(t: Transition, start_ms: int) -> TimelineRow:
    a = t.alarm
    subject = a.tag or a.zone or (a.key.split("|")[-1])
    return TimelineRow(
        t_ms=t.ts_ms - start_ms,
        ts_ms=t.ts_ms,
        seq=t.seq,
        action=t.action.value,
        alert=a.alert,
        enterprise=a.enterprise,
        subject=subject,
        tag=a.tag,
        zone=a.zone,
        hazard_source=a.hazard_source,
        key=a.key,
        from_state=t.from_state.value,
        to_state=t.to_state.value,
        priority=a.priority.value,
        annunciated=t.annunciated,
        value=a.value,
        user=t.user,
    )


# -- operator actions --------------------------------------------------------------------------


def _subject_keys(scenario: Scenario, ref: s._OperatorEvent | s.Expectation) -> list[str] | None:
    """The alarm keys an operator action names, or None when it names no single subject."""
    plant = scenario.plant
    if ref.alert is None:
        return None
    enterprises = [ref.enterprise] if ref.enterprise else list(plant.enterprises)
    keys: list[str] = []
    for ent in enterprises:
        if ref.tag is not None:
            if (ent, ref.tag) in plant.tags:
                keys.append(f"{ref.alert}|{ent}|{ref.tag}")
        elif ref.zone is not None:
            if (ent, ref.zone) in plant.zones:
                keys.append(f"{ref.alert}|{ent}|{ref.zone}")
        elif ref.hazard_source is not None:
            hs = plant.hazard_sources.get(ref.hazard_source)
            if hs is not None and hs.enterprise == ent:
                keys.append(f"{ref.alert}|{ent}|{ref.hazard_source}")
        else:
            keys.append(f"{ref.alert}|{ent}|{ent}")
    return keys


def _operate(
    rh: ReplayHub, scenario: Scenario, action: OperatorAction, failures: list[str]
) -> None:
    e = action.event
    where = scenario.where(("timeline", action.index))
    t = format_clock(action.at_ms - scenario.start_ms)
    service = rh.hub.alarms.service
    keys = _subject_keys(scenario, e) or []
    alarms = [a for a in (service.find(k) for k in keys) if a is not None]
    if not alarms:
        failures.append(
            f"{where}: at {t}, {e.type} {e.alert}: no such alarm exists (keys tried: "
            f"{', '.join(keys) or 'none'})"
        )
        return
    with rh.hub.alarms._lock:
        for alarm in alarms:
            try:
                if isinstance(e, s.Acknowledge):
                    service.acknowledge(alarm.id, e.user, e.comment)
                elif isinstance(e, s.Reset):
                    service.reset(alarm.id, e.user, e.comment)
                elif isinstance(e, s.Shelve):
                    service.shelve(alarm.id, e.user, e.reason, action.at_ms + e.duration, e.comment)
                else:
                    service.unshelve(alarm.id, e.user, e.comment)
            except AlarmError as exc:
                failures.append(f"{where}: at {t}, {e.type} refused: {exc}")


# -- expectations ------------------------------------------------------------------------------


def _matches(x: s.Expectation, r: TimelineRow) -> bool:
    if x.alert not in (None, "*") and r.alert != x.alert:
        return False
    if x.enterprise is not None and r.enterprise != x.enterprise:
        return False
    if x.tag is not None and r.tag != x.tag:
        return False
    if x.zone is not None and r.zone != x.zone:
        return False
    return x.hazard_source is None or r.hazard_source == x.hazard_source


def _describe(x: s.Expectation) -> str:
    subject = x.tag or x.zone or x.hazard_source or x.enterprise
    alert = "any alarm" if x.alert in (None, "*") else x.alert
    return f"{alert} {subject}" if subject else alert


def _window(w: tuple[int, int]) -> str:
    return f"[{format_duration(w[0])}, {format_duration(w[1])}]"


def _list(rows: Iterable[TimelineRow], limit: int = 6) -> str:
    items = [f"{r.alert} {r.subject} at {format_clock(r.t_ms)}" for r in rows]
    more = len(items) - limit
    text = ", ".join(items[:limit])
    return text + (f" and {more} more" if more > 0 else "") if items else "none"


def check_expectations(scenario: Scenario, result: ReplayResult) -> None:
    """Append a failure (``file:line:col: ...``) for every expectation that did not hold."""
    timeline = result.timeline
    named: set[str] = set()
    for i, x in enumerate(scenario.model.expect):
        where = scenario.where(("expect", i))
        rows = [r for r in timeline if _matches(x, r)]
        what = _describe(x)
        if x.raised_between is not None:
            lo, hi = x.raised_between
            raised = [r for r in rows if r.action == "raise"]
            inside = [r for r in raised if lo <= r.t_ms <= hi]
            named.update(r.key for r in inside)
            keys = {r.key for r in inside}
            if x.count is not None and len(keys) != x.count:
                result.failures.append(
                    f"{where}: expected {x.count} {what} alarm(s) raised within "
                    f"{_window(x.raised_between)}, got {len(keys)}: {_list(inside)}"
                )
            elif x.count is None and not inside:
                result.failures.append(
                    f"{where}: expected {what} raised within {_window(x.raised_between)}; "
                    f"raised: {_list(raised)}"
                )
            elif x.priority is not None:
                wrong = [r for r in inside if r.priority != x.priority]
                if wrong:
                    result.failures.append(
                        f"{where}: {what} raised with priority {wrong[0].priority}, "
                        f"expected {x.priority}"
                    )
        elif x.not_raised:
            raised = [r for r in rows if r.action == "raise"]
            if raised:
                result.failures.append(
                    f"{where}: expected {what} not to be raised; raised: {_list(raised)}"
                )
        elif x.cleared_between is not None:
            lo, hi = x.cleared_between
            cleared = [r for r in rows if r.action == "clear"]
            named.update(r.key for r in rows)
            if not any(lo <= r.t_ms <= hi for r in cleared):
                result.failures.append(
                    f"{where}: expected {what} cleared within {_window(x.cleared_between)}; "
                    f"cleared: {_list(cleared)}"
                )
        elif x.state_at is not None:
            at = x.state_at
            subject_keys = (
                _subject_keys(scenario, x) if (x.tag or x.zone or x.hazard_source) else None
            )
            states: dict[str, str] = {k: "normal" for k in subject_keys or ()}
            for r in rows:
                if r.t_ms <= at:
                    states[r.key] = r.to_state
            named.update(states)
            if not states:
                states = {"(none)": "normal"}
            off = {k: v for k, v in states.items() if v != x.state}
            if off:
                shown = ", ".join(f"{k.split('|', 1)[1]}: {v}" for k, v in sorted(off.items()))
                result.failures.append(
                    f"{where}: at {format_duration(at)}, expected {what} {x.state}; found {shown}"
                )
        elif x.flood_between is not None:
            lo, hi = x.flood_between
            starts = [f["start_ms"] - scenario.start_ms for f in result.floods]
            if not any(lo <= t <= hi for t in starts):
                result.failures.append(
                    f"{where}: expected an alarm flood starting within {_window(x.flood_between)}; "
                    f"floods started at: {', '.join(format_clock(t) for t in starts) or 'none'}"
                )
    if scenario.model.only_expected:
        extra = [r for r in result.raised if r.key not in named]
        unique = list({r.key: r for r in reversed(extra)}.values())[::-1]
        if unique:
            line, col = scenario.loc.pos(("only_expected",))
            result.failures.append(
                f"{scenario.path}:{line}:{col}: only_expected: {len(unique)} alarm(s) raised "
                f"that no expectation names: {_list(unique)}"
            )


def replay_recording(
    path: Path,
    plant: Any,
    pack: Any,
    *,
    on_lines: LineCallback | None = None,
) -> ReplayResult:
    """Play a recording (``safety_hub.scenarios.recording``) into an in-process hub."""
    from safety_hub.scenarios.recording import iter_batches, read_recording

    started = time.perf_counter()
    _head, messages = read_recording(path)
    start = messages[0].t_ms if messages else 0
    end = messages[-1].t_ms if messages else 0
    result = ReplayResult(path.name, str(path), start, end - start)
    with tempfile.TemporaryDirectory(prefix="safety-hub-replay-") as tmp:
        rh = ReplayHub(plant, pack, start, Path(tmp), on_lines)
        try:
            for at, batch in iter_batches(messages):
                rh.deliver(at, [(m.topic, m.payload) for m in batch])
            rh.advance(end)
            service = rh.hub.alarms.service
            result.alarms = [a.as_json() for a in service.list(include_normal=True, limit=100_000)]
            result.floods = [f.as_json() for f in service.floods()]
            result.timeline = [_row(t, start) for t in rh.transitions]
            result.messages, result.readings = rh.messages, rh.readings
            for _topic, payload in rh.source.reports:
                result.rejected += len(json.loads(payload).get("rejected", ()))
        finally:
            rh.close()
    result.wall_s = time.perf_counter() - started
    return result
