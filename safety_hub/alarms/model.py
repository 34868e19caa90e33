"""The alarm service's data: the rule engine's `Condition`, the `Alarm` snapshot, `Transition`.

Every type here is immutable; the lifecycle functions return new snapshots. Times are epoch
milliseconds: ``*_ms`` fields are clock times (when the hub made the change), ``event_ts_ms`` is
the source time of the reading that changed the condition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from safety_hub.alarms.errors import InvalidCondition

# The MQTT alarm event payload's schema name; a change to its meaning needs a new version.
EVENT_SCHEMA = "safety-hub/alarm-event/v1"

# GB/T 50493-2019: any on-delay of a gas alarm is at most 60 s.
MAX_ON_DELAY_S = 60.0


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.LOW: 0, Priority.MEDIUM: 1, Priority.HIGH: 2, Priority.CRITICAL: 3}


class AlarmClass(StrEnum):
    GAS = "gas"
    PROCESS = "process"
    FAULT = "fault"
    SIS = "sis"
    COMMS = "comms"
    SYSTEM = "system"


_PRIORITY_NAMES = frozenset(p.value for p in Priority)
_CLASS_NAMES = frozenset(c.value for c in AlarmClass)


class AlarmState(StrEnum):
    """ISA-18.2 / IEC 62682 alarm states.

    The first five are "in service" and follow the condition and the operator; the last three
    hide the alarm (no annunciation, no KPIs) while it keeps tracking its condition. When more than
    one hiding applies the state shows the strongest: out of service > shelved > suppressed.
    """

    NORMAL = "normal"
    UNACKNOWLEDGED = "unacknowledged"  # active, not acknowledged
    ACKNOWLEDGED = "acknowledged"  # active, acknowledged
    RTN_UNACKNOWLEDGED = "rtn_unacknowledged"  # cleared before it was acknowledged (no latch)
    LATCHED = "latched"  # cleared, the latch holds until acknowledged and reset
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"  # suppressed by design (plant state)
    OUT_OF_SERVICE = "out_of_service"


HIDDEN_STATES = frozenset({AlarmState.SHELVED, AlarmState.SUPPRESSED, AlarmState.OUT_OF_SERVICE})
# What an alarm list shows an operator: an episode of a hazard source lasts while any is here.
DISPLAYED_STATES = frozenset(
    {
        AlarmState.UNACKNOWLEDGED,
        AlarmState.ACKNOWLEDGED,
        AlarmState.RTN_UNACKNOWLEDGED,
        AlarmState.LATCHED,
    }
)


class Action(StrEnum):
    RAISE = "raise"  # the condition became active
    UPDATE = "update"  # re-trigger while active: new value and time only
    CLEAR = "clear"  # the condition returned to normal
    ACK = "ack"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"
    SHELVE_EXPIRED = "shelve_expired"
    RESET = "reset"
    OUT_OF_SERVICE = "out_of_service"
    RETURN_TO_SERVICE = "return_to_service"
    SUPPRESS = "suppress"
    UNSUPPRESS = "unsuppress"
    REACTIVATE = "reactivate"  # the condition came back while the latch holds: counted, silent
    # The closed loop (docs/alarms.md, "Disposal"): records, not states; never annunciations.
    DISPOSE = "dispose"  # an operator recorded how the warning was dealt with
    DISPOSAL_OVERDUE = "disposal_overdue"  # a red/orange warning passed its disposal time limit


# Into or out of alarm: what the chattering KPI counts (ISA-18.2: ≥ 3 within 60 s).
CONDITION_EDGES = frozenset({Action.RAISE, Action.CLEAR, Action.REACTIVATE})


def is_annunciation(
    from_state: AlarmState | None, to_state: AlarmState | None, action: Action | None = None
) -> bool:
    """An annunciation is any entry into the unacknowledged state: it sounds and asks for an ack.

    That covers a new activation, re-activation after a clear, a reset while still active and an
    active alarm coming back from shelving, suppression or out of service. Counts, alarm rates,
    floods and bad actors all count exactly these. A latched alarm whose condition comes back
    before its reset (`Action.REACTIVATE`) is the same alarm still in alarm, not a new one.
    """
    if action is Action.REACTIVATE:
        return False
    return to_state is AlarmState.UNACKNOWLEDGED and from_state is not AlarmState.UNACKNOWLEDGED


@dataclass(frozen=True, slots=True)
class Condition:
    """A change of a rule's condition, from the rule engine."""

    key: str  # stable identity of the alarm instance, one per (rule, tag or zone)
    alert: str  # the rule's alert name (CamelCase)
    active: bool  # True: the condition is present; False: it returned to normal
    ts_ms: int  # event time of the change
    enterprise: str
    hazard_source: str  # "" when none
    tag: str | None
    zone: str | None
    priority: str  # critical | high | medium | low, as the rule says (before the grade rule)
    alarm_class: str  # gas | process | fault | sis | comms | system
    latch: bool  # gas and SIS trips latch until reset
    level: int | None = None  # 1 or 2 for gas level-1/level-2 alarms
    value: float | None = None
    setpoint: float | None = None
    on_delay_s: float = 0.0  # recorded on the alarm (GB: ≤ 60 s)
    summary: str = ""  # Chinese text
    summary_en: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def bad(name: str, value: object, reason: str) -> InvalidCondition:
            return InvalidCondition(self.key, name, value, reason)

        if not self.key:
            raise bad("key", self.key, "must not be empty")
        if not self.alert:
            raise bad("alert", self.alert, "must not be empty")
        if self.priority not in _PRIORITY_NAMES:
            raise bad("priority", self.priority, f"not one of {', '.join(Priority)}")
        if self.alarm_class not in _CLASS_NAMES:
            raise bad("alarm_class", self.alarm_class, f"not one of {', '.join(AlarmClass)}")
        if self.level not in (None, 1, 2):
            raise bad("level", self.level, "must be 1, 2 or None")
        if not 0.0 <= self.on_delay_s <= MAX_ON_DELAY_S:
            raise bad("on_delay_s", self.on_delay_s, f"must be within 0..{MAX_ON_DELAY_S:g} s")
        for name in ("value", "setpoint"):
            number = getattr(self, name)
            if number is not None and not math.isfinite(number):
                raise bad(name, number, "must be finite")


