"""Pydantic models of the people and rosters file (docs/people.md).

They check each field on its own: unknown keys, types, the closed set of roles and channels,
the shape of ids, times and time zones. What relates fields (unique ids, enterprise codes
against the plant, a contact URL's scheme against its channel, shifts that tile the day,
people named by rosters) is checked in ``loader.py`` so that every problem has its position.

Strict like the plant registry: a string field wants a string. Unquoted ``20:00`` is a number
in YAML 1.1 (sexagesimal), so shift times are written quoted (``"20:00"``); dates are YAML
dates (``2026-01-05``) or ISO strings.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Callable
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from safety_hub.notify.contacts import CHANNELS

ROLES: tuple[str, ...] = (
    "enterprise_principal",
    "enterprise_safety_officer",
    "enterprise_duty",
    "instrument_technician",
    "park_duty_officer",
    "park_safety_director",
    "regulator",
)
"""The closed set of roles (docs/people.md, "Roles")."""

PARK_ROLES = frozenset({"park_duty_officer", "park_safety_director", "regulator"})
"""Roles that only a park-wide person holds."""
ENTERPRISE_ROLES = frozenset(
    {"enterprise_principal", "enterprise_safety_officer", "enterprise_duty"}
)
"""Roles that only a person scoped to enterprises holds."""


CHANNEL_SCHEMES: dict[str, tuple[str, ...]] = {
    "email": ("mailto", "mailtos"),
    "webhook": ("json", "jsons", "form", "forms", "xml", "xmls"),
    "dingtalk": ("dingtalk",),
    "wecom": ("wecombot",),
    "feishu": ("feishu",),
    "sms": ("json", "jsons", "form", "forms"),
}
"""The apprise URL schemes each channel takes (an SMS gateway is reached through its HTTP
webhook)."""

_ID = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def _ident(value: str) -> str:
    if not _ID.fullmatch(value) or len(value) > 64:
        raise ValueError(
            "must be 1-64 lower-case letters, digits, '.', '-' or '_', starting with a "
            "letter or digit"
        )
    return value


def _one_of(what: str, allowed: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown {what}; {hint}{what}s: {', '.join(allowed)}")
        return value

    return check


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if not value.isprintable():
        raise ValueError("must be one line without control characters")
    return value


def _hhmm(value: str) -> str:
    if not _HHMM.fullmatch(value):
        raise ValueError('must be a time of day "HH:MM" (00:00 to 23:59), quoted in YAML')
    return value


def _zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not an IANA time zone (e.g. Asia/Shanghai)") from None
    return value


Role = Annotated[str, AfterValidator(_one_of("role", ROLES))]
Channel = Annotated[str, AfterValidator(_one_of("channel", CHANNELS))]
Ident = Annotated[str, AfterValidator(_ident)]
Text = Annotated[str, AfterValidator(_text)]
HhMm = Annotated[str, AfterValidator(_hhmm)]
Zone = Annotated[str, AfterValidator(_zone)]
Day = Annotated[date, Field(strict=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ContactModel(_Model):
    channel: Channel
    url: Annotated[str, Field(min_length=1, max_length=2000)]


class PersonModel(_Model):
    id: Ident
    name: Text
    name_en: Text | None = None
    title: Text | None = None
    roles: Annotated[list[Role], Field(min_length=1)]
    scope: Ident | list[Ident]
    """``park`` (the whole park) or one or more enterprise codes of the plant registry."""
    contacts: Annotated[list[ContactModel], Field(min_length=1)]


class ShiftModel(_Model):
    name: Ident
    start: HhMm
    end: HhMm


class OverrideModel(_Model):
    date: Day
    shift: Ident
    people: Annotated[list[Ident], Field(min_length=1)]
    reason: Text | None = None


class RotaModel(_Model):
    anchor: Day
    """The date (in the roster's time zone) of the cycle's first day."""
    cycle: Annotated[list[dict[str, list[Ident]]], Field(min_length=1)]
    """One entry per day: shift name -> the people on that shift."""


class RosterModel(_Model):
    name: Ident
    title: Text | None = None
    time_zone: Zone | None = None
    shifts: Annotated[list[ShiftModel], Field(min_length=1)]
    rota: RotaModel
    overrides: list[OverrideModel] = []


class PeopleDoc(_Model):
    version: Literal[1]
    time_zone: Zone = "Asia/Shanghai"
    people: Annotated[list[PersonModel], Field(min_length=1)]
    rosters: list[RosterModel] = []
