"""People and duty rosters (docs/people.md), read-only: who a warning reaches and who is on
duty. Contact URLs are never shown whole: ``ContactPoint.redacted()`` (scheme and host).

A user scoped to an enterprise sees the people of that enterprise and the park-wide people,
and the rosters whose every person they can see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from safety_hub.api.auth import Principal
from safety_hub.api.deps import AUTH_RESPONSES, ClockDep, PeopleDep, PrincipalDep, clip, error
from safety_hub.api.routes.tags import parse_time
from safety_hub.people import OnDuty, PeopleDirectory, Person, Roster, ShiftSlot
from safety_hub.people.model import hhmm

router = APIRouter(prefix="/api/v1", tags=["people"], responses=AUTH_RESPONSES)


class ContactOut(BaseModel):
    channel: str = Field(description="email, webhook, dingtalk, wecom, feishu or sms")
    target: str = Field(description="the apprise URL's scheme and host only (redacted)")


class PersonOut(BaseModel):
    id: str
    name: str
    name_en: str | None
    title: str | None
    roles: list[str]
    enterprises: list[str] | None = Field(description="the enterprises covered; null: park-wide")
    contacts: list[ContactOut] = Field(description="in the person's order of preference")


class PersonRef(BaseModel):
    id: str
    name: str


class ShiftOut(BaseModel):
    roster: str
    shift: str
    date: str = Field(description="the date the shift starts on, in the roster's time zone")
    start_ms: int
    end_ms: int
    start: str = Field(description="ISO-8601, in the roster's time zone")
    end: str
    people: list[PersonRef]
    override_reason: str | None = Field(
        description="why a dated override replaced the rota for this shift; null: the rota"
    )
    overridden: bool


class ShiftDefOut(BaseModel):
    name: str
    start: str = Field(description="HH:MM")
    end: str


class RosterOut(BaseModel):
    name: str
    title: str | None
    time_zone: str
    shifts: list[ShiftDefOut]
    on_duty: ShiftOut = Field(description="the shift running now")
    next: ShiftOut = Field(description="the shift after it: who takes over, and when")


def person_out(person: Person) -> PersonOut:
    return PersonOut(
        id=person.id,
        name=person.name,
        name_en=person.name_en,
        title=person.title,
        roles=list(person.roles),
        enterprises=None if person.enterprises is None else sorted(person.enterprises),
        contacts=[ContactOut(channel=c.channel, target=c.redacted()) for c in person.contacts],
    )


def shift_out(directory: PeopleDirectory, roster: Roster, slot: ShiftSlot) -> ShiftOut:
    tz = ZoneInfo(roster.time_zone)
    people = [directory.people[pid] for pid in slot.people if pid in directory.people]
    return ShiftOut(
        roster=slot.roster,
        shift=slot.shift,
        date=slot.date.isoformat(),
        start_ms=slot.start_ms,
        end_ms=slot.end_ms,
        start=datetime.fromtimestamp(slot.start_ms / 1000, tz).isoformat(),
        end=datetime.fromtimestamp(slot.end_ms / 1000, tz).isoformat(),
        people=[PersonRef(id=p.id, name=p.name) for p in people],
        override_reason=slot.override.reason if slot.override else None,
        overridden=slot.override is not None,
    )


def roster_visible(directory: PeopleDirectory, roster: Roster, principal: Principal) -> bool:
    """A scoped user sees a roster when they can see every person it names."""
    if principal.enterprise is None:
        return True
    visible = {p.id for p in directory.visible_to(principal.enterprise)}
    named = {pid for entry in roster.cycle for ids in entry.values() for pid in ids}
    named.update(pid for o in roster.overrides.values() for pid in o.people)
    return named <= visible


def roster_out(directory: PeopleDirectory, roster: Roster, duty: OnDuty) -> RosterOut:
    return RosterOut(
        name=roster.name,
        title=roster.title,
        time_zone=roster.time_zone,
        shifts=[
            ShiftDefOut(name=s.name, start=hhmm(s.start_min), end=hhmm(s.end_min))
            for s in roster.shifts
        ],
        on_duty=shift_out(directory, roster, duty.slot),
        next=shift_out(directory, roster, duty.next),
    )


@router.get(
    "/people",
    response_model=list[PersonOut],
    summary="People, roles and contact points (contact URLs redacted)",
)
def list_people(directory: PeopleDep, principal: PrincipalDep) -> list[PersonOut]:
    return [person_out(p) for p in directory.visible_to(principal.enterprise)]


@router.get(
    "/rosters",
    response_model=list[RosterOut],
    summary="Duty rosters, each with who is on duty now and the next change",
)
def list_rosters(directory: PeopleDep, principal: PrincipalDep, clock: ClockDep) -> list[RosterOut]:
    now = clock.now_ms()
    return [
        roster_out(directory, roster, directory.on_duty(roster.name, now))
        for roster in directory.rosters.values()
        if roster_visible(directory, roster, principal)
    ]


@router.get(
    "/rosters/{roster}/on_duty",
    response_model=ShiftOut,
    summary="Who is on duty in a roster at a time (default now)",
    responses={404: error("no such roster (or not visible to the user)")},
)
def on_duty(
    directory: PeopleDep,
    principal: PrincipalDep,
    clock: ClockDep,
    roster: str,
    at: Annotated[str | None, Query(description="epoch ms or ISO-8601; default now")] = None,
) -> ShiftOut:
    found = directory.rosters.get(roster)
    if found is None or not roster_visible(directory, found, principal):
        raise HTTPException(404, f"no roster {clip(roster)!r}")
    at_ms = parse_time(at, "at") if at is not None else clock.now_ms()
    try:
        slot = found.slot_at(at_ms)
    except (OverflowError, ValueError, OSError):
        raise HTTPException(422, f"at={clip(at or '')!r}: time out of range") from None
    return shift_out(directory, found, slot)
