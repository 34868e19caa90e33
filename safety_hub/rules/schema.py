"""Pydantic models of a rule pack file (docs/rules.md).

A rule pack looks like a Prometheus rule file: ``groups`` of ``rules``, each rule an ``alert``
with a typed ``condition`` (discriminated by ``type``), ``labels`` and ``annotations``. Every
model forbids unknown keys and is strict (YAML already types the values). These models check each
field on its own; rules that need the plant (setpoint limits, selectors that match nothing) or
several rules (duplicate names, compound references) live in ``loader.py``.

Durations are strings with a unit (``500ms``, ``30s``, ``5m``, ``1h30m``, ``1d``) and are held as
integer milliseconds. Amounts that may be relative to a tag's range (a deadband, a rate) are a
number in the tag's unit or a string ``"2%"`` (percent of the range span).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field, PlainValidator

from safety_hub.registry.checks import ALL_SETPOINT_KEYS, DISCRETE_KINDS
from safety_hub.registry.schema import TAG_KINDS

PRIORITIES = ("critical", "high", "medium", "low")
"""Alarm priorities, most urgent first."""
ALARM_CLASSES = ("gas", "process", "fault", "sis", "comms", "system")
PLANT_STATES = ("out_of_service",)
"""Words ``suppressed_by`` accepts besides alert names (docs/rules.md, Suppression by design)."""
TEMPLATE_FIELDS = (
    "tag",
    "name",
    "enterprise",
    "hazard_source",
    "unit",
    "equipment",
    "zone",
    "gas",
    "eu",
    "value",
    "setpoint",
    "level",
    "sif",
    "votes",
    "faulty",
    "window",
    "skew",
    "planned_end",
)
"""The ``{{field}}`` placeholders annotations may use."""

_ALERT = re.compile(r"[A-Z][A-Za-z0-9]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_VOTING = re.compile(r"([1-9])oo([1-9])")


# field types ---------------------------------------------------------------------------------


def parse_duration(value: Any) -> int:
    """``"1h30m"`` -> 5_400_000 (milliseconds); raises ``ValueError`` naming the bad value."""
    if not isinstance(value, str):
        shown = "true" if value is True else "false" if value is False else repr(value)
        raise ValueError(f"a duration needs a unit, e.g. 30s, 5m, 1h30m (got {shown})")
    text = value.strip()
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise ValueError(f"bad duration {value!r}: use e.g. 500ms, 30s, 5m, 1h30m, 1d")
        total += float(match.group(1)) * _UNIT_MS[match.group(2)]
        pos = match.end()
    if not text:
        raise ValueError("a duration must not be empty")
    return round(total)


def format_duration(ms: int) -> str:
    """5_400_000 -> ``"1h30m"``; the inverse of ``parse_duration`` for whole units."""
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    if ms:
        out += f"{ms}ms"
    return out


class Amount(NamedTuple):
    """A number in the tag's unit, or a percentage of the tag's range span."""

    value: float
    percent: bool = False

    def resolve(self, span: float) -> float:
        return self.value * span / 100.0 if self.percent else self.value

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{self.value:g}"


def _amount(value: Any) -> Amount:
    if isinstance(value, bool):
        raise ValueError("must be a number or a percentage like '2%'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return Amount(float(value))
    if isinstance(value, str):
        match = _PERCENT.fullmatch(value.strip())
        if match is not None:
            return Amount(float(match.group(1)), percent=True)
    raise ValueError("must be a number in the tag's unit or a percentage of its range like '2%'")


def _setpoint(value: Any) -> str | float:
    if isinstance(value, bool):
        raise ValueError("must be a setpoint key or a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in ALL_SETPOINT_KEYS:
        return value
    raise ValueError(
        f"must be a registry setpoint key ({', '.join(ALL_SETPOINT_KEYS)}) or a number in the "
        "tag's unit"
    )


def _str_list(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError("must be a text or a list of texts (quote numbers in YAML)")
    if not items:
        raise ValueError("must not be an empty list")
    return tuple(items)


def _kind_list(value: Any) -> tuple[str, ...]:
    kinds = _str_list(value)
    for kind in kinds:
        if kind not in TAG_KINDS:
            raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(TAG_KINDS)}")
    return kinds


def _alert_list(value: Any) -> tuple[str, ...]:
    return _str_list(value)


def _voting(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be MooN, e.g. 1oo2")
    match = _VOTING.fullmatch(value)
    if not match or int(match.group(1)) > int(match.group(2)):
        raise ValueError("must be MooN with M ≤ N, e.g. 1oo2")
    return value


def _kind_durations(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not value:
        raise ValueError("should be a mapping of tag kind to duration, e.g. {toxic_gas: 2h}")
    out: dict[str, int] = {}
    for kind, text in value.items():
        if kind not in TAG_KINDS or kind in DISCRETE_KINDS:
            measured = [k for k in TAG_KINDS if k not in DISCRETE_KINDS]
            raise ValueError(f"{kind!r} is not a measured tag kind; kinds: {', '.join(measured)}")
        ms = parse_duration(text)
        if ms <= 0:
            raise ValueError(f"{kind}: the duration must be above 0, got {text!r}")
        out[kind] = ms
    return out


Duration = Annotated[int, PlainValidator(parse_duration)]
"""milliseconds"""
AmountField = Annotated[Amount, PlainValidator(_amount)]
Setpoint = Annotated[str | float, PlainValidator(_setpoint)]
StrList = Annotated[tuple[str, ...], PlainValidator(_str_list)]
KindList = Annotated[tuple[str, ...], PlainValidator(_kind_list)]
AlertList = Annotated[tuple[str, ...], PlainValidator(_alert_list)]
Voting = Annotated[str, PlainValidator(_voting)]
KindDurations = Annotated[dict[str, int], PlainValidator(_kind_durations)]
Positive = Annotated[float, Field(gt=0)]

NO_AMOUNT = Amount(0.0)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# selectors -----------------------------------------------------------------------------------


class Selector(_Model):
    """Which tags a rule applies to: every given field must match (a list matches any of its
    items); an empty selector matches every tag."""

    tag: StrList | None = None
    kind: KindList | None = None
    enterprise: StrList | None = None
    hazard_source: StrList | None = None
    zone: StrList | None = None
    gas: StrList | None = None


# conditions ----------------------------------------------------------------------------------


class _Delays(_Model):
    on_delay: Duration = 0
    """the condition must hold this long (event time) before the alarm is raised"""
    off_delay: Duration = 0
    """the condition must be gone this long before the alarm clears"""


class Threshold(_Delays):
    type: Literal["threshold"]
    setpoint: Setpoint
    direction: Literal["high", "low"] | None = None
    """default: low for the setpoint keys ll and l, high otherwise; required with a number"""
    deadband: AmountField = NO_AMOUNT


class RateOfChange(_Delays):
    type: Literal["rate_of_change"]
    rate: AmountField
    """per minute, in the tag's unit or as a percentage of its range span"""
    direction: Literal["rising", "falling", "either"] = "rising"
    window: Duration = 60_000
    deadband: AmountField = NO_AMOUNT


