"""The rule engine: readings, gateway statuses and the clock in, alarm conditions out.

Pure and deterministic: no wall clock, no I/O, no threads. The same calls with the same
arguments give the same conditions in the same order. Time comes from three places:

- a reading's own ``ts_ms`` (event time) drives thresholds, deadbands, on/off delays, rates,
  votes and SIS states;
- the hub's receive time (``received_ms`` of ``on_readings``, ``ts_ms`` of
  ``on_gateway_status``) drives the watchdogs: stale tags, silent enterprises, clock skew;
- ``advance(now_ms)`` fires every timer due by ``now_ms``: on/off-delay expiry, stale watchdogs,
  silence-based link down, the planned end of a bypass. ``on_readings`` fires no timers, so the
  caller calls ``advance`` regularly (the hub: every second).

At construction every rule is compiled against the plant and indexed by ``(enterprise, tag)``,
so a reading only touches the alarm instances of its own tag, and a reading that changes nothing
(the usual case) costs a comparison per instance.

Late data: per tag, a reading whose ``ts_ms`` is older than the newest one already evaluated is
not evaluated (``counters["late_readings"]``), one with the same ``ts_ms`` is a duplicate
(``counters["duplicate_readings"]``, e.g. a QoS 1 redelivery). Both still count as a sign of life
for the stale and silence watchdogs. Storage keeps them; only alarm evaluation skips them.

Readings from the future: a reading stamped more than ``max_lead_ms`` after its receive time
(``counters["ahead_readings"]``) is not allowed to move the tag's event time there, or every
current reading would be "late" until the hub clock caught up with it. It is evaluated on the
tag's own timeline instead: the tag's newest evaluated time plus the hub time elapsed since the
tag was last heard, never later than ``max(max_lead_ms, TRANSIT_SLACK_MS)`` before the receive
time (the gateway's next honest reading was stamped before it reached the hub, and must not look
late; so for a gateway in step with the hub, just before hub time) and always after the newest
evaluated time. Its on-delay therefore runs on hub
time. Its raw ``ts_ms`` is remembered (the last ``AHEAD_MEMORY`` per tag, in the snapshot): the
same reading delivered again is a duplicate, while any other reading, such as one from the
gateway's corrected clock, is evaluated. So the newest evaluated time of a tag is never more
than ``max_lead_ms`` ahead of the hub clock, and no single reading can make later ones late.
The clock-skew rule still sees the raw timestamp.

A condition is emitted only when an alarm instance changes: raised once, cleared once. Latching,
acknowledgement, shelving and the journal are the alarm service's job (``Condition.latch`` tells
it which alarms latch).
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from safety_hub.alarms.model import Condition
from safety_hub.clock import Clock
from safety_hub.registry import Plant, TagInfo
from safety_hub.rules.model import Rule, RulePack, selected_enterprises, selected_tags
from safety_hub.rules.schema import (
    BadQuality,
    ClockSkew,
    Compound,
    LinkDown,
    OutOfRange,
    RateOfChange,
    SisState,
    Stale,
    Threshold,
    VotingCondition,
    format_duration,
)
from safety_hub.telemetry import Reading

SNAPSHOT_VERSION = 1
TRANSIT_SLACK_MS = 1_000
"""a far-ahead reading is evaluated at least this long before its receive time (transit)"""

DEFAULT_MAX_LEAD_MS = 2_000
"""How far ahead of its receive time a reading may be stamped and still be evaluated at its own
timestamp. Covers a gateway clock a little fast of the hub's and the hub's own jitter; anything
further ahead is evaluated on the tag's own timeline (module docstring)."""

AHEAD_MEMORY = 16
"""Raw timestamps of far-ahead readings remembered per tag, so that the same far-ahead reading
delivered again (a QoS 1 redelivery, also after a restart) is a duplicate. A redelivery brings
back the last unacknowledged batch, and a live gateway sends a tag once or a few times per
batch, so a few suffice; the bound keeps a flood from growing the state or the snapshot."""

RANGE_UNDER = 0.0125
RANGE_OVER = 0.03125
"""A value is out of range below ``range_lo - 1.25 %`` or above ``range_hi + 3.125 %`` of the
span: the NAMUR NE 43 saturation limits of a 4–20 mA loop (3.8 mA and 20.5 mA), so a transmitter
that saturates is still a measurement and anything beyond is a fault."""

DISPLAY_TZ = timezone(timedelta(hours=8), "CST")
"""China Standard Time, for times written into alarm text (``{{planned_end}}``); conditions carry
epoch milliseconds. Fixed rather than the host's zone so that the text is deterministic."""

