"""``link_down``: an enterprise's gateway is offline (its last-will) or silent too long."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safety_hub.rules.conditions.base import NORMAL, AlarmInstance, CompiledRule, EngineHooks
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

    def on_data(self, received: int, hooks: EngineHooks) -> None:
        if self.state:
            self.evaluate(received, hooks)
        elif self.silence is not None and self.watch_due is None:
            hooks.watch(self, received + self.silence)

    def evaluate(self, at: int, hooks: EngineHooks) -> None:
        silent = self.silence is not None and at - self.ent.last_received >= self.silence
        self.drive(self.offline or silent, at, hooks)
        if self.silence is not None and not silent and self.watch_due is None:
            hooks.watch(self, self.ent.last_received + self.silence)

    def fire_watch(self, due: int, hooks: EngineHooks) -> None:
        assert self.silence is not None
        deadline = self.ent.last_received + self.silence
        if deadline > due:
            hooks.watch(self, deadline)
        else:
            self.evaluate(due, hooks)

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
            hooks.watch(self, self.ent.last_received + self.silence)


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
            build.hooks.watch(link, build.start_ms + link.silence)
