"""The catch-all session in a child process of its own.

The catch-all (``<id>/_unregistered``, sessions.py) subscribes to every enterprise's topics so
that an unregistered enterprise's messages are still rejected and reported. It therefore
receives every message of the park a second time, and drops at once what a registered session
receives. Reading and parsing those copies (paho, in Python) in the hub's own interpreter took
turns on the interpreter lock with the ingest worker: about 12 % of the hub's CPU per reading,
and, in a burst of process data, the time a gas reading's alarm waited for the lock
(docs/benchmarks.md, "The catch-all in its own process"). So the hub runs the catch-all in a
child process (``SAFETY_HUB_MQTT_PROCESS``, on by default; the persistent sessions run in
another, receiver.py): the child keeps the
connection, drops the registered enterprises' copies there, and sends the hub only what is left
(the messages of unregistered enterprises, rare) and its connection state, over a pipe. The
pipe is bounded by the operating system's buffer: a hub that reads slower than unregistered
messages come makes the child's network thread wait, paho stop reading, and TCP hold the broker
back, which drops QoS 0 messages past its queue limit (as it would for the session in the hub).

Nothing durable is lost with the child: the catch-all is a clean QoS 0 session, as before. The
hub supervises it: a child that dies is started again after a backoff, and meanwhile the
session counts as disconnected (the hub's ``broker_disconnected`` alarm says so). A child whose
hub died sees its pipe close and exits.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from connectors.mqtt.child import ChildSupervisor
from connectors.mqtt.ingest import ConnectionListener, MqttConfig, MqttIngest
from safety_hub.ports import InboundMessage

log = logging.getLogger("connectors.mqtt.catch_all")

CATCH_ALL_PROCESS_NAME = "safety-hub-all"
"""the child's name, as ``top`` shows it"""


def _child_main(
    conn: Connection, config: MqttConfig, child_setup: Callable[[str], None] | None
) -> None:
    """The child: one MqttIngest on the catch-all config, relaying to the hub until told to
    stop or the hub's end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the hub's: it stops us
    if child_setup is not None:
        child_setup(CATCH_ALL_PROCESS_NAME)
    lock = threading.Lock()

    def send(*msg: object) -> None:
        # the hub gone: the main loop below sees the pipe closed and exits
        with lock, contextlib.suppress(BrokenPipeError, EOFError, OSError):
            conn.send(msg)

    def handler(m: InboundMessage) -> None:
        send("msg", m.topic, m.payload, m.received_ms, m.retained, m.redelivered)

    ingest = MqttIngest(config, on_connection=lambda up, detail: send("conn", up, detail))
    ingest.start(handler)
    copies = 0
    try:
        while True:
            try:
                if conn.poll(0.5) and conn.recv() == "stop":
                    break
            except (EOFError, OSError):
                break  # the hub is gone
            if ingest.ignored != copies:  # the registered enterprises' copies, dropped here
                copies = ingest.ignored
                send("copies", copies)
    finally:
        ingest.stop()


class CatchAllProcess:
    """A clean QoS 0 session run by a child process; for :class:`MqttSessions` it stands where
    an :class:`MqttIngest` would (``config``, ``connected``, ``unacked``, ``ignored``,
    ``start``, ``wait_connected``, ``ack``, ``stop``)."""

    def __init__(
        self,
        config: MqttConfig,
        on_connection: ConnectionListener | None = None,
        *,
        child_setup: Callable[[str], None] | None = None,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 15.0,
    ) -> None:
        config.validate()
        if config.persistent or config.subscribe_qos != 0:
            raise ValueError("catch-all process: only a clean QoS 0 session (nothing to ack)")
        self.config = config
        self.unacked = 0  # QoS 0: never anything to acknowledge
        self._copies_before = 0  # of children that have exited
        self._copies_now = 0  # of the running child
        self._on_connection = on_connection
        self._connected = threading.Event()
        self._handler: Callable[[InboundMessage], None] | None = None
        self._child = ChildSupervisor(
            "catch-all",
            _child_main,
            (config, child_setup),
            lambda conn, _generation: self._relay_until_closed(conn),
            on_exit=self._exited,
            min_backoff_s=min_backoff_s,
            max_backoff_s=max_backoff_s,
        )

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._child.pid

    @property
    def restarts(self) -> int:
        return self._child.restarts

    @property
    def ignored(self) -> int:
        """The registered enterprises' messages the child received and dropped (as
        :attr:`MqttIngest.ignored`), over all its runs; reported about every 0.5 s."""
        return self._copies_before + self._copies_now

    def start(self, handler: Callable[[InboundMessage], None]) -> None:
        self._handler = handler
        self._child.start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def ack(self, message: InboundMessage) -> None:
        """QoS 0 messages: nothing to acknowledge."""

    def request_stop(self) -> None:
        """Tell the child to stop, without waiting for it (:meth:`stop` waits)."""
        self._child.request_stop()

    def stop(self) -> None:
        self._child.stop()
        self._connected.clear()

    def _relay_until_closed(self, conn: Connection) -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            try:
                self._apply(msg)
            except Exception:  # a handler bug must not stop the relay
                log.exception("mqtt: catch-all message could not be handed over")

    def _apply(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "msg":
            _, topic, payload, received_ms, retained, redelivered = msg
            handler = self._handler
            if handler is not None:
                handler(
                    InboundMessage(
                        topic=topic,
                        payload=payload,
                        received_ms=received_ms,
                        token=None,
                        redelivered=redelivered,
                        qos=0,
                        retained=retained,
                    )
                )
        elif kind == "conn":
            self._set_connected(bool(msg[1]), str(msg[2]))
        elif kind == "copies":
            self._copies_now = int(msg[1])

    def _exited(self) -> None:
        self._copies_before += self._copies_now
        self._copies_now = 0
        self._set_connected(False, "catch-all process exited")

    def _set_connected(self, up: bool, detail: str) -> None:
        if up:
            self._connected.set()
        else:
            self._connected.clear()
        if self._on_connection is not None:
            self._on_connection(up, detail)
