"""A loaded rule pack and the rules that relate it to the plant (which tags a rule applies to)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from safety_hub.registry import Plant, TagInfo
from safety_hub.registry.checks import DISCRETE_KINDS
from safety_hub.rules.schema import (
    ENTERPRISE_TYPES,
    ConditionModel,
    Frozen,
    Selector,
    SisState,
    Threshold,
    VotingCondition,
)

SIS_KIND_OF_STATE = {
    "trip": "sis_trip",
    "bypass": "sis_bypass",
    "bypass_overdue": "sis_bypass",
    "fault": "sis_fault",
    "voting_degraded": "sis_status",
    "bit": "sis_status",
}
"""The tag kind each ``sis_state`` state reads."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One validated rule, with where it came from."""

    alert: str
    group: str
    file: str
    line: int
    col: int
    select: Selector
    condition: ConditionModel
    latch: bool
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    suppressed_by: tuple[str, ...]
    priority: str
    alarm_class: str
    level: int | None

    @property
    def type(self) -> str:
        return self.condition.type

    @property
    def where(self) -> str:
        """``alert_rules/gas.yaml:12:9`` (the rule's ``alert`` key)."""
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class RulePack:
    """Every rule of one or more rule files, in file order, plus load warnings."""

    rules: tuple[Rule, ...]
    files: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    _by_alert: dict[str, Rule] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        for rule in self.rules:
            self._by_alert[rule.alert] = rule

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def rule(self, alert: str) -> Rule:
        """The rule named ``alert``; ``KeyError`` when there is none."""
        return self._by_alert[alert]

    def __contains__(self, alert: object) -> bool:
        return alert in self._by_alert


def selects(sel: Selector, tag: TagInfo) -> bool:
    """True when every field the selector sets matches the tag."""
    return (
        (sel.tag is None or tag.tag in sel.tag)
        and (sel.kind is None or tag.kind in sel.kind)
        and (sel.enterprise is None or tag.enterprise in sel.enterprise)
        and (sel.hazard_source is None or tag.hazard_source in sel.hazard_source)
        and (sel.zone is None or tag.zone in sel.zone)
        and (sel.gas is None or tag.gas in sel.gas)
    )


def applies(cond: ConditionModel, tag: TagInfo, plant: Plant) -> bool:
    """Whether a condition type can be evaluated on a tag at all (beyond the selector)."""
    if isinstance(cond, Threshold):
        if isinstance(cond.setpoint, str):
            return cond.setpoint in tag.setpoints
        return tag.kind not in DISCRETE_KINDS
    if cond.type == "rate_of_change":
        return tag.kind not in DISCRETE_KINDS
    if isinstance(cond, VotingCondition):
        if tag.zone is None:
            return False
        zone = plant.zones.get((tag.enterprise, tag.zone))
        if zone is None or zone.voting is None:
            return False
        return not isinstance(cond.setpoint, str) or cond.setpoint in tag.setpoints
    if isinstance(cond, SisState):
        return tag.kind == SIS_KIND_OF_STATE[cond.state]
    if isinstance(cond, Frozen):
        return tag.kind in cond.after
    return cond.type != "compound"


def selected_tags(sel: Selector, cond: ConditionModel, plant: Plant) -> list[TagInfo]:
    """The tags a rule applies to, in plant order."""
    return [t for t in plant.tags.values() if selects(sel, t) and applies(cond, t, plant)]


def selected_enterprises(sel: Selector, cond: ConditionModel, plant: Plant) -> list[str]:
    """The enterprises an enterprise-level rule (link_down, clock_skew) watches."""
    assert cond.type in ENTERPRISE_TYPES
    only_enterprise = all(
        getattr(sel, name) is None for name in ("tag", "kind", "hazard_source", "zone", "gas")
    )
    if only_enterprise:
        return [e for e in plant.enterprises if sel.enterprise is None or e in sel.enterprise]
    seen = {t.enterprise: None for t in plant.tags.values() if selects(sel, t)}
    return list(seen)
