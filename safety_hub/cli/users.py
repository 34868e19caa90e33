"""``safety-hub users add|list|remove``: API users and their tokens in the users file."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from safety_hub.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subparsers
from safety_hub.errors import ConfigError


def register(sub: Subparsers) -> None:
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
