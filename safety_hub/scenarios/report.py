"""The outcome of a scenario run and how it is shown: the alarm timeline (``TimelineRow``),
the result with its verdict (``ReplayResult``), the timeline as a table, the verdict line and
the JSON report.

``safety_hub.runtime.replay`` fills a result by replaying a scenario through an in-process hub;
``safety-hub demo --scenario`` fills one from the running demo hub.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from safety_hub.alarms import Transition
from safety_hub.alarms.model import DISPLAYED_STATES

_SHOWN = frozenset(state.value for state in DISPLAYED_STATES)


@dataclass(frozen=True, slots=True)
class FieldNote:
    """Something that happened in the field (a leak started, a SIF tripped), for the report."""

    at_ms: int
    text: str


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


@dataclass(frozen=True, slots=True)
class NotificationRow:
    """One notification the hub sent in a run (docs/notifications.md)."""

    t_ms: int
    """scenario time it was sent"""
    alert: str
    enterprise: str
    tag: str | None
    zone: str | None
    hazard_source: str
    subject: str
    person_id: str
    channel: str
    kind: str
    notification_id: str

    def as_json(self) -> dict[str, Any]:
        return {
            "t": format_clock(self.t_ms),
            "t_ms": self.t_ms,
            "alert": self.alert,
            "subject": self.subject,
            "person_id": self.person_id,
            "channel": self.channel,
            "kind": self.kind,
            "notification_id": self.notification_id,
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
    notifications: list[NotificationRow] = field(default_factory=list)
    """what the hub sent, in order (empty when notifications are off)"""
    notifications_on: bool = False
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

    @property
    def annunciations(self) -> list[TimelineRow]:
        """Every entry into ``unacknowledged`` (docs/alarms.md): what sounds and counts."""
        return [r for r in self.timeline if r.annunciated]

    def first_outs(self) -> list[tuple[str, TimelineRow]]:
        """(hazard source, first annunciation) of every episode, as the console pins them."""
        return first_outs(self.timeline)

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
            "notifications": [n.as_json() for n in self.notifications],
            "first_outs": [
                {"hazard_source": source, **_first_out_json(row)}
                for source, row in self.first_outs()
            ],
            "field_events": [
                {"t": format_clock(n.at_ms - self.start_ms), "ts_ms": n.at_ms, "text": n.text}
                for n in self.notes
            ],
            "stats": {
                "messages": self.messages,
                "readings": self.readings,
                "rejected_readings": self.rejected,
                "annunciations": len(self.annunciations),
                "wall_s": round(self.wall_s, 3),
            },
        }


def first_outs(timeline: list[TimelineRow]) -> list[tuple[str, TimelineRow]]:
    """The first-out of every episode of each hazard source (docs/alarms.md, First-out): an
    episode starts with an annunciation while nothing of the source is shown and ends when
    nothing of it is shown any more. Alarms without a hazard source have none."""
    shown: dict[str, set[str]] = {}
    open_episode: set[str] = set()
    out: list[tuple[str, TimelineRow]] = []
    for r in timeline:
        source = r.hazard_source
        if not source:
            continue
        keys = shown.setdefault(source, set())
        if r.annunciated and source not in open_episode:
            open_episode.add(source)
            out.append((source, r))
        if r.to_state in _SHOWN:
            keys.add(r.key)
        else:
            keys.discard(r.key)
        if not keys:
            open_episode.discard(source)
    return out


def _first_out_json(r: TimelineRow) -> dict[str, Any]:
    keys = ("t", "t_ms", "seq", "alert", "enterprise", "subject", "key", "priority")
    row = r.as_json()
    return {k: row[k] for k in keys}


def format_clock(ms: int) -> str:
    """Scenario time as ``H:MM:SS`` (``+`` form for times past a day)."""
    seconds, milli = divmod(ms, 1000)
    h, rest = divmod(seconds, 3600)
    m, sec = divmod(rest, 60)
    text = f"{h}:{m:02d}:{sec:02d}"
    return text + (f".{milli:03d}" if milli else "")


def timeline_row(t: Transition, start_ms: int) -> TimelineRow:
    """A transition of the alarm service as a row of the timeline, in time since ``start_ms``."""
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


def _value(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def print_timeline(result: ReplayResult, out: TextIO, *, field_events: bool = True) -> None:
    """The alarm transitions (and, between them, what happened in the field and who was
    notified) as a table."""
    rows: list[tuple[int, int, list[str]]] = []
    for r in result.timeline:
        state = f"{r.from_state} → {r.to_state}"
        rows.append(
            (
                r.t_ms,
                1,
                [
                    format_clock(r.t_ms),
                    r.action,
                    r.priority,
                    r.alert,
                    f"{r.enterprise}/{r.subject}" if r.subject != r.enterprise else r.enterprise,
                    _value(r.value),
                    state + (f" ({r.user})" if r.user else ""),
                ],
            )
        )
    if field_events:
        for n in result.notes:
            t = n.at_ms - result.start_ms
            rows.append((t, 0, [format_clock(t), "field", "", "", n.text, "", ""]))
    for m in result.notifications:
        told = f"{m.kind} to {m.person_id} by {m.channel}: {m.alert} {m.enterprise}/{m.subject}"
        rows.append((m.t_ms, 2, [format_clock(m.t_ms), "notify", "", "", told, "", ""]))
    rows.sort(key=lambda r: (r[0], r[1]))
    header = ["time", "action", "priority", "alert", "subject", "value", "state"]
    table = [header] + [r[2] for r in rows]
    lines = ("field", "notify")
    widths = [max(len(row[i]) for row in table if row[1] not in lines or i < 2) for i in range(6)]
    for row in table:
        if row[1] in lines:
            mark = "·" if row[1] == "field" else "✉"
            print(f"{row[0]:>{widths[0]}}  {mark:<{widths[1]}}  {row[4]}", file=out)
            continue
        cells = [f"{row[0]:>{widths[0]}}"] + [
            f"{c:<{w}}" for c, w in zip(row[1:6], widths[1:], strict=True)
        ]
        print("  ".join(cells) + "  " + row[6], file=out)
    if not result.timeline:
        print("(no alarm transitions)", file=out)


def print_verdict(result: ReplayResult, out: TextIO) -> None:
    raised = len(result.keys_raised())
    stats = (
        f"{format_clock(result.duration_ms)} simulated in {result.wall_s:.2f} s: "
        f"{result.messages} messages, {result.readings} readings, {raised} alarm(s) raised, "
        f"{len(result.timeline)} transition(s)"
    )
    if result.passed:
        print(f"PASS  {result.scenario}  ({stats})", file=out)
        return
    print(f"FAIL  {result.scenario}  ({stats})", file=out)
    for failure in result.failures:
        print(f"  {failure}", file=out)


def write_report(result: ReplayResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(result.as_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
