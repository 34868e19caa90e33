"""The sink in a child process (``SAFETY_HUB_SINK_PROCESS=on``, SQLite state and InfluxDB only).

The child opens the same spool file (SQLite in WAL mode: ingest appends in the hub's process,
the child reads, writes to InfluxDB and deletes in its own transactions; SQLite's file locks
order the two writers). It runs the same :class:`SinkWorker` as the in-process sink, with its
metrics, system alarms and spool deletions relayed to the hub over a pipe:

- every deletion is reported with exactly what it removed (batches, readings, bytes, dead
  letters, the oldest batch left), so the hub's spool counts -- back-pressure, ``/metrics``,
  ``/readyz`` -- stay right without re-counting the file;
- counter increments, ``sink_up``, write latencies, system alarms and the last error are
  applied to the hub's own metrics and alarms, so ``/metrics`` and ``/readyz`` read as before.

The hub supervises the child: a child that dies is started again after a backoff (counted as
``safety_hub_sink_errors{kind="crash"}``; the rows it had not deleted are written again, as
after a kill -9 of the whole hub); stop drains, then asks the child to stop, then kills it. A
child whose hub died sees its pipe close and exits.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal, cast

from safety_hub.clock import Clock, WallClock
from safety_hub.ingest.sink import SinkWorker, update_spool_gauges
from safety_hub.ingest.spool import Spool, SpoolBatch, SpoolDepth
from safety_hub.metrics import HubMetrics
from safety_hub.runtime.interpreter import SINK_PROCESS_NAME, child_setup
from safety_hub.runtime.storage import build_storage
from safety_hub.settings import Settings
from safety_hub.system_alarms import SystemAlarms

log = logging.getLogger("safety_hub.pipeline")

Message = tuple[Any, ...]


# -- the child ------------------------------------------------------------------------------------


class Relay:
    """Sends messages to the hub; the worker thread and the child's main thread share it."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, *msg: object) -> None:
        # the hub gone: the main thread sees the pipe closed and exits
        with self._lock, contextlib.suppress(BrokenPipeError, EOFError, OSError):
            self._conn.send(msg)


class _Counter:
    def __init__(self, relay: Relay, name: str, label: str | None = None) -> None:
        self._relay, self._name, self._label = relay, name, label

    def inc(self, amount: float = 1) -> None:
        self._relay.send("inc", self._name, self._label, amount)

    def labels(self, label: str) -> _Counter:
        return _Counter(self._relay, self._name, label)


class _Gauge:
    def __init__(self, relay: Relay | None, name: str) -> None:
        self._relay, self._name = relay, name

    def set(self, value: float) -> None:
        if self._relay is not None:  # the spool gauges: the hub sets them from its own counts
            self._relay.send("set", self._name, value)


class _Histogram:
    def __init__(self, relay: Relay, name: str) -> None:
        self._relay, self._name = relay, name

    def observe(self, value: float) -> None:
        self._relay.send("observe", self._name, value)


class _RelayMetrics:
    """The part of HubMetrics the SinkWorker touches, relayed to the hub."""

    def __init__(self, relay: Relay) -> None:
        self.sink_written = _Counter(relay, "sink_written")
        self.sink_errors = _Counter(relay, "sink_errors")
        self.sink_up = _Gauge(relay, "sink_up")
        self.write_latency = _Histogram(relay, "write_latency")
        for name in ("spool_readings", "spool_batches", "spool_bytes", "dead_letters", "spool_age"):
            setattr(self, name, _Gauge(None, name))


class _RelayAlarms:
    def __init__(self, relay: Relay) -> None:
        self._relay = relay

    def set(self, name: str, active: bool, message: str) -> None:
        self._relay.send("alarm", name, active, message)


class ChildSpool:
    """The spool file as the child sees it: it never appends, so the difference of its own
    counts before and after a deletion is exactly what that deletion removed."""

    def __init__(
        self, spool: Spool, relay: Relay, poll_s: float = 0.005, linger_s: float = 0.02
    ) -> None:
        self._spool = spool
        self._relay = relay
        self._poll_s = poll_s
        self._linger_s = linger_s
        self._last_full = False

    def wait_for_data(self, timeout: float) -> bool:
        # The hub appends in another process: look into the file, more rarely while it is idle.
        deadline = time.monotonic() + timeout
        pause = self._poll_s
        while True:
            if self._spool.peek(1):
                if not self._last_full:
                    # Not a backlog: let more arrive, so that one write and one delete commit
                    # carry them (a few large writes cost less than many small ones).
                    time.sleep(self._linger_s)
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(0.05, pause * 2)

    def peek(self, max_readings: int, after_id: int = 0) -> list[SpoolBatch]:
        batches = self._spool.peek(max_readings, after_id)
        self._last_full = sum(b.n for b in batches) * 2 >= max_readings
        return batches

    def wake(self) -> None:
        self._spool.wake()

    def remove(self, batches: Sequence[SpoolBatch]) -> None:
        self._relayed(lambda: self._spool.remove(batches))

    def dead_letter(self, batches: Sequence[SpoolBatch], error: str, failed_ms: int) -> None:
        self._relayed(lambda: self._spool.dead_letter(batches, error, failed_ms))

    def _relayed(self, delete: Any) -> None:
        before = self._spool.depth()
        delete()
        after = self._spool.depth()
        self._relay.send(
            "removed",
            before.batches - after.batches,
            before.readings - after.readings,
            before.bytes - after.bytes,
            after.dead_letters - before.dead_letters,
            after.oldest_ms,
        )

    def depth(self) -> SpoolDepth:
        return self._spool.depth()


