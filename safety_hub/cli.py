"""The ``safety-hub`` command line."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from safety_hub import __version__
from safety_hub.errors import ConfigError, LoadError, SafetyHubError, StateFileError

log = logging.getLogger("safety_hub.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

ENV_HELP = """\
configuration (environment variables, all optional; see docs/configuration.md):
  SAFETY_HUB_PLANT         plant registry YAML (default: the bundled sample park)
  SAFETY_HUB_RULES         rule pack file or folder (default: alert_rules/)
  SAFETY_HUB_MQTT_URL      mqtt://user:pass@host:port (default: start an embedded broker)
  SAFETY_HUB_INFLUX_URL    InfluxDB URL (default: embedded SQLite store in the data dir)
  SAFETY_HUB_INFLUX_API    v2 (default; token, org, bucket) or v1 (/write?db=)
  SAFETY_HUB_INFLUX_TOKEN / _ORG / _BUCKET (the database name with v1)
  SAFETY_HUB_DATA_DIR      spool and local stores (default: .hub-data)
  SAFETY_HUB_API_HOST / SAFETY_HUB_API_PORT   (default: 127.0.0.1:8080; or --api-port)
  SAFETY_HUB_ADMIN_TOKEN   bearer token of the built-in admin (automation)
  SAFETY_HUB_USERS_FILE    users and roles (`safety-hub users add`); outside local mode the
                           hub needs this or an admin token; local mode makes a token per run
  SAFETY_HUB_CORS_ORIGINS  comma-separated origins allowed to call the API from a browser
A bad value stops the hub with a message naming the variable (exit code 2).
"""


def _settings(**overrides: object) -> object:
    from safety_hub.settings import load_settings

    return load_settings(**overrides)


def _base_url(host: str, port: int) -> str:
    """The API's URL as a browser on this machine reaches it (a wildcard host as loopback)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def console_url(host: str, port: int, token: str | None) -> str:
    """The console's URL; with a token, signed in through the fragment (never sent to servers)."""
    return f"{_base_url(host, port)}/console/" + (f"#token={token}" if token else "")


def _auth(settings: object, plant: object) -> object:
    from safety_hub.api.auth import Authenticator
    from safety_hub.registry import Plant

    assert isinstance(plant, Plant)
    return Authenticator.from_settings(settings, plant.enterprises)


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, bound as uvicorn binds (``SO_REUSEADDR``: a port
    left in TIME_WAIT is free, one another program listens on is not). Raises ``OSError``."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _api_port_chosen(args: argparse.Namespace) -> bool:
    """Did the user choose the API port (``--api-port`` or the variable, in any case)?"""
    return args.api_port is not None or any(
        name.upper() == "SAFETY_HUB_API_PORT" for name in os.environ
    )


