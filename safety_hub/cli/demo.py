"""``safety-hub demo``: the hub in local mode with the sample park's gateways publishing into
it, and with ``--scenario`` an incident played into it (safety_hub.cli.demo_session,
safety_hub.cli.scenario_demo)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from safety_hub.cli.common import EXIT_OK, EXIT_USAGE, Subparsers, add_api_port, load_hub_settings
from safety_hub.cli.serve import api_listener, api_port_chosen, authenticator, serve

if TYPE_CHECKING:
    from safety_hub.scenarios.loader import Scenario
    from safety_hub.settings import Settings


def register(sub: Subparsers) -> None:
    demo = sub.add_parser(
        "demo",
        help="run the hub in local mode with the sample park's gateways publishing into it",
        description="Local-mode hub plus simulated gateways for every enterprise of the sample "
        "park; prints where to look and progress every 5 s. Data under .hub-data/demo. With "
        "--scenario it also plays an incident into the hub (the demo's gateways pause the "
        "scenario's tags meanwhile) and prints its alarms and its outcome.",
    )
    add_api_port(
        demo,
        "HTTP port of the API and console (default: SAFETY_HUB_API_PORT, else 8080 or a "
        "free port when 8080 is taken); a chosen port that is taken stops with exit code 2",
    )
    demo.add_argument(
        "--scenario",
        type=Path,
        default=None,
        metavar="FILE",
        help="play this scenario (scenarios/*.yaml) into the demo once it runs",
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=None,
        help="scenario time per wall time for --scenario (default 1: real time)",
    )
    demo.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    demo.add_argument(
        "--rate", type=float, default=0, help="readings/s in total (default: each tag's interval)"
    )
    demo.add_argument("-v", "--verbose", action="store_true", help="show the hub's logs")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """The hub in local mode with the sample park's gateways publishing into it."""
    from safety_hub.cli.demo_session import DemoSession
    from safety_hub.registry import default_plant_path, load_plant
    from safety_hub.runtime.hub import Hub
    from safety_hub.runtime.notify_file import FileSender, demo_notify_file

    settings = _demo_settings(args)
    problem = _speed_problem(args)
    if problem is not None:
        print(f"safety-hub: demo: {problem}", file=sys.stderr)
        return EXIT_USAGE
    plant = load_plant(settings.plant or default_plant_path())
    scenario, problem = _scenario(args, settings)
    if problem is not None:
        print(f"safety-hub: demo: {problem}", file=sys.stderr)
        return EXIT_USAGE
    # the port before the hub starts; one the user did not choose gives way, like the broker's
    listener = api_listener(
        settings.api_host, settings.api_port, any_port_if_taken=not api_port_chosen(args)
    )
    if listener is None:
        return EXIT_USAGE
    port: int = listener.getsockname()[1]
    try:
        # Notifications are planned and journaled as in production, but delivered to a local
        # file: the sample park's contacts are examples (docs/notifications.md, "The demo").
        hub = Hub(
            settings,
            plant=plant,
            notification_sender=FileSender(demo_notify_file(settings.data_dir)),
        )
        auth = authenticator(settings, hub.plant)
    except BaseException:
        listener.close()
        raise
    session = DemoSession(args, hub, settings, port, getattr(auth, "local_token", None), scenario)
    serve(hub, listener, on_started=session.started, auth=auth)
    session.stop_scenario()
    return EXIT_OK


def _demo_settings(args: argparse.Namespace) -> Settings:
    """The settings of the demo (its data under .hub-data/demo unless chosen), logging set up."""
    from safety_hub.logs import setup_logging
    from safety_hub.settings import Settings

    # The demo's state is always SQLite files in its data dir: demo alarms must never reach a
    # shared state database that SAFETY_HUB_STATE_URL names for production.
    overrides: dict[str, object] = {"state_url": None}
    if "SAFETY_HUB_DATA_DIR" not in os.environ:
        overrides["data_dir"] = Path(".hub-data/demo")
    if args.api_port is not None:
        overrides["api_port"] = args.api_port
    settings = load_hub_settings(**overrides)
    assert isinstance(settings, Settings)
    setup_logging(
        "warning" if not args.verbose else "info", "text", secrets=settings.secret_values()
    )
    return settings


def _speed_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with ``--speed`` (None: nothing)."""
    if args.speed is not None and args.scenario is None:
        return "--speed is the speed of --scenario FILE; give both"
    if args.speed is not None and not args.speed > 0:
        return f"--speed must be > 0, got {args.speed:g}"
    return None


def _scenario(args: argparse.Namespace, settings: Settings) -> tuple[Scenario | None, str | None]:
    """The ``--scenario`` loaded (every error as file:line:col, exit 2), and why it cannot be
    played into this demo (None: it can)."""
    if args.scenario is None:
        return None, None
    from safety_hub.cli.scenario_demo import demo_scenario_problem
    from safety_hub.registry import default_plant_path
    from safety_hub.rules import default_rules_path
    from safety_hub.scenarios.loader import load_scenario

    scenario = load_scenario(args.scenario)
    rules = settings.rules or default_rules_path()
    problem = demo_scenario_problem(scenario, settings.plant or default_plant_path(), rules)
    return scenario, problem
