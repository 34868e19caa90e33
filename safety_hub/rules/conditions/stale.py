"""``stale``: nothing received from a tag for a number of its publishing intervals.

A tag gone stale while its enterprise is quiet too is a consequence of the enterprise's silence:
it waits for the link verdict and is grouped under the link alarm (``conditions/grouping.py``).
"""

from __future__ import annotations

from safety_hub.rules.conditions.base import NORMAL, AlarmInstance, CompiledRule, EngineHooks
from safety_hub.rules.conditions.build import Build, tag_slots
from safety_hub.rules.conditions.grouping import root_cause
from safety_hub.rules.schema import Stale, format_duration
from safety_hub.rules.slots import TagSlot


class StaleInstance(AlarmInstance):
    """Nothing received from the tag for ``window`` ms of hub time."""

    __slots__ = ("slot", "window")
    kind = "stale"
    slot: TagSlot
    window: int

    def on_data(self, received: int, hooks: EngineHooks) -> None:
        if self.state:
            self.drive(False, received, hooks)
            if self.parent is not None:
                hooks.group(self, None)  # cleared under its parent: quietly
        if self.watch_due is None or self.state == NORMAL:
            hooks.watch(self, received + self.window)

    def fire_watch(self, due: int, hooks: EngineHooks) -> None:
        if self.state:  # raised: only the grace after the parent cleared watches it
            hooks.grace_over(self, due)
            return
        deadline = self.slot.last_received + self.window
        if deadline > due:
            hooks.watch(self, deadline)
            return
        parent, wait = root_cause(self.slot.ent, due, hooks)
        if wait is not None:
            hooks.watch(self, wait)  # the link verdict first: a child never annunciates first
            return
        if parent is not None:
            hooks.group(self, parent)
        self.drive(True, deadline, hooks)

    def grace_ms(self) -> int:
        return self.window

    def extra(self) -> dict[str, str]:
        return {"window": format_duration(self.window)}

    def rearm_watch(self, hooks: EngineHooks) -> None:
        if self.state == NORMAL:  # from the restored last-received time
            hooks.watch(self, self.slot.last_received + self.window)
        else:
            super().rearm_watch(hooks)


def compile_rule(rt: CompiledRule, build: Build) -> None:
    """One instance per selected tag, told each time the tag is heard; watched from the start."""
    cond = rt.rule.condition
    assert isinstance(cond, Stale)
    for slot in tag_slots(rt, build):
        st = StaleInstance.for_tag(rt, slot.info)
        st.slot = slot
        st.window = round(cond.intervals * slot.info.interval_s * 1000)
        build.hooks.add(st)
        slot.stales.append(st)
        build.hooks.watch(st, build.start_ms + st.window)
