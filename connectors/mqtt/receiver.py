"""The persistent sessions in a child process of their own (``SAFETY_HUB_MQTT_PROCESS``).

paho reads and parses every MQTT packet in Python, on one network thread per session. In the
hub's own interpreter those threads took turns on the interpreter lock with the ingest worker:
each packet releases and takes the lock back several times (select, the reads, the PUBACK), and
every time the worker computes, a waiting thread takes it from the worker at the next switch
interval. So the hub can run its persistent sessions in one child process: the child keeps
the connections, and sends the hub each message (topic, payload, receive time, its session and
an id), in batches, over a pipe; the hub sends the ids it acknowledges back, in batches, and
the child acknowledges them to the broker. The broker's guarantees are unchanged: a message is
acknowledged only once the hub has it durably, a session's Receive Maximum is kept by the child
(its network thread waits for acknowledgements from the hub before it reads more), and a
message whose acknowledgement cannot reach its connection any more is delivered again by the
broker.

The hub supervises the child: a child that dies is started again after a backoff; meanwhile its
sessions count as disconnected, and acknowledgements of messages it had handed over are skipped
(the broker delivers those messages again to the new child; storage overwrites the repeated
readings with themselves, as after any reconnect). A child whose hub died sees its pipe close
and exits.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import signal
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from connectors.mqtt.child import ChildSupervisor
from connectors.mqtt.ingest import ConnectionListener, MqttConfig, MqttIngest
from safety_hub.ports import InboundMessage

log = logging.getLogger("connectors.mqtt.receiver")

RECEIVER_PROCESS_NAME = "safety-hub-mqtt"
"""the child's name, as ``top`` shows it"""
CRITICAL_RECEIVER_PROCESS_NAME = "safety-hub-crit"
"""the child that holds the sessions of the ``critical`` topics (at most 15 characters)"""
# The child's queue of messages not yet sent to the hub: past either bound the network thread
# that brings the next one waits, paho stops reading, and TCP holds the broker back (QoS 1
# messages are bounded by the Receive Maximum anyway; this bounds a flood of QoS 0 ones).
QUEUE_MAX_MESSAGES = 10_000
QUEUE_MAX_BYTES = 64 * 1024 * 1024
# Messages per send to the hub: the hub's relay hands a batch over in one go, so a bound keeps
# an urgent message that arrives meanwhile from waiting behind thousands (a second's burst).
SEND_BATCH = 64

# -- the child ------------------------------------------------------------------------------------


class ChildOutbox:
    """Messages from the network threads to the hub, sent by one thread in batches of at most
    :data:`SEND_BATCH`, the ones ``priority`` marks first: a safety-critical reading never
    waits in the pipe behind a burst of process data that came in before it."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._send_lock = threading.Lock()
        self._urgent: deque[tuple[Any, ...]] = deque()
        self._bulk: deque[tuple[Any, ...]] = deque()
        self._bytes = 0
        self._ready = threading.Condition()  # notified when the queues gain or lose messages
        self._stopping = False
        self._finishing = False  # no more messages come: send what is left, then end

    def send(self, *msg: object) -> None:
        # the hub gone: the main loop sees the pipe closed and exits
        with self._send_lock, contextlib.suppress(BrokenPipeError, EOFError, OSError):
            self._conn.send(msg)

    def put(self, item: tuple[Any, ...], size: int, urgent: bool) -> None:
        with self._ready:
            while (
                len(self._urgent) + len(self._bulk) >= QUEUE_MAX_MESSAGES
                or self._bytes >= QUEUE_MAX_BYTES
            ) and not (self._stopping or self._finishing):
                self._ready.wait(1.0)
            (self._urgent if urgent else self._bulk).append(item)
            self._bytes += size
            self._ready.notify_all()

    def run(self) -> None:
        urgent, bulk = self._urgent, self._bulk
        while True:
            with self._ready:
                while not urgent and not bulk and not (self._stopping or self._finishing):
                    self._ready.wait(0.5)
                if self._stopping or (self._finishing and not urgent and not bulk):
                    return
                batch: list[tuple[Any, ...]] = []
                while urgent and len(batch) < SEND_BATCH:
                    batch.append(urgent.popleft())
                while bulk and len(batch) < SEND_BATCH:
                    batch.append(bulk.popleft())
                self._bytes -= sum(len(item[3]) for item in batch)
                self._ready.notify_all()  # room again for waiting network threads
            self.send("msgs", batch)

    def finish(self) -> None:
        """Nothing more comes in: :meth:`run` sends what is queued, then returns."""
        with self._ready:
            self._finishing = True
            self._ready.notify_all()

    def stop(self) -> None:
        """:meth:`run` returns at once; what is queued is not sent."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()


