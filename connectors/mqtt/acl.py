"""Broker access control generated from the plant registry: one Mosquitto user per enterprise
(``safety-hub broker --out DIR``; a deployment tool for the Mosquitto the hub connects to).

``generate(plant, out_dir)`` writes three files (docs/deploy.md, "Broker access control"):

- ``passwd``: the Mosquitto password file, ``user:$7$101$<salt>$<hash>`` lines (PBKDF2-SHA512,
  101 iterations, 12-byte salt: exactly what ``mosquitto_passwd`` writes by default), mode 0600;
- ``acl``: the Mosquitto ACL file. Enterprise ``X`` may publish only under ``hazard/v1/X/``
  (its telemetry and its last-will status) and read only its own ``rejected`` and ``alarms``
  topics; the hub user reads every enterprise's telemetry and status and publishes rejections
  and alarm events; the hub's catch-all user (``<hub user>-unregistered``, the hub's
  ``SAFETY_HUB_MQTT_CATCH_ALL_USER``) reads every enterprise's telemetry and status *except*
  the registered enterprises', so the broker sends the hub's catch-all session only what no
  other session of the hub receives (without it, a second copy of every message); an optional
  simulator user publishes for every enterprise (demo stacks);
- ``credentials``: the clear-text passwords, ``user:password`` lines, mode 0600, to hand to
  each enterprise. It is how a rerun stays idempotent: an existing password is kept unless
  ``rotate`` is asked; a password given in the environment (``MQTT_<USER>_PASSWORD``, e.g.
  ``MQTT_HUB_PASSWORD``, ``MQTT_E01_CHLORALKALI_PASSWORD``) always wins. The catch-all user
  always has the hub user's password: the hub connects both with the one password of
  ``SAFETY_HUB_MQTT_URL``.

A password file line is rewritten only when its password changed, so an unchanged rerun leaves
all three files byte for byte as they were.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from safety_hub.ingest.telemetry import CRITICAL_SUBSCRIPTION, TELEMETRY_SUBSCRIPTION
from safety_hub.registry import Plant

log = logging.getLogger("safety_hub.broker")

PBKDF2_ITERATIONS = 101
"""mosquitto_passwd's default for ``$7$`` (sha512-pbkdf2) hashes"""
SALT_BYTES = 12
PASSWD_FILE, ACL_FILE, CREDENTIALS_FILE = "passwd", "acl", "credentials"
_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class BrokerConfigError(ValueError):
    """A user name or password the broker files cannot hold, or unreadable existing files."""


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A Mosquitto ``$7$`` hash: PBKDF2-HMAC-SHA512, 101 iterations, base64 salt and digest."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return (
        f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}"
        f"${base64.b64encode(digest).decode()}"
    )


def verify_password(password: str, encoded: str) -> bool:
    """True when ``encoded`` (a ``$7$`` or ``$6$`` line value of a passwd file) is ``password``."""
    parts = encoded.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            iterations, salt, digest = int(parts[2]), parts[3], parts[4]
            got = hashlib.pbkdf2_hmac(
                "sha512", password.encode(), base64.b64decode(salt), iterations
            )
        elif len(parts) == 4 and parts[1] == "6":  # Mosquitto 1.x: sha512(password + salt)
            salt, digest = parts[2], parts[3]
            got = hashlib.sha512(password.encode() + base64.b64decode(salt)).digest()
        else:
            return False
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def env_name(user: str) -> str:
    """``MQTT_<USER>_PASSWORD``: upper case, every other character than A-Z 0-9 as ``_``."""
    return "MQTT_" + re.sub(r"[^A-Z0-9]", "_", user.upper()) + "_PASSWORD"


@dataclass(frozen=True)
class BrokerUser:
    name: str
    role: str
    """``hub``, ``catch_all``, ``enterprise`` or ``simulator``"""
    enterprise: str | None = None


def catch_all_user_of(hub_user: str) -> str:
    """The default name of the hub's catch-all user: ``<hub user>-unregistered``."""
    return f"{hub_user}-unregistered"


