"""The ``safety-hub`` command line: one module per command group, each registering its own
sub-parser (``register``); ``main`` runs the chosen command and turns errors into exit codes.

| module | command |
|---|---|
| ``run`` | ``run`` |
| ``demo`` (``demo_session``, ``scenario_demo``) | ``demo [--scenario FILE]`` |
| ``simulate`` | ``simulate [SCENARIO]`` |
| ``replay`` | ``replay SCENARIO``, ``replay --record OUT`` |
| ``rules`` | ``rules check|test`` |
| ``people`` | ``people check|on-duty`` |
| ``notify`` | ``notify check|test`` |
| ``users`` | ``users add|list|remove`` |
| ``dashboards`` | ``dashboards build|check|push`` |
| ``uplink`` | ``uplink check|status`` |
| ``broker`` | ``broker`` |
| ``plant`` | ``plant generate`` |

``common`` holds the exit codes and what the commands share, ``serve`` the HTTP API of ``run``
and ``demo``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from safety_hub import __version__
from safety_hub.cli import (
    broker,
    dashboards,
    demo,
    notify,
    people,
    plant,
    replay,
    rules,
    run,
    simulate,
    uplink,
    users,
)
from safety_hub.cli.common import ENV_HELP, EXIT_FAILED, EXIT_USAGE, Subparsers
from safety_hub.errors import ConfigError, LoadError, SafetyHubError, StateFileError

__all__ = ["build_parser", "main"]

# each command group's sub-parser(s), in the order of `safety-hub --help`
REGISTER: tuple[Callable[[Subparsers], None], ...] = (
    run.register,
    demo.register,
    simulate.register,
    replay.register,
    rules.register,
    people.register,
    notify.register,
    users.register,
    dashboards.register,
    uplink.register,
    broker.register,
    plant.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safety-hub",
        description="Hazardous-chemicals safety monitoring hub for a chemical industrial park.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"safety-hub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in REGISTER:
        register(sub)
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