def _child_main(
    conn: Connection,
    configs: dict[str, MqttConfig],
    child_setup: Callable[[str], None] | None,
    priority: Callable[[str, bytes], bool] | None,
    process_name: str = RECEIVER_PROCESS_NAME,
) -> None:
    """The child: one MqttIngest per session config, relaying to the hub until told to stop or
    the hub's end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the hub's: it stops us
    if child_setup is not None:
        child_setup(process_name)
    outbox = ChildOutbox(conn)
    pending: dict[int, InboundMessage] = {}  # QoS 1 messages handed over, not acked yet
    ids = itertools.count(1)

    def handler_of(name: str) -> Callable[[InboundMessage], None]:
        def handler(m: InboundMessage) -> None:
            key = next(ids)
            if m.qos:
                pending[key] = m
            item = (name, key, m.topic, m.payload, m.received_ms, m.redelivered, m.qos, m.retained)
            urgent = False
            if priority is not None and not m.retained:
                with contextlib.suppress(Exception):  # never at the cost of the network thread
                    urgent = priority(m.topic, m.payload)
            outbox.put(item, len(m.payload), urgent)

        return handler

    def listener_of(name: str) -> ConnectionListener:
        return lambda up, detail: outbox.send("conn", name, up, detail)

    sessions = {name: MqttIngest(c, on_connection=listener_of(name)) for name, c in configs.items()}
    sender = threading.Thread(target=outbox.run, name="mqtt-receiver-out", daemon=True)
    sender.start()
    for name, session in sessions.items():
        session.start(handler_of(name))
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break  # the hub is gone
            if msg == "stop":
                break
            for name, key in msg[1]:  # ("acks", [(session, id), ...])
                message = pending.pop(key, None)
                if message is not None:
                    sessions[name].ack(message)
    finally:
        # A clean stop hands over what was read before the sessions closed (the hub processes
        # it; its acks are skipped, so the broker delivers it again next time): nothing read
        # is left behind in this process. With the hub gone the sends fail at once.
        for session in sessions.values():
            session.stop()
        outbox.finish()
        sender.join(10)
        outbox.stop()


# -- the hub's side -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteToken:
    """What a message relayed by the child carries: which session and child it came from."""

    owner: RemoteSession
    generation: int
    key: int
    qos: int


class ReceiverProcess:
    """The child that runs ``configs`` (persistent sessions); :meth:`session` gives the proxy
    that stands for one of them in :class:`MqttSessions`."""

    def __init__(
        self,
        configs: dict[str, MqttConfig],
        *,
        child_setup: Callable[[str], None] | None = None,
        priority: Callable[[str, bytes], bool] | None = None,
        process_name: str = RECEIVER_PROCESS_NAME,
        label: str = "receiver",
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 15.0,
    ) -> None:
        """``child_setup(name)`` runs first in the child, given ``process_name``; ``label``
        names the child in the hub's logs; ``priority(topic, payload)``, True for a message to
        send the hub ahead of others (both picklable)."""
        for config in configs.values():
            config.validate()
        self.configs = configs
        self._sessions = {name: RemoteSession(self, name, c) for name, c in configs.items()}
        self._handler: Callable[[InboundMessage], None] | None = None
        self._conn: Connection | None = None  # the running child's, for the acks
        self.generation = 0  # the running child's: acks of an earlier one are skipped
        self.acks_skipped = 0
        self._acks: list[tuple[str, int]] = []
        self._acks_ready = threading.Condition()
        self._stopped = False
        self._ack_thread: threading.Thread | None = None
        self.process_name = process_name
        self._child = ChildSupervisor(
            label,
            _child_main,
            (configs, child_setup, priority, process_name),
            self._relay_until_closed,
            on_spawn=self._spawned,
            on_exit=self._exited,
            min_backoff_s=min_backoff_s,
            max_backoff_s=max_backoff_s,
            stop_timeout_s=10.0,
        )

    def session(self, name: str, listener: ConnectionListener | None = None) -> RemoteSession:
        """The proxy of session ``name``; ``listener`` hears its connection state."""
        proxy = self._sessions[name]
        proxy.listener = listener
        return proxy

    @property
    def pid(self) -> int | None:
        return self._child.pid

    @property
    def restarts(self) -> int:
        return self._child.restarts

    def start(self, handler: Callable[[InboundMessage], None]) -> None:
        if self._ack_thread is not None and self._ack_thread.is_alive():
            return
        self._handler = handler
        self._stopped = False
        self._child.start()
        self._ack_thread = threading.Thread(target=self._send_acks, name="mqtt-acks", daemon=True)
        self._ack_thread.start()

    def ack(self, session: RemoteSession, token: RemoteToken) -> None:
        with self._acks_ready:
            session.unacked = max(0, session.unacked - 1)
            if token.generation != self.generation:
                self.acks_skipped += 1  # that child is gone: the broker delivers it again
                return
            self._acks.append((session.name, token.key))
            self._acks_ready.notify()

    def request_stop(self) -> None:
        """Tell the child to stop, without waiting for it (:meth:`stop` waits)."""
        self._child.request_stop()

    def stop(self) -> None:
        """Stop the child (it hands over what it had read first); once for all sessions."""
        with self._acks_ready:
            if self._stopped:
                return
            self._stopped = True
            self._acks_ready.notify()
        self._child.stop()
        if self._ack_thread is not None:
            self._ack_thread.join(5)
        for s in self._sessions.values():
            s.set_state(False, "stopped", notify=False)

    # -- the child's life -------------------------------------------------------------------
    def _send_acks(self) -> None:
        while not self._stopped:
            with self._acks_ready:
                while not self._acks and not self._stopped:
                    self._acks_ready.wait(0.5)
                batch, self._acks = self._acks, []
                conn = self._conn
            if batch and conn is not None:
                with contextlib.suppress(BrokenPipeError, EOFError, OSError):
                    conn.send(("acks", batch))

    def _spawned(self, conn: Connection, generation: int) -> None:
        with self._acks_ready:
            self.generation = generation
            self._acks = []  # an earlier child's: skipped, the broker delivers them again
            self._conn = conn

    def _exited(self) -> None:
        with self._acks_ready:
            for s in self._sessions.values():
                s.unacked = 0  # their acks are skipped; the broker delivers them again
        for s in self._sessions.values():
            s.set_state(False, "mqtt receiver process exited")

    def _relay_until_closed(self, conn: Connection, generation: int) -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            if msg[0] == "msgs":
                self._hand_over(msg[1], generation)
            elif msg[0] == "conn":
                self._sessions[msg[1]].set_state(bool(msg[2]), str(msg[3]))

    def _hand_over(self, batch: list[tuple[Any, ...]], generation: int) -> None:
        sessions, handler = self._sessions, self._handler
        with self._acks_ready:
            for item in batch:
                if item[6]:  # QoS 1: unacknowledged until the hub acks it
                    sessions[item[0]].unacked += 1
        for name, key, topic, payload, received_ms, redelivered, qos, retained in batch:
            if handler is None:
                continue
            try:
                handler(
                    InboundMessage(
                        topic=topic,
                        payload=payload,
                        received_ms=received_ms,
                        token=RemoteToken(sessions[name], generation, key, qos),
                        redelivered=redelivered,
                        qos=qos,
                        retained=retained,
                    )
                )
            except Exception:  # a handler bug costs this message, not the relay
                log.exception("mqtt: a relayed message could not be handed over")


class RemoteSession:
    """One session of the child, where :class:`MqttSessions` expects an :class:`MqttIngest`."""

    def __init__(self, process: ReceiverProcess, name: str, config: MqttConfig) -> None:
        self.process = process
        self.name = name
        self.config = config
        self.unacked = 0  # QoS 1 messages handed to the hub and not acknowledged yet
        self.listener: ConnectionListener | None = None
        self._connected = threading.Event()

    def set_state(self, up: bool, detail: str, *, notify: bool = True) -> None:
        if up:
            self._connected.set()
        else:
            self._connected.clear()
        if notify and self.listener is not None:
            self.listener(up, detail)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self, handler: Callable[[InboundMessage], None]) -> None:
        self.process.start(handler)

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def ack(self, message: InboundMessage) -> None:
        token = message.token
        if isinstance(token, RemoteToken) and token.qos:
            self.process.ack(self, token)

    def request_stop(self) -> None:
        self.process.request_stop()

    def stop(self) -> None:
        self.process.stop()
