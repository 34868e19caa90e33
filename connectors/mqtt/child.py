"""Supervising a child process of the hub that holds MQTT sessions (receiver.py, catch_all.py).

The child is started with ``spawn`` (no fork of a threaded process) and a duplex pipe. The
supervisor runs ``relay(conn, generation)`` until the child's end of the pipe closes, then
starts it again after a backoff that doubles up to ``max_backoff_s`` (and starts over when the
child had run for a minute: not a crash loop). :meth:`stop` sends ``"stop"``, waits for the
child, and kills it if it does not end.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger("connectors.mqtt")


class ChildSupervisor:
    def __init__(
        self,
        label: str,
        target: Callable[..., None],
        args: Sequence[Any],
        relay: Callable[[Connection, int], None],
        *,
        on_spawn: Callable[[Connection, int], None] | None = None,
        on_exit: Callable[[], None] | None = None,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 15.0,
        stop_timeout_s: float = 5.0,
    ) -> None:
        """``target(child_conn, *args)`` runs in the child; ``on_spawn(conn, generation)``
        when a child started, ``relay`` while it runs, ``on_exit()`` once it ended."""
        self.label = label
        self._target, self._args = target, tuple(args)
        self._relay, self._on_spawn, self._on_exit = relay, on_spawn, on_exit
        self._min_backoff, self._max_backoff = min_backoff_s, max_backoff_s
        self._stop_timeout = stop_timeout_s
        self._ctx = multiprocessing.get_context("spawn")
        self._stopping = threading.Event()
        self._stop_sent = False  # "stop" went to the running child
        self._thread: threading.Thread | None = None
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self.generation = 0  # one more for every child started
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._supervise, name=f"mqtt-{self.label}", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Tell the child to stop, without waiting for it (:meth:`stop` waits)."""
        self._stopping.set()
        conn = self._conn
        if conn is not None and not self._stop_sent:
            self._stop_sent = True
            with contextlib.suppress(BrokenPipeError, EOFError, OSError):
                conn.send("stop")

    def stop(self) -> None:
        self.request_stop()
        proc = self._proc
        if proc is not None:
            proc.join(self._stop_timeout)
            if proc.is_alive():
                log.warning(
                    f"mqtt: {self.label} process did not stop; killing it",
                    extra={"pid": proc.pid},
                )
                proc.kill()
                proc.join(5)
        if self._thread is not None:
            self._thread.join(5)

    def _spawn(self) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        ours, theirs = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=self._target,
            args=(theirs, *self._args),
            name=f"safety-hub-mqtt-{self.label}",
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
                log.exception(f"mqtt: cannot start the {self.label} process; trying again")
                self._stopping.wait(backoff)
                backoff = min(self._max_backoff, backoff * 2)
                continue
            self.generation += 1
            if self._on_spawn is not None:
                self._on_spawn(conn, self.generation)
            self._proc, self._conn = proc, conn
            self._stop_sent = False
            if self._stopping.is_set():  # asked to stop while this one was starting
                self.request_stop()
            started = time.monotonic()
            self._relay(conn, self.generation)
            proc.join(5)
            conn.close()
            if self._on_exit is not None:
                self._on_exit()
            if self._stopping.is_set():
                break
            self.restarts += 1
            log.error(
                f"mqtt: {self.label} process exited; restarting",
                extra={"exitcode": proc.exitcode, "restart_in_s": backoff},
            )
            if time.monotonic() - started > 60:
                backoff = self._min_backoff  # it ran a while: not a crash loop
            self._stopping.wait(backoff)
            backoff = min(self._max_backoff, backoff * 2)
