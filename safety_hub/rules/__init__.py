"""Alarm rules: rule packs as data (``alert_rules/*.yaml``), the rule engine, rule unit tests.

``load_rules(path, plant)`` validates a pack against the plant (every problem at once as
``file:line:col: message``, raised as ``LoadError``); ``RuleEngine(pack, plant, clock)`` turns
readings, gateway statuses and the clock into alarm conditions; ``run_rule_tests(path)`` runs
promtool-style rule tests; ``default_rules_path()`` is the shipped ``alert_rules/``. Format and
semantics: docs/rules.md.
"""

from safety_hub.rules.engine import RuleEngine, SuppressionChange
from safety_hub.rules.loader import load_rules, parse_rules
from safety_hub.rules.model import Rule, RulePack
from safety_hub.rules.paths import default_rules_path
from safety_hub.rules.testing import RuleTestResult, main_check, main_test, run_rule_tests

__all__ = [
    "Rule",
    "RuleEngine",
    "RulePack",
    "RuleTestResult",
    "SuppressionChange",
    "default_rules_path",
    "load_rules",
    "main_check",
    "main_test",
    "parse_rules",
    "run_rule_tests",
]
