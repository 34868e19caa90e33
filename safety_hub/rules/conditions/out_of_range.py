"""``out_of_range``: a value beyond the NAMUR NE 43 limits of the tag's range (``slots.py``)."""

from __future__ import annotations

from safety_hub.rules.conditions.base import AlarmInstance, CompiledRule, EngineHooks
from safety_hub.rules.conditions.build import Build, tag_slots


class OutOfRangeInstance(AlarmInstance):
    __slots__ = ("hi_ok", "lo_ok")
    kind = "out_of_range"
    lo_ok: float
    hi_ok: float

    def feed(self, ts: int, v: float, hooks: EngineHooks) -> None:
        on = not self.lo_ok <= v <= self.hi_ok
        if on or self.state:
            self.value = v
            self.drive(on, ts, hooks)


def compile_rule(rt: CompiledRule, build: Build) -> None:
    """One instance per selected tag, fed every value that is not of bad quality."""
    for slot in tag_slots(rt, build):
        oor = OutOfRangeInstance.for_tag(rt, slot.info)
        oor.lo_ok, oor.hi_ok = slot.lo_ok, slot.hi_ok
        build.hooks.add(oor)
        slot.ranges.append(oor)
