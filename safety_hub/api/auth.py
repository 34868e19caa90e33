"""Access control: users, roles, enterprise scope, bearer tokens and the action rate limit.

- Roles, weakest first: ``viewer`` (reads), ``operator`` (reads and alarm actions), ``admin``
  (everything, including the user list).
- A user with an ``enterprise`` sees only that enterprise; a user without one sees the park.
- Tokens are opaque random strings. The hub keeps only their SHA-256 (the users file) or, for
  the admin token from ``SAFETY_HUB_ADMIN_TOKEN``, compares in constant time.
- No default credentials outside local mode: :meth:`Authenticator.from_settings` refuses a hub
  with a real broker or database but neither an admin token nor a users file. In local mode
  without an admin token it makes a random one for this run (:attr:`Authenticator.local_token`).

The users file (``SAFETY_HUB_USERS_FILE``, written by ``safety-hub users add``)::

    users:
      - name: op-wang
        role: operator
        token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      - name: e01-viewer
        role: viewer
        enterprise: e01-chloralkali
        token_sha256: ...

The file is read again when it changes (checked at most every 2 s), so added or removed users
take effect without a restart; a broken file keeps the users read before and logs why.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from safety_hub.errors import ConfigError, LoadError

log = logging.getLogger("safety_hub.api.auth")

ADMIN_USER = "admin"
_HASH = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
RELOAD_EVERY_S = 2.0


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is: the user name (recorded in the alarm journal), role and scope."""

    user: str
    role: Role
    enterprise: str | None = None  # None: the whole park

    def can(self, role: Role) -> bool:
        return self.role.rank >= role.rank

    def sees(self, enterprise: str) -> bool:
        return self.enterprise is None or self.enterprise == enterprise