class Stale(_Model):
    type: Literal["stale"]
    intervals: Positive = 3.0
    """the alarm is raised when nothing arrived for intervals × the tag's interval_s"""


class Frozen(_Model):
    type: Literal["frozen"]
    after: KindDurations
    """per tag kind: a valid value identical for this long raises the alarm (tags of other
    kinds are not watched)"""


class BadQuality(_Delays):
    type: Literal["bad_quality"]
    qualities: tuple[Literal["bad", "uncertain"], ...] = ("bad",)


class OutOfRange(_Delays):
    type: Literal["out_of_range"]


class VotingCondition(_Delays):
    type: Literal["voting"]
    report: Literal["leak", "discrepancy", "degraded"]
    setpoint: Setpoint = "l2"
    direction: Literal["high", "low"] = "high"
    deadband: AmountField = NO_AMOUNT
    degrade_to: Voting = "1oo2"
    """the vote while a detector is faulty (bad quality, out of range, stale, out of service)"""
    stale_intervals: Positive = 3.0
    """a detector silent for this many of its intervals counts as faulty"""


SisStateName = Literal["trip", "bypass", "bypass_overdue", "fault", "voting_degraded", "bit"]


class SisState(_Delays):
    type: Literal["sis_state"]
    state: SisStateName
    bit: Annotated[int, Field(ge=0, le=62)] | None = None
    """for ``bit`` (required) and ``voting_degraded`` (default 1): bit N of a status word"""
    max_duration: Duration | None = None
    """``bypass_overdue``: the planned end of a bypass whose tag has no planned_bypass_end"""


