"""``rate_of_change``: how fast a value rises or falls over a window."""

from __future__ import annotations

from collections import deque
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
from safety_hub.rules.schema import RateOfChange, format_duration

RATE_SAMPLES = 60
"""Samples a rate-of-change window keeps at most (one per window / RATE_SAMPLES)."""


class RateInstance(AlarmInstance):
    """Rate of change per minute between the newest reading and the oldest one inside the
    window; judged once the readings span at least half the window.

    The window keeps at most one sample per ``window / RATE_SAMPLES`` (the first of each
    step), so a tag reporting many times a second costs bounded memory and snapshot space."""

    __slots__ = ("cmp", "mode", "reset", "samples", "step", "trip", "window")
    kind = "rate_of_change"
    cmp: bool
    mode: str
    trip: float
    reset: float
    window: int
    step: int
    samples: deque[tuple[int, float]]

    def feed(self, ts: int, v: float, hooks: EngineHooks) -> None:
        samples = self.samples
        if not samples or ts - samples[-1][0] >= self.step:
            samples.append((ts, v))
        horizon = ts - self.window
        while samples[0][0] < horizon:
            samples.popleft()
        t0, v0 = samples[0]
        if (ts - t0) * 2 < self.window:
            return
        rate = (v - v0) * 60_000 / (ts - t0)
        if self.mode == "falling":
            rate = -rate
        elif self.mode == "either":
            rate = abs(rate)
        on = rate >= (self.reset if self.cmp else self.trip)
        self.cmp = on
        if on or self.state:
            self.value = rate
            self.drive(on, ts, hooks)

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), "cmp": self.cmp, "samples": list(self.samples)}

    def load(self, data: Mapping[str, Any]) -> None:
        super().load(data)
        self.cmp = bool(data.get("cmp", self.state >= ACTIVE))
        self.samples = deque((int(t), float(v)) for t, v in data.get("samples", ()))

    def is_default(self) -> bool:
        return super().is_default() and not self.samples

    def extra(self) -> dict[str, str]:
        return {"window": format_duration(self.window)}


def compile_rule(rt: CompiledRule, build: Build) -> None:
    """One instance per selected tag, fed the tag's valid values."""
    cond = rt.rule.condition
    assert isinstance(cond, RateOfChange)
    for slot in tag_slots(rt, build):
        tag = slot.info
        span = tag.range_hi - tag.range_lo
        ro = RateInstance.for_tag(rt, tag)
        ro.mode = cond.direction
        ro.cmp = False
        ro.trip = cond.rate.resolve(span)
        ro.reset = ro.trip - cond.deadband.resolve(span)
        ro.window = cond.window
        ro.step = max(1, cond.window // RATE_SAMPLES)
        ro.samples = deque()
        ro.setpoint = ro.trip
        ro.fields["setpoint"] = format_value(ro.trip)
        build.hooks.add(ro)
        slot.values.append(ro)
