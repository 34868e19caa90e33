"""What every PostgreSQL store shares: a connection that comes back, fenced write transactions,
and one health record the hub's readiness reads.

A store holds one connection per role (a writer, maybe a reader) in autocommit mode; a write is
``with store.transaction() as cur:`` (BEGIN ... COMMIT), so it is committed, and durable by
PostgreSQL's own ``synchronous_commit``, when the block ends, or not at all. A lost connection
surfaces as :class:`~safety_hub.errors.StateDatabaseError` naming the store; the next call
connects again (one attempt per call, bounded by ``CONNECT_TIMEOUT_S``), so the callers'
own retry loops (ingest holds its acks, the alarm runtime retries every tick, the sink and the
outbox publisher poll) bring the hub back once the database answers again.

Fencing: with a ``fence`` callable that returns a token, every write transaction first runs
``SELECT hub_fence('active', token)``; a refusal (SQLSTATE ``FENCED_SQLSTATE``) raises
:class:`~safety_hub.errors.FencedError`, which the caller treats as "this node may not write".
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import psycopg

from connectors.postgres.schema import FENCED_SQLSTATE
from safety_hub.errors import FencedError, StateDatabaseError

log = logging.getLogger("safety_hub.postgres")

CONNECT_TIMEOUT_S = 5
"""how long one connection attempt may take (libpq ``connect_timeout``)"""
STATEMENT_TIMEOUT_MS = 30_000
"""a statement that runs longer is cancelled (a stuck lock must not hang ingest for ever)"""
TCP_USER_TIMEOUT_MS = 10_000
"""data sent and not acknowledged by the server's machine for this long breaks the connection
(a cut network would otherwise hang a write for the kernel's retransmission time, minutes)"""
CLIENT_TIMEOUT_S = STATEMENT_TIMEOUT_MS / 1000 + 5
"""a call still waiting for the server after this long has its socket shut down from this side:
a server (or a proxy) that takes the bytes but never answers (a frozen machine, a hung relay)
is seen by neither the statement timeout nor the TCP timeout"""
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 5, 2, 3
"""TCP keepalives on an idle connection: a dead peer is noticed within about 11 s (set on both
ends: the server's defaults would keep a dead client's session for two hours)"""
IDLE_IN_TRANSACTION_TIMEOUT_MS = 5_000
"""the server ends a session whose transaction has waited this long for its client's next
statement. Every fenced write transaction holds a share lock on the lease row from its first
statement (``hub_fence``) to its end; a node cut off (or frozen) in the middle of one would
otherwise keep that lock, and the other node could not take the lease over, until the server's
TCP stack gave up on the connection. Shorter than the default lease (6 s), so it adds nothing
to a takeover; far longer than any pause between a healthy transaction's statements."""
SESSION_OPTIONS = " ".join(
    f"-c {name}={value}"
    for name, value in (
        ("statement_timeout", STATEMENT_TIMEOUT_MS),
        ("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION_TIMEOUT_MS),
        ("tcp_keepalives_idle", KEEPALIVE_IDLE_S),
        ("tcp_keepalives_interval", KEEPALIVE_INTERVAL_S),
        ("tcp_keepalives_count", KEEPALIVE_COUNT),
        ("tcp_user_timeout", TCP_USER_TIMEOUT_MS),
    )
)
"""the server-side settings of every store session (libpq ``options``)"""
LEASE_NAME = "active"

Fence = Callable[[], int | None]


class StateHealth:
    """Whether the state database answered the last time a store asked (shared by the stores)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._since: float | None = None
        self._fenced_listeners: list[Callable[[str], None]] = []
        self._failures = 0

    def on_fenced(self, listener: Callable[[str], None]) -> None:
        """``listener(detail)`` is called (in the writing thread) each time a store's write was
        refused by the fence: this node lost the lease (the redundant pair's role logic)."""
        self._fenced_listeners.append(listener)

    def fenced(self, detail: str) -> None:
        log.warning("state write fenced: this node may not write", extra={"error": detail})
        for listener in list(self._fenced_listeners):
            try:
                listener(detail)
            except Exception:
                log.exception("fenced listener %r failed", listener)

    def failed(self, detail: str) -> None:
        with self._lock:
            self._failures += 1
            if self._problem is None:
                self._since = time.monotonic()
                log.error("state database unreachable", extra={"error": detail})
            self._problem = detail

    def ok(self) -> None:
        with self._lock:
            if self._problem is not None:
                log.info("state database reachable again")
            self._problem = None
            self._since = None

    @property
    def failures(self) -> int:
        """How many times a store found the database failing: a connection opened before the
        latest may have been closed by the server (a restart) without knowing it yet."""
        with self._lock:
            return self._failures

    @property
    def problem(self) -> str | None:
        """``"state database unreachable: ..."`` while the last attempt failed, else None."""
        with self._lock:
            if self._problem is None:
                return None
            assert self._since is not None
            down = time.monotonic() - self._since
            return f"state database unreachable for {down:.0f} s: {self._problem}"


class PgConnection:
    """One autocommit connection of one store; reconnects on the next use after a failure."""

    def __init__(
        self, url: str, store: str, health: StateHealth | None = None, fence: Fence | None = None
    ) -> None:
        self.url = url
        self.store = store
        self.health = health or StateHealth()
        self.fence = fence
        self._conn: psycopg.Connection | None = None
        self._opened_after = 0  # the health's failure count when the connection was opened
        self.lock = threading.RLock()

    def _connection(self) -> psycopg.Connection:
        """The connection, opened again when it is closed or broken, or when any store found
        the database failing since it was opened: a connection idle through a database
        restart does not know yet that the server closed it, and would fail its next
        statement (an API read after the database came back was a 500)."""
        conn = self._conn
        failures = self.health.failures
        if (
            conn is not None
            and not conn.closed
            and not conn.broken
            and self._opened_after == failures
        ):
            return conn
        self._drop()
        conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            options=SESSION_OPTIONS,
            application_name=f"safety-hub {self.store}",
            tcp_user_timeout=TCP_USER_TIMEOUT_MS,
            keepalives=1,
            keepalives_idle=KEEPALIVE_IDLE_S,
            keepalives_interval=KEEPALIVE_INTERVAL_S,
            keepalives_count=KEEPALIVE_COUNT,
        )
        self._conn, self._opened_after = conn, failures
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(psycopg.Error):
                conn.close()

    @contextmanager
    def _watchdog(self, conn: psycopg.Connection) -> Iterator[None]:
        """Shut the connection's socket down if the call takes longer than CLIENT_TIMEOUT_S:
        the blocked wait then fails (OperationalError) instead of waiting for ever."""
        timer = threading.Timer(CLIENT_TIMEOUT_S, _shut_down, args=(conn,))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    @contextmanager
    def transaction(self, *, fenced: bool = True) -> Iterator[psycopg.Cursor]:
        """One write transaction (fenced first when the store has a fence)."""
        with self.lock, self._errors():
            conn = self._connection()
            with self._watchdog(conn), conn.transaction(), conn.cursor() as cur:
                token = self.fence() if (fenced and self.fence is not None) else None
                if token is not None:
                    cur.execute("SELECT hub_fence(%s, %s)", (LEASE_NAME, token))
                yield cur

    @contextmanager
    def cursor(self) -> Iterator[psycopg.Cursor]:
        """A cursor for reads (autocommit: each statement sees the committed state)."""
        with self.lock, self._errors():
            conn = self._connection()
            with self._watchdog(conn), conn.cursor() as cur:
                yield cur

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            if exc.sqlstate == FENCED_SQLSTATE:
                detail = f"{self.store}: {exc.diag.message_primary or exc}"
                self.health.fenced(detail)
                raise FencedError(detail) from exc
            if (
                isinstance(exc, psycopg.OperationalError)
                or self._conn is None
                or (self._conn.closed or self._conn.broken)
            ):
                self._drop()
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                self.health.failed(f"{self.store}: {detail}")
                raise StateDatabaseError(self.store, detail) from exc
            raise
        self.health.ok()

    def close(self) -> None:
        with self.lock:
            self._drop()


def _shut_down(conn: psycopg.Connection) -> None:
    """Shut down the socket under ``conn`` (from another thread: the one blocked on it wakes)."""
    with suppress(OSError, psycopg.Error, ValueError):
        fd = os.dup(conn.fileno())
        with socket.socket(fileno=fd) as sock:
            sock.shutdown(socket.SHUT_RDWR)
        log.warning("state database call timed out; connection shut down", extra={})


def probe(url: str) -> str | None:
    """None when the database at ``url`` answers ``SELECT 1``; else why not."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    return None
