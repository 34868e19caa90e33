"""``safety-hub rules check|test``: validate rule packs, run their rule unit tests."""

from __future__ import annotations

import argparse
from pathlib import Path

from safety_hub.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    rules = sub.add_parser(
        "rules",
        help="check rule packs, or run their rule unit tests",
        description="Rule packs (alert_rules/*.yaml): validate them against a plant, or run "
        "their promtool-style unit tests. Exit code 1 on any error or failed test.",
    )
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    check = rules_sub.add_parser(
        "check",
        help="validate rule files or folders; every error as file:line:col",
        description="Load each rule file or folder against the plant; print every error as "
        "file:line:col with its group and rule. Default: alert_rules/.",
    )
    check.add_argument("paths", nargs="*", type=Path, help="rule files or folders")
    check.add_argument(
        "--plant", type=Path, default=None, help="plant registry (default: sample park)"
    )
    check.set_defaults(func=cmd_rules_check)
    test = rules_sub.add_parser(
        "test",
        help="run rule unit tests (input series, evaluation times, expected alarms)",
        description="Run rule test files or folders of them. Default: alert_rules/tests/.",
    )
    test.add_argument("paths", nargs="*", type=Path, help="rule test files or folders")
    test.set_defaults(func=cmd_rules_test)


def cmd_rules_check(args: argparse.Namespace) -> int:
    from safety_hub.rules import default_rules_path, main_check

    paths = args.paths or [default_rules_path()]
    return main_check(paths, plant_path=args.plant)


def cmd_rules_test(args: argparse.Namespace) -> int:
    from safety_hub.rules import default_rules_path, main_test

    paths = args.paths or [default_rules_path() / "tests"]
    return main_test(paths)
