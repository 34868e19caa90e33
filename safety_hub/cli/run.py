"""``safety-hub run``: the hub with its HTTP API, configured by ``SAFETY_HUB_*``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from safety_hub.cli.common import (
    ENV_HELP,
    EXIT_OK,
    EXIT_USAGE,
    Subparsers,
    add_api_port,
    load_hub_settings,
)
from safety_hub.cli.serve import api_listener, authenticator, console_url, serve

log = logging.getLogger("safety_hub.cli")


def register(sub: Subparsers) -> None:
    run = sub.add_parser(
        "run",
        help="run the hub: MQTT ingest, spool, storage sink and the HTTP API",
        description="Run the hub. Configured by SAFETY_HUB_* environment variables; with none "
        "set it runs in local mode (embedded broker, embedded SQLite store).",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_api_port(
        run,
        "HTTP port of the API and console (default: SAFETY_HUB_API_PORT or 8080); "
        "a taken port stops the hub with exit code 2",
    )
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from safety_hub.settings import Settings

    # first: a bad value must stop us before anything else happens
    settings = load_hub_settings(**({} if args.api_port is None else {"api_port": args.api_port}))
    assert isinstance(settings, Settings)
    from safety_hub.api.auth import Authenticator
    from safety_hub.logs import setup_logging
    from safety_hub.registry import default_plant_path, load_plant
    from safety_hub.runtime.hub import Hub
    from safety_hub.runtime.interpreter import tune_for_ingest

    setup_logging(settings.log_level, settings.log_format, secrets=settings.secret_values())
    plant = load_plant(settings.plant or default_plant_path())
    auth = authenticator(settings, plant)  # no credentials outside local mode: stop before starting
    assert isinstance(auth, Authenticator)
    # the port before the hub: a taken port must not start a broker, open the spool, ...
    listener = api_listener(settings.api_host, settings.api_port, any_port_if_taken=False)
    if listener is None:
        return EXIT_USAGE
    port: int = listener.getsockname()[1]  # the one taken when SAFETY_HUB_API_PORT is 0
    try:
        hub = Hub(settings, plant=plant)
    except BaseException:
        listener.close()
        raise
    tune_for_ingest()  # this process runs one hub: its garbage collector and GIL hand-off
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

    serve(hub, listener, on_started=started, auth=auth)
    return EXIT_OK
