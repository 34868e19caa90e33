"""Several MQTT sessions of one hub, behind the core's single ``MessageSource``.

A broker delivers a session's messages in one queue, first in, first out. With one session for
the whole park, an enterprise that floods the broker faster than the hub reads puts its backlog
in front of every other enterprise's readings, and no scheduling inside the hub can undo that.
So the hub opens one persistent session per registered enterprise, subscribed to that
enterprise's topics only: a flood backs up in the flooder's own queue, and another
enterprise's level-2 reading arrives on its own connection at once. Beside them:

- one persistent session per registered enterprise for its ``critical`` topic (the readings of
  gas detectors and SIS, contract v1.1), with a small Receive Maximum of its own: the broker
  queues them apart from the enterprise's process data, so a backlog of that (a burst, or a
  gateway emptying its buffer after an outage) never holds a gas reading back;
- a *catch-all* session (clean, QoS 0) subscribed to every enterprise's topics, which drops at
  once what a registered session receives, so that messages of unregistered enterprises are
  still rejected and reported (they need no durability). Connected as a broker user of its
  own (``SAFETY_HUB_MQTT_CATCH_ALL_USER``) whose ACL denies the registered enterprises' topics
  (acl.py), it gets from the broker only what no other session receives;
- a *publisher* connection with no subscriptions for rejection reports and alarm events, so
  an incoming backlog never delays an outgoing acknowledgement;
- the *retiring* session: the single session an earlier version used. Whatever it still holds
  is processed and acknowledged like any message, then the broker is told to forget it.

Each message carries its session in its ack token, so :meth:`ack` reaches the right one.

By default (``SAFETY_HUB_MQTT_PROCESS``) the receiving sessions run in child processes, off
the hub's interpreter: the persistent telemetry ones in one (receiver.py), the critical ones
in another of their own (the same code), so that their socket and interpreter are never busy
with a burst of process data; the catch-all, which receives every message a second time
unless its broker user is fenced as above, in a third (catch_all.py). The publisher stays in
the hub.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

from connectors.mqtt.catch_all import CatchAllProcess
from connectors.mqtt.ingest import ConnectionListener, MqttConfig, MqttIngest
from connectors.mqtt.receiver import (
    CRITICAL_RECEIVER_PROCESS_NAME,
    ReceiverProcess,
    RemoteSession,
    RemoteToken,
)
from safety_hub.ingest.telemetry import critical_subscription, status_topic, telemetry_subscription
from safety_hub.ports import InboundMessage

log = logging.getLogger("connectors.mqtt.sessions")

RETIRE_IDLE_S = 5.0
# Session names that no enterprise code can be (codes start with a letter or digit).
CATCH_ALL = "_unregistered"
PUBLISHER = "_publisher"
CRITICAL_PREFIX = "_critical-"
"""session names of the critical topics: ``_critical-<enterprise>`` (or ``_critical-_g<k>``)"""
CRITICAL_RECEIVE_MAXIMUM = 16
"""unacknowledged messages per critical session: gas detectors report about once a second"""
CRITICAL_HEAD_START_S = 2.0
"""at start, the critical sessions connect first, for up to this long, before the others: what
the broker queued on them while the hub was away comes in before the telemetry backlog"""


def is_critical_session(name: str) -> bool:
    return name.startswith(CRITICAL_PREFIX)


@dataclass(frozen=True)
class Retiring:
    """An old session to empty and end: its client id and the topics it was subscribed to."""

    config: MqttConfig
    topics: tuple[str, ...]


class MqttSessions:
    """Implements the core's ``MessageSource`` over several named MQTT connections."""

    def __init__(
        self,
        sessions: dict[str, MqttConfig],
        publisher: MqttConfig,
        *,
        retiring: Retiring | None = None,
        on_connection: ConnectionListener | None = None,
        in_processes: bool = False,
        child_setup: Callable[[str], None] | None = None,
        priority: Callable[[str, bytes], bool] | None = None,
    ) -> None:
        """``in_processes``: the receiving sessions run in child processes, the persistent ones
        in one (receiver.py), the critical ones (:func:`is_critical_session`) in another, the
        catch-all (:data:`CATCH_ALL`) in a third (catch_all.py); each child first calls the
        picklable ``child_setup`` with its process name. ``priority`` (picklable): the
        messages the persistent sessions' child sends the hub first."""
        if not sessions:
            raise ValueError("mqtt sessions: none configured")
        self._on_connection = on_connection
        self._lock = threading.Lock()
        # name -> (connected: None while it has not connected yet, detail)
        self._state: dict[str, tuple[bool | None, str]] = {}
        remote = {n: c for n, c in sessions.items() if in_processes and n != CATCH_ALL}
        critical = {n: c for n, c in remote.items() if is_critical_session(n)}
        bulk = {n: c for n, c in remote.items() if n not in critical}
        self._receivers = [
            ReceiverProcess(bulk, child_setup=child_setup, priority=priority) if bulk else None,
            ReceiverProcess(
                critical,
                child_setup=child_setup,
                process_name=CRITICAL_RECEIVER_PROCESS_NAME,
                label="critical receiver",
            )
            if critical
            else None,
        ]
        self._sessions: dict[str, MqttIngest | CatchAllProcess | RemoteSession] = {}
        for name, config in sessions.items():
            receiver = self._receivers[name in critical]
            if receiver is not None and name in remote:
                self._sessions[name] = receiver.session(name, self._listener(name))
            elif in_processes and name == CATCH_ALL:
                self._sessions[name] = CatchAllProcess(
                    config, self._listener(name), child_setup=child_setup
                )
            else:
                self._sessions[name] = MqttIngest(config, on_connection=self._listener(name))
        self._publisher = MqttIngest(publisher, on_connection=self._listener(PUBLISHER))
        self._state = {name: (None, "not connected yet") for name in [*sessions, PUBLISHER]}
        self._retiring = retiring
        self._old: MqttIngest | None = None
        self._retire_thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def _listener(self, name: str) -> Callable[[bool, str], None]:
        def on_connection(connected: bool, detail: str) -> None:
            with self._lock:
                self._state[name] = (connected, detail)
                down = [f"{n}: {d}" for n, (up, d) in sorted(self._state.items()) if up is False]
                starting = any(up is None for up, _ in self._state.values())
            if self._on_connection is None:
                return
            if down:
                self._on_connection(False, "; ".join(down[:5]))
            elif not starting:  # all up (sessions still connecting at start are no outage)
                self._on_connection(True, "connected")

        return on_connection

    # -- MessageSource ----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._publisher.connected and all(s.connected for s in self._sessions.values())

    def disconnected(self) -> list[str]:
        """Names of the sessions that are not connected now."""
        out = [name for name, s in self._sessions.items() if not s.connected]
        if not self._publisher.connected:
            out.append(PUBLISHER)
        return out

    def in_flight(self) -> int:
        """QoS 1 messages received and not acknowledged yet, over all sessions."""
        old = self._old
        return sum(s.unacked for s in self._sessions.values()) + (old.unacked if old else 0)

    def catch_all_copies(self) -> int:
        """Messages of registered enterprises the catch-all received and dropped: copies the
        broker need not send (0 with a fenced catch-all user, acl.py)."""
        session = self._sessions.get(CATCH_ALL)
        return 0 if session is None or isinstance(session, RemoteSession) else session.ignored

    def in_flight_limit(self) -> int:
        """The sum of the Receive Maximum of the persistent sessions: the broker sends no more
        unacknowledged QoS 1 messages than this (the retiring session adds its own while it
        empties)."""
        return sum(s.config.receive_maximum for s in self._sessions.values() if s.config.persistent)

    def start(self, handler: Callable[[InboundMessage], None]) -> None:
        self._stopping.clear()
        self._publisher.start(handler)
        critical = [s for name, s in self._sessions.items() if is_critical_session(name)]
        for session in critical:
            session.start(handler)
        deadline = time.monotonic() + CRITICAL_HEAD_START_S
        for session in critical:
            session.wait_connected(max(0.0, deadline - time.monotonic()))
        for session in self._sessions.values():
            if session not in critical:
                session.start(handler)
        if self._retiring is not None:
            self._old = MqttIngest(self._retiring.config)
            self._old.start(handler)
            self._retire_thread = threading.Thread(
                target=self._retire, name="mqtt-retire", daemon=True
            )
            self._retire_thread.start()

    def wait_connected(self, timeout: float) -> bool:
        return all(s.wait_connected(timeout) for s in [self._publisher, *self._sessions.values()])

    def ack(self, message: InboundMessage) -> None:
        # The token knows its session (MqttIngest.ack forwards to the owner).
        token = message.token
        if isinstance(token, RemoteToken):
            token.owner.ack(message)
            return
        self._publisher.ack(message)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self._publisher.publish(topic, payload, qos=qos, retain=retain)

    def publish_confirmed(self, topic: str, payload: bytes, timeout_s: float) -> bool:
        return self._publisher.publish_confirmed(topic, payload, timeout_s)

    def publish_confirmed_many(
        self, messages: Sequence[tuple[str, bytes]], timeout_s: float
    ) -> int:
        return self._publisher.publish_confirmed_many(messages, timeout_s)

    def stop(self) -> None:
        self._stopping.set()
        # Every child is told before any is waited for, so that all the sessions close at once.
        # One after another, a child still connected after its node stepped down would see the
        # node taking over connect under the same client ids, reconnect, and take the sessions
        # back from it (tests/integration/test_ha_pair.py).
        for session in self._sessions.values():
            if not isinstance(session, MqttIngest):
                session.request_stop()
        for session in self._sessions.values():
            session.stop()
        if self._old is not None:
            self._old.stop()
        self._publisher.stop()
        if self._retire_thread is not None:
            self._retire_thread.join(5)

    # -- the old single session ---------------------------------------------------------------
    def _retire(self) -> None:
        old, retiring = self._old, self._retiring
        assert old is not None and retiring is not None
        while not old.wait_connected(1.0):
            if self._stopping.is_set():
                return
        if old.session_present:
            # Stop new messages coming in; deliver, process and acknowledge what it holds.
            old.unsubscribe(retiring.topics)
            log.warning(
                "mqtt: emptying the hub's previous single session before ending it",
                extra={"client_id": retiring.config.client_id},
            )
            while not self._stopping.wait(0.5):
                quiet_s = time.monotonic() - old.last_message_monotonic
                if old.unacked == 0 and quiet_s > RETIRE_IDLE_S:
                    break
            if self._stopping.is_set():
                return  # the rest stays with the broker for the next start
        old.stop(end_session=True)
        log.info("mqtt: previous single session ended", extra={"client_id": old.config.client_id})