NORMAL, PENDING_ON, ACTIVE, PENDING_OFF = 0, 1, 2, 3
"""Alarm instance states. ACTIVE and PENDING_OFF are raised (a raise was emitted)."""

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_DELAY, _WATCH = 0, 1
_NEVER = -(2**62)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _epoch_ms(when: datetime | None) -> int | None:
    return None if when is None else round(when.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class SuppressionChange:
    """``cause`` (an alert name or plant state of a rule's ``suppressed_by``) now holds
    (``hold``) or no longer holds these alarm keys."""

    cause: str
    keys: tuple[str, ...]
    hold: bool


class _Template:
    """An annotation split once into literal text and placeholders."""

    __slots__ = ("parts",)

    def __init__(self, text: str) -> None:
        self.parts: list[tuple[str, str | None]] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(text):
            self.parts.append((text[pos : match.start()], match.group(1)))
            pos = match.end()
        self.parts.append((text[pos:], None))

    def render(self, fields: Mapping[str, str]) -> str:
        return "".join(lit + (fields.get(name, "") if name else "") for lit, name in self.parts)


class _Compiled:
    """What every instance of one rule shares."""

    __slots__ = (
        "alarm_class",
        "alert",
        "latch",
        "level",
        "off_ms",
        "on_ms",
        "priority",
        "rule",
        "summary",
        "summary_en",
        "suppress_alerts",
        "suppress_oos",
    )

    def __init__(self, rule: Rule, enterprise_alerts: frozenset[str]) -> None:
        self.rule = rule
        self.alert = rule.alert
        cond = rule.condition
        self.on_ms: int = getattr(cond, "on_delay", 0)
        self.off_ms: int = getattr(cond, "off_delay", 0)
        self.latch = rule.latch
        self.priority = rule.priority
        self.alarm_class = rule.alarm_class
        self.level = rule.level
        self.summary = _Template(rule.annotations.get("summary", ""))
        self.summary_en = _Template(rule.annotations.get("summary_en", ""))
        self.suppress_oos = "out_of_service" in rule.suppressed_by
        self.suppress_alerts = tuple(
            (name, name in enterprise_alerts)
            for name in rule.suppressed_by
            if name != "out_of_service"
        )


class _Inst:
    """One alarm instance (one rule × one tag, zone, enterprise or hazard source) and its
    state machine: NORMAL → PENDING_ON (on-delay) → ACTIVE → PENDING_OFF (off-delay) → NORMAL."""

    __slots__ = (
        "due",
        "enterprise",
        "fields",
        "hazard_source",
        "key",
        "labels",
        "oos",
        "order",
        "priority",
        "rt",
        "setpoint",
        "state",
        "tag",
        "value",
        "watch_due",
        "zone",
    )
    kind: ClassVar[str] = "inst"

    def __init__(
        self,
        rt: _Compiled,
        enterprise: str,
        subject: str,
        hazard_source: str,
        tag: TagInfo | None,
        zone: str | None,
        labels: dict[str, str],
        fields: dict[str, str],
        priority: str,
    ) -> None:
        self.rt = rt
        self.key = f"{rt.alert}|{enterprise}|{subject}"
        self.enterprise = enterprise
        self.hazard_source = hazard_source
        self.tag = tag.tag if tag is not None else None
        self.zone = zone
        self.labels = labels
        self.fields = fields
        self.priority = priority
        self.oos = tag is not None and not tag.in_service
        self.order = -1
        self.state = NORMAL
        self.due: int | None = None
        self.watch_due: int | None = None
        self.value: float | None = None
        self.setpoint: float | None = None

    # the state machine ---------------------------------------------------------------------

    def drive(self, on: bool, ts: int, eng: RuleEngine) -> None:
        st = self.state
        if st == NORMAL:
            if on:
                if self.rt.on_ms:
                    self.state = PENDING_ON
                    eng._schedule(self, ts + self.rt.on_ms)
                else:
                    self.state = ACTIVE
                    eng._emit(self, True, ts)
        elif st == PENDING_ON:
            if not on:
                self.state = NORMAL
                self.due = None
            elif self.due is not None and ts >= self.due:
                at, self.due = self.due, None
                self.state = ACTIVE
                eng._emit(self, True, at)
        elif st == ACTIVE:
            if not on:
                if self.rt.off_ms:
                    self.state = PENDING_OFF
                    eng._schedule(self, ts + self.rt.off_ms)
                else:
                    self.state = NORMAL
                    eng._emit(self, False, ts)
        elif on:  # PENDING_OFF
            self.state = ACTIVE
            self.due = None
        elif self.due is not None and ts >= self.due:
            at, self.due = self.due, None
            self.state = NORMAL
            eng._emit(self, False, at)

    def fire_delay(self, due: int, eng: RuleEngine) -> None:
        """The on- or off-delay ran out with nothing to contradict it."""
        self.due = None
        if self.state == PENDING_ON:
            self.state = ACTIVE
            eng._emit(self, True, due)
        elif self.state == PENDING_OFF:
            self.state = NORMAL
            eng._emit(self, False, due)

    def fire_watch(self, due: int, eng: RuleEngine) -> None:
        """A watchdog of this instance is due (stale data, silence, planned end)."""

    def extra(self) -> dict[str, str]:
        """Labels and template fields that change with the state (votes, skew, ...)."""
        return {}

    # snapshot ------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "state": self.state,
            "due": self.due,
            "watch": self.watch_due,
            "value": self.value,
        }

    def load(self, data: Mapping[str, Any]) -> None:
        self.state = int(data["state"])
        self.due = data["due"]
        self.watch_due = data["watch"]
        self.value = data["value"]

    def is_default(self) -> bool:
        return self.state == NORMAL and self.due is None


class _Slot:
    """Per tag: what the engine remembers and the instances a reading of it feeds.

    ``last_ts`` is what the hot path compares a reading with: a reading stamped after it (and
    within the lead) is simply evaluated. Usually it is the newest evaluated time. While far-ahead
    readings of the tag are remembered (``ahead``), it is their largest raw timestamp
    (``ahead_top``) instead, the newest evaluated time is ``eval_ts``, and readings between the
    two take the slow path, which tells a redelivery from a reading of a corrected clock. A
    reading evaluated past ``ahead_top`` on the fast path ends that state by itself."""

    __slots__ = (
        "ahead",
        "ahead_top",
        "ent",
        "eval_ts",
        "faults",
        "hi_ok",
        "info",
        "last_received",
        "last_ts",
        "lo_ok",
        "ranges",
        "stales",
        "values",
        "votes",
    )

    def __init__(self, info: TagInfo, ent: _Ent, start_ms: int) -> None:
        self.info = info
        self.ent = ent
        span = info.range_hi - info.range_lo
        self.lo_ok = info.range_lo - RANGE_UNDER * span
        self.hi_ok = info.range_hi + RANGE_OVER * span
        self.last_ts = _NEVER
        self.last_received = start_ms
        self.ahead: tuple[int, ...] = ()
        self.ahead_top: int | None = None
        self.eval_ts = _NEVER
        self.values: list[_ValueInst] = []
        self.faults: list[_BadQuality] = []
        self.ranges: list[_OutOfRange] = []
        self.stales: list[_Stale] = []
        self.votes: list[tuple[_Vote, int]] = []

    def ahead_open(self) -> bool:
        """Far-ahead readings are remembered and ``last_ts`` is their largest raw timestamp."""
        return self.last_ts == self.ahead_top

    def watermark(self) -> int:
        """The newest evaluated (event) time: an older reading is late, an equal one a
        duplicate."""
        return self.eval_ts if self.ahead_open() else self.last_ts


class _Ent:
    """Per enterprise: the newest sign of life and the enterprise-level instances."""

    __slots__ = ("batch_max_ts", "code", "last_received", "links", "skews", "touched")

    def __init__(self, code: str, start_ms: int) -> None:
        self.code = code
        self.last_received = start_ms
        self.batch_max_ts = 0
        self.touched = False
        self.links: list[_Link] = []
        self.skews: list[_Skew] = []


# tag instances -------------------------------------------------------------------------------


class _ValueInst(_Inst):
    __slots__ = ()

    def feed(self, ts: int, v: float, eng: RuleEngine) -> None:
        raise NotImplementedError


