"""Shared builders for the notification tests (no tests here): a small in-test people
directory implementing ``safety_hub.notify.contacts.Directory`` (our own protocol), and a
policy set parsed from text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from safety_hub.notify.contacts import ContactPoint, Recipient
from safety_hub.notify.loader import Known, PolicySet, parse_policies

HOUR_MS = 3_600_000


def person(pid: str, *contacts: tuple[str, str], roles: Sequence[str] = ()) -> Recipient:
    return Recipient(pid, pid.title(), tuple(roles), tuple(ContactPoint(c, u) for c, u in contacts))


class DictDirectory:
    """Targets mapped to people; a ``roster:`` target may change hands at ``shift_ms``
    (``{"roster:park_duty": [(0, day), (shift_ms, night)]}``)."""

    def __init__(
        self,
        fixed: Mapping[str, Sequence[Recipient]],
        rosters: Mapping[str, Sequence[tuple[int, Recipient]]] | None = None,
    ) -> None:
        self.fixed = fixed
        self.rosters = rosters or {}

    def resolve(self, target: str, *, enterprise: str | None, at_ms: int) -> list[Recipient]:
        if target in self.rosters:
            on_duty = [r for since, r in self.rosters[target] if since <= at_ms]
            return on_duty[-1:]
        return list(self.fixed.get(target, ()))

    def check_target(self, target: str) -> str | None:
        if target in self.fixed or target in self.rosters:
            return None
        return "no such role, roster or person in the people directory"


OFFICER = person("zhang", ("email", "mailto://zhang@example.org"), ("webhook", "json://h/zhang"))
DUTY = person("li", ("webhook", "json://h/li"))
REGULATOR = person("wang", ("email", "mailto://wang@example.org"))


def directory() -> DictDirectory:
    return DictDirectory(
        {
            "role:enterprise_safety_officer": [OFFICER],
            "roster:park_duty": [DUTY],
            "role:regulator": [REGULATOR],
        }
    )


def policies(text: str, known: Known | None = None) -> PolicySet:
    return parse_policies([("p.yaml", text)], known or Known(directory().check_target))