@dataclass(frozen=True, slots=True)
class Shelve:
    by: str
    reason: str
    since_ms: int
    until_ms: int


# Who took an alarm out of service: an operator through the API, or the plant registry.
OOS_OPERATOR = "operator"
OOS_REGISTRY = "registry"
# The plant state a rule's ``suppressed_by`` names for a tag out of service in the registry: it
# reaches the service as a suppression cause and becomes the out-of-service state (ISA-18.2
# keeps out of service and suppression by design apart).
REGISTRY_OOS_CAUSE = "out_of_service"


@dataclass(frozen=True, slots=True)
class OutOfService:
    by: str
    reason: str
    since_ms: int
    source: str = OOS_OPERATOR  # operator | registry

    def as_json(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "reason": self.reason,
            "since_ms": self.since_ms,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Disposal:
    """How one annunciation episode of a warning was dealt with (预警处置记录)."""

    category: str  # real_release | false_alarm | maintenance | instrument_fault | other
    text: str
    by: str  # the authenticated user
    at_ms: int  # clock time of the disposal
    raised_ms: int  # the annunciation (episode) it closes

    def as_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "text": self.text,
            "by": self.by,
            "at_ms": self.at_ms,
            "raised_ms": self.raised_ms,
        }


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm instance (one per condition key) as it stands after a transition.

    ``active`` is the condition. ``latched`` means the latch holds: a latching alarm annunciated
    and has not been reset since; the state is ``latched`` once its condition has cleared.
    ``acknowledged`` refers to the latest annunciation; ``acknowledged_ms``/``_by`` are None until
    someone acknowledges it.
    """

    id: int
    key: str
    alert: str
    enterprise: str
    hazard_source: str
    tag: str | None
    zone: str | None
    priority: Priority  # effective: the rule's, raised by the hazard-grade rule
    rule_priority: Priority  # as the rule said
    alarm_class: AlarmClass
    level: int | None
    state: AlarmState
    active: bool
    acknowledged: bool
    latched: bool
    latching: bool  # the rule latches (gas, SIS trips)
    shelved: Shelve | None
    out_of_service: OutOfService | None
    suppressed_by: tuple[str, ...]  # causes, sorted
    raised_ms: int | None  # last annunciation
    first_raised_ms: int | None
    acknowledged_ms: int | None
    acknowledged_by: str | None
    cleared_ms: int | None  # last time the condition cleared
    active_since_ms: int | None  # since when the condition is active; None while it is not
    changed_ms: int  # last transition of any kind
    event_ts_ms: int  # source time of the last condition change
    value: float | None
    setpoint: float | None
    on_delay_s: float
    summary: str
    summary_en: str
    labels: Mapping[str, str]
    count: int  # annunciations
    # Added after v1 of the journal: rows written before them load with these defaults.
    returns: int = 0  # the condition came back while the latch held, since the last annunciation
    last_active_ms: int | None = None  # source time the condition last became active
    arrived_ms: int | None = None  # clock time the current activation reached the hub
    # The closed loop (alarms/disposal.py); reset at every annunciation (a new episode).
    disposal: Disposal | None = None  # the current episode's disposal record
    disposal_due_ms: int | None = None  # None: no time limit (blue, or yellow by default)
    disposal_overdue_ms: int | None = None  # when it went overdue (kept once disposed)

    @property
    def hidden(self) -> bool:
        return self.state in HIDDEN_STATES

    @property
    def disposal_overdue(self) -> bool:
        """Past its disposal time limit and not disposed yet."""
        return self.disposal_overdue_ms is not None and self.disposal is None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "alert": self.alert,
            "enterprise": self.enterprise,
            "hazard_source": self.hazard_source,
            "tag": self.tag,
            "zone": self.zone,
            "priority": self.priority.value,
            "rule_priority": self.rule_priority.value,
            "alarm_class": self.alarm_class.value,
            "level": self.level,
            "state": self.state.value,
            "active": self.active,
            "acknowledged": self.acknowledged,
            "latched": self.latched,
            "latching": self.latching,
            "shelved": None
            if self.shelved is None
            else {
                "by": self.shelved.by,
                "reason": self.shelved.reason,
                "since_ms": self.shelved.since_ms,
                "until_ms": self.shelved.until_ms,
            },
            "out_of_service": None
            if self.out_of_service is None
            else self.out_of_service.as_json(),
            "suppressed_by": list(self.suppressed_by),
            "raised_ms": self.raised_ms,
            "first_raised_ms": self.first_raised_ms,
            "acknowledged_ms": self.acknowledged_ms,
            "acknowledged_by": self.acknowledged_by,
            "cleared_ms": self.cleared_ms,
            "active_since_ms": self.active_since_ms,
            "changed_ms": self.changed_ms,
            "event_ts_ms": self.event_ts_ms,
            "value": self.value,
            "setpoint": self.setpoint,
            "on_delay_s": self.on_delay_s,
            "summary": self.summary,
            "summary_en": self.summary_en,
            "labels": dict(self.labels),
            "count": self.count,
            "returns": self.returns,
            "last_active_ms": self.last_active_ms,
            "arrived_ms": self.arrived_ms,
            "disposal": None if self.disposal is None else self.disposal.as_json(),
            "disposal_due_ms": self.disposal_due_ms,
            "disposal_overdue_ms": self.disposal_overdue_ms,
            "disposal_overdue": self.disposal_overdue,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alarm:
        shelved = data["shelved"]
        oos = data["out_of_service"]
        disposal = data.get("disposal")
        return cls(
            id=int(data["id"]),
            key=data["key"],
            alert=data["alert"],
            enterprise=data["enterprise"],
            hazard_source=data["hazard_source"],
            tag=data["tag"],
            zone=data["zone"],
            priority=Priority(data["priority"]),
            rule_priority=Priority(data["rule_priority"]),
            alarm_class=AlarmClass(data["alarm_class"]),
            level=data["level"],
            state=AlarmState(data["state"]),
            active=bool(data["active"]),
            acknowledged=bool(data["acknowledged"]),
            latched=bool(data["latched"]),
            latching=bool(data["latching"]),
            shelved=None if shelved is None else Shelve(**shelved),
            out_of_service=None if oos is None else OutOfService(**oos),
            suppressed_by=tuple(data["suppressed_by"]),
            raised_ms=data["raised_ms"],
            first_raised_ms=data["first_raised_ms"],
            acknowledged_ms=data["acknowledged_ms"],
            acknowledged_by=data["acknowledged_by"],
            cleared_ms=data["cleared_ms"],
            active_since_ms=data["active_since_ms"],
            changed_ms=int(data["changed_ms"]),
            event_ts_ms=int(data["event_ts_ms"]),
            value=data["value"],
            setpoint=data["setpoint"],
            on_delay_s=float(data["on_delay_s"]),
            summary=data["summary"],
            summary_en=data["summary_en"],
            labels=dict(data["labels"]),
            count=int(data["count"]),
            returns=int(data.get("returns", 0)),
            last_active_ms=data.get("last_active_ms"),
            arrived_ms=data.get("arrived_ms"),
            disposal=None if disposal is None else Disposal(**disposal),
            disposal_due_ms=data.get("disposal_due_ms"),
            disposal_overdue_ms=data.get("disposal_overdue_ms"),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of one alarm, as the outputs (MQTT, InfluxDB, SSE) publish it."""

    seq: int  # the journal entry's id: increasing, unique; consumers de-duplicate on it
    alarm: Alarm  # the snapshot after the change
    action: Action
    from_state: AlarmState
    to_state: AlarmState
    ts_ms: int  # clock time of the change
    user: str | None
    comment: str | None

    @property
    def annunciated(self) -> bool:
        return is_annunciation(self.from_state, self.to_state, self.action)

    def as_json(self) -> dict[str, Any]:
        """The MQTT alarm event payload (docs/alarms.md); plain JSON types only."""
        return {
            "schema": EVENT_SCHEMA,
            "seq": self.seq,
            "action": self.action.value,
            "from_state": self.from_state.value,
            "to_state": self.to_state.value,
            "annunciated": self.annunciated,
            "ts_ms": self.ts_ms,
            "user": self.user,
            "comment": self.comment,
            "alarm": self.alarm.as_json(),
        }


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One row of the immutable journal.

    ``alarm_id`` is None only for a suppression of a key that has no alarm instance yet.
    ``raised_ms`` and ``priority`` are the alarm's after the change, so that KPIs (time to
    acknowledge, priority mix) need nothing but the journal.
    """

    id: int
    alarm_id: int | None
    key: str
    ts_ms: int
    event_ts_ms: int | None
    action: Action
    from_state: AlarmState | None
    to_state: AlarmState | None
    user: str | None
    comment: str | None
    value: float | None
    priority: Priority | None
    raised_ms: int | None

    @property
    def annunciated(self) -> bool:
        return is_annunciation(self.from_state, self.to_state, self.action)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "alarm_id": self.alarm_id,
            "key": self.key,
            "ts_ms": self.ts_ms,
            "event_ts_ms": self.event_ts_ms,
            "action": self.action.value,
            "from_state": None if self.from_state is None else self.from_state.value,
            "to_state": None if self.to_state is None else self.to_state.value,
            "user": self.user,
            "comment": self.comment,
            "value": self.value,
            "priority": None if self.priority is None else self.priority.value,
            "raised_ms": self.raised_ms,
            "annunciated": self.annunciated,
        }