class _Threshold(_ValueInst):
    """A comparator with hysteresis: on at ``v >= trip`` (high) or ``v <= trip`` (low), off
    only once the value is beyond ``reset`` (the setpoint minus/plus the deadband). The on- and
    off-delays then apply to the comparator, so noise inside the deadband neither restarts an
    on-delay nor clears an alarm."""

    __slots__ = ("cmp", "high", "reset", "trip")
    kind = "threshold"
    high: bool
    trip: float
    reset: float
    cmp: bool

    def feed(self, ts: int, v: float, eng: RuleEngine) -> None:
        if self.high:
            on = v >= (self.reset if self.cmp else self.trip)
        else:
            on = v <= (self.reset if self.cmp else self.trip)
        self.cmp = on
        if on or self.state:
            self.value = v
            self.drive(on, ts, eng)

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), "cmp": self.cmp}

    def load(self, data: Mapping[str, Any]) -> None:
        super().load(data)
        self.cmp = bool(data.get("cmp", self.state >= ACTIVE))

    def is_default(self) -> bool:
        return super().is_default() and not self.cmp


RATE_SAMPLES = 60
"""Samples a rate-of-change window keeps at most (one per window / RATE_SAMPLES)."""


class _Rate(_ValueInst):
    """Rate of change per minute between the newest reading and the oldest one inside the
    window; judged once the readings span at least half the window.

    The window keeps at most one sample per ``window / RATE_SAMPLES`` (the first of each
    step), so a tag reporting many times a second costs bounded memory and snapshot space."""

    __slots__ = ("cmp", "mode", "reset", "samples", "step", "trip", "window")
    kind = "rate_of_change"
    cmp: bool
    mode: str
    trip: float
    reset: float
    window: int
    step: int
    samples: deque[tuple[int, float]]

    def feed(self, ts: int, v: float, eng: RuleEngine) -> None:
        samples = self.samples
        if not samples or ts - samples[-1][0] >= self.step:
            samples.append((ts, v))
        horizon = ts - self.window
        while samples[0][0] < horizon:
            samples.popleft()
        t0, v0 = samples[0]
        if (ts - t0) * 2 < self.window:
            return
        rate = (v - v0) * 60_000 / (ts - t0)
        if self.mode == "falling":
            rate = -rate
        elif self.mode == "either":
            rate = abs(rate)
        on = rate >= (self.reset if self.cmp else self.trip)
        self.cmp = on
        if on or self.state:
            self.value = rate
            self.drive(on, ts, eng)

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), "cmp": self.cmp, "samples": list(self.samples)}

    def load(self, data: Mapping[str, Any]) -> None:
        super().load(data)
        self.cmp = bool(data.get("cmp", self.state >= ACTIVE))
        self.samples = deque((int(t), float(v)) for t, v in data.get("samples", ()))

    def is_default(self) -> bool:
        return super().is_default() and not self.samples

    def extra(self) -> dict[str, str]:
        return {"window": format_duration(self.window)}


class _SisFlag(_ValueInst):
    """A discrete SIS signal (trip, bypass, fault) or bit N of a status word."""

    __slots__ = ("bit",)
    kind = "sis_state"
    bit: int | None

    def feed(self, ts: int, v: float, eng: RuleEngine) -> None:
        on = (round(v) >> self.bit) & 1 == 1 if self.bit is not None else v >= 0.5
        if on or self.state:
            self.value = v
            self.drive(on, ts, eng)


class _BypassOverdue(_ValueInst):
    """A bypass still active past its planned end: the tag's ``planned_bypass_end`` from the
    registry, else the rule's ``max_duration`` after the bypass began (event time)."""

    __slots__ = ("max_ms", "planned_end", "started")
    kind = "bypass_overdue"
    max_ms: int | None
    planned_end: int | None
    started: int | None

    def feed(self, ts: int, v: float, eng: RuleEngine) -> None:
        if v < 0.5:
            self.started = None
            self.watch_due = None
            if self.state:
                self.drive(False, ts, eng)
            return
        if self.started is None:
            self.started = ts
        end = self.end()
        if end is None:
            return
        if ts >= end:
            self.drive(True, ts, eng)
        elif self.watch_due != end and self.state == NORMAL:
            eng._watch(self, end)

    def end(self) -> int | None:
        if self.planned_end is not None:
            return self.planned_end
        if self.max_ms is not None and self.started is not None:
            return self.started + self.max_ms
        return None

    def fire_watch(self, due: int, eng: RuleEngine) -> None:
        if self.started is not None:
            self.drive(True, due, eng)

    def extra(self) -> dict[str, str]:
        end = self.end()
        if end is None:
            return {}
        when = datetime.fromtimestamp(end / 1000, DISPLAY_TZ)
        return {"planned_end": when.isoformat(timespec="minutes")}

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), "started": self.started}

    def load(self, data: Mapping[str, Any]) -> None:
        super().load(data)
        self.started = data.get("started")

    def is_default(self) -> bool:
        return super().is_default() and self.started is None


class _BadQuality(_Inst):
    __slots__ = ("qualities",)
    kind = "bad_quality"
    qualities: frozenset[str]

    def feed(self, ts: int, v: float, q: str, eng: RuleEngine) -> None:
        on = q in self.qualities
        if on or self.state:
            self.value = v
            self.drive(on, ts, eng)


class _OutOfRange(_Inst):
    __slots__ = ("hi_ok", "lo_ok")
    kind = "out_of_range"
    lo_ok: float
    hi_ok: float

    def feed(self, ts: int, v: float, eng: RuleEngine) -> None:
        on = not self.lo_ok <= v <= self.hi_ok
        if on or self.state:
            self.value = v
            self.drive(on, ts, eng)


class _Stale(_Inst):
    """Nothing received from the tag for ``window`` ms of hub time."""

    __slots__ = ("slot", "window")
    kind = "stale"
    slot: _Slot
    window: int

    def on_data(self, received: int, eng: RuleEngine) -> None:
        if self.state:
            self.drive(False, received, eng)
        if self.watch_due is None:
            eng._watch(self, received + self.window)

    def fire_watch(self, due: int, eng: RuleEngine) -> None:
        deadline = self.slot.last_received + self.window
        if deadline > due:
            eng._watch(self, deadline)
        else:
            self.drive(True, deadline, eng)

    def extra(self) -> dict[str, str]:
        return {"window": format_duration(self.window)}


# zone instances ------------------------------------------------------------------------------


class _Member:
    __slots__ = ("above", "bad", "oos", "reset", "slot", "stale_ms", "trip", "value")

    def __init__(self, slot: _Slot, trip: float, reset: float, stale_ms: int) -> None:
        self.slot = slot
        self.trip = trip
        self.reset = reset
        self.stale_ms = stale_ms
        self.oos = not slot.info.in_service
        self.above = False
        self.bad = False
        self.value: float | None = None


