"""``compound``: other alerts raised together (``all``) or at all (``any``) in one hazard source
or enterprise.

A compound rule has no inputs of its own: it listens to the alerts it names, and makes its
instance for a hazard source or enterprise the first time it could be raised there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safety_hub.rules.conditions.base import AlarmInstance, CompiledRule
from safety_hub.rules.conditions.build import Build, BuildHooks
from safety_hub.rules.schema import Compound


class CompoundInstance(AlarmInstance):
    __slots__ = ("scope",)
    kind = "compound"
    scope: str

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), "scope": self.scope, "hazard_source": self.hazard_source}


class CompoundRule:
    """One compound rule: drives its instances when an alert it names changes."""

    __slots__ = ("cond", "enterprises", "hooks", "refs", "rt")

    def __init__(self, rt: CompiledRule, build: Build) -> None:
        cond = rt.rule.condition
        assert isinstance(cond, Compound)
        self.rt = rt
        self.cond = cond
        self.refs = cond.all if cond.all is not None else (cond.any or ())
        self.hooks: BuildHooks = build.hooks
        self.enterprises = build.enterprises

    def on_change(self, source: AlarmInstance, ts: int) -> None:
        """An instance of an alert this rule names was raised or cleared at ``ts``."""
        cond = self.cond
        sel = self.rt.rule.select
        if sel.enterprise is not None and source.enterprise not in sel.enterprise:
            return
        if sel.hazard_source is not None and source.hazard_source not in sel.hazard_source:
            return
        subject = source.hazard_source if cond.scope == "hazard_source" else "*"
        hooks = self.hooks
        hits = [hooks.is_raised(r, source.enterprise, subject) for r in self.refs]
        on = all(hits) if cond.all is not None else any(hits)
        key = f"{self.rt.alert}|{source.enterprise}|{subject if subject != '*' else source.enterprise}"
        if not on and hooks.find(key) is None:
            return
        hs = source.hazard_source if subject != "*" else ""
        inst = self.instance(source.enterprise, subject, hs)
        inst.drive(on, ts, hooks)

    def instance(self, enterprise: str, subject: str, hs: str) -> CompoundInstance:
        """The instance for a hazard source (``subject``) or the enterprise (``"*"``), made and
        registered the first time."""
        rt = self.rt
        key = f"{rt.alert}|{enterprise}|{subject if subject != '*' else enterprise}"
        found = self.hooks.find(key)
        if isinstance(found, CompoundInstance):
            return found
        labels = dict(rt.rule.labels)
        fields = {"enterprise": enterprise, "hazard_source": hs}
        inst = CompoundInstance(
            rt, enterprise, subject if subject != "*" else enterprise, hs, None, None,
            labels, fields, rt.priority,
        )  # fmt: skip
        inst.scope = subject
        self.hooks.add(inst)
        return inst

    def restore(self, key: str, data: Mapping[str, Any]) -> AlarmInstance | None:
        """The instance a snapshot names under ``key``, made again; None when it cannot be."""
        if data.get("kind") != CompoundInstance.kind:
            return None
        enterprise = key.partition("|")[2].partition("|")[0]
        if enterprise not in self.enterprises:
            return None
        return self.instance(enterprise, str(data["scope"]), str(data["hazard_source"]))


def compile_rule(rt: CompiledRule, build: Build) -> None:
    """No instances yet: listen to every alert the rule names."""
    rule = CompoundRule(rt, build)
    build.hooks.restore_with(rt.alert, rule.restore)
    for ref in dict.fromkeys(rule.refs):
        build.hooks.listen(ref, rule.on_change)
