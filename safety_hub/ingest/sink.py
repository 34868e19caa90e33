"""The sink worker: moves spooled batches into storage (InfluxDB, or the embedded store).

It reads the oldest batches of the spool, writes them, and removes them only once storage took
them. An outage is retried with backoff (``storage_unavailable`` system alarm); data storage
refuses is isolated batch by batch and moved to the spool's dead-letter table, never dropped.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from safety_hub.clock import Clock
from safety_hub.errors import SinkError
from safety_hub.ingest.spool import SpoolBatch, SpoolStore
from safety_hub.metrics import HubMetrics
from safety_hub.ports import LineSink
from safety_hub.system_alarms import SystemAlarms

# the name it had when sink and ingest shared a module: log filters select it
log = logging.getLogger("safety_hub.pipeline")


class SinkWorker:
    """Moves spooled batches into storage; retries outages with backoff, dead-letters bad data."""

    def __init__(
        self,
        *,
        spool: SpoolStore,
        sink: LineSink,
        metrics: HubMetrics,
        system_alarms: SystemAlarms,
        clock: Clock,
        batch_readings: int = 10_000,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 15.0,
    ) -> None:
        self._spool = spool
        self._sink = sink
        self._metrics = metrics
        self._alarms = system_alarms
        self._clock = clock
        self._batch_readings = batch_readings
        self._min_backoff = min_backoff_s
        self._max_backoff = max_backoff_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._batch_no = 0
        self.last_error: str | None = None

    def start(self) -> None:
        """Start writing the spool to the sink (again after :meth:`stop`: a node of a redundant
        pair drains the shared spool only while it is active)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="sink", daemon=True)
        self._thread.start()

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Try to drain the spool for up to ``drain_timeout`` s, then stop (the rest stays spooled)."""
        if self._thread is None or not self._thread.is_alive():
            self._stopping.set()
            return
        deadline = time.monotonic() + drain_timeout
        while (
            self._spool.depth().batches and time.monotonic() < deadline and self.last_error is None
        ):
            time.sleep(0.05)
        self._stopping.set()
        self._spool.wake()
        if self._thread is not None:
            self._thread.join(max(1.0, deadline - time.monotonic()))

    def _run(self) -> None:
        backoff = self._min_backoff
        while not self._stopping.is_set():
            self.update_gauges()
            if not self._spool.wait_for_data(0.5) or self._stopping.is_set():
                continue
            batches = self._spool.peek(self._batch_readings)
            if not batches:
                continue
            try:
                self._write(batches)
            except SinkError as exc:
                self._metrics.sink_up.set(0)
                self._metrics.sink_errors.labels("outage").inc()
                self.last_error = str(exc)
                self._alarms.set("storage_unavailable", True, str(exc))
                log.warning(
                    "sink write failed; will retry",
                    extra={"sink": self._sink.name, "error": str(exc), "retry_in_s": backoff},
                )
                self._stopping.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(self._max_backoff, backoff * 2)
                continue
            except Exception as exc:  # a bug in a sink must not kill the worker
                self._metrics.sink_errors.labels("outage").inc()
                self.last_error = f"{self._sink.name}: unexpected {exc!r}"
                log.exception("sink: unexpected error; will retry")
                self._stopping.wait(backoff)
                backoff = min(self._max_backoff, backoff * 2)
                continue
            if self.last_error is not None:
                log.info("sink recovered", extra={"sink": self._sink.name})
                self._alarms.set("storage_unavailable", False, "writes succeed again")
            self.last_error = None
            self._metrics.sink_up.set(1)
            backoff = self._min_backoff
        self.update_gauges()

    def _write(self, batches: list[SpoolBatch]) -> None:
        """Write ``batches``; bad data is isolated batch by batch and dead-lettered."""
        self._batch_no += 1
        try:
            self._timed_write(batches)
        except SinkError as exc:
            if exc.retryable:
                raise
            self._metrics.sink_errors.labels("bad_data").inc()
            if len(batches) > 1:
                # Find the refused rows: write each on its own; the good ones go through.
                for one in batches:
                    self._write([one])
                return
            log.error(
                "sink refused a batch; moved to the dead-letter table",
                extra={"sink": self._sink.name, "batch_id": batches[0].id, "error": str(exc)},
            )
            self._spool.dead_letter(batches, str(exc), self._clock.now_ms())
            self._alarms.set(
                "dead_letters",
                True,
                f"{self._spool.depth().dead_letters} spooled batch(es) refused by storage; "
                "see GET /api/v1/system",
            )
            return
        self._spool.remove(batches)
        self._metrics.sink_written.inc(sum(b.n for b in batches))

    def _timed_write(self, batches: list[SpoolBatch]) -> None:
        started = time.perf_counter()
        self._sink.write("\n".join(b.lines for b in batches))
        self._metrics.write_latency.observe(time.perf_counter() - started)

    def update_gauges(self) -> None:
        update_spool_gauges(self._spool, self._metrics, self._clock)


def update_spool_gauges(spool: SpoolStore, metrics: HubMetrics, clock: Clock) -> None:
    """The spool gauges of ``/metrics`` from the spool's counts."""
    depth = spool.depth()
    m = metrics
    m.spool_readings.set(depth.readings)
    m.spool_batches.set(depth.batches)
    m.spool_bytes.set(depth.bytes)
    m.dead_letters.set(depth.dead_letters)
    age = 0.0
    if depth.oldest_ms is not None:
        age = max(0.0, (clock.now_ms() - depth.oldest_ms) / 1000)
    m.spool_age.set(age)
