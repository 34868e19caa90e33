"""``safety-hub uplink check|status``: validate an uplink configuration, show the queue of each
destination (docs/uplink.md)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from safety_hub.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subparsers


def register(sub: Subparsers) -> None:
    uplink = sub.add_parser(
        "uplink",
        help="check the uplink configuration, or show what waits to go up",
        description="The provincial uplink (docs/uplink.md): destinations, transports, the "
        "field mapping and the durable queue per destination.",
    )
    uplink_sub = uplink.add_subparsers(dest="uplink_command", metavar="ACTION", required=True)
    check = uplink_sub.add_parser(
        "check",
        help="validate an uplink file; every error as file:line:col",
        description="Load the uplink file against the plant and print every error as "
        "file:line:col; then per destination what it sends and whether the environment "
        "holds its secrets. Exit code 1 on any error or missing secret.",
    )
    check.add_argument(
        "path", nargs="?", type=Path, help="uplink file (default: SAFETY_HUB_UPLINK)"
    )
    check.add_argument(
        "--plant",
        type=Path,
        default=None,
        help="plant registry (default: SAFETY_HUB_PLANT, else the sample park)",
    )
    check.set_defaults(func=cmd_uplink_check)
    status = uplink_sub.add_parser(
        "status",
        help="records waiting per destination, read from the data directory or the database",
        description="Read the uplink queue in the data directory, or in the PostgreSQL "
        "database SAFETY_HUB_STATE_URL names (a redundant pair's shared queue; works with the hub running "
        "or stopped): per destination the records waiting, the age of the oldest and how far "
        "the alarm journal has been queued. The live state (connected, sent, errors) is in "
        "GET /api/v1/system and /metrics.",
    )
    status.add_argument(
        "--data-dir", type=Path, default=None, help="default: SAFETY_HUB_DATA_DIR, else .hub-data"
    )
    status.set_defaults(func=cmd_uplink_status)


def cmd_uplink_check(args: argparse.Namespace) -> int:
    from safety_hub.errors import LoadError
    from safety_hub.registry import default_plant_path, load_plant
    from safety_hub.uplink import load_uplink

    env_file = os.environ.get("SAFETY_HUB_UPLINK")
    path = args.path or (Path(env_file) if env_file else None)
    if path is None:
        print("safety-hub: no uplink file: give one, or set SAFETY_HUB_UPLINK")
        return EXIT_USAGE
    env_plant = os.environ.get("SAFETY_HUB_PLANT")
    plant_path = args.plant or (Path(env_plant) if env_plant else default_plant_path())
    plant = load_plant(plant_path)
    print(f"Checking {path} against {plant_path}")
    try:
        config = load_uplink(path, plant)
    except LoadError as exc:
        print(f"  FAILED: {len(exc.errors)} error(s):")
        for error in exc.errors:
            print(error)
        return EXIT_FAILED
    missing = 0
    for dest in config.destinations:
        model = dest.model
        send = model.send
        print(
            f"  {model.name}: {model.transport}, {len(dest.hazard_sources(plant))} hazard "
            f"source(s), {len(dest.tags(plant))} tag(s); base {'on' if send.base else 'off'}, "
            f"readings every {send.readings_interval_s:g} s, warnings "
            f"{'on' if send.warnings else 'off'}; at most {model.rate_per_s:g} records/s"
        )
        secrets = [model.tcp.key_env, model.tcp.iv_env] if model.tcp else []
        secrets += [model.http.token_env] if model.http else []
        secrets += [model.mqtt.username_env, model.mqtt.password_env] if model.mqtt else []
        for name in filter(None, secrets):
            if not os.environ.get(name):
                missing += 1
                print(f"  {model.name}: {name} is not set: the hub will not start with it unset")
    if missing:
        return EXIT_FAILED
    print(f"  SUCCESS: {len(config.destinations)} destination(s)")
    return EXIT_OK


def cmd_uplink_status(args: argparse.Namespace) -> int:
    from safety_hub.uplink import UplinkQueue
    from safety_hub.uplink.queue import QUEUE_FILE, UplinkQueueStore

    state_url = os.environ.get("SAFETY_HUB_STATE_URL", "")
    queue: UplinkQueueStore
    if state_url.startswith(("postgresql://", "postgres://")):
        from connectors.postgres.uplink_queue import PgUplinkQueue
        from safety_hub.settings import redact_url

        where = f"PostgreSQL {redact_url(state_url)}"
        queue = PgUplinkQueue(state_url)
    else:
        data_dir = args.data_dir or Path(os.environ.get("SAFETY_HUB_DATA_DIR", ".hub-data"))
        path = data_dir / QUEUE_FILE
        if not path.is_file():
            print(f"no uplink queue at {path}: the hub has run no uplink with this data directory")
            return EXIT_OK
        where, queue = str(path), UplinkQueue(path)
    try:
        now = int(time.time() * 1000)
        names = queue.destinations()
        if not names:
            print(f"{where}: no destination has records or markers")
        for name in names:
            depth = queue.depth(name)
            cursors = queue.cursors(name)
            age = (
                ""
                if depth.oldest_ms is None
                else f", oldest {(now - depth.oldest_ms) / 1000:.0f} s old"
            )
            readings = sum(1 for c in cursors if c.startswith("r:"))
            print(
                f"{name}: {depth.records} record(s) waiting{age}; alarm journal queued up to row "
                f"{cursors.get('journal', '-')}; readings queued for {readings} tag(s)"
            )
    finally:
        queue.close()
    return EXIT_OK