class Compound(_Delays):
    type: Literal["compound"]
    all: AlertList | None = None
    any: AlertList | None = None
    scope: Literal["hazard_source", "enterprise"] = "hazard_source"


class LinkDown(_Delays):
    type: Literal["link_down"]
    offline: bool = True
    """the gateway's last-will (``{"state": "offline"}``) raises the alarm"""
    silence: Duration | None = None
    """no reading from the enterprise for this long raises the alarm"""


class ClockSkew(_Delays):
    type: Literal["clock_skew"]
    threshold: Duration


ConditionModel = Annotated[
    Threshold
    | RateOfChange
    | Stale
    | BadQuality
    | OutOfRange
    | VotingCondition
    | SisState
    | Compound
    | LinkDown
    | ClockSkew
    | Frozen,
    Field(discriminator="type"),
]
CONDITION_TYPES: tuple[str, ...] = (
    "threshold",
    "rate_of_change",
    "stale",
    "bad_quality",
    "out_of_range",
    "voting",
    "sis_state",
    "compound",
    "link_down",
    "clock_skew",
    "frozen",
)
CONDITION_MODELS: dict[str, type[BaseModel]] = {
    "threshold": Threshold,
    "rate_of_change": RateOfChange,
    "stale": Stale,
    "bad_quality": BadQuality,
    "out_of_range": OutOfRange,
    "voting": VotingCondition,
    "sis_state": SisState,
    "compound": Compound,
    "link_down": LinkDown,
    "clock_skew": ClockSkew,
    "frozen": Frozen,
}
ENTERPRISE_TYPES = frozenset({"link_down", "clock_skew"})
"""Condition types whose alarm instances are per enterprise, not per tag."""


# rules ---------------------------------------------------------------------------------------


def _label_names(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("should be a mapping (name: text ...)")
    for key, text in value.items():
        if not isinstance(key, str) or not _LABEL_NAME.fullmatch(key):
            raise ValueError(f"label name {key!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
        if not isinstance(text, str):
            raise ValueError(f"{key}={text!r}: a label value is text (quote it in YAML)")
    return dict(value)


StrMap = Annotated[dict[str, str], PlainValidator(_label_names)]


class RuleModel(_Model):
    alert: str
    select: Selector = Selector()
    condition: ConditionModel
    latch: bool = False
    labels: StrMap
    """``priority`` and ``class`` are required; ``level`` ("1", "2") is optional"""
    annotations: StrMap
    """``summary`` (Chinese) and ``summary_en`` are required"""
    suppressed_by: AlertList = ()


class GroupModel(_Model):
    name: Annotated[str, Field(min_length=1)]
    rules: list[RuleModel]


class RuleFileModel(_Model):
    groups: list[GroupModel]


def is_alert_name(name: str) -> bool:
    """CamelCase: an upper-case letter, then letters and digits."""
    return _ALERT.fullmatch(name) is not None


SIS_STATES: tuple[str, ...] = get_args(SisStateName)
