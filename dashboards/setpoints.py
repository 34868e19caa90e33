"""Threshold lines from the same rule packs and registry that raise the alarms.

A tag gets a line for a setpoint only when a rule of the pack alarms on it: a ``threshold``
rule (or a ``voting`` rule, per detector) whose selector picks the tag and whose setpoint is
the registry key (``l1``, ``l2``, ``ll``, ``l``, ``h``, ``hh``) or a number. The line's colour
is the park warning tier of the rule's priority, so a level-2 gas line is drawn in the colour
its alarm will show.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboards.model import Step
from safety_hub.registry import Plant, TagInfo
from safety_hub.rules import RulePack
from safety_hub.rules.model import selected_tags
from safety_hub.rules.schema import Threshold, VotingCondition

TIER_COLORS = {"critical": "red", "high": "orange", "medium": "yellow", "low": "blue"}
"""park warning tiers: red / orange / yellow / blue"""
PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}
NORMAL_COLOR = "green"
LOW_KEYS = frozenset({"l", "ll"})


@dataclass(frozen=True, order=True)
class Setpoint:
    value: float
    key: str
    """the registry key or ``"n"`` for a numeric setpoint in the rule"""
    direction: str
    """``high``: alarm at or above; ``low``: at or below"""
    priority: str
    alert: str


def tag_setpoints(plant: Plant, pack: RulePack) -> dict[tuple[str, str], list[Setpoint]]:
    """(enterprise, tag) -> the setpoints the pack alarms on, by value; the highest priority
    wins when two rules use the same value and direction."""
    found: dict[tuple[str, str], dict[tuple[float, str], Setpoint]] = {}
    for rule in pack:
        cond = rule.condition
        if not isinstance(cond, Threshold | VotingCondition):
            continue
        for tag in selected_tags(rule.select, cond, plant):
            sp = cond.setpoint
            if isinstance(sp, str):
                if sp not in tag.setpoints:
                    continue
                value, key = float(tag.setpoints[sp]), sp
            else:
                value, key = float(sp), "n"
            direction = getattr(cond, "direction", None) or ("low" if key in LOW_KEYS else "high")
            slot = found.setdefault((tag.enterprise, tag.tag), {})
            current = slot.get((value, direction))
            if current is None or PRIORITY_RANK[rule.priority] > PRIORITY_RANK[current.priority]:
                slot[(value, direction)] = Setpoint(
                    value, key, direction, rule.priority, rule.alert
                )
    return {k: sorted(v.values()) for k, v in found.items()}


def threshold_steps(setpoints: list[Setpoint]) -> list[Step]:
    """Grafana threshold steps (ascending): below the lowest low setpoint its colour, the
    normal band green, from each high setpoint on its colour."""
    lows = sorted((s for s in setpoints if s.direction == "low"), key=lambda s: s.value)
    highs = sorted((s for s in setpoints if s.direction == "high"), key=lambda s: s.value)
    if lows:
        steps = [Step(TIER_COLORS[lows[0].priority])]
        # Each low line marks where the band above it starts: the next (weaker) low's colour.
        for below, above in zip(lows, [*lows[1:], None], strict=True):
            color = NORMAL_COLOR if above is None else TIER_COLORS[above.priority]
            steps.append(Step(color, below.value))
    else:
        steps = [Step(NORMAL_COLOR)]
    steps += [Step(TIER_COLORS[s.priority], s.value) for s in highs]
    return steps


GRAFANA_UNITS = {
    "ppm": "ppm",
    "%": "percent",
    "°C": "celsius",
    "kPa": "pressurekpa",
    "m": "lengthm",
    "m3/h": "suffix: m³/h",
}


def grafana_unit(eu: str) -> str:
    """Grafana's unit id for an engineering unit, else a plain suffix."""
    return GRAFANA_UNITS.get(eu) or (f"suffix: {eu}" if eu else "none")


def series_name(tag: TagInfo) -> str:
    """The series name a panel gives a tag: its alias ``$tag_enterprise/$tag_tag``."""
    return f"{tag.enterprise}/{tag.tag}"


def display_name(tag: TagInfo) -> str:
    return f"{tag.tag} {tag.name}".strip()
