"""``bad_quality``: a tag reports a quality other than good."""

from __future__ import annotations

from safety_hub.rules.conditions.base import AlarmInstance, CompiledRule, EngineHooks
from safety_hub.rules.conditions.build import Build, tag_slots
from safety_hub.rules.schema import BadQuality


class BadQualityInstance(AlarmInstance):
    __slots__ = ("qualities",)
    kind = "bad_quality"
    qualities: frozenset[str]

    def feed(self, ts: int, v: float, q: str, hooks: EngineHooks) -> None:
        on = q in self.qualities
        if on or self.state:
            self.value = v
            self.drive(on, ts, hooks)


def compile_rule(rt: CompiledRule, build: Build) -> None:
    """One instance per selected tag, fed every reading with its quality."""
    cond = rt.rule.condition
    assert isinstance(cond, BadQuality)
    for slot in tag_slots(rt, build):
        bq = BadQualityInstance.for_tag(rt, slot.info)
        bq.qualities = frozenset(cond.qualities)
        build.hooks.add(bq)
        slot.faults.append(bq)
