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


SignedDuration = Annotated[int, PlainValidator(_signed_duration)]
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
    | Unshelve,
    Field(discriminator="type"),
]

OPERATOR_EVENTS = ("ack", "reset", "shelve", "unshelve")
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
    *OPERATOR_EVENTS,
)

AlarmStateName = Literal[
    "normal",
    "unacknowledged",
    "acknowledged",
    "rtn_unacknowledged",
    "latched",
    "shelved",
    "suppressed",
    "out_of_service",
]


# -- expectations ------------------------------------------------------------------------------


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
    state: AlarmStateName | None = None
    priority: Literal["critical", "high", "medium", "low"] | None = None
    count: Annotated[int, Field(ge=0)] | None = None
    """raised_between: exactly this many matching alarms (default: at least one)"""
    flood_between: Window | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Expectation:
        kinds = [
            k
            for k in (
                "raised_between",
                "not_raised",
                "cleared_between",
                "state_at",
                "flood_between",
            )
            if getattr(self, k) is not None
        ]
        if len(kinds) != 1:
            raise ValueError(
                "an expectation needs exactly one of raised_between, not_raised, "
                f"cleared_between, state_at, flood_between; this one has {', '.join(kinds) or 'none'}"
            )
        if self.not_raised is False:
            raise ValueError("not_raised: false expects nothing; use raised_between")
        if (self.state_at is None) != (self.state is None):
            raise ValueError("state_at and state go together")
        if self.flood_between is None and self.alert is None:
            raise ValueError('missing required key alert (an alert name, or "*" for any)')
        if self.flood_between is not None and self.alert is not None:
            raise ValueError("flood_between is about all alarms: leave out alert")
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
