"""``safety-hub people check|on-duty``: validate the people and rosters file, show who is on
duty (docs/people.md)."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from safety_hub.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subparsers


def register(sub: Subparsers) -> None:
    people = sub.add_parser(
        "people",
        help="check the people and rosters file, or show who is on duty",
        description="People, roles and duty rosters (docs/people.md). Default file: "
        "SAFETY_HUB_PEOPLE, else the bundled sample; checked against the plant "
        "(--plant, SAFETY_HUB_PLANT, else the sample park).",
    )
    people_sub = people.add_subparsers(dest="people_command", metavar="ACTION", required=True)
    check = people_sub.add_parser(
        "check",
        help="validate a people file; every error as file:line:col",
        description="Load the people file against the plant and print every error as "
        "file:line:col with a hint. Exit code 1 on any error.",
    )
    check.add_argument("path", nargs="?", type=Path, help="people file")
    check.add_argument("--plant", type=Path, default=None, help="plant registry")
    check.set_defaults(func=cmd_people_check)
    duty = people_sub.add_parser(
        "on-duty",
        help="who is on duty in each roster, now or at a time",
        description="Print who is on duty in each roster (or one) and who takes over next.",
    )
    duty.add_argument(
        "--at", type=at_arg, default=None, help="ISO-8601 time with offset (default: now)"
    )
    duty.add_argument("--roster", default=None, help="one roster (default: all)")
    duty.add_argument("--people", type=Path, default=None, help="people file")
    duty.add_argument("--plant", type=Path, default=None, help="plant registry")
    duty.set_defaults(func=cmd_people_on_duty)


def at_arg(text: str) -> int:
    """An argparse type: an ISO-8601 time with an offset, as epoch milliseconds."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time (e.g. 2026-10-01T08:00+08:00)"
        ) from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs an offset, e.g. +08:00")
    return int(when.timestamp() * 1000)


def _paths(people: Path | None, plant: Path | None) -> tuple[Path, Path]:
    from safety_hub.people import default_people_path
    from safety_hub.registry import default_plant_path

    env_people = os.environ.get("SAFETY_HUB_PEOPLE")
    env_plant = os.environ.get("SAFETY_HUB_PLANT")
    return (
        people or (Path(env_people) if env_people else default_people_path()),
        plant or (Path(env_plant) if env_plant else default_plant_path()),
    )


def cmd_people_check(args: argparse.Namespace) -> int:
    from safety_hub.errors import LoadError
    from safety_hub.people import load_people
    from safety_hub.registry import load_plant

    path, plant_path = _paths(args.path, args.plant)
    try:
        plant = load_plant(plant_path)
    except LoadError as exc:
        print(f"cannot load the plant: {exc}")
        return EXIT_FAILED
    print(f"Checking {path} against {plant_path}")
    try:
        directory = load_people(path, set(plant.enterprises))
    except LoadError as exc:
        print(f"  FAILED: {len(exc.errors)} error(s):")
        for error in exc.errors:
            print(error)
        return EXIT_FAILED
    print(f"  SUCCESS: {len(directory.people)} people, {len(directory.rosters)} roster(s)")
    return EXIT_OK


def cmd_people_on_duty(args: argparse.Namespace) -> int:
    from safety_hub.people import load_people
    from safety_hub.registry import load_plant

    path, plant_path = _paths(args.people, args.plant)
    directory = load_people(path, set(load_plant(plant_path).enterprises))
    names = list(directory.rosters)
    if args.roster is not None:
        if args.roster not in directory.rosters:
            close = difflib.get_close_matches(args.roster, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(names) or "none"
            print(
                f"safety-hub: no roster {args.roster!r} in {path}{hint} (rosters: {known})",
                file=sys.stderr,
            )
            return EXIT_USAGE
        names = [args.roster]
    if not names:
        print(f"{path} has no rosters")
    at_ms = args.at if args.at is not None else int(time.time() * 1000)
    for name in names:
        roster = directory.rosters[name]
        duty = directory.on_duty(name, at_ms)
        tz = ZoneInfo(roster.time_zone)

        def local(ms: int, tz: ZoneInfo = tz) -> str:
            return datetime.fromtimestamp(ms / 1000, tz).strftime("%Y-%m-%d %H:%M")

        who = ", ".join(f"{p.name} ({p.id})" for p in duty.people) or "nobody"
        swap = (
            f" [override: {duty.slot.override.reason or 'no reason'}]" if duty.slot.override else ""
        )
        title = f" {roster.title}" if roster.title else ""
        after = [directory.people[i] for i in duty.next.people if i in directory.people]
        print(f"{name}{title} ({roster.time_zone})")
        print(
            f"  {duty.slot.shift} {local(duty.slot.start_ms)} - {local(duty.slot.end_ms)}: "
            f"{who}{swap}"
        )
        print(
            f"  next {duty.next.shift} from {local(duty.next.start_ms)}: "
            + (", ".join(f"{p.name} ({p.id})" for p in after) or "nobody")
        )
    return EXIT_OK
