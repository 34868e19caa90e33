"""The loaded people and duty rosters: immutable, resolved, what the directory answers from.

A roster's day is tiled by its shifts (``08:00-20:00`` and ``20:00-08:00``); a shift that
crosses midnight belongs to the date it starts on. Who is on a shift of a date comes from the
dated override for that (date, shift) if there is one, else from the rota: cycle day
``(date - anchor) mod len(cycle)``, so the cycle rotates by one entry per day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from safety_hub.notify.contacts import ContactPoint, Recipient

DAY_MIN = 24 * 60


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    roles: tuple[str, ...]
    enterprises: frozenset[str] | None
    """the enterprises the person covers; None: the whole park"""
    contacts: tuple[ContactPoint, ...]
    name_en: str | None = None
    title: str | None = None

    @property
    def park_wide(self) -> bool:
        return self.enterprises is None

    def covers(self, enterprise: str | None) -> bool:
        """A park-wide person covers every alarm; an enterprise's person only that
        enterprise's alarms (not a park-wide one, ``enterprise`` None)."""
        if self.enterprises is None:
            return True
        return enterprise is not None and enterprise in self.enterprises

    def recipient(self) -> Recipient:
        return Recipient(self.id, self.name, self.roles, self.contacts)


@dataclass(frozen=True, slots=True)
class Shift:
    name: str
    start_min: int
    """minutes after local midnight"""
    end_min: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end_min <= self.start_min

    @property
    def minutes(self) -> int:
        return (self.end_min - self.start_min) % DAY_MIN or DAY_MIN

    def label(self) -> str:
        return f"{hhmm(self.start_min)}-{hhmm(self.end_min)}"


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class Override:
    people: tuple[str, ...]
    reason: str | None


@dataclass(frozen=True, slots=True)
class ShiftSlot:
    """One shift of one date: who is on it, from when to when (epoch ms)."""

    roster: str
    shift: str
    date: date
    start_ms: int
    end_ms: int
    people: tuple[str, ...]
    override: Override | None


@dataclass(frozen=True, slots=True)
class Roster:
    name: str
    title: str | None
    time_zone: str
    shifts: tuple[Shift, ...]
    """in the order of the day, the first starting earliest"""
    anchor: date
    cycle: tuple[Mapping[str, tuple[str, ...]], ...]
    overrides: Mapping[tuple[date, str], Override]

    def slot_at(self, at_ms: int) -> ShiftSlot:
        """The shift running at ``at_ms`` (the shifts tile the day, so there is one)."""
        tz = ZoneInfo(self.time_zone)
        local = datetime.fromtimestamp(at_ms / 1000, tz)
        minute = local.hour * 60 + local.minute
        today = local.date()
        for shift in self.shifts:
            if not shift.crosses_midnight:
                if shift.start_min <= minute < shift.end_min:
                    return self.slot(shift, today)
            elif minute >= shift.start_min:
                return self.slot(shift, today)
            elif minute < shift.end_min:
                return self.slot(shift, today - timedelta(days=1))
        raise AssertionError(f"roster {self.name}: shifts do not tile the day")  # pragma: no cover

    def slot(self, shift: Shift, day: date) -> ShiftSlot:
        """``shift`` of the date ``day`` (the date it starts on)."""
        tz = ZoneInfo(self.time_zone)
        start = datetime.combine(day, _time(shift.start_min), tz)
        end_day = day + timedelta(days=1) if shift.crosses_midnight else day
        end = datetime.combine(end_day, _time(shift.end_min), tz)
        override = self.overrides.get((day, shift.name))
        if override is not None:
            people = override.people
        else:
            entry = self.cycle[(day - self.anchor).days % len(self.cycle)]
            people = entry.get(shift.name, ())
        return ShiftSlot(
            self.name,
            shift.name,
            day,
            int(start.timestamp() * 1000),
            int(end.timestamp() * 1000),
            people,
            override,
        )

    def next_slot(self, slot: ShiftSlot) -> ShiftSlot:
        """The shift after ``slot``."""
        return self.slot_at(slot.end_ms)


def _time(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)
