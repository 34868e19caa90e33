"""The role of one hub of a redundant pair: standby, active, standby again (docs/deploy.md,
"Redundancy").

A lease in the shared PostgreSQL database decides which hub acts (connectors/postgres/lease.py).
The standby is hot (plant, rules and state loaded, API serving reads) and tries to take the
lease whenever it can reach the broker. Holding the lease, the node *acts*: the hub connects
the persistent MQTT ingest sessions (the broker hands over what the other node left
unacknowledged), publishes alarm events and runs its timers; :attr:`HaNode.token` is its
fencing token for every shared-state write.

The node stops acting at once -- ingest sessions disconnected without acknowledging, no
publishing, readiness 503, fencing token None -- when

- a renewal finds the lease gone (expired, or another node's);
- it has not renewed for a whole lease time, measured on the local monotonic clock from the
  start of the last successful renewal (the database's expiry is later than that, so the node
  stops before the other can take over); a watchdog thread checks this, so a renewal hanging on
  a dead connection does not delay it;
- it has been cut off from the broker for ``broker_grace_s``: it releases the lease, so that a
  node that reaches the broker takes over.

Then it is standby again and competes like the other one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Counter, Gauge

from safety_hub.ports import InboundMessage
from safety_hub.settings import Settings

log = logging.getLogger("safety_hub.ha")

WATCH_INTERVAL_S = 0.1


class Role(StrEnum):
    STANDBY = "standby"
    ACTIVE = "active"
    STOPPED = "stopped"


class LeaseView(Protocol):
    @property
    def holder(self) -> str: ...
    @property
    def token(self) -> int: ...
    @property
    def acquired_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def api_url(self) -> str | None: ...
    @property
    def remaining_s(self) -> float: ...


class LeasePort(Protocol):
    """The lease operations (``connectors.postgres.LeaseStore``); each may raise on a database
    that cannot be reached."""

    def acquire(self) -> LeaseView | None: ...
    def renew(self, token: int) -> LeaseView | None: ...
    def release(self, token: int) -> bool: ...
    def read(self) -> LeaseView | None: ...
    def close(self) -> None: ...


class BrokerProbe(Protocol):
    """A light connection to the broker (no ingest session): can this node reach it?
    (``connectors.mqtt.MqttIngest`` without subscriptions.)"""

    @property
    def connected(self) -> bool: ...
    def start(self, handler: Callable[[InboundMessage], None]) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class HaStatus:
    """The ``ha`` block of ``/api/v1/system``."""

    enabled: bool
    node_id: str
    role: str
    active_node: str | None
    active_api_url: str | None
    since: datetime | None
    token: int | None
    lease_expires: datetime | None
    broker_reachable: bool | None = None
    last_error: str | None = None


class HaMetrics:
    def __init__(self, registry: CollectorRegistry, node_id: str) -> None:
        self.role = Gauge(
            "safety_hub_ha_role",
            "1 while this node is the active one of the pair, 0 while standby",
            ["node"],
            registry=registry,
        ).labels(node_id)
        self.takeovers = Counter(
            "safety_hub_ha_takeovers",
            "Times this node took the lease and became active",
            registry=registry,
        )
        self.step_downs = Counter(
            "safety_hub_ha_step_downs",
            "Times this node stopped acting, by reason",
            ["reason"],
            registry=registry,
        )
        self.renew_failures = Counter(
            "safety_hub_ha_lease_renew_failures",
            "Lease renewals that could not reach the database",
            registry=registry,
        )


class HaNode:
    """The role machine of one node; ``activate``/``deactivate`` start and stop the hub's acting
    parts (called on this object's threads, one at a time)."""

    def __init__(
        self,
        *,
        node_id: str,
        lease: LeasePort,
        probe: BrokerProbe | None,
        activate: Callable[[], None],
        deactivate: Callable[[str], None],
        lease_s: float,
        renew_s: float,
        broker_grace_s: float,
        registry: CollectorRegistry,
        prepare: Callable[[], object] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``prepare`` (the schema migration) runs on the lease thread until it succeeds,
        before the node competes: a node starts (standby, serving reads) while the database is
        away and competes once it is back."""
        self.node_id = node_id
        self._prepare = prepare
        self._lease = lease
        self._probe = probe
        self._activate = activate
        self._deactivate = deactivate
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.broker_grace_s = broker_grace_s
        self._monotonic = monotonic
        self.metrics = HaMetrics(registry, node_id)
        self._role = Role.STANDBY
        self._role_lock = threading.RLock()
        self._token: int | None = None
        self._deadline = 0.0  # monotonic: act no longer than this without a renewal
        self._seen: LeaseView | None = None  # the lease as last read, anyone's
        self._seen_until = 0.0  # monotonic: its holder counts as active until then
        self._broker_lost_at: float | None = None
        self._last_error: str | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- what the rest of the hub reads ----------------------------------------------------------
    @property
    def role(self) -> Role:
        """Active only while the token is valid: from the moment the local lease time is up
        this node says standby, even before the watchdog has stopped its acting parts."""
        role = self._role
        if role is Role.ACTIVE and self.token is None:
            return Role.STANDBY
        return role

    @property
    def active(self) -> bool:
        return self.token is not None

    @property
    def token(self) -> int | None:
        """The fencing token while this node acts, else None (also the moment the local lease
        time is up, before the watchdog has stepped down)."""
        token = self._token
        if token is None or self._monotonic() >= self._deadline:
            return None
        return token

    def fence(self) -> int | None:
        """The token for the state stores' ``fence`` callable."""
        return self.token

    def status(self) -> HaStatus:
        seen = self._seen
        # valid as far as this node knows: a lease read before the database went away
        # expires on this node's clock too, then nobody is known to be active
        valid = seen is not None and self._monotonic() < self._seen_until
        return HaStatus(
            enabled=True,
            node_id=self.node_id,
            role=self.role.value,
            active_node=seen.holder if seen is not None and valid else None,
            active_api_url=seen.api_url if seen is not None and valid else None,
            since=seen.acquired_at if seen is not None and valid else None,
            token=self.token,
            lease_expires=seen.expires_at if seen is not None else None,
            broker_reachable=None if self._probe is None else self._probe.connected,
            last_error=self._last_error,
        )

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.metrics.role.set(0)
        self._stopping.clear()
        if self._probe is not None:
            self._probe.start(_ignore)
        self._threads = [
            threading.Thread(target=self._lease_loop, name="ha-lease", daemon=True),
            threading.Thread(target=self._watch_loop, name="ha-watch", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info(
            "ha: standby, competing for the lease",
            extra={"node": self.node_id, "lease_s": self.lease_s, "renew_s": self.renew_s},
        )

    def stop(self) -> None:
        """Stop acting and hand the lease over at once (a clean shutdown)."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(self.lease_s + 5)
        with self._role_lock:
            token = self._token
            self._step_down("shutdown", "shutdown", release=True)
            self._role = Role.STOPPED
        if token is not None:
            log.info("ha: lease released at shutdown", extra={"node": self.node_id})
        if self._probe is not None:
            self._probe.stop()
        self._lease.close()

    # -- the lease thread ------------------------------------------------------------------------
    def _lease_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._prepare is not None and not self._prepare_once():
                    wait = min(self.renew_s, 1.0)  # the database is not there yet
                elif self._role is Role.ACTIVE:
                    self._renew_once()
                    wait = self.renew_s
                else:
                    self._compete_once()
                    wait = min(self.renew_s, 1.0)
            except Exception:  # never let the role machine die
                log.exception("ha: lease loop pass failed")
                wait = min(self.renew_s, 1.0)
            self._stopping.wait(wait)

    def _prepare_once(self) -> bool:
        assert self._prepare is not None
        try:
            self._prepare()
        except Exception as exc:
            self._error(f"lease database not ready: {exc}")
            return False
        self._prepare = None
        self._last_error = None
        return True

    def _compete_once(self) -> None:
        if self._probe is not None and not self._probe.connected:
            self._read_quietly()  # cannot reach the broker: do not take over, but show who acts
            return
        started = self._monotonic()
        try:
            lease = self._lease.acquire()
        except Exception as exc:
            self._error(f"lease database: {exc}")
            return
        self._last_error = None
        if lease is None:
            self._read_quietly()
            return
        with self._role_lock:
            if self._stopping.is_set():
                self._release_quietly(lease.token)
                return
            self._saw(lease, started)
            self._token = lease.token
            self._deadline = started + self.lease_s
            self._role = Role.ACTIVE
            self._broker_lost_at = None
            self.metrics.role.set(1)
            self.metrics.takeovers.inc()
            log.warning(
                "ha: took the lease; this node is active",
                extra={"node": self.node_id, "token": lease.token},
            )
            try:
                self._activate()
            except Exception as exc:
                log.exception("ha: could not start acting; giving the lease up")
                self._step_down("activation_failed", f"activation failed: {exc}", release=True)

    def _renew_once(self) -> None:
        token = self._token
        if token is None:
            return
        started = self._monotonic()
        try:
            lease = self._lease.renew(token)
        except Exception as exc:
            self.metrics.renew_failures.inc()
            self._error(f"lease not renewed: {exc}")
            return  # the watchdog steps down once the lease time is up
        with self._role_lock:
            if self._token != token:
                # stepped down meanwhile (the watchdog): a renewal that still went through
                # must not keep the other node waiting another lease time
                if lease is not None:
                    self._release_quietly(token)
                return
            if lease is None:
                self._step_down(
                    "lease_lost", "lost the lease (expired, or taken by the other node)"
                )
                return
            self._last_error = None
            self._saw(lease, started)
            self._deadline = started + self.lease_s

    # -- the watchdog thread ---------------------------------------------------------------------
    def _watch_loop(self) -> None:
        while not self._stopping.wait(WATCH_INTERVAL_S):
            try:
                self._watch_once()
            except Exception:
                log.exception("ha: watchdog pass failed")

    def _watch_once(self) -> None:
        if self._role is not Role.ACTIVE:
            return
        now = self._monotonic()
        if now >= self._deadline:
            with self._role_lock:
                if self._role is Role.ACTIVE and self._monotonic() >= self._deadline:
                    self._step_down("lease_timeout", f"lease not renewed for {self.lease_s:g} s")
            return
        if self._probe is None:
            return
        if self._probe.connected:
            self._broker_lost_at = None
            return
        if self._broker_lost_at is None:
            self._broker_lost_at = now
        elif now - self._broker_lost_at >= self.broker_grace_s:
            with self._role_lock:
                if self._role is Role.ACTIVE:
                    self._step_down(
                        "broker_unreachable",
                        f"cut off from the broker for {self.broker_grace_s:g} s",
                        release=True,
                    )

    # -- helpers ---------------------------------------------------------------------------------
    def _step_down(self, kind: str, reason: str, *, release: bool = False) -> None:
        """Stop acting (caller holds the role lock); the token is None from the first line.
        ``kind`` is the metric label (a fixed word), ``reason`` the sentence for the log."""
        token = self._token
        was_active = self._role is Role.ACTIVE
        self._token = None
        self._deadline = 0.0
        if self._seen is not None and self._seen.holder == self.node_id:
            self._seen_until = 0.0  # not active any more, whatever the database still says
        if self._role is Role.ACTIVE:
            self._role = Role.STANDBY
        self.metrics.role.set(0)
        if not was_active:
            return
        self.metrics.step_downs.labels(kind).inc()
        log.warning("ha: stepping down to standby", extra={"node": self.node_id, "reason": reason})
        try:
            self._deactivate(reason)
        except Exception:
            log.exception("ha: stopping the acting parts failed")
        if release and token is not None:
            self._release_quietly(token)

    def _release_quietly(self, token: int) -> None:
        try:
            self._lease.release(token)
        except Exception as exc:
            self._error(f"lease not released (it expires on its own): {exc}")

    def _read_quietly(self) -> None:
        started = self._monotonic()
        try:
            lease = self._lease.read()
        except Exception as exc:
            self._error(f"lease database: {exc}")
            return
        self._saw(lease, started)

    def _saw(self, lease: LeaseView | None, started: float) -> None:
        """The lease as read by a call that started at ``started`` (monotonic)."""
        self._seen = lease
        self._seen_until = 0.0 if lease is None else started + lease.remaining_s

    def _error(self, text: str) -> None:
        if text != self._last_error:
            log.warning("ha: %s", text, extra={"node": self.node_id})
        self._last_error = text


def _ignore(message: InboundMessage) -> None:
    """The probe subscribes to nothing; nothing arrives."""


def build_node(
    settings: Settings,
    registry: CollectorRegistry,
    *,
    activate: Callable[[], None],
    deactivate: Callable[[str], None],
) -> HaNode:
    """The node of ``settings`` (SAFETY_HUB_HA=on): the lease in the state database (its schema
    migrated before the node first competes), a probe connection to the broker under its own
    client id."""
    from connectors.mqtt import MqttConfig, MqttIngest
    from connectors.postgres import LeaseStore, migrate

    state_url = settings.state_url
    assert state_url is not None  # checked by Settings
    lease = LeaseStore(
        state_url,
        settings.node_id,
        lease_s=settings.ha_lease_s,
        api_url=settings.api_public_url or settings.public_url,
        timeout_s=settings.ha_renew_interval_s,
    )
    target = settings.mqtt_target()
    assert target is not None  # checked by Settings
    probe = MqttIngest(
        MqttConfig(
            host=target.host,
            port=target.port,
            client_id=f"{settings.mqtt_client_id}/_probe-{settings.node_id}",
            username=target.username,
            password=target.password,
            tls=target.tls,
            persistent=False,
            keepalive_s=5,
            min_reconnect_s=1,
            max_reconnect_s=2,
        )
    )
    return HaNode(
        node_id=settings.node_id,
        lease=lease,
        probe=probe,
        activate=activate,
        deactivate=deactivate,
        lease_s=settings.ha_lease_s,
        renew_s=settings.ha_renew_interval_s,
        broker_grace_s=settings.ha_broker_grace_s,
        registry=registry,
        prepare=lambda: migrate(bounded_url(state_url, settings.ha_lease_s)),
    )


def bounded_url(url: str, timeout_s: float) -> str:
    """``url`` with libpq's connect and TCP timeouts (unless it sets them): the migration on
    the lease thread must not hang on a database that does not answer."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    ms = max(1000, round(timeout_s * 1000))
    query.setdefault("connect_timeout", str(max(1, round(timeout_s))))
    query.setdefault("tcp_user_timeout", str(ms))
    return urlunsplit(parts._replace(query=urlencode(query)))
