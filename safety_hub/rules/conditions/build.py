"""What compiling a rule may use: the plant, the slots to subscribe instances to, the engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from safety_hub.registry import Plant
from safety_hub.rules.conditions.base import AlarmInstance, CompiledRule, EngineHooks
from safety_hub.rules.model import selected_enterprises, selected_tags
from safety_hub.rules.slots import EnterpriseSlot, TagSlot

ChangeListener = Callable[[AlarmInstance, int], None]
"""Called with an instance of a listened-to alert that was just raised or cleared, and the time."""

RestoreFactory = Callable[[str, Mapping[str, Any]], AlarmInstance | None]
"""Makes the instance of a snapshot key that compiling did not (one made on demand), or None."""


class BuildHooks(EngineHooks, Protocol):
    """What compiling a rule, and a rule whose instances are made on demand (compound), may ask
    of the engine besides the ``EngineHooks``."""

    def add(self, inst: AlarmInstance) -> None:
        """Register a new instance: it gets its place in the engine's order and its key."""
        ...

    def find(self, key: str) -> AlarmInstance | None:
        """The registered instance with this key."""
        ...

    def is_raised(self, alert: str, enterprise: str, scope: str) -> bool:
        """Whether an instance of ``alert`` is raised in the enterprise, in a hazard source
        (``scope``) or anywhere in it (``scope="*"``)."""
        ...

    def listen(self, alert: str, listener: ChangeListener) -> None:
        """Call ``listener`` after each raise or clear of an instance of ``alert``."""
        ...

    def restore_with(self, alert: str, factory: RestoreFactory) -> None:
        """Let ``factory`` make the instances of ``alert`` that a snapshot names."""
        ...


@dataclass(frozen=True, slots=True)
class Build:
    """Passed to ``compile_rule`` of every condition kind."""

    plant: Plant
    start_ms: int
    """hub time the engine starts at: the first watchdogs run from it"""
    slots: Mapping[tuple[str, str], TagSlot]
    enterprises: Mapping[str, EnterpriseSlot]
    hooks: BuildHooks


def tag_slots(rt: CompiledRule, build: Build) -> list[TagSlot]:
    """The slots of the tags a rule applies to, in plant order."""
    rule = rt.rule
    tags = selected_tags(rule.select, rule.condition, build.plant)
    return [build.slots[(tag.enterprise, tag.tag)] for tag in tags]


def enterprise_slots(rt: CompiledRule, build: Build) -> list[EnterpriseSlot]:
    """The slots of the enterprises an enterprise-level rule watches."""
    rule = rt.rule
    codes = selected_enterprises(rule.select, rule.condition, build.plant)
    return [build.enterprises[code] for code in codes]
