"""The active-node lease of a redundant hub pair, in PostgreSQL (table ``hub_lease``, 0001).

Every time is the database's clock (``now()``), never a hub's: two hubs whose clocks differ
still agree on who holds the lease and until when. The rules:

- :meth:`LeaseStore.acquire` takes the lease only when it has expired (or this node's name is
  already on it: a restarted node). Taking it always starts a new term: the token grows by one,
  so whatever still holds the previous token (a dead or cut-off node) is fenced by
  ``hub_fence``. Tokens only grow.
- :meth:`LeaseStore.renew` extends it only while it is this node's, with this term's token, and
  not yet expired: a lease that expired is gone, even if nobody has taken it yet.
- :meth:`LeaseStore.release` expires it at once (a clean shutdown), so the other node takes over
  at its next attempt instead of waiting out the lease.
- :meth:`LeaseStore.read` tells who holds it, since when, where its API is.

Each call is one autocommit statement on one connection that is reopened after a failure.
Connection, statement and TCP timeouts are bounded by ``timeout_s`` so that a call to an
unreachable database returns (with :class:`LeaseError`) within about that time.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

log = logging.getLogger("safety_hub.postgres.lease")

LEASE_NAME = "active"

_ACQUIRE = """
INSERT INTO hub_lease AS l (name, holder, token, acquired_at, renewed_at, expires_at, api_url)
VALUES (%(name)s, %(holder)s, 1, now(), now(), now() + make_interval(secs => %(lease_s)s),
        %(api_url)s)
ON CONFLICT (name) DO UPDATE SET
    holder = EXCLUDED.holder,
    token = l.token + 1,
    acquired_at = now(),
    renewed_at = now(),
    expires_at = EXCLUDED.expires_at,
    api_url = EXCLUDED.api_url
WHERE l.expires_at <= now() OR l.holder = EXCLUDED.holder
RETURNING holder, token, acquired_at, renewed_at, expires_at, api_url, now() AS db_now
"""

_RENEW = """
UPDATE hub_lease
   SET renewed_at = now(), expires_at = now() + make_interval(secs => %(lease_s)s)
 WHERE name = %(name)s AND holder = %(holder)s AND token = %(token)s AND expires_at > now()
RETURNING holder, token, acquired_at, renewed_at, expires_at, api_url, now() AS db_now
"""

_RELEASE = """
UPDATE hub_lease SET expires_at = now()
 WHERE name = %(name)s AND holder = %(holder)s AND token = %(token)s AND expires_at > now()
RETURNING token
"""

_READ = """
SELECT holder, token, acquired_at, renewed_at, expires_at, api_url, now() AS db_now
  FROM hub_lease WHERE name = %(name)s
"""


class LeaseError(RuntimeError):
    """The lease database could not be asked (down, unreachable, timed out)."""


@dataclass(frozen=True)
class Lease:
    """One row of ``hub_lease`` as the database saw it at ``db_now``."""

    holder: str
    token: int
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
    api_url: str | None
    db_now: datetime

    @property
    def valid(self) -> bool:
        """Unexpired when it was read."""
        return self.expires_at > self.db_now

    @property
    def remaining_s(self) -> float:
        """Seconds of the lease left when it was read (0 once expired)."""
        return max(0.0, (self.expires_at - self.db_now).total_seconds())


class LeaseStore:
    """The lease of one node (``holder``) in the database at ``url``; thread-safe."""

    def __init__(
        self,
        url: str,
        holder: str,
        *,
        lease_s: float,
        api_url: str | None = None,
        timeout_s: float = 2.0,
        name: str = LEASE_NAME,
    ) -> None:
        if not holder:
            raise ValueError("lease: the holder (node id) is empty")
        if lease_s <= 0:
            raise ValueError(f"lease: lease_s must be positive, got {lease_s}")
        self.url = url
        self.holder = holder
        self.name = name
        self.lease_s = lease_s
        self.api_url = api_url
        self.timeout_s = timeout_s
        self._conn: psycopg.Connection[dict[str, object]] | None = None
        self._lock = threading.Lock()

    # -- the four operations ----------------------------------------------------------------
    def acquire(self) -> Lease | None:
        """Take the lease (a new term, token + 1) if it is free or expired or already ours;
        None when another node holds it."""
        params = {
            "name": self.name,
            "holder": self.holder,
            "lease_s": self.lease_s,
            "api_url": self.api_url,
        }
        return self._one(_ACQUIRE, params)

    def renew(self, token: int) -> Lease | None:
        """Extend our lease of term ``token``; None when it is no longer ours or has expired."""
        params = {"name": self.name, "holder": self.holder, "token": token, "lease_s": self.lease_s}
        return self._one(_RENEW, params)

    def release(self, token: int) -> bool:
        """Expire our lease of term ``token`` now; False when it was not ours any more."""
        params = {"name": self.name, "holder": self.holder, "token": token}
        return self._one_raw(_RELEASE, params) is not None

    def read(self) -> Lease | None:
        """The lease row as it is now (maybe expired, maybe someone else's); None if no node
        ever held it."""
        return self._one(_READ, {"name": self.name})

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- plumbing ----------------------------------------------------------------------------
    def _one(self, sql: str, params: dict[str, object]) -> Lease | None:
        row = self._one_raw(sql, params)
        if row is None:
            return None
        return Lease(
            holder=str(row["holder"]),
            token=int(row["token"]),  # type: ignore[call-overload]
            acquired_at=row["acquired_at"],  # type: ignore[arg-type]
            renewed_at=row["renewed_at"],  # type: ignore[arg-type]
            expires_at=row["expires_at"],  # type: ignore[arg-type]
            api_url=None if row["api_url"] is None else str(row["api_url"]),
            db_now=row["db_now"],  # type: ignore[arg-type]
        )

    def _one_raw(self, sql: str, params: dict[str, object]) -> dict[str, object] | None:
        with self._lock:
            try:
                conn = self._connect()
                with conn.cursor() as cur:
                    cur.execute(sql, params)
                    return cur.fetchone()
            except psycopg.Error as exc:
                self._drop()
                raise LeaseError(f"lease database: {type(exc).__name__}: {exc}") from exc

    def _connect(self) -> psycopg.Connection[dict[str, object]]:
        if self._conn is None or self._conn.closed:
            ms = max(100, round(self.timeout_s * 1000))
            self._conn = psycopg.connect(
                self.url,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=max(1, math.ceil(self.timeout_s)),
                # bounded waits on a database that stops answering: the server cancels a slow
                # statement; the kernel gives up on unacknowledged data (a cut network)
                options=f"-c statement_timeout={ms} -c lock_timeout={ms}",
                tcp_user_timeout=ms,
                keepalives=1,
                keepalives_idle=1,
                keepalives_interval=1,
                keepalives_count=max(1, math.ceil(self.timeout_s)),
                application_name=f"safety-hub lease {self.holder}"[:63],
            )
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
