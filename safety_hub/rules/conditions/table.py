"""The condition kinds by ``type``: how a rule of each kind compiles into alarm instances."""

from __future__ import annotations

from collections.abc import Callable

from safety_hub.rules.conditions import (
    bad_quality,
    clock_skew,
    compound,
    frozen,
    link_down,
    out_of_range,
    rate_of_change,
    sis_state,
    stale,
    threshold,
    voting,
)
from safety_hub.rules.conditions.base import CompiledRule
from safety_hub.rules.conditions.build import Build
from safety_hub.rules.schema import CONDITION_TYPES

CompileRule = Callable[[CompiledRule, Build], None]
"""Makes the instances of one rule, registers them and subscribes them to their slots."""

CONDITION_KINDS: dict[str, CompileRule] = {
    "threshold": threshold.compile_rule,
    "rate_of_change": rate_of_change.compile_rule,
    "stale": stale.compile_rule,
    "bad_quality": bad_quality.compile_rule,
    "out_of_range": out_of_range.compile_rule,
    "voting": voting.compile_rule,
    "sis_state": sis_state.compile_rule,
    "compound": compound.compile_rule,
    "link_down": link_down.compile_rule,
    "clock_skew": clock_skew.compile_rule,
    "frozen": frozen.compile_rule,
}

# Fails at import, not at the first rule of the kind: a kind added to the schema but not here.
if set(CONDITION_KINDS) != set(CONDITION_TYPES):
    raise RuntimeError(
        f"rules/conditions/table.py: CONDITION_KINDS has {sorted(CONDITION_KINDS)}, "
        f"schema.CONDITION_TYPES has {sorted(CONDITION_TYPES)}"
    )
