"""``clock_skew``: an enterprise's readings are stamped far from the hub's receive time."""

from __future__ import annotations

from safety_hub.rules.conditions.base import AlarmInstance, CompiledRule, EngineHooks
from safety_hub.rules.conditions.build import Build, enterprise_slots
from safety_hub.rules.schema import ClockSkew, format_duration


class ClockSkewInstance(AlarmInstance):
    """|hub receive time − newest reading ts of a batch| above ``threshold`` ms."""

    __slots__ = ("skew", "threshold")
    kind = "clock_skew"
    skew: int
    threshold: int

    def on_batch(self, received: int, newest_ts: int, hooks: EngineHooks) -> None:
        skew = received - newest_ts
        on = abs(skew) > self.threshold
        if on or self.state:
            self.skew = skew
            self.value = skew / 1000
            self.drive(on, received, hooks)

    def extra(self) -> dict[str, str]:
        seconds = self.skew / 1000
        # whole seconds from 100 s on: "-3600s", not "-3.6e+03s"
        return {"skew": f"{seconds:+.0f}s" if abs(seconds) >= 100 else f"{seconds:+.3g}s"}


def compile_rule(rt: CompiledRule, build: Build) -> None:
    """One instance per selected enterprise, told each batch it sent."""
    cond = rt.rule.condition
    assert isinstance(cond, ClockSkew)
    for ent in enterprise_slots(rt, build):
        skew = ClockSkewInstance.for_enterprise(
            rt, ent.code, build.plant.enterprises[ent.code].name
        )
        skew.threshold = cond.threshold
        skew.skew = 0
        skew.fields["setpoint"] = format_duration(cond.threshold)
        build.hooks.add(skew)
        ent.skews.append(skew)
