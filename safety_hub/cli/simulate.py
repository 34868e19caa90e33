"""``safety-hub simulate``: publish a scenario's field devices, or simulated load of every tag
of the plant, to a broker as the enterprises' gateways. The simulators are imported when the
command runs."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from safety_hub.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subparsers

if TYPE_CHECKING:
    from simulators.park import SimStats
    from simulators.player import PlayStats


def register(sub: Subparsers) -> None:
    sim = sub.add_parser(
        "simulate",
        help="publish a scenario, or simulated load, to a broker as the enterprises' gateways",
        description="Publish by the telemetry contract v1, one gateway per enterprise (QoS 1, "
        "retained online status, last-will offline), revision 1.1 unless --no-critical-topic: "
        "gas-detector and SIS readings on hazard/v1/<enterprise>/critical, the rest on "
        "hazard/v1/<enterprise>/telemetry. With SCENARIO: play the scenario's field devices at "
        "--speed (docs/scenarios.md). Without: every tag of the plant at its interval, or --rate "
        "readings/s in total (load mode).",
    )
    sim.add_argument(
        "scenario", nargs="?", type=Path, default=None, help="scenario file (scenarios/*.yaml)"
    )
    sim.add_argument(
        "--speed", type=float, default=1.0, help="scenario time per wall time (default 1: real)"
    )
    sim.add_argument(
        "--stay-online",
        action="store_true",
        help="at the end disconnect cleanly without publishing the offline status",
    )
    sim.add_argument(
        "--no-critical-topic",
        action="store_true",
        help="act as contract v1.0 gateways: every reading on hazard/v1/<enterprise>/telemetry, "
        "none on .../critical (default: v1.1, gas and SIS readings on .../critical; with "
        "SCENARIO, each gateway as the file's gateways: critical_topic says)",
    )
    sim.add_argument(
        "--url", default="mqtt://127.0.0.1:1883", help="broker URL (mqtt://user:pass@host:port)"
    )
    sim.add_argument(
        "--plant", type=Path, default=None, help="plant registry (default: sample park)"
    )
    sim.add_argument("--enterprises", type=int, default=None, help="use the first N enterprises")
    sim.add_argument("--tags", type=int, default=None, help="use the first M tags of each")
    sim.add_argument("--rate", type=float, default=None, help="readings/s in total (load mode)")
    sim.add_argument("--batch", type=int, default=100, help="readings per message (load mode)")
    sim.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    sim.add_argument("--progress", type=float, default=5.0, help="progress every N seconds")
    sim.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        help="seconds each gateway waits for the broker to accept its connection before the "
        "command gives up with exit 1 (default 10)",
    )
    sim.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    if not args.connect_timeout > 0:
        print(
            f"simulate: --connect-timeout must be > 0, got {args.connect_timeout:g}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.scenario is not None:
        return simulate_scenario(
            args.scenario,
            url=args.url,
            speed=args.speed,
            stay_online=args.stay_online,
            progress_every_s=args.progress,
            critical_topic=False if args.no_critical_topic else None,
            connect_timeout_s=args.connect_timeout,
        )
    return simulate_load(args)


def contract_text(v1_0: list[str], gateways: int) -> str:
    """The contract revision the gateways speak (``v1_0``: the enterprises of those that act as
    revision 1.0 gateways), for the start line."""
    if not v1_0:
        return "contract v1.1 (gas and SIS readings on .../critical)"
    if len(v1_0) == gateways:
        return "contract v1.0 (every reading on .../telemetry)"
    return f"contract v1.1, v1.0 for {', '.join(v1_0)}"


def simulate_load(args: argparse.Namespace) -> int:
    """Every tag of the plant at its interval, or ``--rate`` readings/s in total."""
    from safety_hub.registry import default_plant_path, load_plant
    from safety_hub.settings import MqttTarget
    from simulators.park import ParkSimulator

    target = MqttTarget(args.url)
    plant = load_plant(args.plant or default_plant_path())
    sim = ParkSimulator(
        plant,
        target.host,
        target.port,
        enterprises=args.enterprises,
        tags=args.tags,
        rate=args.rate,
        batch=args.batch,
        username=target.username,
        password=target.password,
        critical_topic=not args.no_critical_topic,
    )
    total_tags = sum(len(v) for v in sim.tags.values())
    v1_0 = list(sim.tags) if args.no_critical_topic else []
    print(
        f"simulate: {len(sim.tags)} enterprise gateways, {total_tags} tags -> {target.redacted()}"
        + (f" at {args.rate:g} readings/s" if args.rate else " at each tag's interval")
        + f", {contract_text(v1_0, len(sim.tags))}",
        file=sys.stderr,
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sim.stop())

    def progress(stats: SimStats) -> None:
        print(
            f"simulate: {stats.readings} readings in {stats.messages} messages "
            f"({stats.rate():.0f} readings/s)",
            file=sys.stderr,
            flush=True,
        )

    try:
        sim.connect(args.connect_timeout)
        stats = sim.run(args.duration, progress=progress, progress_every_s=args.progress)
    except KeyboardInterrupt:
        sim.stop()
        stats = sim.stats
    except ConnectionError as exc:  # the broker is not there: say so, no traceback
        return unreachable(exc)
    progress(stats)
    return EXIT_OK


def unreachable(exc: ConnectionError) -> int:
    """A gateway could not connect: one line naming it and the broker, exit 1."""
    text = str(exc).removeprefix("simulate: ").removeprefix("simulator: ")
    print(f"simulate: {text}", file=sys.stderr)
    return EXIT_FAILED


def simulate_scenario(
    source: Path,
    *,
    url: str,
    speed: float,
    stay_online: bool = False,
    progress_every_s: float = 5.0,
    critical_topic: bool | None = None,
    connect_timeout_s: float = 10.0,
) -> int:
    """The scenario's field devices at ``speed`` (its operator actions are not played);
    ``critical_topic`` True or False for every gateway, None: as the scenario's ``gateways:``."""
    from safety_hub.scenarios.loader import load_scenario
    from safety_hub.scenarios.report import format_clock
    from safety_hub.settings import MqttTarget
    from simulators.player import ScenarioPlayer

    scenario = load_scenario(source)
    target = MqttTarget(url)
    player = ScenarioPlayer(
        scenario,
        target.host,
        target.port,
        speed=speed,
        username=target.username,
        password=target.password,
        stay_online=stay_online,
        critical_topic=critical_topic,
        connect_timeout_s=connect_timeout_s,
    )
    total = scenario.duration_ms
    gateways = scenario.model.gateways
    v1_0 = [
        code
        for code in scenario.enterprises
        if critical_topic is False
        or (critical_topic is None and code in gateways and not gateways[code].critical_topic)
    ]
    print(
        f"simulate: {scenario.name}: {len(scenario.enterprises)} gateway(s) -> "
        f"{target.redacted()}, {format_clock(total)} of scenario time at {speed:g}x "
        f"(about {total / 1000 / speed:.0f} s), "
        f"{contract_text(v1_0, len(scenario.enterprises))}",
        file=sys.stderr,
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: player.stop())

    def progress(stats: PlayStats) -> None:
        print(
            f"simulate: {format_clock(stats.scenario_ms)} / {format_clock(total)}: "
            f"{stats.messages} messages, {stats.readings} readings",
            file=sys.stderr,
            flush=True,
        )

    try:
        stats = player.run(progress, progress_every_s)
    except KeyboardInterrupt:
        player.stop()
        stats = player.stats
    except ConnectionError as exc:  # the broker is not there: say so, no traceback
        return unreachable(exc)
    progress(stats)
    for text in stats.skipped_actions:
        print(
            f"simulate: operator action not played (use the console or API): {text}",
            file=sys.stderr,
        )
    print(f"simulate: done, {stats.messages} messages published", file=sys.stderr, flush=True)
    return EXIT_OK
