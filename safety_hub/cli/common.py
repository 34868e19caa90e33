"""What the command modules share: exit codes, the configuration epilog, argument types and
the settings loaded from ``SAFETY_HUB_*``."""

from __future__ import annotations

import argparse
from typing import Any, Protocol

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
"""0 done; 1 a check or expectation failed; 2 bad usage, configuration or input (every error
printed, as ``file:line:col`` where there is a file)."""

ENV_HELP = """\
configuration (environment variables, all optional; see docs/configuration.md):
  SAFETY_HUB_PLANT         plant registry YAML (default: the bundled sample park)
  SAFETY_HUB_RULES         rule pack file or folder (default: alert_rules/)
  SAFETY_HUB_PEOPLE        people and duty rosters YAML (default: the sample park's people)
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
  SAFETY_HUB_UPLINK        uplink configuration YAML (docs/uplink.md; default: no uplink)
  SAFETY_HUB_SINK_PROCESS  on (default): write to InfluxDB from a child process (SQLite
                           state only; docs/storage.md); off: from a thread of the hub
  SAFETY_HUB_MQTT_PROCESS  on (default): the MQTT sessions that receive run in child
                           processes (connectors/mqtt/README.md); off: in the hub's process
  SAFETY_HUB_MQTT_CATCH_ALL_USER  broker user of the catch-all session, fenced off registered
                           enterprises by the ACL of `safety-hub broker` (docs/deploy.md)
  SAFETY_HUB_PROVINCE      on: province mode, take the parks' federation records (docs/province.md)
  SAFETY_HUB_HA=on         one node of a redundant pair: acts only while it holds the lease in
                           SAFETY_HUB_STATE_URL (postgresql://...); SAFETY_HUB_NODE_ID (default:
                           the host name), SAFETY_HUB_API_PUBLIC_URL, SAFETY_HUB_HA_LEASE_S (6)
A bad value stops the hub with a message naming the variable (exit code 2).
"""


class Subparsers(Protocol):
    """The sub-parser set of ``safety-hub`` (what ``add_subparsers`` returns) that each
    command module registers its command on."""

    def add_parser(self, name: str, *args: Any, **kwargs: Any) -> argparse.ArgumentParser: ...


def load_hub_settings(**overrides: object) -> object:
    """The hub's settings from ``SAFETY_HUB_*`` with ``overrides``; imported on use, so that
    ``--help`` and the commands that need no settings stay light."""
    from safety_hub.settings import load_settings

    return load_settings(**overrides)


def port_arg(text: str) -> int:
    """An argparse type: a TCP port number, 0 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65_535:
        raise argparse.ArgumentTypeError(f"port {port} is not within 0-65535")
    return port


def add_api_port(parser: argparse.ArgumentParser, help_text: str) -> None:
    """The ``--api-port N`` option of ``run`` and ``demo``."""
    parser.add_argument("--api-port", type=port_arg, default=None, metavar="N", help=help_text)
