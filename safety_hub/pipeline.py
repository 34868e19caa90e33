"""The ingest pipeline: decode → spool (durable) → ack → live table and listeners; and the
sink worker that moves spooled batches into storage.

Threads: the transport's network thread only enqueues; one ingest worker decodes, spools
with a group commit and acknowledges; one sink worker drains the spool. The hand-over queue
is bounded by the broker's receive maximum (the broker sends no more unacknowledged QoS 1
messages than that), so a full spool holds back acknowledgements and thereby the broker:
back-pressure, never a silent drop.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from safety_hub.clock import Clock
from safety_hub.errors import SinkError
from safety_hub.lineproto import READING_MEASUREMENT, series_prefix
from safety_hub.live import LiveTable
from safety_hub.metrics import HubMetrics
from safety_hub.ports import InboundMessage, LineSink, MessageSource
from safety_hub.spool import Spool, SpoolBatch
from safety_hub.system_alarms import SystemAlarms
from safety_hub.telemetry import (
    DecodedMessage,
    Reading,
    TelemetryDecoder,
    enterprise_of_status_topic,
    rejected_topic,
)

log = logging.getLogger("safety_hub.pipeline")

ReadingListener = Callable[[list[Reading]], None]
StatusListener = Callable[[str, bytes, int], None]


class TagChain(Protocol):
    """What the pipeline needs of a registry tag: its identifier chain."""

    @property
    def park(self) -> str: ...

    @property
    def enterprise(self) -> str: ...

    @property
    def hazard_source(self) -> str: ...

    @property
    def unit(self) -> str: ...

    @property
    def equipment(self) -> str: ...

    @property
    def tag(self) -> str: ...

    @property
    def kind(self) -> str: ...


def build_prefixes(tags: Mapping[tuple[str, str], TagChain]) -> dict[tuple[str, str], str]:
    """Line-protocol series prefix of every tag, computed once so per-reading work is small."""
    out: dict[tuple[str, str], str] = {}
    for key, info in tags.items():
        out[key] = series_prefix(
            READING_MEASUREMENT,
            {
                "park": info.park,
                "enterprise": info.enterprise,
                "hazard_source": info.hazard_source,
                "unit": info.unit,
                "equipment": info.equipment,
                "tag": info.tag,
                "kind": info.kind,
            },
        )
    return out


def encode_lines(readings: Iterable[Reading], prefixes: Mapping[tuple[str, str], str]) -> str:
    # The decoder hands over floats already, so repr() is the exact, round-tripping form.
    return "\n".join(
        f'{prefixes[(enterprise, tag)]}value={value!r},quality="{quality}" {ts_ms}'
        for enterprise, tag, ts_ms, value, quality in readings
    )


@dataclass(frozen=True, slots=True)
class _Decoded:
    message: InboundMessage
    decoded: DecodedMessage
    lines: str
    is_status: bool = False


class IngestWorker:
    """Decodes, spools and acknowledges; then updates the live table and listeners."""

    def __init__(
        self,
        *,
        decoder: TelemetryDecoder,
        prefixes: Mapping[tuple[str, str], str],
        spool: Spool,
        live: LiveTable,
        metrics: HubMetrics,
        system_alarms: SystemAlarms,
        clock: Clock,
        max_batch_messages: int = 2000,
        on_status: StatusListener | None = None,
    ) -> None:
        self._on_status = on_status
        self._decoder = decoder
        self._prefixes = prefixes
        self._spool = spool
        self._live = live
        self._metrics = metrics
        self._alarms = system_alarms
        self._clock = clock
        self._max_batch = max_batch_messages
        self._queue: queue.SimpleQueue[InboundMessage | None] = queue.SimpleQueue()
        self._listeners: list[ReadingListener] = []
        self._source: MessageSource | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.processed_messages = 0

    def add_listener(self, listener: ReadingListener) -> None:
        self._listeners.append(listener)

    def attach(self, source: MessageSource) -> None:
        self._source = source

    def submit(self, message: InboundMessage) -> None:
        """Called on the transport's thread: hand over and return at once."""
        self._queue.put(message)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Process what was handed over, then stop."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch: list[InboundMessage] = []
            stop = first is None
            if first is not None:
                batch.append(first)
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    continue
                batch.append(nxt)
            if batch:
                self._process_until_spooled(batch)
            if stop and self._stopping.is_set():
                return

    def _process_until_spooled(self, batch: list[InboundMessage]) -> None:
        """Retry a batch the spool could not take (disk full, I/O error): it is never dropped.

        Its messages stay unacknowledged meanwhile, so the broker keeps them as well.
        """
        delay = 0.1
        while True:
            try:
                self.process(batch)
            except Exception as exc:
                log.exception("ingest: could not spool a batch of %d messages", len(batch))
                self._alarms.set("spool_error", True, f"spool write failed: {exc!r}")
                if self._stopping.wait(delay):
                    return  # unacked: the broker redelivers after the restart
                delay = min(5.0, delay * 2)
                continue
            if delay > 0.1:
                self._alarms.set("spool_error", False, "spool writes succeed again")
            return

    def process(self, batch: list[InboundMessage]) -> None:
        """Decode, spool durably (one commit), ack, then fan out. Public for in-memory tests."""
        decoded: list[_Decoded] = []
        for message in batch:
            status_of = enterprise_of_status_topic(message.topic)
            if status_of is not None:
                # Gateway status travels in order with the telemetry, acked like it.
                if self._on_status is not None:
                    self._on_status(status_of, message.payload, message.received_ms)
                decoded.append(_Decoded(message, DecodedMessage(status_of, None), "", True))
                continue
            result = self._decoder.decode(message.topic, message.payload)
            lines = encode_lines(result.readings, self._prefixes) if result.readings else ""
            decoded.append(_Decoded(message, result, lines))
        self._wait_for_room()
        now = self._clock.now_ms()
        self._spool.append([(d.lines, len(d.decoded.readings)) for d in decoded], now)
        # Listeners (the rule engine) see the readings before the ack: a hub killed in between
        # gets them again, and the engine's late-reading policy raises nothing twice.
        self._fan_out(decoded, now)
        source = self._source
        if source is not None:
            for d in decoded:
                source.ack(d.message)
        self.processed_messages += len(batch)
        self._account(decoded, now)

    def _fan_out(self, decoded: list[_Decoded], now: int) -> None:
        all_readings = [r for d in decoded for r in d.decoded.readings]
        if not all_readings:
            return
        self._live.update(all_readings, now)
        for listener in self._listeners:
            try:
                listener(all_readings)
            except Exception:
                log.exception("ingest: reading listener %r failed", listener)

    def _wait_for_room(self) -> None:
        if self._spool.has_room():
            return
        depth = self._spool.depth()
        self._metrics.spool_full.set(1)
        self._alarms.set(
            "spool_full",
            True,
            f"spool full ({depth.readings} readings, {depth.bytes} bytes): "
            "ingest holds back acknowledgements until the database catches up",
        )
        while not self._spool.wait_for_room(1.0):
            pass
        self._metrics.spool_full.set(0)
        self._alarms.set("spool_full", False, "spool has room again")

    def _account(self, decoded: list[_Decoded], now: int) -> None:
        m = self._metrics
        for d in decoded:
            result = d.decoded
            if d.is_status:
                continue
            m.messages_received.inc()
            ent = result.enterprise or "?"
            accepted = len(result.readings)
            whole = [r for r in result.rejections if r.index is None]
            per_reading = len(result.rejections) - len(whole)
            m.readings_received.labels(ent).inc(max(result.total, accepted + per_reading))
            if accepted:
                m.readings_accepted.labels(ent).inc(accepted)
            for rej in result.rejections:
                if rej.index is None:
                    m.messages_rejected.labels(ent, rej.reason.value).inc()
                else:
                    m.readings_rejected.labels(ent, rej.reason.value).inc()
            if result.rejections:
                self._report(d, now)

    def _report(self, d: _Decoded, now: int) -> None:
        result = d.decoded
        rejections = sorted(result.rejections, key=lambda r: -1 if r.index is None else r.index)
        for rej in rejections[:20]:
            log.warning(
                "reading rejected",
                extra={
                    "enterprise": result.enterprise,
                    "topic": d.message.topic,
                    "reason": rej.reason.value,
                    "index": rej.index,
                    "tag": rej.tag,
                    "detail": rej.detail,
                },
            )
        if not result.enterprise or self._source is None:
            return
        report: dict[str, Any] = {
            "topic": d.message.topic,
            "seq": result.seq,
            "received_ts": d.message.received_ms,
            "reported_ts": now,
            "total": result.total,
            "accepted": len(result.readings),
            "rejected": [r.as_json() for r in rejections],
        }
        try:
            self._source.publish(rejected_topic(result.enterprise), msgspec.json.encode(report))
        except Exception:
            self._metrics.rejection_reports_failed.inc()
            log.exception("ingest: could not publish rejection report")


class SinkWorker:
    """Moves spooled batches into storage; retries outages with backoff, dead-letters bad data."""

    def __init__(
        self,
        *,
        spool: Spool,
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
        self._thread = threading.Thread(target=self._run, name="sink", daemon=True)
        self._thread.start()

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Try to drain the spool for up to ``drain_timeout`` s, then stop (the rest stays spooled)."""
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
        depth = self._spool.depth()
        m = self._metrics
        m.spool_readings.set(depth.readings)
        m.spool_batches.set(depth.batches)
        m.spool_bytes.set(depth.bytes)
        m.dead_letters.set(depth.dead_letters)
        age = 0.0
        if depth.oldest_ms is not None:
            age = max(0.0, (self._clock.now_ms() - depth.oldest_ms) / 1000)
        m.spool_age.set(age)
