"""``frozen``: a detector whose valid value stays exactly the same for longer than its kind's time.

O(1) per reading: the instance keeps the last value and the event time it was first seen; a
reading with another value restarts the count, a reading with the same value after ``after`` ms
raises the alarm. No timer: a detector that stops reporting is stale (its own rule), not frozen,
so only readings that keep arriving can prove a frozen value. A value the registry says the tag
legitimately holds (``holds_at``, e.g. a zero-suppressed toxic detector at 0) never counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from safety_hub.rules.conditions.base import ACTIVE, AlarmInstance, CompiledRule, EngineHooks
from safety_hub.rules.conditions.build import Build, tag_slots
from safety_hub.rules.schema import Frozen, format_duration
from safety_hub.rules.slots import TagSlot


class FrozenInstance(AlarmInstance):
    """The tag's valid value identical for ``after`` ms of event time. While raised, the tag's
    slot is marked ``frozen`` so that its zone's votes count it faulty."""

    __slots__ = ("after", "holds", "last", "since", "slot")
    kind = "frozen"
    slot: TagSlot
    after: int
    holds: float
    """the value the tag may hold (NaN: none, so that it never compares equal)"""
    last: float | None
    since: int

    def feed(self, ts: int, v: float, hooks: EngineHooks) -> None:
        if v != self.last or v == self.holds:
            self.last = v
            self.since = ts
            if self.state:
                self.drive(False, ts, hooks)
                self.slot.frozen = self.state >= ACTIVE
        elif not self.state and ts - self.since >= self.after:
            self.value = v
            self.drive(True, ts, hooks)
            self.slot.frozen = self.state >= ACTIVE

    def extra(self) -> dict[str, str]:
        return {"window": format_duration(self.after)}

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), "last": self.last, "since": self.since}

    def load(self, data: Mapping[str, Any]) -> None:
        super().load(data)
        last = data["last"]
        self.last = None if last is None else float(last)
        self.since = int(data["since"])
        self.slot.frozen = self.state >= ACTIVE

    def is_default(self) -> bool:
        return super().is_default() and self.last is None


def compile_rule(rt: CompiledRule, build: Build) -> None:
    """One instance per selected tag of a kind the rule gives a time for, fed its valid values."""
    cond = rt.rule.condition
    assert isinstance(cond, Frozen)
    for slot in tag_slots(rt, build):
        tag = slot.info
        inst = FrozenInstance.for_tag(rt, tag)
        inst.slot = slot
        inst.after = cond.after[tag.kind]
        inst.holds = math.nan if tag.holds_at is None else tag.holds_at
        inst.last = None
        inst.since = 0
        inst.fields["setpoint"] = format_duration(inst.after)
        build.hooks.add(inst)
        slot.values.append(inst)