def users_for(
    plant: Plant,
    hub_user: str = "hub",
    simulator_user: str | None = None,
    catch_all_user: str | None = None,
) -> list[BrokerUser]:
    """The hub, its catch-all (``catch_all_user``, default ``<hub user>-unregistered``), one
    user per enterprise (named by its code), and the optional simulator."""
    users = [BrokerUser(hub_user, "hub")]
    users.append(BrokerUser(catch_all_user or catch_all_user_of(hub_user), "catch_all"))
    if simulator_user:
        users.append(BrokerUser(simulator_user, "simulator"))
    users += [BrokerUser(code, "enterprise", code) for code in plant.enterprises]
    seen: dict[str, BrokerUser] = {}
    envs: dict[str, str] = {}
    for user in users:
        if not _USER_RE.match(user.name):
            raise BrokerConfigError(
                f"broker user {user.name!r}: use letters, digits, '_', '.', '-' (at most 64)"
            )
        if user.name in seen:
            raise BrokerConfigError(
                f"broker user {user.name!r} is both the {seen[user.name].role} user and "
                f"the {user.role} user: choose another --hub-user/--catch-all-user/--simulator-user"
            )
        env = env_name(user.name)
        if env in envs:
            raise BrokerConfigError(
                f"broker users {envs[env]!r} and {user.name!r} share the variable {env}"
            )
        seen[user.name] = user
        envs[env] = user.name
    return users


def catch_all_rules(enterprises: Collection[str]) -> list[str]:
    """The ACL lines of the hub's catch-all user: every enterprise's telemetry (both topics) and
    status but the registered ones' (Mosquitto checks denies first, on every message it
    delivers)."""
    lines = [
        "# the hub's catch-all session (SAFETY_HUB_MQTT_CATCH_ALL_USER): messages of",
        "# enterprises the registry does not know, to reject and count them. Its own",
        "# session receives each registered enterprise's messages; a copy is denied here.",
        f"topic read {TELEMETRY_SUBSCRIPTION}",
        f"topic read {CRITICAL_SUBSCRIPTION}",
        "topic read hazard/v1/+/status",
    ]
    for code in sorted(enterprises):
        lines += [
            f"topic deny hazard/v1/{code}/telemetry/#",
            f"topic deny hazard/v1/{code}/critical/#",
            f"topic deny hazard/v1/{code}/status",
        ]
    return lines


def render_open_acl(catch_all_user: str, enterprises: Collection[str]) -> str:
    """The ACL of the embedded broker (local mode, anonymous): every client may read and write
    everything, except that the hub's catch-all user is fenced off the registered enterprises."""
    return "\n".join(
        [
            "# written by safety-hub: the embedded broker of local mode. Any client may read",
            "# and write any topic; only the hub's catch-all user is fenced (below).",
            "pattern readwrite #",
            "pattern read $SYS/#",
            "",
            f"user {catch_all_user}",
            *catch_all_rules(enterprises),
            "",
        ]
    )


def render_acl(plant: Plant, users: list[BrokerUser]) -> str:
    """The Mosquitto ACL text (topic tree: docs/mqtt-contract.md)."""
    telemetry = TELEMETRY_SUBSCRIPTION  # hazard/v1/+/telemetry/# (also matches .../telemetry)
    lines = [
        f"# Mosquitto ACL of park {plant.park_code}, generated by `safety-hub broker` from",
        f"# {plant.path.name}. Do not edit: regenerate it. Anything not granted is denied.",
        "",
    ]
    for user in users:
        lines.append(f"user {user.name}")
        if user.role == "hub":
            lines += [
                "# the hub: every enterprise's telemetry and status in, rejections and alarms out",
                f"topic read {telemetry}",
                f"topic read {CRITICAL_SUBSCRIPTION}",
                "topic read hazard/v1/+/status",
                "topic write hazard/v1/+/rejected",
                "topic write hazard/v1/+/alarms/#",
                "topic read $SYS/#",
                "# its broker round trip probe (a Nagle check, docs/deploy.md)",
                "topic readwrite safety-hub/probe/#",
            ]
        elif user.role == "catch_all":
            lines += catch_all_rules(plant.enterprises)
        elif user.role == "simulator":
            lines += [
                "# simulated gateways of every enterprise (demo and test stacks only)",
                "topic write hazard/v1/+/telemetry/#",
                "topic write hazard/v1/+/critical/#",
                "topic readwrite hazard/v1/+/status",
                "topic read hazard/v1/+/rejected",
            ]
        else:
            name = plant.enterprises[user.enterprise or user.name].name
            lines += [
                f"# {name}: publishes only under hazard/v1/{user.name}/",
                f"topic write hazard/v1/{user.name}/telemetry/#",
                f"topic write hazard/v1/{user.name}/critical/#",
                f"topic readwrite hazard/v1/{user.name}/status",
                f"topic read hazard/v1/{user.name}/rejected",
                f"topic read hazard/v1/{user.name}/alarms/#",
            ]
        lines.append("")
    return "\n".join(lines)


