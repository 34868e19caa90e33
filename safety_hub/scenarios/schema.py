"""Pydantic models of a scenario file (format in docs/scenarios.md). Strict: unknown keys and
values of the wrong type are errors, every one reported with its ``file:line:col``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    model_validator,
)

from safety_hub.rules.schema import Duration, parse_duration

FORMAT_VERSION = 1
DEFAULT_START = "2026-06-01T08:00:00+08:00"


def _signed_duration(value: Any) -> int:
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_duration(value.strip()[1:])
    return parse_duration(value)


def _window(value: Any) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("must be a list of two durations [from, to], e.g. [30s, 2m]")
    lo, hi = parse_duration(value[0]), parse_duration(value[1])
    if hi < lo:
        raise ValueError(f"window [{value[0]}, {value[1]}] ends before it starts")
    return lo, hi


def _reading_ts(value: Any) -> tuple[str, int]:
    """``("offset", ms)`` from the event's time (``-5m``, ``+2h``) or ``("epoch", ms)``."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("an absolute ts needs a UTC offset, e.g. 2026-06-01T08:05:00+08:00")
        return "epoch", round(value.timestamp() * 1000)
    if isinstance(value, str) and value.strip()[:1] in ("+", "-"):
        text = value.strip()
        ms = parse_duration(text[1:])
        return "offset", -ms if text[0] == "-" else ms
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            when = None
        if when is not None:
            return _reading_ts(when)
    raise ValueError(
        f"ts {value!r}: give a signed offset from at (-5m, +2h, +0s) or an ISO 8601 time "
        "with its UTC offset (2026-06-01T08:05:00+08:00)"
    )


def _states(value: Any) -> tuple[str, ...]:
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError("state: a state name, or a non-empty list of them")
    bad = [n for n in names if n not in ALARM_STATES]
    if bad:
        raise ValueError(f"unknown state {bad[0]!r}; use one of {', '.join(ALARM_STATES)}")
    return tuple(names)


def expected_texts(value: Any) -> tuple[str, ...]:
    texts = value if isinstance(value, list) else [value]
    if not texts or not all(isinstance(x, str) and x.strip() for x in texts):
        raise ValueError("expect_load_error: a text, or a non-empty list of non-empty texts")
    return tuple(texts)


