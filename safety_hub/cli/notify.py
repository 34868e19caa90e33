"""``safety-hub notify check|test``: validate notification policies against the people
directory, the rule pack and the plant; run the policy tests (docs/notifications.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from safety_hub.cli.common import EXIT_FAILED, EXIT_OK, Subparsers

if TYPE_CHECKING:
    from safety_hub.notify.loader import Known
    from safety_hub.people import PeopleDirectory


def register(sub: Subparsers) -> None:
    notify = sub.add_parser(
        "notify",
        help="check notification policies, or run their policy tests",
        description="Notification policies (alert_rules/notify/*.yaml, docs/notifications.md): "
        "validate them against the people file (SAFETY_HUB_PEOPLE, else the bundled sample), "
        "the rule pack and the plant, or run their tests. Exit code 1 on any error or failed "
        "test.",
    )
    notify_sub = notify.add_subparsers(dest="notify_command", metavar="ACTION", required=True)
    check = notify_sub.add_parser(
        "check",
        help="validate policy files or folders; every error as file:line:col",
        description="Load each policy file or folder; print every error as file:line:col. "
        "Default: SAFETY_HUB_NOTIFY_POLICIES, else alert_rules/notify/.",
    )
    check.add_argument("paths", nargs="*", type=Path, help="policy files or folders")
    test = notify_sub.add_parser(
        "test",
        help="run policy tests (alarm events at times, who is told when)",
        description="Run policy test files or folders of them. Default: alert_rules/notify/tests/.",
    )
    test.add_argument("paths", nargs="*", type=Path, help="policy test files or folders")
    for parser, func in ((check, cmd_notify_check), (test, cmd_notify_test)):
        parser.add_argument("--people", type=Path, default=None, help="people file")
        parser.add_argument("--plant", type=Path, default=None, help="plant registry")
        parser.add_argument("--rules", type=Path, default=None, help="rule pack file or folder")
        parser.set_defaults(func=func)


def _context(args: argparse.Namespace) -> tuple[PeopleDirectory, Known] | None:
    """The people directory and what policies are checked against; None (printed) when the
    people, the plant or the rules do not load."""
    from safety_hub.errors import LoadError
    from safety_hub.notify.loader import Known
    from safety_hub.people import default_people_path, load_people
    from safety_hub.registry import default_plant_path, load_plant
    from safety_hub.rules import default_rules_path, load_rules

    env = os.environ
    plant_path = args.plant or Path(env.get("SAFETY_HUB_PLANT") or default_plant_path())
    people_path = args.people or Path(env.get("SAFETY_HUB_PEOPLE") or default_people_path())
    rules_path = args.rules or Path(env.get("SAFETY_HUB_RULES") or default_rules_path())
    try:
        plant = load_plant(plant_path)
        people = load_people(people_path, set(plant.enterprises))
        pack = load_rules(rules_path, plant)
    except LoadError as exc:
        print(f"cannot load what the policies refer to: {exc}", file=sys.stdout)
        return None
    known = Known(people.check_target, {r.alert for r in pack}, set(plant.enterprises))
    return people, known


def cmd_notify_check(args: argparse.Namespace) -> int:
    from safety_hub.errors import LoadError
    from safety_hub.notify.loader import default_policy_path, load_policies

    context = _context(args)
    if context is None:
        return EXIT_FAILED
    _, known = context
    env_policies = os.environ.get("SAFETY_HUB_NOTIFY_POLICIES")
    paths = args.paths or [Path(env_policies) if env_policies else default_policy_path()]
    failed = False
    for path in paths:
        print(f"Checking {path}")
        try:
            policies = load_policies(path, known)
        except LoadError as exc:
            failed = True
            print(f"  FAILED: {len(exc.errors)} error(s):")
            for error in exc.errors:
                print(error)
            continue
        print(f"  SUCCESS: {len(policies)} policies found")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_notify_test(args: argparse.Namespace) -> int:
    from safety_hub.notify.loader import default_policy_path
    from safety_hub.notify.testing import main_test

    context = _context(args)
    if context is None:
        return EXIT_FAILED
    people, known = context
    paths = args.paths or [default_policy_path() / "tests"]
    return EXIT_FAILED if main_test(paths, people, known) else EXIT_OK
