"""The ingest worker: decode → live table and listeners → spool (durable) → ack. The sink
worker that moves spooled batches into storage is :mod:`safety_hub.ingest.sink`.

Threads: the transport's network thread only enqueues; one ingest worker decodes, spools
with a group commit and acknowledges; one sink worker drains the spool. The hand-over queue
is bounded by the broker's receive maximum (the broker sends no more unacknowledged QoS 1
messages than that), so a full spool holds back acknowledgements and thereby the broker:
back-pressure, never a silent drop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from safety_hub.clock import Clock
from safety_hub.errors import DiskFullError
from safety_hub.ingest.decoder import Decoder
from safety_hub.ingest.intake import UNKNOWN_LABEL, IntakeLanes, LogBudget, RateBudget, clip
from safety_hub.ingest.lineproto import LineEncoder
from safety_hub.ingest.lineproto import TagChain as TagChain
from safety_hub.ingest.lineproto import build_prefixes as build_prefixes
from safety_hub.ingest.lineproto import encode_lines as encode_lines
from safety_hub.ingest.live import LiveTable
from safety_hub.ingest.skew import deskew, encode_skewed_lines
from safety_hub.ingest.spool import SpoolStore
from safety_hub.ingest.telemetry import (
    DecodedMessage,
    Reading,
    Rejection,
    RejectReason,
    enterprise_of_status_topic,
    enterprise_of_topic,
    is_critical_topic,
    rejected_topic,
)
from safety_hub.metrics import HubMetrics
from safety_hub.ports import InboundMessage, MessageSource
from safety_hub.system_alarms import SystemAlarms

log = logging.getLogger("safety_hub.pipeline")

ReadingListener = Callable[[list[Reading]], None]
StatusListener = Callable[[str, bytes, int], None]
Settle = Callable[[], None]
Urgency = Callable[[str, bytes], bool]


MAX_REPORTED_REJECTIONS = 100
"""rejections listed in one report; the report's ``rejected_count`` gives them all"""
STUCK_AFTER_S = 30.0
"""one batch taking longer than this makes the hub not ready (``/readyz``)"""
MAX_RETRY_S = 5.0
FAN_OUT_CHUNK = 500
"""readings handed to the listeners at a time; urgent messages are served between chunks"""