class _Vote(_Inst):
    """k-out-of-n voting over a zone's detectors. A detector is faulty while its newest reading
    is bad or out of range, while it is silent for ``stale_intervals`` of its interval, and while
    it is out of service; with any faulty detector the vote becomes ``degrade_to`` over the
    healthy ones."""

    __slots__ = ("above_n", "degrade_k", "faulty", "healthy_n", "high", "k", "members", "report")
    kind = "voting"
    k: int
    degrade_k: int
    report: str
    high: bool
    members: list[_Member]
    above_n: int
    healthy_n: int
    faulty: list[str]

    def member(self, index: int, ts: int, v: float, valid: bool, now: int, eng: RuleEngine) -> None:
        m = self.members[index]
        m.bad = not valid
        if valid:
            m.value = v
            if self.high:
                m.above = v >= (m.reset if m.above else m.trip)
            else:
                m.above = v <= (m.reset if m.above else m.trip)
        self.evaluate(ts, now, eng)

    def evaluate(self, ts: int, now: int, eng: RuleEngine) -> None:
        faulty: list[str] = []
        healthy = above = 0
        top: float | None = None
        next_stale: int | None = None
        for m in self.members:
            deadline = m.slot.last_received + m.stale_ms
            if m.oos or m.bad or deadline <= now:
                faulty.append(m.slot.info.tag)
                continue
            healthy += 1
            if next_stale is None or deadline < next_stale:
                next_stale = deadline
            if m.above:
                above += 1
            if m.value is not None and (top is None or (m.value > top) == self.high):
                top = m.value
        k = self.degrade_k if faulty else self.k
        if self.report == "leak":
            on = healthy > 0 and above >= k
        elif self.report == "discrepancy":
            on = 0 < above < k
        else:
            on = bool(faulty)
        self.above_n, self.healthy_n, self.faulty = above, healthy, faulty
        if on or self.state:
            self.value = top
        self.drive(on, ts, eng)
        if next_stale is not None and (self.watch_due is None or next_stale < self.watch_due):
            eng._watch(self, next_stale)

    def fire_watch(self, due: int, eng: RuleEngine) -> None:
        self.evaluate(due, due, eng)

    def extra(self) -> dict[str, str]:
        return {"votes": f"{self.above_n}/{self.healthy_n}", "faulty": ",".join(self.faulty)}

    def dump(self) -> dict[str, Any]:
        return {
            **super().dump(),
            "members": [[m.above, m.bad, m.value] for m in self.members],
        }

    def load(self, data: Mapping[str, Any]) -> None:
        super().load(data)
        for m, (above, bad, value) in zip(self.members, data["members"], strict=True):
            m.above, m.bad, m.value = bool(above), bool(bad), value

    def is_default(self) -> bool:
        return False  # the members' state is always worth keeping


# enterprise and compound instances -----------------------------------------------------------


class _Link(_Inst):
    """Gateway offline (its last-will) or no reading from the enterprise for ``silence`` ms."""

    __slots__ = ("ent", "offline", "silence", "use_offline")
    kind = "link_down"
    ent: _Ent
    offline: bool
    silence: int | None
    use_offline: bool

    def on_status(self, online: bool, ts: int, eng: RuleEngine) -> None:
        if self.use_offline:
            self.offline = not online
        self.evaluate(ts, eng)

    def on_data(self, received: int, eng: RuleEngine) -> None:
        if self.state:
            self.evaluate(received, eng)
        elif self.silence is not None and self.watch_due is None:
            eng._watch(self, received + self.silence)

    def evaluate(self, at: int, eng: RuleEngine) -> None:
        silent = self.silence is not None and at - self.ent.last_received >= self.silence
        self.drive(self.offline or silent, at, eng)
        if self.silence is not None and not silent and self.watch_due is None:
            eng._watch(self, self.ent.last_received + self.silence)

    def fire_watch(self, due: int, eng: RuleEngine) -> None:
        assert self.silence is not None
        deadline = self.ent.last_received + self.silence
        if deadline > due:
            eng._watch(self, deadline)
        else:
            self.evaluate(due, eng)

    def extra(self) -> dict[str, str]:
        return {"cause": "offline" if self.offline else "silence"}

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), "offline": self.offline}

    def load(self, data: Mapping[str, Any]) -> None:
        super().load(data)
        self.offline = bool(data.get("offline", False))

    def is_default(self) -> bool:
        return super().is_default() and not self.offline


class _Skew(_Inst):
    """|hub receive time − newest reading ts of a batch| above ``threshold`` ms."""

    __slots__ = ("skew", "threshold")
    kind = "clock_skew"
    skew: int
    threshold: int

    def on_batch(self, received: int, newest_ts: int, eng: RuleEngine) -> None:
        skew = received - newest_ts
        on = abs(skew) > self.threshold
        if on or self.state:
            self.skew = skew
            self.value = skew / 1000
            self.drive(on, received, eng)

    def extra(self) -> dict[str, str]:
        return {"skew": f"{self.skew / 1000:+.3g}s"}


class _Compound(_Inst):
    __slots__ = ("scope",)
    kind = "compound"
    scope: str

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), "scope": self.scope, "hazard_source": self.hazard_source}


# the engine ----------------------------------------------------------------------------------