def child_main(
    conn: Connection,
    settings: Settings,
    spool_path: Path,
    sync: Literal["full", "normal"],
) -> None:
    """The child process: the sink worker on the shared spool file until told to stop or the
    hub's end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the hub's to handle: it stops us
    child_setup(
        SINK_PROCESS_NAME,
        level=settings.log_level,
        fmt=settings.log_format,
        secrets=settings.secret_values(),
    )
    relay = Relay(conn)
    storage = build_storage(settings)
    spool = Spool(spool_path, sync=sync)
    worker = SinkWorker(
        spool=cast(Spool, ChildSpool(spool, relay)),
        sink=storage.sink,
        metrics=cast(HubMetrics, _RelayMetrics(relay)),
        system_alarms=cast(SystemAlarms, _RelayAlarms(relay)),
        clock=WallClock(),
        batch_readings=settings.sink_batch_readings,
    )
    worker.start()
    relay.send("ready")
    last_error: object = None
    try:
        while True:
            try:
                if conn.poll(0.1) and conn.recv() == "stop":
                    break
            except (EOFError, OSError):
                break  # the hub is gone
            if worker.last_error != last_error:
                last_error = worker.last_error
                relay.send("error", last_error)
    finally:
        worker.stop(drain_timeout=0)
        storage.sink.close()
        spool.close()


# -- the hub's side -------------------------------------------------------------------------------


class SinkProcess:
    """Runs the sink in a child process and keeps the hub's metrics, alarms and spool counts
    as the in-process :class:`SinkWorker` would. Same ``start``/``stop``/``last_error``/
    ``update_gauges`` as the worker, so the hub and the API use either alike."""

    def __init__(
        self,
        *,
        settings: Settings,
        spool: Spool,
        metrics: HubMetrics,
        system_alarms: SystemAlarms,
        clock: Clock,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 15.0,
    ) -> None:
        self._settings = settings
        self._spool = spool
        self._metrics = metrics
        self._alarms = system_alarms
        self._clock = clock
        self._min_backoff = min_backoff_s
        self._max_backoff = max_backoff_s
        self._ctx = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self.last_error: str | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._supervise, name="sink-process", daemon=True)
        self._thread.start()

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Let the child drain for up to ``drain_timeout`` s, ask it to stop, kill it if it
        does not (the rest stays spooled)."""
        deadline = time.monotonic() + drain_timeout
        while (
            self._thread is not None
            and self._thread.is_alive()
            and self._spool.depth().batches > 0
            and time.monotonic() < deadline
            and self.last_error is None
        ):
            time.sleep(0.05)
        self._stopping.set()
        conn, proc = self._conn, self._proc
        if conn is not None:
            with contextlib.suppress(BrokenPipeError, EOFError, OSError):
                conn.send("stop")
        if proc is not None:
            proc.join(max(2.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("sink process did not stop; killing it", extra={"pid": proc.pid})
                proc.kill()
                proc.join(5)
        if self._thread is not None:
            self._thread.join(5)
        self.update_gauges()

    def update_gauges(self) -> None:
        update_spool_gauges(self._spool, self._metrics, self._clock)

    def _spawn(self) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        ours, theirs = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=child_main,
            args=(theirs, self._settings, self._spool.path, self._settings.spool_sync),
            name="safety-hub-sink",
            daemon=True,
        )
        proc.start()
        theirs.close()
        return proc, ours

    def _supervise(self) -> None:
        backoff = self._min_backoff
        while not self._stopping.is_set():
            proc, conn = self._spawn()
            self._proc, self._conn = proc, conn
            started = time.monotonic()
            self._relay_until_closed(conn)
            proc.join(5)
            conn.close()
            if self._stopping.is_set():
                break
            self.restarts += 1
            self._metrics.sink_errors.labels("crash").inc()
            self.last_error = f"sink process exited (code {proc.exitcode}); restarting"
            log.error(
                "sink process exited; restarting",
                extra={"exitcode": proc.exitcode, "restart_in_s": backoff},
            )
            if time.monotonic() - started > 60:
                backoff = self._min_backoff  # it ran a while: not a crash loop
            self._stopping.wait(backoff)
            backoff = min(self._max_backoff, backoff * 2)
        self.update_gauges()

    def _relay_until_closed(self, conn: Connection) -> None:
        while True:
            try:
                if not conn.poll(0.5):
                    self.update_gauges()
                    continue
                msg = conn.recv()
            except (EOFError, OSError):
                return
            self._apply(msg)

    def _apply(self, msg: Message) -> None:
        kind = msg[0]
        m = self._metrics
        if kind == "removed":
            self._spool.note_removed(*msg[1:])
        elif kind == "inc":
            counter = getattr(m, msg[1])
            (counter.labels(msg[2]) if msg[2] is not None else counter).inc(msg[3])
        elif kind == "set":
            getattr(m, msg[1]).set(msg[2])
        elif kind == "observe":
            getattr(m, msg[1]).observe(msg[2])
        elif kind == "alarm":
            self._alarms.set(msg[1], msg[2], msg[3])
        elif kind == "error":
            self.last_error = msg[1]
        elif kind == "ready":
            if self.last_error is not None and self.last_error.startswith("sink process"):
                self.last_error = None
            log.info("sink process started", extra={"pid": self.pid})
