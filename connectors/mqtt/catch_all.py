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
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

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
    try:
        while True:
            try:
                if conn.poll(0.5) and conn.recv() == "stop":
                    break
            except (EOFError, OSError):
                break  # the hub is gone
    finally:
        ingest.stop()


class CatchAllProcess:
    """A clean QoS 0 session run by a child process; for :class:`MqttSessions` it stands where
    an :class:`MqttIngest` would (``config``, ``connected``, ``unacked``, ``start``,
    ``wait_connected``, ``ack``, ``stop``)."""

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
        self.restarts = 0
        self._on_connection = on_connection
        self._child_setup = child_setup
        self._min_backoff = min_backoff_s
        self._max_backoff = max_backoff_s
        self._ctx = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._handler: Callable[[InboundMessage], None] | None = None
        self._thread: threading.Thread | None = None
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    def start(self, handler: Callable[[InboundMessage], None]) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._handler = handler
        self._stopping.clear()
        self._thread = threading.Thread(target=self._supervise, name="mqtt-catch-all", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def ack(self, message: InboundMessage) -> None:
        """QoS 0 messages: nothing to acknowledge."""

    def stop(self) -> None:
        self._stopping.set()
        conn, proc = self._conn, self._proc
        if conn is not None:
            with contextlib.suppress(BrokenPipeError, EOFError, OSError):
                conn.send("stop")
        if proc is not None:
            proc.join(5)
            if proc.is_alive():
                log.warning("catch-all process did not stop; killing it", extra={"pid": proc.pid})
                proc.kill()
                proc.join(5)
        if self._thread is not None:
            self._thread.join(5)
        self._connected.clear()

    # -- supervision ------------------------------------------------------------------------
    def _spawn(self) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        ours, theirs = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_child_main,
            args=(theirs, self.config, self._child_setup),
            name="safety-hub-mqtt-catch-all",
            daemon=True,
        )
        proc.start()
        theirs.close()
        return proc, ours

    def _supervise(self) -> None:
        backoff = self._min_backoff
        while not self._stopping.is_set():
            try:
                proc, conn = self._spawn()
            except Exception:  # e.g. out of processes: try again, keep the supervisor
                log.exception("mqtt: cannot start the catch-all process; trying again")
                self._stopping.wait(backoff)
                backoff = min(self._max_backoff, backoff * 2)
                continue
            self._proc, self._conn = proc, conn
            started = time.monotonic()
            self._relay_until_closed(conn)
            proc.join(5)
            conn.close()
            self._set_connected(False, "catch-all process exited")
            if self._stopping.is_set():
                break
            self.restarts += 1
            log.error(
                "mqtt: catch-all process exited; restarting",
                extra={"exitcode": proc.exitcode, "restart_in_s": backoff},
            )
            if time.monotonic() - started > 60:
                backoff = self._min_backoff  # it ran a while: not a crash loop
            self._stopping.wait(backoff)
            backoff = min(self._max_backoff, backoff * 2)

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

    def _set_connected(self, up: bool, detail: str) -> None:
        if up:
            self._connected.set()
        else:
            self._connected.clear()
        if self._on_connection is not None:
            self._on_connection(up, detail)