class DiskReserve(Protocol):
    """Space kept free in the data directory for the alarm journal (safety_hub.statefile)."""

    @property
    def released(self) -> bool: ...

    @property
    def size_bytes(self) -> int: ...

    def release(self) -> bool: ...

    def restore(self) -> bool: ...

    def free_bytes(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _Decoded:
    message: InboundMessage
    decoded: DecodedMessage
    lines: str
    is_status: bool = False
    shown: list[Reading] | None = None
    """the readings as stored and shown when some were skewed (``ingest/skew.py``)"""


@dataclass(slots=True)
class _Blocked:
    """Why the spool cannot take readings, since when, and when to try again."""

    alarm: str
    reason: str
    since_ms: int
    retry_in_s: float = 0.2


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


class IngestWorker:
    """Decodes, evaluates (live table and listeners), spools and acknowledges.

    Messages arrive in per-enterprise lanes (:class:`~safety_hub.ingest.intake.IntakeLanes`) and are
    taken round-robin. Each message is decoded on its own: whatever the decoder or a status
    listener raises costs that message only (it becomes a rejection), never the batch. Readings
    go to the live table and the listeners (the rule engine) first, then into the spool; a
    message is acknowledged only once its readings are committed. When the spool cannot take
    them (full, disk full, I/O error) the messages are *held*: alarms are still evaluated, the
    messages stay unacknowledged (the broker keeps them) and the worker goes on with new ones
    until the spool takes everything held, in order.
    """

    def __init__(
        self,
        *,
        decoder: Decoder,
        prefixes: Mapping[tuple[str, str], str],
        spool: SpoolStore,
        live: LiveTable,
        metrics: HubMetrics,
        system_alarms: SystemAlarms,
        clock: Clock,
        max_batch_messages: int = 256,
        on_status: StatusListener | None = None,
        enterprises: Collection[str] | None = None,
        qos0_lane_limit: int = 10_000,
        max_held_qos0: int = 10_000,
        disk_reserve: DiskReserve | None = None,
        report_rate_per_s: float = 20.0,
        report_burst: int = 100,
        urgent: Urgency | None = None,
        non_critical: Callable[[str, Iterable[str]], int] | None = None,
    ) -> None:
        """``urgent(topic, payload)``: the messages to serve ahead of others;
        ``non_critical(enterprise, tags)``: how many of a critical topic's tags are not
        safety-critical (counted, not refused)."""
        self._on_status = on_status
        self._urgent = urgent
        self._non_critical = non_critical
        self._serving_urgent = False
        self._decoder = decoder
        self._prefixes = prefixes
        self._lines = LineEncoder(prefixes)
        self._spool = spool
        self._live = live
        self._metrics = metrics
        self._alarms = system_alarms
        self._clock = clock
        self._max_batch = max_batch_messages
        codes = set(enterprises) if enterprises is not None else {e for e, _ in prefixes}
        self._enterprises = frozenset(codes)
        self._lanes = IntakeLanes(
            codes, qos0_limit=qos0_lane_limit, on_qos0_drop=self._count_intake_drop
        )
        metrics.ingest_queued.set_function(self._lanes.depth)
        self._listeners: list[ReadingListener] = []
        self._settlers: list[Settle] = []
        self._source: MessageSource | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._held: list[_Decoded] = []
        self._max_held_qos0 = max_held_qos0
        self._blocked: _Blocked | None = None
        self._reserve = disk_reserve
        self._busy_since: float | None = None
        self._rejection_log = LogBudget(log, "rejection")
        self._failure_log = LogBudget(log, "ingest failure", lines=5)
        self._report_rate = (report_rate_per_s, report_burst)
        self._report_budgets: dict[str, RateBudget] = {}  # keyed by label: bounded
        self.processed_messages = 0

    def add_listener(self, listener: ReadingListener, settle: Settle | None = None) -> None:
        """``listener`` gets the accepted readings, a chunk at a time, before they are spooled;
        ``settle`` is called once a batch's readings were all handed over, before its spool
        commit and acknowledgements (the alarm runtime saves its engine snapshot there)."""
        self._listeners.append(listener)
        if settle is not None:
            self._settlers.append(settle)

    def attach(self, source: MessageSource) -> None:
        self._source = source

    def submit(self, message: InboundMessage) -> None:
        """Called on the transport's thread: triage, hand over and return at once."""
        urgent = self._urgent
        if urgent is not None and not message.retained:
            try:
                is_urgent = urgent(message.topic, message.payload)
            except Exception:  # triage must never cost the transport its thread
                is_urgent = False
            self._lanes.put(message, urgent=is_urgent)
        else:
            self._lanes.put(message)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Process what was handed over, then stop (held messages stay unacknowledged)."""
        self._stopping.set()
        self._lanes.wake()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- state for readiness and the API ---------------------------------------------------
    def problems(self) -> list[str]:
        """Why ingest is not making progress right now (empty: it is)."""
        out: list[str] = []
        blocked = self._blocked
        if blocked is not None:
            out.append(
                f"{blocked.reason}; {len(self._held)} message(s) held unacknowledged since "
                f"{_iso(blocked.since_ms)} (alarms are still evaluated)"
            )
        busy = self._busy_since
        if busy is not None and time.monotonic() - busy > STUCK_AFTER_S:
            out.append(f"ingest has been processing one batch for {time.monotonic() - busy:.0f} s")
        return out

    @property
    def held_messages(self) -> int:
        return len(self._held)

    def queued(self) -> dict[str, int]:
        """Messages waiting per intake lane (enterprise code or ``_unknown``)."""
        return self._lanes.depths()

    # -- the worker ------------------------------------------------------------------------
    def _run(self) -> None:
        lanes = self._lanes
        urgent_last = False
        while True:
            lanes.clear_ready()
            # Urgent first, but never twice in a row while bulk messages wait: a steady stream
            # of urgent messages is still served between a bulk batch's messages and chunks.
            batch = []
            if lanes.urgent_waiting and not urgent_last:
                batch = lanes.take_urgent(self._max_batch)
            urgent_last = bool(batch)
            if not batch:
                batch = lanes.take(self._max_batch)
            if not batch and lanes.urgent_waiting:
                batch = lanes.take_urgent(self._max_batch)
                urgent_last = True
            if batch:
                self._busy_since = time.monotonic()
                self._serving_urgent = urgent_last  # an urgent batch serves no other inside
                try:
                    self.process(batch)
                except Exception:  # process() isolates messages; this guards the thread
                    log.exception("ingest: a batch of %d messages failed", len(batch))
                finally:
                    self._busy_since = None
                    self._serving_urgent = False
                continue
            if self._held:
                self._flush(self._clock.now_ms())
                if self._held:
                    if self._stopping.is_set():
                        return  # unacknowledged: the broker delivers them again
                    assert self._blocked is not None
                    lanes.wait(self._blocked.retry_in_s)
                    continue
            if self._stopping.is_set():
                return
            lanes.wait(None)

    def process(self, batch: list[InboundMessage]) -> None:
        """Decode, evaluate, spool durably (one commit), ack. Public for in-memory tests.

        Urgent messages that arrive meanwhile are processed (and acknowledged) between this
        batch's messages and between its chunks of readings: a bulk batch takes tens of ms."""
        decoded: list[_Decoded] = []
        for message in batch:
            decoded.append(self._decode(message))
            if self._lanes.urgent_waiting:
                self._serve_urgent()
        now = self._clock.now_ms()
        # Listeners (the rule engine) see the readings before the spool and the ack: a hub
        # killed in between gets them again, and the engine's late-reading policy raises
        # nothing twice. Evaluating first also keeps alarms going while the spool is blocked.
        self._fan_out(decoded, now)
        self.processed_messages += len(batch)
        self._account(decoded, now)
        self._held.extend(decoded)
        self._flush(now)

    def _serve_urgent(self) -> None:
        """Process one batch of the urgent messages waiting now, inside a bulk batch (not inside
        another urgent batch). One batch per call: the bulk batch goes on between them."""
        if self._serving_urgent:
            return
        self._serving_urgent = True
        try:
            batch = self._lanes.take_urgent(self._max_batch)
            if batch:
                self.process(batch)
        finally:
            self._serving_urgent = False

    def _decode(self, message: InboundMessage) -> _Decoded:
        topic = message.topic
        status_of = enterprise_of_status_topic(topic)
        if status_of is not None:
            # Gateway status travels in order with the telemetry, acked like it; only
            # registered gateways reach the listener (nothing keyed by an outsider grows).
            if self._on_status is not None and status_of in self._enterprises:
                try:
                    self._on_status(status_of, message.payload, message.received_ms)
                except Exception:
                    self._log_failure("status listener failed", topic)
            return _Decoded(message, DecodedMessage(status_of, None), "", True)
        if message.retained:
            # Only over MQTT 3.1.1: with MQTT 5 the hub asks the broker never to replay
            # retained telemetry (Retain Handling 2). A replay would be evaluated again.
            result = DecodedMessage(enterprise_of_topic(topic) or "", None)
            result.reject(
                Rejection(
                    RejectReason.RETAINED,
                    "a retained telemetry message replayed by the broker is not ingested: "
                    "publish telemetry with retain=false (its live copy was ingested)",
                )
            )
            return _Decoded(message, result, "")
        shown: list[Reading] | None = None
        try:
            result = self._decoder.decode(topic, message.payload)
            if result.skewed:
                shown, sources = deskew(result.readings, result.skewed_after, message.received_ms)
                lines = encode_skewed_lines(shown, sources, self._prefixes)
            else:
                lines = self._lines.encode(result.enterprise, result.readings)
        except Exception as exc:  # a decoder bug must cost this message only
            self._log_failure("decoder failed", topic)
            result = DecodedMessage(enterprise_of_topic(topic) or "", None)
            result.reject(
                Rejection(
                    RejectReason.MALFORMED_JSON,
                    f"the payload could not be decoded ({type(exc).__name__})",
                )
            )
            lines = ""
        return _Decoded(message, result, lines, shown=shown)

    def _flush(self, now: int) -> None:
        """Spool and acknowledge everything held, in order, if the spool takes it now."""
        held = self._held
        if not held:
            return
        reason = self._cannot_take()
        if reason is None:
            try:
                self._spool.append([(d.lines, len(d.decoded.readings)) for d in held], now)
            except DiskFullError as exc:
                reason = ("spool_full", f"data directory full: {exc}")
                if self._reserve is not None and self._reserve.release():
                    log.warning(
                        "ingest: released the disk reserve so alarms can still be journaled"
                    )
            except Exception as exc:
                reason = ("spool_error", f"spool write failed: {exc}")
        if reason is not None:
            self._block(*reason, now)
            return
        source = self._source
        if source is not None:
            for d in held:
                source.ack(d.message)
        held.clear()
        self._metrics.ingest_held.set(0)
        if self._blocked is not None:
            self._unblock()

    def _cannot_take(self) -> tuple[str, str] | None:
        """Why the spool cannot take readings now, as (system alarm, reason), or None."""
        reserve = self._reserve
        if reserve is not None and reserve.released and not reserve.restore():
            # Without its reserve the spool may still take readings while half the reserve's
            # worth stays free for the alarms: appends that reuse pages the sink emptied do
            # not grow the file, so a drained spool goes on even on a disk that stays full.
            free = reserve.free_bytes()
            if free < reserve.size_bytes // 2:
                return (
                    "spool_full",
                    f"data directory low on space ({free} bytes free; "
                    f"{reserve.size_bytes // 2} are kept for the alarm journal)",
                )
        if not self._spool.has_room():
            depth = self._spool.depth()
            return (
                "spool_full",
                f"spool full ({depth.readings} readings, {depth.bytes} bytes): ingest holds "
                "back acknowledgements until the database catches up",
            )
        return None

    def _block(self, alarm: str, reason: str, now: int) -> None:
        blocked = self._blocked
        if blocked is None or blocked.alarm != alarm:
            if blocked is not None:
                self._alarms.set(blocked.alarm, False, f"now: {reason}")
            log.error("ingest: spool cannot take readings", extra={"reason": reason})
            since = blocked.since_ms if blocked is not None else now
            blocked = self._blocked = _Blocked(alarm, reason, since)
            if alarm == "spool_full":
                self._metrics.spool_full.set(1)
        else:
            blocked.reason = reason
            # Errors back off; a full spool only waits for the sink, so it polls briskly.
            if alarm != "spool_full":
                blocked.retry_in_s = min(MAX_RETRY_S, blocked.retry_in_s * 2)
        self._alarms.set(alarm, True, reason)
        self._drop_held_qos0()
        self._metrics.ingest_held.set(len(self._held))

    def _unblock(self) -> None:
        blocked = self._blocked
        assert blocked is not None
        self._blocked = None
        self._metrics.spool_full.set(0)
        self._alarms.set(blocked.alarm, False, "the spool takes readings again")
        log.warning("ingest: spool takes readings again", extra={"was": blocked.reason})

    def _drop_held_qos0(self) -> None:
        """QoS 0 messages cannot be redelivered, so they are held in memory; past the bound
        the oldest go (their readings were evaluated, but are not stored), counted."""
        held = self._held
        qos0 = sum(1 for d in held if d.message.qos == 0)
        excess = qos0 - self._max_held_qos0
        if excess <= 0:
            return
        kept: list[_Decoded] = []
        for d in held:
            if excess > 0 and d.message.qos == 0:
                excess -= 1
                label = self._label(d.decoded.enterprise)
                self._metrics.qos0_dropped.labels(label, "spool_blocked").inc()
                continue
            kept.append(d)
        held[:] = kept

    def _count_intake_drop(self, label: str) -> None:
        self._metrics.qos0_dropped.labels(label, "intake_full").inc()

    def _log_failure(self, what: str, topic: str) -> None:
        if self._failure_log.allow():
            log.exception("ingest: %s", what, extra={"topic": clip(topic)})
        else:
            self._metrics.log_lines_suppressed.labels("ingest_failure").inc()

    def _label(self, enterprise: str) -> str:
        return enterprise if enterprise in self._enterprises else UNKNOWN_LABEL

    def _fan_out(self, decoded: list[_Decoded], now: int) -> None:
        """The readings to the live table and the listeners, a chunk at a time (urgent messages
        are served between chunks), then the settle calls."""
        chunk: list[Reading] = []
        shown: list[Reading] = []
        for d in decoded:
            readings = d.decoded.readings
            if not readings:
                continue
            chunk += readings
            shown += readings if d.shown is None else d.shown
            if len(chunk) >= FAN_OUT_CHUNK:
                self._hand_over(chunk, shown, now)
                chunk, shown = [], []
                if self._lanes.urgent_waiting:
                    self._serve_urgent()
        if chunk:
            self._hand_over(chunk, shown, now)
        elif not any(d.decoded.readings for d in decoded):
            return  # nothing was handed over: nothing to settle
        for settle in self._settlers:
            try:
                settle()
            except Exception:
                if self._failure_log.allow():
                    log.exception("ingest: settle call %r failed", settle)
                else:
                    self._metrics.log_lines_suppressed.labels("ingest_failure").inc()

    def _hand_over(self, all_readings: list[Reading], shown: list[Reading], now: int) -> None:
        self._live.update(shown, now)
        for listener in self._listeners:
            try:
                listener(all_readings)
            except Exception:
                if self._failure_log.allow():
                    log.exception("ingest: reading listener %r failed", listener)
                else:
                    self._metrics.log_lines_suppressed.labels("ingest_failure").inc()

    def _account(self, decoded: list[_Decoded], now: int) -> None:
        m = self._metrics
        for d in decoded:
            result = d.decoded
            label = self._label(result.enterprise)
            if label == UNKNOWN_LABEL:
                m.unknown_enterprise_messages.inc()
            if d.is_status:
                continue
            m.messages_received.inc()
            if label != UNKNOWN_LABEL and is_critical_topic(d.message.topic):
                self._count_critical(d, label)
            accepted = len(result.readings)
            counts = result.rejected_by_reason
            if result.skewed:
                m.readings_skewed.labels(label).inc(result.skewed)
            if not counts and not result.skewed:
                m.readings_received.labels(label).inc(max(result.total, accepted))
                if accepted:
                    m.readings_accepted.labels(label).inc(accepted)
                continue
            whole = result.whole_message_rejected
            per_reading = 0 if whole else result.rejected
            m.readings_received.labels(label).inc(max(result.total, accepted + per_reading))
            if accepted:
                m.readings_accepted.labels(label).inc(accepted)
            counter = m.messages_rejected if whole else m.readings_rejected
            for reason, n in counts.items():
                counter.labels(label, reason.value).inc(n)
            self._report(d, label, now)

    def _count_critical(self, d: _Decoded, label: str) -> None:
        self._metrics.critical_topic_messages.labels(label).inc()
        if self._non_critical is None or not d.decoded.readings:
            return
        others = self._non_critical(d.decoded.enterprise, (r.tag for r in d.decoded.readings))
        if others:
            self._metrics.critical_topic_other_readings.labels(label).inc(others)

    def _report(self, d: _Decoded, label: str, now: int) -> None:
        result = d.decoded
        rejections = sorted(result.rejections, key=lambda r: -1 if r.index is None else r.index)
        first = rejections[0] if rejections else result.skew_notes[0]
        if self._rejection_log.allow():
            log.warning(
                "message rejected" if rejections else "skewed timestamps accepted",
                extra={
                    "enterprise": clip(result.enterprise, 64),
                    "topic": clip(d.message.topic),
                    "total": result.total,
                    "accepted": len(result.readings),
                    "rejected": result.rejected,
                    "reason": first.reason.value,
                    "index": first.index,
                    "tag": first.tag,
                    "detail": first.detail,
                },
            )
        else:
            self._metrics.log_lines_suppressed.labels("rejection").inc()
        if not result.enterprise or self._source is None:
            return
        budget = self._report_budgets.get(label)
        if budget is None:
            budget = self._report_budgets[label] = RateBudget(*self._report_rate)
        if not budget.allow():
            self._metrics.rejection_reports_suppressed.labels(label).inc()
            return
        report: dict[str, Any] = {
            "topic": clip(d.message.topic),
            "seq": result.seq,
            "received_ts": d.message.received_ms,
            "reported_ts": now,
            "total": result.total,
            "accepted": len(result.readings),
            "rejected_count": result.rejected,
            "truncated": result.rejected > min(len(rejections), MAX_REPORTED_REJECTIONS),
            "rejected": [r.as_json() for r in rejections[:MAX_REPORTED_REJECTIONS]],
        }
        if result.skewed:
            report["skewed_count"] = result.skewed
            report["skewed"] = [r.as_json() for r in result.skew_notes[:MAX_REPORTED_REJECTIONS]]
        try:
            self._source.publish(rejected_topic(result.enterprise), msgspec.json.encode(report))
        except Exception:
            self._metrics.rejection_reports_failed.inc()
            self._log_failure("could not publish a rejection report", d.message.topic)
