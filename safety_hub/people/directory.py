"""``PeopleDirectory``: who a notification target means, and who is on duty.

It implements ``safety_hub.notify.contacts.Directory``. Targets:

- ``role:NAME``: every person with the role whose scope covers the alarm's enterprise (a
  park-wide person covers every alarm; an enterprise's person only its own enterprise's alarms,
  never a park-wide alarm);
- ``roster:NAME``: whoever is on duty in the roster at that moment (whatever the enterprise);
- ``person:ID``: that person (whatever the enterprise).

``check_target`` is what a policy loader calls for every target it reads: None when the
target is known, else the error text (with a "did you mean").
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from safety_hub.notify.contacts import TARGET_KINDS, Recipient
from safety_hub.people.model import Person, Roster, ShiftSlot
from safety_hub.people.schema import ROLES


@dataclass(frozen=True, slots=True)
class OnDuty:
    """Who is on duty in a roster at a moment, and the shift after."""

    slot: ShiftSlot
    people: tuple[Person, ...]
    next: ShiftSlot


def _hint(word: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class PeopleDirectory:
    """The loaded people file (``load_people``): people by id, rosters by name."""

    def __init__(
        self,
        path: Path,
        people: Mapping[str, Person],
        rosters: Mapping[str, Roster],
        time_zone: str = "Asia/Shanghai",
    ) -> None:
        self.path = path
        self.people = dict(people)
        self.rosters = dict(rosters)
        self.time_zone = time_zone

    def __len__(self) -> int:
        return len(self.people)

    # the Directory contract ----------------------------------------------------------------

    def resolve(self, target: str, *, enterprise: str | None, at_ms: int) -> list[Recipient]:
        """The recipients ``target`` means for an alarm of ``enterprise`` at ``at_ms``, each
        once, in the file's order (a roster: its order on the shift); [] for an unknown
        target."""
        kind, _, name = target.partition(":")
        found: list[Person] = []
        if kind == "role":
            found = [p for p in self.people.values() if name in p.roles and p.covers(enterprise)]
        elif kind == "roster" and name in self.rosters:
            found = list(self.on_duty(name, at_ms).people)
        elif kind == "person" and name in self.people:
            found = [self.people[name]]
        return [p.recipient() for p in dict.fromkeys(found)]

    def check_target(self, target: str) -> str | None:
        """None when ``target`` names something in this file, else why not: an unknown kind,
        role, roster or person (with a "did you mean"), or a role nobody holds."""
        kind, sep, name = target.partition(":")
        if not sep or kind not in TARGET_KINDS:
            kinds = ", ".join(f"{k}:NAME" for k in TARGET_KINDS)
            return f"target {target!r}: write one of {kinds}"
        if kind == "role":
            if name not in ROLES:
                return f"unknown role {name!r}{_hint(name, ROLES)}; roles: {', '.join(ROLES)}"
            if not any(name in p.roles for p in self.people.values()):
                return f"nobody in {self.path} has role {name!r}"
            return None
        if kind == "roster":
            if name not in self.rosters:
                known = ", ".join(self.rosters) or "none"
                return f"unknown roster {name!r}{_hint(name, self.rosters)}; rosters: {known}"
            return None
        if name not in self.people:
            return f"unknown person {name!r}{_hint(name, self.people)}"
        return None

    # rosters -------------------------------------------------------------------------------

    def on_duty(self, roster: str, at_ms: int) -> OnDuty:
        """Who is on duty in ``roster`` at ``at_ms``; ``KeyError`` for an unknown roster."""
        r = self.rosters[roster]
        slot = r.slot_at(at_ms)
        people = tuple(self.people[pid] for pid in slot.people if pid in self.people)
        return OnDuty(slot, people, r.next_slot(slot))

    def visible_to(self, enterprise: str | None) -> list[Person]:
        """The people a user scoped to ``enterprise`` may see: that enterprise's and the
        park-wide ones (everyone for a park-wide user, ``enterprise`` None)."""
        if enterprise is None:
            return list(self.people.values())
        return [
            p for p in self.people.values() if p.park_wide or enterprise in (p.enterprises or ())
        ]
