"""``sis_state``: a safety-instrumented-system signal (trip, bypass, fault, a status-word bit)
or a bypass left on past its planned end."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from safety_hub.rules.conditions.base import NORMAL, AlarmInstance, CompiledRule, EngineHooks
from safety_hub.rules.conditions.build import Build, tag_slots
from safety_hub.rules.schema import SisState

DISPLAY_TZ = timezone(timedelta(hours=8), "CST")
"""China Standard Time, for times written into alarm text (``{{planned_end}}``); conditions carry
epoch milliseconds. Fixed rather than the host's zone so that the text is deterministic."""


def _epoch_ms(when: datetime | None) -> int | None:
    return None if when is None else round(when.timestamp() * 1000)


class SisFlagInstance(AlarmInstance):
    """A discrete SIS signal (trip, bypass, fault) or bit N of a status word."""

    __slots__ = ("bit",)
    kind = "sis_state"
    bit: int | None

    def feed(self, ts: int, v: float, hooks: EngineHooks) -> None:
        on = (round(v) >> self.bit) & 1 == 1 if self.bit is not None else v >= 0.5
        if on or self.state:
            self.value = v
            self.drive(on, ts, hooks)


class BypassOverdueInstance(AlarmInstance):
    """A bypass still active past its planned end: the tag's ``planned_bypass_end`` from the
    registry, else the rule's ``max_duration`` after the bypass began (event time)."""

    __slots__ = ("max_ms", "planned_end", "started")
    kind = "bypass_overdue"
    max_ms: int | None
    planned_end: int | None
    started: int | None

    def feed(self, ts: int, v: float, hooks: EngineHooks) -> None:
        if v < 0.5:
            self.started = None
            self.watch_due = None
            if self.state:
                self.drive(False, ts, hooks)
            return
        if self.started is None:
            self.started = ts
        end = self.end()
        if end is None:
            return
        if ts >= end:
            self.drive(True, ts, hooks)
        elif self.watch_due != end and self.state == NORMAL:
            hooks.watch(self, end)

    def end(self) -> int | None:
        if self.planned_end is not None:
            return self.planned_end
        if self.max_ms is not None and self.started is not None:
            return self.started + self.max_ms
        return None

    def fire_watch(self, due: int, hooks: EngineHooks) -> None:
        if self.started is not None:
            self.drive(True, due, hooks)

    def extra(self) -> dict[str, str]:
        end = self.end()
        if end is None:
            return {}
        when = datetime.fromtimestamp(end / 1000, DISPLAY_TZ)
        return {"planned_end": when.isoformat(timespec="minutes")}

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), "started": self.started}

    def load(self, data: Mapping[str, Any]) -> None:
        super().load(data)
        self.started = data.get("started")

    def is_default(self) -> bool:
        return super().is_default() and self.started is None


def compile_rule(rt: CompiledRule, build: Build) -> None:
    """One instance per selected SIS tag, fed the tag's valid values."""
    cond = rt.rule.condition
    assert isinstance(cond, SisState)
    for slot in tag_slots(rt, build):
        tag = slot.info
        inst: SisFlagInstance | BypassOverdueInstance
        if cond.state == "bypass_overdue":
            inst = BypassOverdueInstance.for_tag(rt, tag)
            inst.planned_end = _epoch_ms(tag.planned_bypass_end)
            inst.max_ms = cond.max_duration
            inst.started = None
        else:
            inst = SisFlagInstance.for_tag(rt, tag)
            inst.bit = cond.bit if cond.state == "bit" else None
            if cond.state == "voting_degraded":
                inst.bit = 1 if cond.bit is None else cond.bit
        build.hooks.add(inst)
        slot.values.append(inst)
