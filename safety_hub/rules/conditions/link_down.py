"""``link_down``: an enterprise's gateway is offline (its last-will) or silent too long.

"Too long" is learned from the enterprise's own traffic (``EnterpriseSlot.silence_after``), with
the rule's ``silence`` as the ceiling, so the link is known to be down before the per-tag stale
watchdogs run out; those consequences wait for this verdict (``verdict``,
``conditions/grouping.py``) and are grouped under the link alarm.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safety_hub.rules.conditions.base import (
    ACTIVE,
    NORMAL,
    PENDING_ON,
    AlarmInstance,
    CompiledRule,
    EngineHooks,
)
from safety_hub.rules.conditions.build import Build, enterprise_slots
from safety_hub.rules.schema import LinkDown, format_duration
from safety_hub.rules.slots import EnterpriseSlot


class LinkDownInstance(AlarmInstance):
    """Gateway offline (its last-will) or no reading from the enterprise for ``silence`` ms."""

    __slots__ = ("ent", "offline", "silence", "use_offline")
    kind = "link_down"
    ent: EnterpriseSlot
    offline: bool
    silence: int | None
    use_offline: bool

    def on_status(self, online: bool, ts: int, hooks: EngineHooks) -> None:
        if self.use_offline:
            self.offline = not online
        self.evaluate(ts, hooks)

    def threshold(self) -> int:
        """The silence after which the link is down now (learned, at most ``silence``)."""
        assert self.silence is not None
        return self.ent.silence_after(self.silence)

    def on_data(self, received: int, hooks: EngineHooks) -> None:
        if self.state:
            self.evaluate(received, hooks)
        elif self.silence is not None:
            deadline = received + self.threshold()
            if self.watch_due is None or deadline < self.watch_due:  # learned a shorter one
                hooks.watch(self, deadline)

    def evaluate(self, at: int, hooks: EngineHooks) -> None:
        silent = self.silence is not None and at - self.ent.last_received >= self.threshold()
        self.drive(self.offline or silent, at, hooks)
        if self.silence is not None and not silent and self.watch_due is None:
            hooks.watch(self, self.ent.last_received + self.threshold())

    def fire_watch(self, due: int, hooks: EngineHooks) -> None:
        deadline = self.ent.last_received + self.threshold()
        if deadline > due:
            hooks.watch(self, deadline)
        else:
            self.evaluate(due, hooks)

    def verdict(self, at: int, hooks: EngineHooks) -> int | None:
        """Asked at ``at`` by a consequence of the enterprise's silence: None when the verdict
        is known (``state`` tells: raised or not), else when to ask again. Settles the silence
        verdict now if it is due, so the link is raised before any of its consequences."""
        if self.state >= ACTIVE:
            return None
        if self.state == PENDING_ON:
            return self.due
        if self.silence is None:
            return None
        deadline = self.ent.last_received + self.threshold()
        if deadline > at:
            return deadline
        self.evaluate(at, hooks)
        return self.due if self.state == PENDING_ON else None

    def extra(self) -> dict[str, str]:
        return {"cause": "offline" if self.offline else "silence"}

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), "offline": self.offline}

    def load(self, data: Mapping[str, Any]) -> None:
        super().load(data)
        self.offline = bool(data.get("offline", False))

    def is_default(self) -> bool:
        return super().is_default() and not self.offline

    def rearm_watch(self, hooks: EngineHooks) -> None:
        if self.state != NORMAL:
            super().rearm_watch(hooks)
        elif self.silence is not None:  # from the restored last-received time
            hooks.watch(self, self.ent.last_received + self.threshold())


def compile_rule(rt: CompiledRule, build: Build) -> None:
    """One instance per selected enterprise, told its gateway's status and each batch it sent;
    watched from the start when silence counts."""
    cond = rt.rule.condition
    assert isinstance(cond, LinkDown)
    for ent in enterprise_slots(rt, build):
        link = LinkDownInstance.for_enterprise(rt, ent.code, build.plant.enterprises[ent.code].name)
        link.ent = ent
        link.offline = False
        link.use_offline = cond.offline
        link.silence = cond.silence
        if cond.silence is not None:
            link.fields["window"] = format_duration(cond.silence)
        build.hooks.add(link)
        ent.links.append(link)
        if link.silence is not None:
            build.hooks.watch(link, build.start_ms + link.threshold())