@dataclass(frozen=True, slots=True)
class UserRecord:
    name: str
    role: Role
    enterprise: str | None
    token_sha256: str

    def principal(self) -> Principal:
        return Principal(self.name, self.role, self.enterprise)

    def as_yaml(self) -> dict[str, str]:
        out = {"name": self.name, "role": self.role.value}
        if self.enterprise is not None:
            out["enterprise"] = self.enterprise
        out["token_sha256"] = self.token_sha256
        return out


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token: 32 bytes, URL-safe (usable in ``#token=`` and ``?access_token=``)."""
    return secrets.token_urlsafe(32)


def load_users(path: Path, enterprises: Collection[str] | None = None) -> list[UserRecord]:
    """Read and check a users file; every problem at once as :class:`LoadError`."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LoadError(str(path), [f"{path}: cannot read: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise LoadError(str(path), [f"{path}: not valid YAML: {exc}"]) from None
    if data is None:
        return []
    if not isinstance(data, dict) or set(data) - {"users"}:
        raise LoadError(str(path), [f"{path}: expected a mapping with one key, users"])
    items = data.get("users") or []
    if not isinstance(items, list):
        raise LoadError(str(path), [f"{path}: users: expected a list"])
    errors: list[str] = []
    users: list[UserRecord] = []
    names: set[str] = set()
    hashes: set[str] = set()
    for index, item in enumerate(items):
        where = f"{path}: users[{index}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: expected a mapping with name, role, token_sha256")
            continue
        unknown = set(item) - {"name", "role", "enterprise", "token_sha256"}
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        name = item.get("name")
        role = item.get("role")
        enterprise = item.get("enterprise")
        digest = item.get("token_sha256")
        if not isinstance(name, str) or not _NAME.match(name):
            errors.append(f"{where}: name {name!r}: 1-64 letters, digits, . _ @ -")
            continue
        where = f"{path}: user {name!r}"
        if name in names or name == ADMIN_USER:
            errors.append(
                f"{where}: the name is taken" + (" (built-in)" if name == ADMIN_USER else "")
            )
        names.add(name)
        if role not in {r.value for r in Role}:
            errors.append(f"{where}: role {role!r} is not one of viewer, operator, admin")
            continue
        if enterprise is not None and (
            not isinstance(enterprise, str)
            or (enterprises is not None and enterprise not in enterprises)
        ):
            errors.append(f"{where}: enterprise {enterprise!r} is not in the plant registry")
            continue
        if not isinstance(digest, str) or not _HASH.match(digest):
            errors.append(f"{where}: token_sha256 must be 64 lower-case hex digits")
            continue
        if digest in hashes:
            errors.append(f"{where}: the same token as another user")
        hashes.add(digest)
        users.append(UserRecord(name, Role(role), enterprise, digest))
    if errors:
        raise LoadError(str(path), errors)
    return users


def write_users(path: Path, users: Iterable[UserRecord]) -> None:
    """Replace the users file atomically, readable by its owner only."""
    body = yaml.safe_dump(
        {"users": [u.as_yaml() for u in users]}, allow_unicode=True, sort_keys=False
    )
    header = (
        "# safety-hub users: name, role (viewer | operator | admin), enterprise (optional: the\n"
        "# user sees only that enterprise), token_sha256 (SHA-256 of the bearer token).\n"
        "# Manage with `safety-hub users add | list | remove`; see docs/api.md.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(header + body)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Authenticator:
    """Maps a bearer token to a :class:`Principal`; None when nobody has that token."""

    def __init__(
        self,
        *,
        admin_token: str | None = None,
        users_file: Path | None = None,
        enterprises: Collection[str] | None = None,
        local_token: str | None = None,
    ) -> None:
        self._admin = admin_token.encode() if admin_token else None
        self.local_token = local_token
        self.users_file = users_file
        self._enterprises = None if enterprises is None else frozenset(enterprises)
        self._lock = threading.Lock()
        self._users: dict[str, UserRecord] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        if users_file is not None:
            try:
                self._load(users_file)
            except LoadError as exc:
                raise ConfigError(
                    "SAFETY_HUB_USERS_FILE", str(users_file), "\n".join(exc.errors)
                ) from None

    @classmethod
    def from_settings(cls, settings: Any, enterprises: Collection[str]) -> Authenticator:
        """The authenticator ``settings`` ask for; raises :class:`ConfigError` when a hub
        outside local mode has no credentials at all (nobody could use its API)."""
        token = settings.admin_token.get_secret_value() if settings.admin_token else None
        users_file: Path | None = settings.users_file
        if token is None and users_file is None:
            if not settings.local_mode:
                raise ConfigError(
                    "SAFETY_HUB_ADMIN_TOKEN",
                    None,
                    "no API credentials: set SAFETY_HUB_ADMIN_TOKEN or SAFETY_HUB_USERS_FILE "
                    "(`safety-hub users add`); there are no default credentials outside "
                    "local mode",
                )
            return cls(local_token=new_token(), enterprises=enterprises)
        return cls(admin_token=token, users_file=users_file, enterprises=enterprises)

    @property
    def has_admin_token(self) -> bool:
        return self._admin is not None

    def _load(self, path: Path) -> None:
        stat = path.stat()
        users = load_users(path, self._enterprises)
        self._users = {u.token_sha256: u for u in users}
        self._stamp = (stat.st_mtime_ns, stat.st_size)
        log.info("users file read", extra={"path": str(path), "users": len(users)})

    def _maybe_reload(self) -> None:
        path = self.users_file
        if path is None:
            return
        now = time.monotonic()
        if now - self._checked < RELOAD_EVERY_S:
            return
        self._checked = now
        try:
            stat = path.stat()
        except OSError as exc:
            log.error("users file unreadable, keeping the users read before: %s", exc)
            return
        if (stat.st_mtime_ns, stat.st_size) == self._stamp:
            return
        try:
            self._load(path)
        except (LoadError, OSError) as exc:
            self._stamp = (stat.st_mtime_ns, stat.st_size)  # report once per change
            log.error("users file invalid, keeping the users read before: %s", exc)

    def authenticate(self, token: str | None) -> Principal | None:
        if not token:
            return None
        raw = token.encode()
        for admin in (self._admin, self.local_token.encode() if self.local_token else None):
            if admin is not None and hmac.compare_digest(raw, admin):
                return Principal(ADMIN_USER, Role.ADMIN, None)
        with self._lock:
            self._maybe_reload()
            found = self._users.get(hash_token(token))
        return None if found is None else found.principal()

    def users(self) -> list[UserRecord]:
        with self._lock:
            self._maybe_reload()
            return sorted(self._users.values(), key=lambda u: u.name)


class RateLimiter:
    """A token bucket per user: ``burst`` actions at once, refilled at ``per_minute``.

    :meth:`take` returns 0 when the action may go ahead, else the seconds until it may.
    """

    def __init__(
        self,
        per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = 10_000,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError(f"rate {per_minute}/min, burst {burst}: both must be positive")
        self.per_s = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._max_users = max_users
        self._buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, user: str) -> float:
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(user, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.per_s)
            if tokens >= 1.0:
                self._store(user, tokens - 1.0, now)
                return 0.0
            self._store(user, tokens, now)
            return (1.0 - tokens) / self.per_s

    def _store(self, user: str, tokens: float, now: float) -> None:
        if user not in self._buckets and len(self._buckets) >= self._max_users:
            # Forget full buckets first: they carry no state a new bucket would not.
            full = [
                u
                for u, (t, at) in self._buckets.items()
                if t + (now - at) * self.per_s >= self.burst
            ]
            for u in full or list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[u]
        self._buckets[user] = (tokens, now)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
