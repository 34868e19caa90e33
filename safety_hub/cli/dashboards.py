"""``safety-hub dashboards build|check|push``: the Grafana boards as code.

The boards are built from the plant registry and the rule packs the hub alarms with (the same
``--plant`` / ``--rules`` defaults as ``safety-hub run``), so threshold lines never disagree
with the alarms.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from safety_hub.cli.common import EXIT_FAILED, EXIT_OK, Subparsers
from safety_hub.registry import Plant, default_plant_path, load_plant
from safety_hub.rules import RulePack, default_rules_path, load_rules


def register(sub: Subparsers) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--plant", type=Path, default=None, help="plant registry (default: sample park)"
    )
    common.add_argument(
        "--rules", type=Path, default=None, help="rule pack file or folder (default: alert_rules/)"
    )
    common.add_argument(
        "--out", type=Path, default=None, help="JSON folder (default: dashboards/json/)"
    )

    dash = sub.add_parser(
        "dashboards",
        help="build, check or push the Grafana boards (dashboards as code)",
        description="The Grafana boards are generated from the plant registry and the rule "
        "packs (threshold lines = alarm setpoints). See docs/dashboards.md.",
    )
    dash_sub = dash.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)
    build = dash_sub.add_parser(
        "build",
        parents=[common],
        help="regenerate dashboards/json/ from the code",
        description="Write every board as <uid>.json (only files whose content changed).",
    )
    build.set_defaults(func=cmd_build)
    check = dash_sub.add_parser(
        "check",
        parents=[common],
        help="exit 1 when the committed JSON is stale",
        description="Build the boards in memory and compare them with the JSON folder; print "
        "a diff of each stale file. CI runs this.",
    )
    check.set_defaults(func=cmd_check)
    push_p = dash_sub.add_parser(
        "push",
        parents=[common],
        help="upload the boards to a Grafana (idempotent)",
        description="Create the folder if missing, save each board by uid with overwrite; "
        "boards already identical are left alone, so a second push changes nothing.",
    )
    push_p.add_argument("--url", required=True, help="Grafana base URL, e.g. http://grafana:3000")
    push_p.add_argument(
        "--token",
        default=None,
        help="service account token (default: $GRAFANA_TOKEN; or user:pass in the URL)",
    )
    push_p.add_argument("--folder-uid", default=None, help="folder uid (default: safety-hub)")
    push_p.add_argument("--folder-title", default=None, help="folder title (default: safety-hub)")
    push_p.set_defaults(func=cmd_push)


def _plant_and_rules(args: argparse.Namespace) -> tuple[Plant, RulePack]:
    plant = load_plant(args.plant or default_plant_path())
    pack = load_rules(args.rules or default_rules_path(), plant)
    return plant, pack


def _boards(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    from dashboards.build import build_all

    plant, pack = _plant_and_rules(args)
    return build_all(plant, pack)


def _out_dir(args: argparse.Namespace) -> Path:
    from dashboards.build import default_json_dir

    return Path(args.out) if args.out else default_json_dir()


def cmd_build(args: argparse.Namespace) -> int:
    from dashboards.build import write_all

    boards = _boards(args)
    out = _out_dir(args)
    result = write_all(boards, out)
    for path in result.written:
        print(f"dashboards: wrote {path}", file=sys.stderr)
    for path in result.removed:
        print(f"dashboards: removed {path}", file=sys.stderr)
    print(
        f"dashboards: {len(boards)} boards in {out} "
        f"({len(result.written)} written, {len(result.unchanged)} unchanged)",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from dashboards.build import check_all

    boards = _boards(args)
    out = _out_dir(args)
    problems = check_all(boards, out)
    for problem in problems:
        print(f"dashboards: {problem}", file=sys.stderr)
    if problems:
        print(
            "dashboards: the committed JSON is stale: run `safety-hub dashboards build` "
            "and commit dashboards/json/",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"dashboards: {len(boards)} boards in {out} are up to date", file=sys.stderr)
    return EXIT_OK


def cmd_push(args: argparse.Namespace) -> int:
    from dashboards.build import FOLDER_TITLE, FOLDER_UID
    from dashboards.push import PushError, PushOutcome, push

    token = args.token or os.environ.get("GRAFANA_TOKEN")
    boards = _boards(args)

    def progress(outcome: PushOutcome) -> None:
        where = f" {outcome.url}" if outcome.url else ""
        print(f"dashboards: {outcome.uid}: {outcome.action}{where}", file=sys.stderr, flush=True)

    try:
        outcomes = push(
            args.url,
            token,
            boards,
            folder_uid=args.folder_uid or FOLDER_UID,
            folder_title=args.folder_title or FOLDER_TITLE,
            progress=progress,
        )
    except PushError as exc:
        print(f"safety-hub: {exc}", file=sys.stderr)
        return EXIT_FAILED
    changed = sum(o.action != "unchanged" for o in outcomes)
    print(
        f"dashboards: pushed {len(outcomes)} boards to {args.url}, {changed} changed",
        file=sys.stderr,
    )
    return EXIT_OK