def _read_pairs(path: Path) -> dict[str, str]:
    """``user:value`` lines of a credentials or passwd file (comments and blanks skipped)."""
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, value = line.partition(":")
        if not sep or not user:
            raise BrokerConfigError(f"{path}:{number}: expected user:value, got {line[:40]!r}")
        out[user] = value
    return out


def read_credentials(out_dir: Path) -> dict[str, str]:
    """user -> clear-text password, from the ``credentials`` file ``generate`` wrote."""
    return _read_pairs(out_dir / CREDENTIALS_FILE)


def _write_private(path: Path, text: str, mode: int) -> bool:
    """Write atomically with ``mode`` from the first byte on; False when already identical."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        if (path.stat().st_mode & 0o777) != mode:
            path.chmod(mode)
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


@dataclass
class BrokerFiles:
    """What ``generate`` wrote and where each password came from."""

    passwd: Path
    acl: Path
    credentials: Path
    users: list[BrokerUser]
    source: dict[str, str] = field(default_factory=dict)
    """user -> ``env``, ``kept`` (from the credentials file), ``generated`` or ``rotated``"""
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    """files written (others were already up to date)"""


def generate(
    plant: Plant,
    out_dir: Path,
    *,
    hub_user: str = "hub",
    simulator_user: str | None = None,
    rotate: bool = False,
    env: Mapping[str, str] | None = None,
    catch_all_user: str | None = None,
) -> BrokerFiles:
    """Write ``passwd``, ``acl`` and ``credentials`` for ``plant`` into ``out_dir``."""
    env = os.environ if env is None else env
    users = users_for(plant, hub_user, simulator_user, catch_all_user)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = BrokerFiles(
        out_dir / PASSWD_FILE, out_dir / ACL_FILE, out_dir / CREDENTIALS_FILE, users
    )
    known = _read_pairs(result.credentials)
    hashes = _read_pairs(result.passwd)
    passwords: dict[str, str] = {}
    for user in users:
        if user.role == "catch_all":
            continue  # the hub's password, below
        from_env = env.get(env_name(user.name))
        if from_env:
            password, source = from_env, "env"
        elif user.name in known and known[user.name] and not rotate:
            password, source = known[user.name], "kept"
        else:
            password = secrets.token_urlsafe(24)
            source = "rotated" if user.name in known else "generated"
        if "\n" in password or "\r" in password:
            raise BrokerConfigError(f"password of {user.name!r} contains a line break")
        passwords[user.name] = password
        result.source[user.name] = source
    for user in users:
        if user.role == "catch_all":
            passwords[user.name] = passwords[hub_user]
            result.source[user.name] = "hub"
    result.removed = sorted(set(known) - set(passwords))

    passwd_lines = []
    for user in users:
        old = hashes.get(user.name)
        keep = old is not None and verify_password(passwords[user.name], old)
        passwd_lines.append(f"{user.name}:{old if keep else hash_password(passwords[user.name])}")
    credentials_text = (
        f"# MQTT credentials of park {plant.park_code} (user:password), written by "
        "`safety-hub broker`.\n# Secret: hand each enterprise its own line only.\n"
        + "".join(f"{user.name}:{passwords[user.name]}\n" for user in users)
    )
    for path, text, mode in (
        (result.credentials, credentials_text, 0o600),
        (result.passwd, "\n".join(passwd_lines) + "\n", 0o600),
        (result.acl, render_acl(plant, users), 0o644),
    ):
        if _write_private(path, text, mode):
            result.changed.append(path.name)
    log.info(
        "broker files written",
        extra={
            "dir": str(out_dir),
            "users": len(users),
            "changed": result.changed,
            "removed": result.removed,
        },
    )
    return result
