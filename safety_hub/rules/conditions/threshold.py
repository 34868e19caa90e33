"""``threshold``: a value against a setpoint, with a deadband and on/off delays."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safety_hub.rules.conditions.base import (
    ACTIVE,
    AlarmInstance,
    CompiledRule,
    EngineHooks,
    format_value,
)
from safety_hub.rules.conditions.build import Build, tag_slots
from safety_hub.rules.schema import Threshold


class ThresholdInstance(AlarmInstance):
    """A comparator with hysteresis: on at ``v >= trip`` (high) or ``v <= trip`` (low), off
    only once the value is beyond ``reset`` (the setpoint minus/plus the deadband). The on- and
    off-delays then apply to the comparator, so noise inside the deadband neither restarts an
    on-delay nor clears an alarm."""

    __slots__ = ("cmp", "high", "reset", "trip")
    kind = "threshold"
    high: bool
    trip: float
    reset: float
    cmp: bool

    def feed(self, ts: int, v: float, hooks: EngineHooks) -> None:
        if self.high:
            on = v >= (self.reset if self.cmp else self.trip)
        else:
            on = v <= (self.reset if self.cmp else self.trip)
        self.cmp = on
        if on or self.state:
            self.value = v
            self.drive(on, ts, hooks)

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), "cmp": self.cmp}

    def load(self, data: Mapping[str, Any]) -> None:
        super().load(data)
        self.cmp = bool(data.get("cmp", self.state >= ACTIVE))

    def is_default(self) -> bool:
        return super().is_default() and not self.cmp


def compile_rule(rt: CompiledRule, build: Build) -> None:
    """One instance per selected tag, fed the tag's valid values."""
    cond = rt.rule.condition
    assert isinstance(cond, Threshold)
    for slot in tag_slots(rt, build):
        tag = slot.info
        th = ThresholdInstance.for_tag(rt, tag)
        sp = tag.setpoints[cond.setpoint] if isinstance(cond.setpoint, str) else cond.setpoint
        direction = cond.direction or ("low" if cond.setpoint in ("ll", "l") else "high")
        th.high = direction == "high"
        th.cmp = False
        th.trip = sp
        band = cond.deadband.resolve(tag.range_hi - tag.range_lo)
        th.reset = sp - band if th.high else sp + band
        th.setpoint = sp
        th.fields["setpoint"] = format_value(sp)
        build.hooks.add(th)
        slot.values.append(th)