class RuleEngine:
    """Evaluates a ``RulePack`` over a ``Plant``; see the module docstring.

    ``max_lead_ms``: how far after its receive time a reading may be stamped and still be
    evaluated at its own timestamp; the hub passes its setting."""

    def __init__(
        self,
        pack: RulePack,
        plant: Plant,
        clock: Clock,
        *,
        max_lead_ms: int = DEFAULT_MAX_LEAD_MS,
    ) -> None:
        if isinstance(max_lead_ms, bool) or not isinstance(max_lead_ms, int) or max_lead_ms < 0:
            raise ValueError(
                f"rule engine: max_lead_ms={max_lead_ms!r} must be a whole number of "
                f"milliseconds >= 0"
            )
        self.pack = pack
        self.plant = plant
        self.clock = clock
        self.max_lead_ms = max_lead_ms
        self.counters: dict[str, int] = {
            "readings": 0,
            "late_readings": 0,
            "duplicate_readings": 0,
            "ahead_readings": 0,
            "unknown_tags": 0,
            "bad_quality_readings": 0,
            "out_of_range_readings": 0,
            "gateway_status": 0,
            "unknown_enterprises": 0,
            "snapshot_dropped": 0,
        }
        self._out: list[Condition] = []
        self._heap: list[tuple[int, int, int]] = []
        self._instances: list[_Inst] = []
        self._by_key: dict[str, _Inst] = {}
        self._raised: dict[tuple[str, str, str], int] = {}
        self._compound_refs: dict[str, list[_Compiled]] = {}
        self._compound_rts: dict[str, _Compiled] = {}
        self._suppressors = frozenset(name for r in pack.rules for name in r.suppressed_by)
        self._suppression_dirty = True
        self._published: dict[str, tuple[str, ...]] = {}
        start = clock.now_ms()
        self._ents = {code: _Ent(code, start) for code in plant.enterprises}
        self._slots = {
            key: _Slot(info, self._ents[info.enterprise], start) for key, info in plant.tags.items()
        }
        enterprise_alerts = frozenset(
            r.alert for r in pack.rules if isinstance(r.condition, LinkDown | ClockSkew)
        )
        for rule in pack.rules:
            self._compile(_Compiled(rule, enterprise_alerts), start)

    # public API ----------------------------------------------------------------------------

    def on_readings(self, readings: Iterable[Reading], received_ms: int) -> list[Condition]:
        """Evaluate a batch of readings received at hub time ``received_ms``."""
        out: list[Condition] = []
        self._out = out
        slots = self._slots
        touched: list[_Ent] = []
        limit = received_ms + self.max_lead_ms
        n = unknown = bad = out_of_range = 0
        for enterprise, tag, ts, v, q in readings:
            n += 1
            slot = slots.get((enterprise, tag))
            if slot is None:
                unknown += 1
                continue
            ent = slot.ent
            if not ent.touched:
                ent.touched = True
                ent.batch_max_ts = ts
                touched.append(ent)
            elif ts > ent.batch_max_ts:
                ent.batch_max_ts = ts
            for stale in slot.stales:
                if stale.state or stale.watch_due is None:
                    stale.on_data(received_ms, self)
            # The skew rule above saw the raw ts; from here on ts is the time evaluated at.
            if ts > limit or ts <= slot.last_ts:
                at = self._admit(slot, ts, received_ms, limit)
                if at is None:
                    continue
                ts = at
            else:
                slot.last_received = received_ms
                slot.last_ts = ts
            if q == "bad":
                bad += 1
                valid = False
            else:
                valid = slot.lo_ok <= v <= slot.hi_ok
                if not valid:
                    out_of_range += 1
                for rng in slot.ranges:
                    rng.feed(ts, v, self)
            for fault in slot.faults:
                fault.feed(ts, v, q, self)
            if valid:
                for inst in slot.values:
                    inst.feed(ts, v, self)
            for vote, index in slot.votes:
                vote.member(index, ts, v, valid, received_ms, self)
        for ent in touched:
            ent.touched = False
            ent.last_received = received_ms
            for link in ent.links:
                link.on_data(received_ms, self)
            for skew in ent.skews:
                skew.on_batch(received_ms, ent.batch_max_ts, self)
        c = self.counters
        c["readings"] += n
        c["unknown_tags"] += unknown
        c["bad_quality_readings"] += bad
        c["out_of_range_readings"] += out_of_range
        return out

    def _admit(self, slot: _Slot, ts: int, received_ms: int, limit: int) -> int | None:
        """The slow path of ``on_readings`` for a reading that is not simply newer than the
        tag's last one and within the lead: the time to evaluate it at, or None (late or a
        duplicate, counted). Also records the reading as the tag's sign of life."""
        previous_received = slot.last_received
        slot.last_received = received_ms
        counters = self.counters
        remembered = slot.ahead_open()
        newest = slot.eval_ts if remembered else slot.last_ts
        if ts > limit:
            counters["ahead_readings"] += 1
            if remembered and ts in slot.ahead:
                counters["duplicate_readings"] += 1  # the same far-ahead reading again
                return None
            # Placed a little before its receive time: the gateway's next honest reading was
            # stamped before it reached the hub too (transit), and must not look late.
            before = received_ms - max(self.max_lead_ms, TRANSIT_SLACK_MS)
            if newest == _NEVER:
                at = before
            else:
                # Continue the tag's own timeline by the hub time elapsed since it was last
                # heard: hub time for a gateway in step, and a gateway whose clock lags keeps
                # its lag, so its next readings are not late either.
                at = min(newest + (received_ms - previous_received), before)
                at = max(at, newest + 1)
            if at > limit:  # the tag was just evaluated at the very edge of the lead
                counters["late_readings"] += 1
                return None
            if remembered:
                slot.ahead = (*slot.ahead, ts)[-AHEAD_MEMORY:]
                slot.ahead_top = max(ts, slot.last_ts)
            else:
                slot.ahead = (ts,)
                slot.ahead_top = ts
            slot.last_ts = slot.ahead_top
            slot.eval_ts = at
            return at
        if remembered and ts in slot.ahead:
            # A far-ahead reading delivered again once the hub clock caught up with it (a
            # redelivery after a long restart): it was evaluated, on the tag's timeline.
            counters["duplicate_readings"] += 1
            return None
        if ts <= newest:
            counters["duplicate_readings" if ts == newest else "late_readings"] += 1
            return None
        # Newer than anything evaluated but not than a remembered far-ahead reading: the
        # gateway's clock went back (corrected). This is the reading that must not be late.
        slot.eval_ts = ts
        if ts == slot.last_ts:  # reached the remembered top: nothing is ahead any more
            slot.ahead, slot.ahead_top = (), None
        return ts

    def on_gateway_status(self, enterprise: str, online: bool, ts_ms: int) -> list[Condition]:
        """A gateway's retained status: ``online: false`` is its last-will (link down)."""
        out: list[Condition] = []
        self._out = out
        self.counters["gateway_status"] += 1
        ent = self._ents.get(enterprise)
        if ent is None:
            self.counters["unknown_enterprises"] += 1
            return out
        for link in ent.links:
            link.on_status(online, ts_ms, self)
        return out

    def advance(self, now_ms: int) -> list[Condition]:
        """Fire every timer due at or before hub time ``now_ms``, oldest first."""
        out: list[Condition] = []
        self._out = out
        heap = self._heap
        instances = self._instances
        while heap and heap[0][0] <= now_ms:
            due, order, which = heapq.heappop(heap)
            inst = instances[order]
            if which == _DELAY:
                if inst.due == due:
                    inst.fire_delay(due, self)
            elif inst.watch_due == due:
                inst.watch_due = None
                inst.fire_watch(due, self)
        return out

    def active_keys(self) -> list[str]:
        """Keys of the alarm instances that are raised now, in rule and plant order."""
        return [inst.key for inst in self._instances if inst.state >= ACTIVE]

    def suppressed_by(self, key: str) -> tuple[str, ...]:
        """Why an alarm instance is suppressed by design right now: the names of the active
        alerts and plant states of its rule's ``suppressed_by`` (empty: not suppressed)."""
        inst = self._by_key.get(key)
        return () if inst is None else self._suppressions(inst)

    def suppressed(self) -> dict[str, tuple[str, ...]]:
        """Every alarm instance suppressed by design right now, raised or not, and why."""
        out: dict[str, tuple[str, ...]] = {}
        for inst in self._instances:
            if inst.rt.suppress_oos or inst.rt.suppress_alerts:
                reasons = self._suppressions(inst)
                if reasons:
                    out[inst.key] = reasons
        return out

    def suppression_changes(self) -> list[SuppressionChange]:
        """How ``suppressed()`` changed since the previous call, grouped by cause, in the shape
        of ``AlarmService.suppress(cause, keys)`` / ``release(cause, keys)``. The first call
        reports every suppression (out-of-service tags included). Cheap when nothing changed:
        the map is recomputed only after a suppressing alert was raised or cleared."""
        if not self._suppression_dirty:
            return []
        self._suppression_dirty = False
        now = self.suppressed()
        before = self._published
        held: dict[str, list[str]] = {}
        released: dict[str, list[str]] = {}
        for key in sorted(before.keys() | now.keys()):
            old, new = set(before.get(key, ())), set(now.get(key, ()))
            for cause in sorted(new - old):
                held.setdefault(cause, []).append(key)
            for cause in sorted(old - new):
                released.setdefault(cause, []).append(key)
        self._published = now
        return [
            *(
                SuppressionChange(cause, tuple(keys), False)
                for cause, keys in sorted(released.items())
            ),
            *(SuppressionChange(cause, tuple(keys), True) for cause, keys in sorted(held.items())),
        ]

    def snapshot(self) -> dict[str, Any]:
        """The engine's state as JSON-serialisable data (see ``restore``)."""
        return {
            "version": SNAPSHOT_VERSION,
            "counters": dict(self.counters),
            "tags": [
                [
                    s.info.enterprise,
                    s.info.tag,
                    None if (newest := s.watermark()) == _NEVER else newest,
                    s.last_received,
                ]
                for s in self._slots.values()
            ],
            # Per tag with remembered far-ahead readings: [enterprise, tag, their largest raw
            # ts, the remembered raw ts]. A separate key, so that "tags" keeps its format.
            "ahead": [
                [s.info.enterprise, s.info.tag, s.last_ts, list(s.ahead)]
                for s in self._slots.values()
                if s.ahead_open()
            ],
            "enterprises": {code: e.last_received for code, e in self._ents.items()},
            "instances": {
                inst.key: inst.dump() for inst in self._instances if not inst.is_default()
            },
            "suppressions_published": {k: list(v) for k, v in self._published.items()},
        }

    @classmethod
    def restore(
        cls,
        pack: RulePack,
        plant: Plant,
        clock: Clock,
        snapshot: Mapping[str, Any],
        *,
        max_lead_ms: int = DEFAULT_MAX_LEAD_MS,
    ) -> RuleEngine:
        """An engine that continues from ``snapshot``: raised alarms stay raised (and are not
        raised again), pending on/off delays and watchdogs keep their deadlines, a far-ahead
        reading delivered again is still a duplicate. State of rules or tags that no longer
        exist is dropped and counted in ``counters["snapshot_dropped"]``. A snapshot written
        before far-ahead readings were remembered restores as one with none remembered."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"rule engine snapshot: version {snapshot.get('version')!r} is not "
                f"{SNAPSHOT_VERSION}"
            )
        eng = cls(pack, plant, clock, max_lead_ms=max_lead_ms)
        eng._load(snapshot)
        return eng

    # compilation ---------------------------------------------------------------------------

    def _compile(self, rt: _Compiled, start: int) -> None:
        rule = rt.rule
        cond = rule.condition
        if isinstance(cond, Compound):
            self._compound_rts[rt.alert] = rt
            refs = cond.all if cond.all is not None else (cond.any or ())
            for ref in dict.fromkeys(refs):
                self._compound_refs.setdefault(ref, []).append(rt)
            return
        if isinstance(cond, LinkDown | ClockSkew):
            for code in selected_enterprises(rule.select, cond, self.plant):
                self._compile_enterprise(rt, cond, self._ents[code], start)
            return
        tags = selected_tags(rule.select, cond, self.plant)
        if isinstance(cond, VotingCondition):
            zones: dict[tuple[str, str], None] = {}
            for tag in tags:
                zones[(tag.enterprise, tag.zone or "")] = None
            for zone_key in zones:
                self._compile_vote(rt, cond, zone_key)
            return
        for tag in tags:
            slot = self._slots[(tag.enterprise, tag.tag)]
            self._compile_tag(rt, cond, slot, start)

    def _identity(self, rt: _Compiled, tag: TagInfo) -> tuple[dict[str, str], dict[str, str], str]:
        """Labels, template fields and the priority of an instance about a tag."""
        labels = dict(rt.rule.labels)
        extra = {
            "park": tag.park,
            "unit": tag.unit,
            "equipment": tag.equipment,
            "kind": tag.kind,
            "gas": tag.gas or "",
            "sif": tag.sif or "",
        }
        labels.update({k: v for k, v in extra.items() if v and k not in labels})
        fields = {
            "tag": tag.tag,
            "name": tag.name or tag.tag,
            "enterprise": tag.enterprise,
            "hazard_source": tag.hazard_source,
            "unit": tag.unit,
            "equipment": tag.equipment,
            "zone": tag.zone or "",
            "gas": tag.gas or "",
            "eu": tag.eu,
            "level": str(rt.level) if rt.level is not None else "",
            "sif": tag.sif or "",
        }
        # The rule's priority; the alarm service raises a level-2 alarm on a grade-1/2 hazard
        # source to at least high (``alarms.lifecycle.effective_priority``).
        return labels, fields, rt.priority

    def _add(self, inst: _Inst) -> None:
        inst.order = len(self._instances)
        self._instances.append(inst)
        self._by_key[inst.key] = inst

    def _compile_tag(self, rt: _Compiled, cond: Any, slot: _Slot, start: int) -> None:
        tag = slot.info
        labels, fields, priority = self._identity(rt, tag)
        args = (rt, tag.enterprise, tag.tag, tag.hazard_source, tag, tag.zone)
        span = tag.range_hi - tag.range_lo
        if isinstance(cond, Threshold):
            th = _Threshold(*args, labels, fields, priority)
            sp = tag.setpoints[cond.setpoint] if isinstance(cond.setpoint, str) else cond.setpoint
            direction = cond.direction or ("low" if cond.setpoint in ("ll", "l") else "high")
            th.high = direction == "high"
            th.cmp = False
            th.trip = sp
            band = cond.deadband.resolve(span)
            th.reset = sp - band if th.high else sp + band
            th.setpoint = sp
            fields["setpoint"] = _fmt(sp)
            self._add(th)
            slot.values.append(th)
        elif isinstance(cond, RateOfChange):
            ro = _Rate(*args, labels, fields, priority)
            ro.mode = cond.direction
            ro.cmp = False
            ro.trip = cond.rate.resolve(span)
            ro.reset = ro.trip - cond.deadband.resolve(span)
            ro.window = cond.window
            ro.step = max(1, cond.window // RATE_SAMPLES)
            ro.samples = deque()
            ro.setpoint = ro.trip
            fields["setpoint"] = _fmt(ro.trip)
            self._add(ro)
            slot.values.append(ro)
        elif isinstance(cond, SisState):
            if cond.state == "bypass_overdue":
                bo = _BypassOverdue(*args, labels, fields, priority)
                bo.planned_end = _epoch_ms(tag.planned_bypass_end)
                bo.max_ms = cond.max_duration
                bo.started = None
                self._add(bo)
                slot.values.append(bo)
            else:
                flag = _SisFlag(*args, labels, fields, priority)
                flag.bit = cond.bit if cond.state == "bit" else None
                if cond.state == "voting_degraded":
                    flag.bit = 1 if cond.bit is None else cond.bit
                self._add(flag)
                slot.values.append(flag)
        elif isinstance(cond, BadQuality):
            bq = _BadQuality(*args, labels, fields, priority)
            bq.qualities = frozenset(cond.qualities)
            self._add(bq)
            slot.faults.append(bq)
        elif isinstance(cond, OutOfRange):
            oor = _OutOfRange(*args, labels, fields, priority)
            oor.lo_ok, oor.hi_ok = slot.lo_ok, slot.hi_ok
            self._add(oor)
            slot.ranges.append(oor)
        elif isinstance(cond, Stale):
            st = _Stale(*args, labels, fields, priority)
            st.slot = slot
            st.window = round(cond.intervals * tag.interval_s * 1000)
            self._add(st)
            slot.stales.append(st)
            self._watch(st, start + st.window)
        else:  # pragma: no cover - every tag condition type is handled above
            raise AssertionError(cond.type)

    def _compile_vote(
        self, rt: _Compiled, cond: VotingCondition, zone_key: tuple[str, str]
    ) -> None:
        zone = self.plant.zones[zone_key]
        slots = [self._slots[(zone.enterprise, t)] for t in zone.tags]
        if isinstance(cond.setpoint, str) and any(
            cond.setpoint not in s.info.setpoints for s in slots
        ):
            return  # a zone whose detectors do not all have the setpoint is not covered
        first = slots[0].info
        labels, fields, priority = self._identity(rt, first)
        for name in ("unit", "equipment", "sif"):
            if len({getattr(s.info, name) for s in slots}) > 1:
                labels.pop(name, None)
        fields.update(tag="", name=zone.zone, zone=zone.zone)
        labels["voting"] = zone.voting or ""
        vote = _Vote(
            rt,
            zone.enterprise,
            zone.zone,
            first.hazard_source,
            None,
            zone.zone,
            labels,
            fields,
            priority,
        )
        vote.oos = all(not s.info.in_service for s in slots)
        assert zone.voting is not None
        vote.k = int(zone.voting.split("oo")[0])
        vote.degrade_k = int(cond.degrade_to.split("oo")[0])
        vote.report = cond.report
        vote.high = cond.direction == "high"
        vote.above_n, vote.healthy_n, vote.faulty = 0, len(slots), []
        vote.members = []
        for slot in slots:
            info = slot.info
            sp = info.setpoints[cond.setpoint] if isinstance(cond.setpoint, str) else cond.setpoint
            band = cond.deadband.resolve(info.range_hi - info.range_lo)
            reset = sp - band if vote.high else sp + band
            stale_ms = round(cond.stale_intervals * info.interval_s * 1000)
            vote.members.append(_Member(slot, sp, reset, stale_ms))
        vote.setpoint = vote.members[0].trip
        fields["setpoint"] = _fmt(vote.setpoint)
        self._add(vote)
        for index, slot in enumerate(slots):
            slot.votes.append((vote, index))
        self._watch(vote, min(m.slot.last_received + m.stale_ms for m in vote.members))

    def _compile_enterprise(self, rt: _Compiled, cond: Any, ent: _Ent, start: int) -> None:
        labels = dict(rt.rule.labels)
        fields = {"enterprise": ent.code, "name": self.plant.enterprises[ent.code].name}
        args = (rt, ent.code, ent.code, "", None, None, labels, fields, rt.priority)
        if isinstance(cond, LinkDown):
            link = _Link(*args)
            link.ent = ent
            link.offline = False
            link.use_offline = cond.offline
            link.silence = cond.silence
            if cond.silence is not None:
                fields["window"] = format_duration(cond.silence)
            self._add(link)
            ent.links.append(link)
            if link.silence is not None:
                self._watch(link, start + link.silence)
        else:
            skew = _Skew(*args)
            skew.threshold = cond.threshold
            skew.skew = 0
            fields["setpoint"] = format_duration(cond.threshold)
            self._add(skew)
            ent.skews.append(skew)

    def _compound(self, rt: _Compiled, enterprise: str, subject: str, hs: str) -> _Compound:
        key = f"{rt.alert}|{enterprise}|{subject if subject != '*' else enterprise}"
        found = self._by_key.get(key)
        if isinstance(found, _Compound):
            return found
        cond = rt.rule.condition
        assert isinstance(cond, Compound)
        labels = dict(rt.rule.labels)
        fields = {"enterprise": enterprise, "hazard_source": hs}
        inst = _Compound(
            rt, enterprise, subject if subject != "*" else enterprise, hs, None, None,
            labels, fields, rt.priority,
        )  # fmt: skip
        inst.scope = subject
        self._add(inst)
        if rt.suppress_oos or rt.suppress_alerts:
            self._suppression_dirty = True  # a new key that may be suppressed already
        return inst

    # timers and emission -------------------------------------------------------------------

    def _schedule(self, inst: _Inst, due: int) -> None:
        inst.due = due
        heapq.heappush(self._heap, (due, inst.order, _DELAY))

    def _watch(self, inst: _Inst, due: int) -> None:
        inst.watch_due = due
        heapq.heappush(self._heap, (due, inst.order, _WATCH))

    def _emit(self, inst: _Inst, active: bool, ts: int) -> None:
        rt = inst.rt
        extra = inst.extra()
        fields = {**inst.fields, **extra, "value": _fmt(inst.value)}
        labels = {**inst.labels, **{k: v for k, v in extra.items() if v}}
        reasons = self._suppressions(inst)
        if reasons:
            labels["suppressed_by"] = ",".join(reasons)
        self._out.append(
            Condition(
                key=inst.key,
                alert=rt.alert,
                active=active,
                ts_ms=ts,
                enterprise=inst.enterprise,
                hazard_source=inst.hazard_source,
                tag=inst.tag,
                zone=inst.zone,
                priority=inst.priority,
                alarm_class=rt.alarm_class,
                latch=rt.latch,
                level=rt.level,
                value=inst.value,
                setpoint=inst.setpoint,
                on_delay_s=rt.on_ms / 1000,
                summary=rt.summary.render(fields),
                summary_en=rt.summary_en.render(fields),
                labels=labels,
            )
        )
        self._count(inst, 1 if active else -1)
        if rt.alert in self._suppressors:
            self._suppression_dirty = True
        for crt in self._compound_refs.get(rt.alert, ()):
            self._drive_compound(crt, inst, ts)

    def _count(self, inst: _Inst, delta: int) -> None:
        raised = self._raised
        for scope in (inst.hazard_source, "*"):
            k = (inst.rt.alert, inst.enterprise, scope)
            raised[k] = raised.get(k, 0) + delta

    def _drive_compound(self, crt: _Compiled, source: _Inst, ts: int) -> None:
        cond = crt.rule.condition
        assert isinstance(cond, Compound)
        sel = crt.rule.select
        if sel.enterprise is not None and source.enterprise not in sel.enterprise:
            return
        if sel.hazard_source is not None and source.hazard_source not in sel.hazard_source:
            return
        subject = source.hazard_source if cond.scope == "hazard_source" else "*"
        refs = cond.all if cond.all is not None else (cond.any or ())
        hits = [self._raised.get((r, source.enterprise, subject), 0) > 0 for r in refs]
        on = all(hits) if cond.all is not None else any(hits)
        key = f"{crt.alert}|{source.enterprise}|{subject if subject != '*' else source.enterprise}"
        if not on and key not in self._by_key:
            return
        hs = source.hazard_source if subject != "*" else ""
        inst = self._compound(crt, source.enterprise, subject, hs)
        inst.drive(on, ts, self)

    def _suppressions(self, inst: _Inst) -> tuple[str, ...]:
        rt = inst.rt
        reasons: list[str] = []
        if rt.suppress_oos and inst.oos:
            reasons.append("out_of_service")
        raised = self._raised
        for name, enterprise_wide in rt.suppress_alerts:
            scope = "*" if enterprise_wide else inst.hazard_source
            if raised.get((name, inst.enterprise, scope), 0) > 0:
                reasons.append(name)
        return tuple(reasons)

    # restore -------------------------------------------------------------------------------

    def _load(self, snapshot: Mapping[str, Any]) -> None:
        for name, value in snapshot.get("counters", {}).items():
            if name in self.counters:
                self.counters[name] = int(value)
        for enterprise, tag, last_ts, last_received in snapshot.get("tags", ()):
            slot = self._slots.get((enterprise, tag))
            if slot is None:
                self.counters["snapshot_dropped"] += 1
                continue
            slot.last_ts = _NEVER if last_ts is None else int(last_ts)
            slot.last_received = int(last_received)
        for enterprise, tag, top, remembered in snapshot.get("ahead", ()):
            slot = self._slots.get((enterprise, tag))
            if slot is None or int(top) <= slot.last_ts:
                continue  # the tag is gone (counted above), or nothing is ahead of it any more
            slot.eval_ts = slot.last_ts
            slot.last_ts = slot.ahead_top = int(top)
            slot.ahead = tuple(int(ts) for ts in remembered)[-AHEAD_MEMORY:]
        for code, last_received in snapshot.get("enterprises", {}).items():
            ent = self._ents.get(code)
            if ent is not None:
                ent.last_received = int(last_received)
        for key, data in snapshot.get("instances", {}).items():
            inst = self._by_key.get(key)
            if inst is None and data.get("kind") == "compound":
                inst = self._restore_compound(key, data)
            if inst is None or inst.kind != data.get("kind"):
                self.counters["snapshot_dropped"] += 1
                continue
            try:
                inst.load(data)
            except (KeyError, TypeError, ValueError):
                self.counters["snapshot_dropped"] += 1
        self._published = {
            str(k): tuple(str(c) for c in v)
            for k, v in snapshot.get("suppressions_published", {}).items()
        }
        self._heap = []
        self._raised = {}
        for inst in self._instances:
            if inst.due is not None:
                heapq.heappush(self._heap, (inst.due, inst.order, _DELAY))
            if isinstance(inst, _Vote) or (
                isinstance(inst, _Stale | _Link) and inst.state == NORMAL
            ):
                self._rewatch(inst)  # from the restored last-received times
            elif inst.watch_due is not None:
                heapq.heappush(self._heap, (inst.watch_due, inst.order, _WATCH))
            if inst.state >= ACTIVE:
                self._count(inst, 1)

    def _rewatch(self, inst: _Stale | _Link | _Vote) -> None:
        if isinstance(inst, _Stale):
            self._watch(inst, inst.slot.last_received + inst.window)
        elif isinstance(inst, _Link):
            if inst.silence is not None:
                self._watch(inst, inst.ent.last_received + inst.silence)
        else:
            self._watch(inst, min(m.slot.last_received + m.stale_ms for m in inst.members))

    def _restore_compound(self, key: str, data: Mapping[str, Any]) -> _Inst | None:
        alert, _, rest = key.partition("|")
        enterprise = rest.partition("|")[0]
        rt = self._compound_rts.get(alert)
        if rt is None or enterprise not in self._ents:
            return None
        return self._compound(rt, enterprise, str(data["scope"]), str(data["hazard_source"]))
