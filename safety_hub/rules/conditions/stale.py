"""``stale``: nothing received from a tag for a number of its publishing intervals."""

from __future__ import annotations

from safety_hub.rules.conditions.base import NORMAL, AlarmInstance, CompiledRule, EngineHooks
from safety_hub.rules.conditions.build import Build, tag_slots
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
        if self.watch_due is None:
            hooks.watch(self, received + self.window)

    def fire_watch(self, due: int, hooks: EngineHooks) -> None:
        deadline = self.slot.last_received + self.window
        if deadline > due:
            hooks.watch(self, deadline)
        else:
            self.drive(True, deadline, hooks)

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