def _api_listener(host: str, port: int, *, any_port_if_taken: bool) -> socket.socket | None:
    """The API's socket, before anything else starts; None after printing why not (one line
    naming the port and how to choose another)."""
    try:
        return _listen(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE and any_port_if_taken:
            return _api_listener(host, 0, any_port_if_taken=False)
        if exc.errno == errno.EADDRINUSE:
            problem = f"API port {port} on {host} is taken by another program"
        else:
            problem = f"cannot listen on {host}:{port} ({exc.strerror or exc})"
        print(
            f"safety-hub: {problem}; choose a free port with --api-port N or SAFETY_HUB_API_PORT=N",
            file=sys.stderr,
        )
        return None


def _port_arg(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65_535:
        raise argparse.ArgumentTypeError(f"port {port} is not within 0-65535")
    return port


def _serve(
    hub: object,
    listener: socket.socket,
    on_started: Callable[[Callable[[], None]], None] | None = None,
    auth: object = None,
) -> None:
    """Serve the API on ``listener`` until a signal (or the stop function that ``on_started``
    gets) ends it; ``on_started`` runs, in its own thread, once the API answers."""
    import uvicorn

    from safety_hub.api.app import create_app
    from safety_hub.api.auth import Authenticator
    from safety_hub.api.events import LiveEvents
    from safety_hub.runtime.hub import Hub

    assert isinstance(hub, Hub)
    assert auth is None or isinstance(auth, Authenticator)
    app = create_app(hub, auth=auth)
    events: LiveEvents = app.state.events

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            events.close()  # open event streams end, so the graceful shutdown does not wait
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

    host, port = listener.getsockname()[:2]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = Server(config)
    served = threading.Event()

    def request_exit() -> None:
        server.should_exit = True

    def when_serving() -> None:
        assert on_started is not None
        # uvicorn sets `started` once the hub has started and the socket is served
        while not server.started:
            if served.wait(0.05):
                return  # it never started (the hub failed to start): no banner
        on_started(request_exit)

    if on_started is not None:
        threading.Thread(target=when_serving, name="api-started", daemon=True).start()
    # uvicorn re-raises a caught SIGTERM once it has shut down gracefully; with this handler in
    # place that re-raise is a no-op, so a graceful stop exits 0 as service managers expect.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run(sockets=[listener])
    finally:
        served.set()
        listener.close()


def cmd_run(args: argparse.Namespace) -> int:
    from safety_hub.settings import Settings

    # first: a bad value must stop us before anything else happens
    settings = _settings(**({} if args.api_port is None else {"api_port": args.api_port}))
    assert isinstance(settings, Settings)
    from safety_hub.api.auth import Authenticator
    from safety_hub.logs import setup_logging
    from safety_hub.registry import default_plant_path, load_plant
    from safety_hub.runtime.hub import Hub

    setup_logging(settings.log_level, settings.log_format, secrets=settings.secret_values())
    plant = load_plant(settings.plant or default_plant_path())
    auth = _auth(settings, plant)  # no credentials outside local mode: stop before starting
    assert isinstance(auth, Authenticator)
    # the port before the hub: a taken port must not start a broker, open the spool, ...
    listener = _api_listener(settings.api_host, settings.api_port, any_port_if_taken=False)
    if listener is None:
        return EXIT_USAGE
    port: int = listener.getsockname()[1]  # the one taken when SAFETY_HUB_API_PORT is 0
    try:
        hub = Hub(settings, plant=plant)
    except BaseException:
        listener.close()
        raise
    console = console_url(settings.api_host, port, auth.local_token)

    def started(_request_exit: Callable[[], None]) -> None:
        log.info(
            "api listening",
            extra={
                "url": f"http://{settings.api_host}:{port}",
                "local_mode": settings.local_mode,
                "console": console_url(settings.api_host, port, None),
            },
        )
        if auth.local_token:
            log.warning(
                "local mode: a random admin token for this run (set SAFETY_HUB_ADMIN_TOKEN to "
                "choose one)",
                extra={"console": console},
            )
            print(f"safety-hub: operator console {console}", flush=True)

    _serve(hub, listener, on_started=started, auth=auth)
    return EXIT_OK


def _out_of_service_lines(plant: object) -> list[str]:
    """The registry's out-of-service tags with who, why and since: their gateways send
    nothing, so their stale-data alarms stand as "suppressed" in the alarm list."""
    from safety_hub.registry import Plant

    assert isinstance(plant, Plant)
    lines: list[str] = []
    for (code, tag), info in sorted(plant.tags.items()):
        oos = info.out_of_service
        if oos is not None:
            since = oos.since.strftime("%Y-%m-%d %H:%M%z")
            lines.append(f"    {code}/{tag} since {since} by {oos.by}: {oos.reason}")
    if not lines:
        return []
    head = (
        "  out of service in the plant registry (no data; their alarms are listed as "
        'suppressed, suppressed_by "out_of_service"):'
    )
    return [head, *lines]


def cmd_demo(args: argparse.Namespace) -> int:
    """The hub in local mode with the sample park's gateways publishing into it."""
    from safety_hub.logs import setup_logging
    from safety_hub.registry import default_plant_path, load_plant
    from safety_hub.rules import default_rules_path
    from safety_hub.runtime.hub import Hub
    from safety_hub.scenarios.cli import ScenarioInDemo, demo_scenario_problem
    from safety_hub.scenarios.loader import load_scenario
    from safety_hub.settings import Settings
    from simulators.park import ParkSimulator, SimStats

    overrides: dict[str, object] = {}
    if "SAFETY_HUB_DATA_DIR" not in os.environ:
        overrides["data_dir"] = Path(".hub-data/demo")
    if args.api_port is not None:
        overrides["api_port"] = args.api_port
    settings = _settings(**overrides)
    assert isinstance(settings, Settings)
    setup_logging(
        "warning" if not args.verbose else "info", "text", secrets=settings.secret_values()
    )
    if args.speed is not None and args.scenario is None:
        print(
            "safety-hub: demo: --speed is the speed of --scenario FILE; give both", file=sys.stderr
        )
        return EXIT_USAGE
    if args.speed is not None and not args.speed > 0:
        print(f"safety-hub: demo: --speed must be > 0, got {args.speed:g}", file=sys.stderr)
        return EXIT_USAGE
    plant = load_plant(settings.plant or default_plant_path())
    scenario = None
    if args.scenario is not None:
        scenario = load_scenario(args.scenario)  # every error as file:line:col, exit 2
        rules = settings.rules or default_rules_path()
        problem = demo_scenario_problem(scenario, settings.plant or default_plant_path(), rules)
        if problem is not None:
            print(f"safety-hub: demo: {problem}", file=sys.stderr)
            return EXIT_USAGE
    # the port before the hub starts; one the user did not choose gives way, like the broker's
    listener = _api_listener(
        settings.api_host, settings.api_port, any_port_if_taken=not _api_port_chosen(args)
    )
    if listener is None:
        return EXIT_USAGE
    port: int = listener.getsockname()[1]
    try:
        hub = Hub(settings, plant=plant)
        auth = _auth(settings, hub.plant)
    except BaseException:
        listener.close()
        raise
    api = _base_url(settings.api_host, port)
    taken = f"   (port {settings.api_port} is taken)" if settings.api_port not in (0, port) else ""
    token = getattr(auth, "local_token", None)
    console = console_url(settings.api_host, port, token)
    in_demo: list[ScenarioInDemo] = []
    played: list[threading.Thread] = []

    def started(stop_server: Callable[[], None]) -> None:
        assert hub.mqtt_url is not None
        host, mqtt_port = hub.mqtt_url.removeprefix("mqtt://").rsplit(":", 1)
        sim = ParkSimulator(hub.plant, host, int(mqtt_port), rate=args.rate or None)
        first = next(iter(sim.tags))
        tag = sim.tags[first][0].tag
        lines = [
            "",
            f"safety-hub demo: park {hub.plant.park_code}, {len(hub.plant.enterprises)} "
            f"enterprises, {len(hub.plant.tags)} tags",
            f"  broker   {hub.mqtt_url}   (topics hazard/v1/<enterprise>/telemetry)",
            f"  storage  {hub.storage.description}",
            f"  console  {console}{taken}",
            f"  API      {api}/api/v1/tags   {api}/metrics   {api}/api/v1/system",
            f"  try      curl -H 'Authorization: Bearer {token or '$SAFETY_HUB_ADMIN_TOKEN'}' "
            f"{api}/api/v1/tags/{first}/{tag}/latest",
            *_out_of_service_lines(hub.plant),
        ]
        if scenario is not None:
            in_demo.append(
                ScenarioInDemo(scenario, hub, sim, host, int(mqtt_port), speed=args.speed or 1.0)
            )
            lines.append(f"  scenario {in_demo[0].describe()}")
        lines.append("Press Ctrl-C to stop.\n")
        print("\n".join(lines), flush=True)

        def progress(stats: SimStats) -> None:
            depth = hub.spool.depth()
            print(
                f"[demo] published {stats.readings} readings in {stats.messages} messages; "
                f"hub processed {hub.ingest.processed_messages} messages, "
                f"spool {depth.readings} readings waiting",
                flush=True,
            )

        def finish() -> None:
            # the scenario first: the demo's gateways announce themselves offline as they stop
            for scenario_run in in_demo:
                scenario_run.stop()
            sim.stop()

        try:
            sim.connect()
            if in_demo:
                played.append(
                    threading.Thread(target=in_demo[0].run, name="demo-scenario", daemon=True)
                )
                played[0].start()
            if args.duration is not None:
                ending = threading.Timer(args.duration, finish)
                ending.daemon = True
                ending.start()
            sim.run(None, progress=progress, progress_every_s=5.0)
        finally:
            if args.duration is not None:
                time.sleep(1.0)  # the last readings reach the hub before the final count
                progress(sim.stats)
                stop_server()

    _serve(hub, listener, on_started=started, auth=auth)
    for scenario_run in in_demo:
        scenario_run.stop()
    for thread in played:
        thread.join(3)  # a daemon: it says where it stopped unless its broker went first
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from safety_hub.scenarios.cli import main_replay

    return main_replay(
        args.scenario,
        report=args.report,
        record=args.record,
        url=args.url,
        duration=args.duration,
        plant=args.plant,
        rules=args.rules,
        quiet=args.quiet,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.scenario is not None:
        from safety_hub.scenarios.cli import main_simulate_scenario

        return main_simulate_scenario(
            args.scenario,
            url=args.url,
            speed=args.speed,
            stay_online=args.stay_online,
            progress_every_s=args.progress,
        )
    from safety_hub.registry import default_plant_path, load_plant
    from safety_hub.settings import MqttTarget
    from simulators.park import ParkSimulator, SimStats

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
    )
    total_tags = sum(len(v) for v in sim.tags.values())
    print(
        f"simulate: {len(sim.tags)} enterprise gateways, {total_tags} tags -> {target.redacted()}"
        + (f" at {args.rate:g} readings/s" if args.rate else " at each tag's interval"),
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
        stats = sim.run(args.duration, progress=progress, progress_every_s=args.progress)
    except KeyboardInterrupt:
        sim.stop()
        stats = sim.stats
    progress(stats)
    return EXIT_OK


def cmd_rules_check(args: argparse.Namespace) -> int:
    from safety_hub.rules import default_rules_path, main_check

    paths = args.paths or [default_rules_path()]
    return main_check(paths, plant_path=args.plant)


def cmd_rules_test(args: argparse.Namespace) -> int:
    from safety_hub.rules import default_rules_path, main_test

    paths = args.paths or [default_rules_path() / "tests"]
    return main_test(paths)


def _users_file(args: argparse.Namespace) -> Path:
    path = args.file or os.environ.get("SAFETY_HUB_USERS_FILE")
    if not path:
        raise ConfigError("SAFETY_HUB_USERS_FILE", None, "give --file or set SAFETY_HUB_USERS_FILE")
    return Path(path)


def _read_users(path: Path) -> list[object]:
    from safety_hub.api.auth import load_users

    return list(load_users(path)) if path.exists() else []


def cmd_users_add(args: argparse.Namespace) -> int:
    from safety_hub.api.auth import ADMIN_USER, Role, UserRecord, hash_token, new_token, write_users
    from safety_hub.registry import default_plant_path, load_plant

    path = _users_file(args)
    users = [u for u in _read_users(path) if isinstance(u, UserRecord)]
    if args.name == ADMIN_USER or any(u.name == args.name for u in users):
        print(f"safety-hub: user {args.name!r} exists in {path}", file=sys.stderr)
        return EXIT_USAGE
    if args.enterprise is not None:
        plant_path = args.plant or os.environ.get("SAFETY_HUB_PLANT") or default_plant_path()
        plant = load_plant(Path(plant_path))
        if args.enterprise not in plant.enterprises:
            print(
                f"safety-hub: enterprise {args.enterprise!r} is not in the plant registry "
                f"{plant_path} (one of: {', '.join(sorted(plant.enterprises))})",
                file=sys.stderr,
            )
            return EXIT_USAGE
    token = new_token()
    record = UserRecord(args.name, Role(args.role), args.enterprise, hash_token(token))
    write_users(path, [*users, record])
    scope = f"enterprise {args.enterprise}" if args.enterprise else "the whole park"
    print(
        f"added {args.role} {args.name!r} ({scope}) to {path}; the token, shown only now:",
        file=sys.stderr,
    )
    print(token, flush=True)
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace) -> int:
    from safety_hub.api.auth import UserRecord

    path = _users_file(args)
    for user in _read_users(path):
        assert isinstance(user, UserRecord)
        print(f"{user.name}\t{user.role.value}\t{user.enterprise or '*'}")
    return EXIT_OK


def cmd_users_remove(args: argparse.Namespace) -> int:
    from safety_hub.api.auth import UserRecord, write_users

    path = _users_file(args)
    users = [u for u in _read_users(path) if isinstance(u, UserRecord)]
    kept = [u for u in users if u.name != args.name]
    if len(kept) == len(users):
        print(f"safety-hub: no user {args.name!r} in {path}", file=sys.stderr)
        return EXIT_FAILED
    write_users(path, kept)
    print(f"removed {args.name!r} from {path} (the hub notices within seconds)", file=sys.stderr)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safety-hub",
        description="Hazardous-chemicals safety monitoring hub for a chemical industrial park.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"safety-hub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the hub: MQTT ingest, spool, storage sink and the HTTP API",
        description="Run the hub. Configured by SAFETY_HUB_* environment variables; with none "
        "set it runs in local mode (embedded broker, embedded SQLite store).",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--api-port",
        type=_port_arg,
        default=None,
        metavar="N",
        help="HTTP port of the API and console (default: SAFETY_HUB_API_PORT or 8080); "
        "a taken port stops the hub with exit code 2",
    )
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo",
        help="run the hub in local mode with the sample park's gateways publishing into it",
        description="Local-mode hub plus simulated gateways for every enterprise of the sample "
        "park; prints where to look and progress every 5 s. Data under .hub-data/demo. With "
        "--scenario it also plays an incident into the hub (the demo's gateways pause the "
        "scenario's tags meanwhile) and prints its alarms and its outcome.",
    )
    demo.add_argument(
        "--api-port",
        type=_port_arg,
        default=None,
        metavar="N",
        help="HTTP port of the API and console (default: SAFETY_HUB_API_PORT, else 8080 or a "
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

    sim = sub.add_parser(
        "simulate",
        help="publish a scenario, or simulated load, to a broker as the enterprises' gateways",
        description="Publish by the telemetry contract v1, one gateway per enterprise (QoS 1, "
        "retained online status, last-will offline). With SCENARIO: play the scenario's field "
        "devices at --speed (docs/scenarios.md). Without: every tag of the plant at its "
        "interval, or --rate readings/s in total (load mode).",
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
    sim.set_defaults(func=cmd_simulate)

    rep = sub.add_parser(
        "replay",
        help="replay a scenario (or a recording) through the hub on a virtual clock",
        description="Run a scenario file through an in-process hub (telemetry decoding, ingest, "
        "rule engine, alarm service) on a virtual clock; print the alarm timeline and whether "
        "every expectation held. Exit code 0 pass, 1 an expectation failed, 2 the scenario "
        "has errors (each printed as file:line:col). A recording made with --record plays "
        "back the same way. Format: docs/scenarios.md.",
    )
    rep.add_argument("scenario", nargs="?", type=Path, default=None, help="scenario or recording")
    rep.add_argument("--report", type=Path, default=None, help="write a JSON report to PATH")
    rep.add_argument("-q", "--quiet", action="store_true", help="print only the verdict")
    rep.add_argument(
        "--record", type=Path, default=None, help="capture live telemetry from --url into OUT"
    )
    rep.add_argument(
        "--url", default="mqtt://127.0.0.1:1883", help="broker to record from (with --record)"
    )
    rep.add_argument(
        "--duration", type=float, default=None, help="with --record: stop after N seconds"
    )
    rep.add_argument(
        "--plant", type=Path, default=None, help="for a recording: plant (default: sample park)"
    )
    rep.add_argument(
        "--rules", type=Path, default=None, help="for a recording: rule packs (default: shipped)"
    )
    rep.set_defaults(func=cmd_replay)

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

    users = sub.add_parser(
        "users",
        help="manage API users and their tokens (the users file)",
        description="Users of the API and console: name, role (viewer, operator, admin) and "
        "optionally the one enterprise they see. The file (--file or SAFETY_HUB_USERS_FILE) "
        "keeps only each token's SHA-256; a running hub picks up changes within seconds.",
    )
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    file_help = "users file (default: SAFETY_HUB_USERS_FILE)"
    add = users_sub.add_parser(
        "add",
        help="add a user and print its new token (once)",
        description="Add a user to the users file (created if missing, mode 600) and print "
        "its bearer token on stdout. The token is not stored: keep it now.",
    )
    add.add_argument("name", help="user name, recorded in the alarm journal for actions")
    add.add_argument(
        "--role", choices=["viewer", "operator", "admin"], default="viewer", help="default: viewer"
    )
    add.add_argument("--enterprise", default=None, help="see only this enterprise (its code)")
    add.add_argument("--file", type=Path, default=None, help=file_help)
    add.add_argument("--plant", type=Path, default=None, help="plant registry for --enterprise")
    add.set_defaults(func=cmd_users_add)
    lst = users_sub.add_parser("list", help="list users: name, role, enterprise (* = park)")
    lst.add_argument("--file", type=Path, default=None, help=file_help)
    lst.set_defaults(func=cmd_users_list)
    rm = users_sub.add_parser("remove", help="remove a user (its token stops working)")
    rm.add_argument("name")
    rm.add_argument("--file", type=Path, default=None, help=file_help)
    rm.set_defaults(func=cmd_users_remove)

    from safety_hub.dashboards_cli import add_parsers

    add_parsers(sub)  # dashboards build|check|push, broker
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        print(f"safety-hub: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LoadError as exc:
        print(f"safety-hub: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StateFileError as exc:
        print(f"safety-hub: damaged state file {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"safety-hub: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SafetyHubError as exc:
        print(f"safety-hub: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
