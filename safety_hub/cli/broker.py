"""``safety-hub broker``: Mosquitto passwd, ACL and credentials from the plant registry
(connectors.mqtt.acl, imported when the command runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from safety_hub.cli.common import EXIT_OK, Subparsers
from safety_hub.registry import default_plant_path, load_plant


def register(sub: Subparsers) -> None:
    broker = sub.add_parser(
        "broker",
        help="write Mosquitto passwd, ACL and credentials from the plant registry",
        description="One MQTT user per enterprise (named by its code) that may publish only "
        "under hazard/v1/<code>/ and read only its own rejected and alarms topics; the hub "
        "user reads all telemetry, its catch-all user only unregistered enterprises'. "
        "Passwords: MQTT_<USER>_PASSWORD from the environment, else kept from "
        "DIR/credentials, else generated (--rotate: new ones). See docs/deploy.md.",
    )
    broker.add_argument(
        "--plant", type=Path, default=None, help="plant registry (default: sample park)"
    )
    broker.add_argument(
        "--out", type=Path, required=True, help="folder for passwd, acl, credentials"
    )
    broker.add_argument("--hub-user", default="hub", help="the hub's MQTT user (default: hub)")
    broker.add_argument(
        "--catch-all-user",
        default=None,
        help="the hub's catch-all user, with the hub's password: reads what no registered "
        "enterprise sends, so the broker sends the hub no second copy of each message "
        "(default: <hub-user>-unregistered; the hub's SAFETY_HUB_MQTT_CATCH_ALL_USER)",
    )
    broker.add_argument(
        "--simulator-user",
        default=None,
        help="also a user that publishes for every enterprise (demo/test stacks only)",
    )
    broker.add_argument(
        "--rotate", action="store_true", help="new passwords for users not set by env"
    )
    broker.set_defaults(func=cmd_broker)


def cmd_broker(args: argparse.Namespace) -> int:
    from connectors.mqtt.acl import generate

    plant = load_plant(args.plant or default_plant_path())
    result = generate(
        plant,
        Path(args.out),
        hub_user=args.hub_user,
        simulator_user=args.simulator_user or None,
        rotate=args.rotate,
        catch_all_user=args.catch_all_user or None,
    )
    counts: dict[str, int] = {}
    for source in result.source.values():
        counts[source] = counts.get(source, 0) + 1
    summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    print(
        f"broker: {len(result.users)} users for park {plant.park_code} in {args.out} "
        f"(passwords: {summary}); files changed: {', '.join(result.changed) or 'none'}",
        file=sys.stderr,
    )
    if result.removed:
        print(
            f"broker: removed users no longer in the registry: {', '.join(result.removed)}",
            file=sys.stderr,
        )
    print(f"broker: clear-text passwords in {result.credentials} (mode 0600)", file=sys.stderr)
    return EXIT_OK
