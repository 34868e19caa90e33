"""Pydantic models of a notification policy file (docs/notifications.md, "Policies").

A file holds ``policies``; each names which alarms it takes (``match``), what starts it (``trigger``:
an annunciation, or a warning not disposed in time; ``trigger``, not ``on``, which YAML
reads as true), its escalation ``steps`` (each ``after`` a
duration, ``to`` targets, an optional ``channels`` filter and ``tier`` filter, ``unless``), an
optional ``repeat`` while unacknowledged and an optional quieter message on return to normal
(``on_clear``). Models forbid unknown keys and are strict; checks that need the people directory
or the rule pack live in ``loader.py``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator

from safety_hub.notify.contacts import CHANNELS, TARGET_KINDS
from safety_hub.rules.schema import ALARM_CLASSES, PRIORITIES, parse_duration

TIER_NAMES = ("red", "orange", "yellow", "blue")
"""Warning tiers, most urgent first; red is critical, orange high, yellow medium, blue low."""
TIER_OF_PRIORITY = {"critical": "red", "high": "orange", "medium": "yellow", "low": "blue"}
TRIGGERS = ("annunciation", "disposal_overdue")
"""What starts a policy's chain: an annunciation (default) or a transition whose action is
``disposal_overdue`` (a red/orange warning not disposed in its time limit)."""
UNLESS = ("acknowledged", "never")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def _duration(value: Any) -> int:
    ms = parse_duration(value)
    if ms < 0:
        raise ValueError("must not be negative")
    return ms


def _positive_duration(value: Any) -> int:
    ms = parse_duration(value)
    if ms <= 0:
        raise ValueError(f"must be above 0, got {value!r}")
    return ms


def _texts(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("must not be an empty list")
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError("must be a text or a list of texts (quote numbers in YAML)")
    return tuple(items)


def _choices(allowed: tuple[str, ...], what: str) -> Any:
    def check(value: Any) -> tuple[str, ...]:
        items = _texts(value)
        for item in items:
            if item not in allowed:
                raise ValueError(f"unknown {what} {item!r}; {what}s: {', '.join(allowed)}")
        return items

    return PlainValidator(check)


def _target(value: Any) -> tuple[str, ...]:
    items = _texts(value)
    for item in items:
        kind, _, name = item.partition(":")
        if kind not in TARGET_KINDS or not name:
            raise ValueError(f"bad target {item!r}: write role:NAME, roster:NAME or person:ID")
    return items


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError("must be lower case letters, digits, '_', '-' or '.', e.g. park-gas")
    return value


Duration = Annotated[int, PlainValidator(_duration)]
"""milliseconds, 0 or more"""
PositiveDuration = Annotated[int, PlainValidator(_positive_duration)]
Texts = Annotated[tuple[str, ...], PlainValidator(_texts)]
Targets = Annotated[tuple[str, ...], PlainValidator(_target)]
Tiers = Annotated[tuple[str, ...], _choices(TIER_NAMES, "tier")]
Priorities = Annotated[tuple[str, ...], _choices(PRIORITIES, "priority")]
Classes = Annotated[tuple[str, ...], _choices(ALARM_CLASSES, "class")]
Channels = Annotated[tuple[str, ...], _choices(CHANNELS, "channel")]
Name = Annotated[str, PlainValidator(_name)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class MatchModel(_Model):
    """Which alarms a policy takes: every key given must match (a list: any of its items)."""

    tier: Tiers | None = None
    priority: Priorities | None = None
    alarm_class: Classes | None = Field(default=None, alias="class")
    enterprise: Texts | None = None
    hazard_source: Texts | None = None
    alert: Texts | None = None


class StepModel(_Model):
    after: Duration = 0
    to: Targets
    channels: Channels | None = None
    tier: Tiers | None = None
    unless: Literal["acknowledged", "never"] = "acknowledged"


class RepeatModel(_Model):
    every: PositiveDuration
    max: int = Field(ge=1, le=20)


class ClearModel(_Model):
    to: Targets | None = None
    channels: Channels | None = None


class PolicyModel(_Model):
    name: Name
    description: str = ""
    trigger: Literal["annunciation", "disposal_overdue"] = "annunciation"
    match: MatchModel = MatchModel()
    steps: list[StepModel] = Field(min_length=1, max_length=10)
    repeat: RepeatModel | None = None
    on_clear: ClearModel | None = None


class PolicyFileModel(_Model):
    policies: list[PolicyModel]