SignedDuration = Annotated[int, PlainValidator(_signed_duration)]
ReadingTs = Annotated[tuple[str, int], PlainValidator(_reading_ts)]
States = Annotated[tuple[str, ...], PlainValidator(_states)]
Texts = Annotated[tuple[str, ...], PlainValidator(expected_texts)]
Window = Annotated[tuple[int, int], PlainValidator(_window)]
Number = Annotated[float, Field(strict=False)]
PositiveNumber = Annotated[float, Field(strict=False, gt=0)]
NonNegative = Annotated[float, Field(strict=False, ge=0)]
Stability = Literal["A", "B", "C", "D", "E", "F"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class WindModel(_Model):
    speed_m_s: PositiveNumber
    from_deg: Annotated[float, Field(strict=False, ge=0, le=360)]
    """where the wind blows from, degrees clockwise from north"""
    stability: Stability = "D"


class GatewayModelSpec(_Model):
    batch: Annotated[int, Field(ge=1, le=10_000)] = 100
    keepalive: Duration = 30_000
    clock_skew: SignedDuration = 0
    store_and_forward: bool = False
    critical_topic: bool = True
    """contract revision 1.1: gas and SIS readings on the critical topic; false: 1.0"""


# -- devices -----------------------------------------------------------------------------------


class _Device(_Model):
    id: Annotated[str, Field(min_length=1)]
    enterprise: str | None = None
    """the enterprise of the device's tags, when a tag name alone is ambiguous"""


class LeakDevice(_Device):
    type: Literal["leak"]
    gas: str
    x_m: Number | None = None
    y_m: Number | None = None
    near: str | None = None
    """a tag whose registry coordinates are the leak's position (instead of x_m, y_m)"""
    rate_g_s: NonNegative = 0.0
    height_m: NonNegative = 0.0
    sigma0_m: PositiveNumber = 1.0

    @model_validator(mode="after")
    def _position(self) -> LeakDevice:
        if self.near is None and (self.x_m is None or self.y_m is None):
            raise ValueError("give the leak's position: x_m and y_m, or near: <tag>")
        if self.near is not None and (self.x_m is not None or self.y_m is not None):
            raise ValueError("give either x_m/y_m or near, not both")
        return self


class TankDevice(_Device):
    type: Literal["tank"]
    level: str
    pressure: str | None = None
    temperature: str | None = None
    diameter_m: PositiveNumber = 3.0
    height_m: PositiveNumber | None = None
    """default: 5 % above the level transmitter's range"""
    level_m: NonNegative = 1.0
    pressure_mpa: Number = 0.2
    temperature_c: Number = 20.0
    ambient_c: Number = 20.0
    inflow_m3_h: NonNegative = 0.0
    outflow_m3_h: NonNegative = 0.0
    inflow_temperature_c: Number | None = None
    relief_mpa: PositiveNumber | None = None


class SisInputSpec(_Model):
    tag: str
    trip_at: Number
    direction: Literal["high", "low"] = "high"


class SisDevice(_Device):
    type: Literal["sis"]
    sif: str
    inputs: Annotated[list[SisInputSpec], Field(min_length=1)]
    voting: str = "1oo1"
    degrade_to: str | None = None
    """the vote while an input is faulty, e.g. 2oo2 for a 2oo3 function"""
    closes: str | None = None
    """id of a tank whose inlet the trip closes"""
    latch: bool = True
    auto_expire: bool = False
    """remove a bypass by itself at its planned end (else it stays on, overdue)"""


class DetectorDevice(_Device):
    type: Literal["detector"]
    tags: Annotated[list[str], Field(min_length=1)]
    t90: Duration = 20_000
    noise: NonNegative | None = None
    """one standard deviation, in the tag's unit (default 0.2 % of the span)"""
    drift_per_day: Number = 0.0


class ProcessDevice(_Device):
    type: Literal["process"]
    tag: str
    value: Number
    swing: NonNegative = 0.0
    period: Duration = 1_800_000
    noise: NonNegative = 0.0


Device = Annotated[
    LeakDevice | TankDevice | SisDevice | DetectorDevice | ProcessDevice,
    Field(discriminator="type"),
]


# -- timeline ----------------------------------------------------------------------------------


class _Event(_Model):
    at: Duration
    note: str | None = None


class LeakStart(_Event):
    type: Literal["leak_start"]
    device: str
    rate_g_s: NonNegative | None = None


class LeakStop(_Event):
    type: Literal["leak_stop"]
    device: str


class LeakRate(_Event):
    type: Literal["leak_rate"]
    device: str
    rate_g_s: NonNegative


class WindChange(_Event):
    type: Literal["wind"]
    speed_m_s: PositiveNumber | None = None
    from_deg: Annotated[float, Field(strict=False, ge=0, le=360)] | None = None
    stability: Stability | None = None


class DetectorFaultEvent(_Event):
    type: Literal["detector_fault"]
    tag: str
    enterprise: str | None = None
    fault: Literal["stuck", "out_of_range", "zero_drift", "bad_quality", "comm_loss"]
    offset: Number = 0.0
    """zero_drift: the offset in the tag's unit; out_of_range: < 0 for the low failure current"""


class DetectorRepaired(_Event):
    type: Literal["detector_ok"]
    tag: str
    enterprise: str | None = None


class ForceValue(_Event):
    type: Literal["force"]
    tag: str
    enterprise: str | None = None
    value: Number
    quality: Literal["good", "bad", "uncertain"] = "good"


class ReleaseValue(_Event):
    type: Literal["release"]
    tag: str
    enterprise: str | None = None


class TankFlow(_Event):
    type: Literal["tank_flow"]
    device: str
    inflow_m3_h: NonNegative | None = None
    outflow_m3_h: NonNegative | None = None


class BypassOn(_Event):
    type: Literal["bypass_on"]
    device: str
    until: Duration | None = None
    """planned end, scenario time"""


class BypassOff(_Event):
    type: Literal["bypass_off"]
    device: str


class SisFault(_Event):
    type: Literal["sis_fault"]
    device: str
    active: bool = True


class SisReset(_Event):
    type: Literal["sis_reset"]
    device: str


class GatewayDown(_Event):
    type: Literal["gateway_down"]
    enterprise: str | None = None
    last_will: bool = True
    """true: the link dies (the broker publishes the last-will); false: a clean disconnect"""


class GatewayUp(_Event):
    type: Literal["gateway_up"]
    enterprise: str | None = None


class ClockSkew(_Event):
    type: Literal["clock_skew"]
    enterprise: str | None = None
    skew: SignedDuration


class OperatorEvent(_Event):
    """An operator action of the timeline: on which alarm(s), by whom."""

    alert: str
    enterprise: str | None = None
    tag: str | None = None
    zone: str | None = None
    hazard_source: str | None = None
    user: Annotated[str, Field(min_length=1)] = "tester"
    comment: str | None = None
    expect_refused: Annotated[str, Field(min_length=1)] | None = None
    """the alarm service must refuse the action: a fragment of ``code: message``"""


class Acknowledge(OperatorEvent):
    type: Literal["ack"]


class Reset(OperatorEvent):
    type: Literal["reset"]


class Shelve(OperatorEvent):
    type: Literal["shelve"]
    duration: Duration
    reason: Annotated[str, Field(min_length=1)]


class Unshelve(OperatorEvent):
    type: Literal["unshelve"]


class RemoveFromService(OperatorEvent):
    type: Literal["out_of_service"]
    reason: Annotated[str, Field(min_length=1)]


class ReturnToService(OperatorEvent):
    type: Literal["return_to_service"]


DisposalCategory = Literal[
    "real_release", "false_alarm", "maintenance", "instrument_fault", "other"
]


class Dispose(OperatorEvent):
    """The disposal record of the alarm's current episode (docs/alarms.md, "Disposal")."""

    type: Literal["dispose"]
    category: DisposalCategory
    text: Annotated[str, Field(min_length=1, max_length=2000)]


AnyOperatorEvent = (
    Acknowledge | Reset | Shelve | Unshelve | RemoveFromService | ReturnToService | Dispose
)


class InjectReading(_Event):
    """One reading with its own timestamp, sent in a message of its own by the gateway."""

    type: Literal["reading"]
    tag: str
    enterprise: str | None = None
    value: Number
    quality: Literal["good", "bad", "uncertain"] = "good"
    ts: ReadingTs | None = None
    """default: the event's time"""
    expect_rejected: Annotated[str, Field(min_length=1)] | None = None
    """the hub must reject it: a fragment of ``reason: detail`` of its rejection report"""


Event = Annotated[
    LeakStart
    | LeakStop
    | LeakRate
    | WindChange
    | DetectorFaultEvent
    | DetectorRepaired
    | ForceValue
    | ReleaseValue
    | TankFlow
    | BypassOn
    | BypassOff
    | SisFault
    | SisReset
    | GatewayDown
    | GatewayUp
    | ClockSkew
    | Acknowledge
    | Reset
    | Shelve
    | Unshelve
    | RemoveFromService
    | ReturnToService
    | Dispose
    | InjectReading,
    Field(discriminator="type"),
]

OPERATOR_EVENTS = (
    "ack",
    "reset",
    "shelve",
    "unshelve",
    "out_of_service",
    "return_to_service",
    "dispose",
)
DEVICE_TYPES = ("leak", "tank", "sis", "detector", "process")
EVENT_TYPES = (
    "leak_start",
    "leak_stop",
    "leak_rate",
    "wind",
    "detector_fault",
    "detector_ok",
    "force",
    "release",
    "tank_flow",
    "bypass_on",
    "bypass_off",
    "sis_fault",
    "sis_reset",
    "gateway_down",
    "gateway_up",
    "clock_skew",
    "reading",
    *OPERATOR_EVENTS,
)

ALARM_STATES = (
    "normal",
    "unacknowledged",
    "acknowledged",
    "rtn_unacknowledged",
    "latched",
    "shelved",
    "suppressed",
    "out_of_service",
)


# -- expectations ------------------------------------------------------------------------------


class Bounds(_Model):
    min: Annotated[int, Field(ge=0)] | None = None
    max: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _some(self) -> Bounds:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        return self


class AlarmRef(_Model):
    """An alarm named by its alert and subject (``first_out``)."""

    alert: str
    enterprise: str | None = None
    tag: str | None = None
    zone: str | None = None
    hazard_source: str | None = None


class NotifiedRef(_Model):
    """Who was told (``notified``): a person of the people directory, optionally by a channel
    and for a kind of message (alarm, escalation, repeat, clear, overdue)."""

    person: Annotated[str, Field(min_length=1)]
    channel: Literal["email", "webhook", "dingtalk", "wecom", "feishu", "sms"] | None = None
    kind: Literal["alarm", "escalation", "repeat", "clear", "overdue"] | None = None


EXPECTATION_KINDS = (
    "raised_between",
    "not_raised",
    "cleared_between",
    "state_at",
    "flood_between",
    "no_flood",
    "annunciations",
    "first_out",
    "notified",
    "not_notified",
    "overdue_between",
    "disposal_at",
)
DISPOSAL_STATUSES = ("none", "pending", "overdue", "disposed")
_WITHIN_KINDS = ("annunciations", "first_out", "no_flood", "notified", "not_notified")
_SUBJECTS = ("enterprise", "tag", "zone", "hazard_source")


class Expectation(_Model):
    alert: str | None = None
    """an alert of the rule pack, or "*" for any"""
    enterprise: str | None = None
    tag: str | None = None
    zone: str | None = None
    hazard_source: str | None = None
    raised_between: Window | None = None
    not_raised: bool | None = None
    cleared_between: Window | None = None
    state_at: Duration | None = None
    state: States | None = None
    """one state, or a list: any of them"""
    priority: Literal["critical", "high", "medium", "low"] | None = None
    count: Annotated[int, Field(ge=0)] | None = None
    """raised_between: exactly this many matching alarms (default: at least one)"""
    flood_between: Window | None = None
    no_flood: bool | None = None
    annunciations: Bounds | None = None
    """how many times matching alarms annunciated (entered unacknowledged)"""
    first_out: AlarmRef | None = None
    """the first matching alarm to annunciate"""
    notified: NotifiedRef | None = None
    """a notification about a matching alarm was sent to this person within the window"""
    not_notified: bool | None = None
    """no notification about a matching alarm was sent within the window"""
    within: Window | None = None
    """annunciations, first_out, no_flood, notified, not_notified: only this window (default:
    the whole run)"""
    overdue_between: Window | None = None
    """a matching warning went overdue for disposal (``disposal_overdue``) within the window"""
    disposal_at: Duration | None = None
    disposal: Literal["none", "pending", "overdue", "disposed"] | None = None
    """disposal_at: the disposal status every matching alarm had then"""

    @model_validator(mode="after")
    def _one_kind(self) -> Expectation:
        kinds = [k for k in EXPECTATION_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"an expectation needs exactly one of {', '.join(EXPECTATION_KINDS)}; "
                f"this one has {', '.join(kinds) or 'none'}"
            )
        kind = kinds[0]
        if self.not_raised is False:
            raise ValueError("not_raised: false expects nothing; use raised_between")
        if self.not_notified is False:
            raise ValueError("not_notified: false expects nothing; use notified")
        if self.no_flood is False:
            raise ValueError("no_flood: false expects nothing; use flood_between")
        if (self.state_at is None) != (self.state is None):
            raise ValueError("state_at and state go together")
        if (self.disposal_at is None) != (self.disposal is None):
            raise ValueError("disposal_at and disposal go together")
        if self.within is not None and kind not in _WITHIN_KINDS:
            raise ValueError(f"within goes with {', '.join(_WITHIN_KINDS)}, not {kind}")
        if kind in ("flood_between", "no_flood"):
            named = [k for k in ("alert", *_SUBJECTS) if getattr(self, k) is not None]
            if named:
                raise ValueError(f"{kind} is about all alarms: leave out {', '.join(named)}")
        elif self.alert is None and kind != "first_out":
            raise ValueError('missing required key alert (an alert name, or "*" for any)')
        return self


class ScenarioModel(_Model):
    scenario: Literal[1]
    """format version"""
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    plant: str = "sample"
    """the bundled sample park, or a registry file relative to the scenario"""
    rules: str | None = None
    """rule file or folder relative to the scenario; default: the shipped alert_rules/"""
    start: Annotated[AwareDatetime, Field(strict=False)] = datetime.fromisoformat(DEFAULT_START)
    duration: Duration
    seed: int = 1
    step: Duration = 1000
    enterprises: list[str] | None = None
    """the enterprises simulated (and hosted by the replay's hub); default: all of the plant"""
    wind: WindModel = WindModel(speed_m_s=2.0, from_deg=270.0)
    gateways: dict[str, GatewayModelSpec] = {}
    devices: list[Device] = []
    timeline: list[Event] = []
    expect: list[Expectation] = []
    only_expected: bool = False
    """fail on any raised alarm that no raised_between expectation names"""
    expect_load_error: Texts | None = None
    """the file must fail to load, with errors containing each of these texts"""