def session_groups(codes: Sequence[str], max_sessions: int) -> dict[str, list[str]]:
    """Session name -> the enterprise codes it reads. One session per enterprise (named by its
    code) while there are at most ``max_sessions`` enterprises; beyond, the enterprises share
    ``max_sessions`` sessions ``_g<k>`` by a hash of their code, so that adding an enterprise
    moves no other. Every MQTT connection costs the hub a thread and three file descriptors
    (paho's ``select`` cannot watch descriptors past 1024: a province of 500 enterprises did
    not connect at all), and the broker a connection."""
    if len(codes) <= max_sessions:
        return {code: [code] for code in sorted(codes)}
    groups: dict[str, list[str]] = {}
    for code in sorted(codes):
        k = zlib.crc32(code.encode()) % max_sessions
        groups.setdefault(f"_g{k:03d}", []).append(code)
    return dict(sorted(groups.items()))


def enterprise_lanes(
    codes: Collection[str], max_sessions: int
) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """The persistent sessions of :func:`sessions_for` for the registered ``codes``: (name,
    subscriptions: each enterprise's telemetry and status, no_retained: its telemetry), one
    session per enterprise up to ``max_sessions`` (:func:`session_groups`)."""
    return [
        (
            name,
            tuple(t for c in group for t in (telemetry_subscription(c), status_topic(c))),
            tuple(telemetry_subscription(c) for c in group),
        )
        for name, group in session_groups(sorted(codes), max_sessions).items()
    ]


