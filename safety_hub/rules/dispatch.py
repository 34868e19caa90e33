"""The alarm instances of a rule engine, their timers and the conditions they emit.

``Dispatch`` is what the instances' ``EngineHooks`` (and compiling's ``BuildHooks``) reach: it
keeps every instance in rule and plant order, the timer heap that ``RuleEngine.advance`` runs,
how many instances of each alert are raised per hazard source and enterprise, and from that
which instances are suppressed by design (a rule's ``suppressed_by``), and which instances are
grouped under a root cause (``conditions/grouping.py``): a grouped instance is suppressed by
its parent's key.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from safety_hub.alarms.model import Condition
from safety_hub.rules.conditions.base import ACTIVE, AlarmInstance, format_value
from safety_hub.rules.conditions.build import ChangeListener, RestoreFactory

_DELAY, _WATCH = 0, 1


@dataclass(frozen=True, slots=True)
class SuppressionChange:
    """``cause`` (an alert name or plant state of a rule's ``suppressed_by``) now holds
    (``hold``) or no longer holds these alarm keys."""

    cause: str
    keys: tuple[str, ...]
    hold: bool


class Dispatch:
    """Every alarm instance of one engine and what they may ask of it (see the module
    docstring). ``out`` is where the conditions of the current engine call go."""

    def __init__(self, suppressors: frozenset[str]) -> None:
        self.out: list[Condition] = []
        self.heap: list[tuple[int, int, int]] = []
        self.instances: list[AlarmInstance] = []
        self.by_key: dict[str, AlarmInstance] = {}
        self.raised: dict[tuple[str, str, str], int] = {}
        self.listeners: dict[str, list[ChangeListener]] = {}
        self.restorers: dict[str, RestoreFactory] = {}
        self.suppressors = suppressors
        """alerts some rule's ``suppressed_by`` names: their changes may change suppression"""
        self.suppression_dirty = True
        self.published: dict[str, tuple[str, ...]] = {}
        self.children: dict[str, dict[str, AlarmInstance]] = {}
        """parent key -> the instances grouped under it, by key"""

    # BuildHooks ----------------------------------------------------------------------------

    def add(self, inst: AlarmInstance) -> None:
        inst.order = len(self.instances)
        self.instances.append(inst)
        self.by_key[inst.key] = inst
        if inst.rt.suppress_oos or inst.rt.suppress_alerts:
            self.suppression_dirty = True  # a new key that may be suppressed already

    def find(self, key: str) -> AlarmInstance | None:
        return self.by_key.get(key)

    def is_raised(self, alert: str, enterprise: str, scope: str) -> bool:
        return self.raised.get((alert, enterprise, scope), 0) > 0

    def listen(self, alert: str, listener: ChangeListener) -> None:
        self.listeners.setdefault(alert, []).append(listener)

    def restore_with(self, alert: str, factory: RestoreFactory) -> None:
        self.restorers[alert] = factory

    # EngineHooks ---------------------------------------------------------------------------

    def schedule(self, inst: AlarmInstance, due: int) -> None:
        inst.due = due
        heapq.heappush(self.heap, (due, inst.order, _DELAY))

    def watch(self, inst: AlarmInstance, due: int) -> None:
        inst.watch_due = due
        heapq.heappush(self.heap, (due, inst.order, _WATCH))

    def emit(self, inst: AlarmInstance, active: bool, ts: int) -> None:
        rt = inst.rt
        extra = inst.extra()
        fields = {**inst.fields, **extra, "value": format_value(inst.value)}
        labels = {**inst.labels, **{k: v for k, v in extra.items() if v}}
        reasons = self.suppressions(inst)
        if reasons:
            labels["suppressed_by"] = ",".join(reasons)
        if inst.parent is not None:
            labels["parent"] = inst.parent
        self.out.append(
            Condition(
                key=inst.key,
                alert=rt.alert,
                active=active,
                ts_ms=ts,
                enterprise=inst.enterprise,
                hazard_source=inst.hazard_source,
                tag=inst.tag,
                zone=inst.zone,
                priority=inst.priority,
                alarm_class=rt.alarm_class,
                latch=rt.latch,
                level=rt.level,
                value=inst.value,
                setpoint=inst.setpoint,
                on_delay_s=rt.on_ms / 1000,
                summary=rt.summary.render(fields),
                summary_en=rt.summary_en.render(fields),
                labels=labels,
            )
        )
        self.count(inst, 1 if active else -1)
        if rt.alert in self.suppressors:
            self.suppression_dirty = True
        for listener in self.listeners.get(rt.alert, ()):
            listener(inst, ts)
        if not active and inst.key in self.children:
            self.start_grace(inst.key, ts)

    # root-cause grouping -------------------------------------------------------------------

    def group(self, inst: AlarmInstance, parent: str | None) -> None:
        if inst.parent == parent:
            return
        if inst.parent is not None:
            siblings = self.children.get(inst.parent, {})
            siblings.pop(inst.key, None)
            if not siblings:
                self.children.pop(inst.parent, None)
        inst.parent = parent
        inst.grace_until = None
        if parent is not None:
            self.children.setdefault(parent, {})[inst.key] = inst
        self.suppression_dirty = True

    def start_grace(self, parent: str, ts: int) -> None:
        """The parent cleared at ``ts``: each child stays grouped for its grace."""
        for child in list(self.children.get(parent, {}).values()):
            if child.state < ACTIVE:
                self.group(child, None)
                continue
            child.grace_until = end = ts + child.grace_ms()
            if child.watch_due is None or end < child.watch_due:
                self.watch(child, end)

    def grace_over(self, inst: AlarmInstance, now: int) -> None:
        if inst.grace_until is None or now < inst.grace_until:
            return
        inst.grace_until = None
        parent = self.by_key.get(inst.parent or "")
        if parent is None or parent.state < ACTIVE:  # else the parent was raised again
            self.group(inst, None)

    # timers --------------------------------------------------------------------------------

    def fire_due(self, now_ms: int) -> None:
        """Fire every timer due at or before hub time ``now_ms``, oldest first."""
        heap = self.heap
        instances = self.instances
        while heap and heap[0][0] <= now_ms:
            due, order, which = heapq.heappop(heap)
            inst = instances[order]
            if which == _DELAY:
                if inst.due == due:
                    inst.fire_delay(due, self)
            elif inst.watch_due == due:
                inst.watch_due = None
                inst.fire_watch(due, self)

    def count(self, inst: AlarmInstance, delta: int) -> None:
        """One more (``delta=1``) or one fewer raised instance of ``inst``'s alert."""
        raised = self.raised
        for scope in (inst.hazard_source, "*"):
            k = (inst.rt.alert, inst.enterprise, scope)
            raised[k] = raised.get(k, 0) + delta

    # suppression by design -----------------------------------------------------------------

    def suppressions(self, inst: AlarmInstance) -> tuple[str, ...]:
        """The active alerts and plant states of the instance's ``suppressed_by``."""
        rt = inst.rt
        reasons: list[str] = []
        if rt.suppress_oos and inst.oos:
            reasons.append("out_of_service")
        raised = self.raised
        for name, enterprise_wide in rt.suppress_alerts:
            scope = "*" if enterprise_wide else inst.hazard_source
            if raised.get((name, inst.enterprise, scope), 0) > 0:
                reasons.append(name)
        if inst.parent is not None:
            reasons.append(inst.parent)
        return tuple(reasons)

    def suppressed(self) -> dict[str, tuple[str, ...]]:
        """Every instance suppressed by design right now, raised or not, and why."""
        out: dict[str, tuple[str, ...]] = {}
        for inst in self.instances:
            if inst.rt.suppress_oos or inst.rt.suppress_alerts or inst.parent is not None:
                reasons = self.suppressions(inst)
                if reasons:
                    out[inst.key] = reasons
        return out

    def suppression_changes(self) -> list[SuppressionChange]:
        """How ``suppressed()`` changed since the previous call (``RuleEngine``'s method)."""
        if not self.suppression_dirty:
            return []
        self.suppression_dirty = False
        now = self.suppressed()
        before = self.published
        held: dict[str, list[str]] = {}
        released: dict[str, list[str]] = {}
        for key in sorted(before.keys() | now.keys()):
            old, new = set(before.get(key, ())), set(now.get(key, ()))
            for cause in sorted(new - old):
                held.setdefault(cause, []).append(key)
            for cause in sorted(old - new):
                released.setdefault(cause, []).append(key)
        self.published = now
        return [
            *(
                SuppressionChange(cause, tuple(keys), False)
                for cause, keys in sorted(released.items())
            ),
            *(SuppressionChange(cause, tuple(keys), True) for cause, keys in sorted(held.items())),
        ]

    # restore -------------------------------------------------------------------------------

    def recreate(self, key: str, data: Mapping[str, Any]) -> AlarmInstance | None:
        """The instance a snapshot names that compiling did not make (made on demand), made
        again by its rule; None when no rule makes it."""
        factory = self.restorers.get(key.partition("|")[0])
        return None if factory is None else factory(key, data)

    def rearm(self) -> None:
        """After the instances' state was restored: the timers and raised counts again."""
        self.heap = []
        self.raised = {}
        self.children = {}
        for inst in self.instances:
            inst.rearm(self)
            if inst.state >= ACTIVE:
                self.count(inst, 1)
            if inst.parent is not None:
                self.children.setdefault(inst.parent, {})[inst.key] = inst