def critical_lanes(
    codes: Collection[str], max_sessions: int
) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """The persistent sessions of the registered ``codes``' critical topics, in the shape of
    :func:`enterprise_lanes` and grouped as it groups them, each name with
    :data:`CRITICAL_PREFIX`."""
    out = []
    for name, group in session_groups(sorted(codes), max_sessions).items():
        subs = tuple(critical_subscription(c) for c in group)
        out.append((f"{CRITICAL_PREFIX}{name}", subs, subs))
    return out


def sessions_for(
    base: MqttConfig,
    lanes: Sequence[tuple[str, tuple[str, ...], tuple[str, ...]]],
    catch_all: tuple[tuple[str, ...], tuple[str, ...], Callable[[str], bool]] | None,
    catch_all_user: str | None = None,
) -> tuple[dict[str, MqttConfig], MqttConfig]:
    """Configs for :class:`MqttSessions` from one base config: ``lanes`` are (name,
    subscriptions, no_retained) of persistent sessions; ``catch_all`` (subscriptions,
    no_retained, ignore_topic) is the clean QoS 0 one, connected as ``catch_all_user`` (with
    the base's password) when given: a broker user whose ACL denies it the registered
    enterprises' topics (acl.py) sends it no copy of what the other sessions receive. Client
    ids are ``<base id>/<name>``; the receive maximum of the base is shared out among the
    persistent telemetry sessions, so the hub's bound on unacknowledged messages stays what it
    was; each critical session (:func:`critical_lanes`) adds :data:`CRITICAL_RECEIVE_MAXIMUM`."""
    bulk = [lane for lane in lanes if not is_critical_session(lane[0])]
    share = max(16, base.receive_maximum // max(1, len(bulk)))
    configs = {
        name: replace(
            base,
            client_id=f"{base.client_id}/{name}",
            subscriptions=subs,
            no_retained=no_retained,
            receive_maximum=CRITICAL_RECEIVE_MAXIMUM if is_critical_session(name) else share,
        )
        for name, subs, no_retained in lanes
    }
    if catch_all is not None:
        subs, no_retained, ignore = catch_all
        configs[CATCH_ALL] = replace(
            base,
            client_id=f"{base.client_id}/{CATCH_ALL}",
            username=catch_all_user or base.username,
            subscriptions=subs,
            no_retained=no_retained,
            persistent=False,
            subscribe_qos=0,
            ignore_topic=ignore,
        )
    publisher = replace(
        base, client_id=f"{base.client_id}/{PUBLISHER}", subscriptions=(), persistent=False
    )
    return configs, publisher


@dataclass(frozen=True)
class RegisteredTopics:
    """``registered(topic)``: True for a topic of one of ``codes`` (which their own sessions
    receive). A class, not a closure, so that it pickles into the catch-all's child process."""

    codes: frozenset[str]

    def __call__(self, topic: str) -> bool:
        parts = topic.split("/", 3)
        return len(parts) > 2 and parts[2] in self.codes


def of_enterprises(codes: Collection[str]) -> Callable[[str], bool]:
    """True for a topic of one of ``codes`` (which their own sessions receive)."""
    return RegisteredTopics(frozenset(codes))
