"""The running uplink (docs/uplink.md): queues what goes up and sends it, per destination.

One producer thread queues, for every destination: the base data at start (again only when
it changed), the latest value of each selected tag every ``readings_interval_s`` (only values
newer than the last one queued for that tag), and every alarm journal row of the selected
hazard sources (from a marker kept in the queue, so a crash re-queues what it missed, with the
same ``dataId``). A full queue drops readings but holds base data and warnings back, putting
them again each tick as the queue drains. One sender thread per destination sends its queue in
order through its transport, at most ``rate_per_s`` records per second, with a backoff while it
fails.

The queue is a store (``UplinkQueueStore``): a SQLite file of this node, or the shared
PostgreSQL database of a redundant pair. Every :meth:`UplinkRuntime.start` reads the cursors
again before the producer queues anything, so a node that takes the lease over goes on from
where the other node's commits stopped, and its senders send the backlog that node left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from safety_hub.alarms import AlarmNotFound, AlarmService
from safety_hub.alarms.journal import JournalStore
from safety_hub.clock import Clock
from safety_hub.errors import SafetyHubError
from safety_hub.ingest.live import LiveTable
from safety_hub.registry import Plant, TagInfo
from safety_hub.system_alarms import SystemAlarms
from safety_hub.uplink import (
    Backoff,
    Depth,
    Destination,
    DestinationState,
    OutRecord,
    PutResult,
    RateLimiter,
    UplinkTransport,
    data_id,
)
from safety_hub.uplink.queue import QUEUE_FILE as QUEUE_FILE  # re-exported: the CLI
from safety_hub.uplink.queue import UplinkQueueStore
from safety_hub.uplink.records import (
    BASE_KINDS,
    TimeText,
    base_record,
    enterprise_sources,
    hazard_source_sources,
    reading_record,
    reading_sources,
    tag_sources,
    warning_record,
    warning_sources,
)

log = logging.getLogger("safety_hub.uplink")

PRODUCER_TICK_S = 0.2
JOURNAL_BATCH = 500
FULL_CLEARS_BELOW = 0.9
"""the queue-full alarm clears once a destination's queue is below this share of its bound"""


@dataclass
class Lane:
    """One destination at run time."""

    destination: Destination
    transport: UplinkTransport
    state: DestinationState
    tags: list[TagInfo]
    hazard_sources: frozenset[str]
    limiter: RateLimiter
    backoff: Backoff
    times: TimeText
    reading_ts: dict[str, int] = field(default_factory=dict)
    journal_marker: int | None = None
    loaded: bool = False
    """the cursors were read from the queue since the last start"""
    full: bool = False
    base_pending: list[OutRecord] | None = None
    """base records held back by a full queue (None: none), with the digest to commit"""
    base_digest: str = ""
    warnings_pending: list[OutRecord] = field(default_factory=list)
    """warning records held back by a full queue; the journal marker waits for them"""
    warnings_marker: int = 0
    base_done: bool = False
    """the base data is queued (or off): not put again until the next start"""
    """the queue-full system alarm is raised"""
    next_readings_ms: int = 0
    depth: Depth = field(default_factory=lambda: Depth(0, None))
    """the queue's depth when it was last read (shown while the store cannot be read)"""
    wake: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.destination.name


class UplinkRuntime:
    def __init__(
        self,
        destinations: Sequence[tuple[Destination, UplinkTransport]],
        *,
        plant: Plant,
        live: LiveTable,
        journal: JournalStore,
        alarms: AlarmService,
        clock: Clock,
        system_alarms: SystemAlarms,
        queue: UplinkQueueStore,
    ) -> None:
        self.plant = plant
        self.live = live
        self.journal = journal
        self.alarms = alarms
        self.clock = clock
        self.system_alarms = system_alarms
        self.queue = queue
        self.lanes = [self._lane(d, t) for d, t in destinations]
        self._stopping = threading.Event()
        self._running = False
        self._producer: threading.Thread | None = None

    def _lane(self, destination: Destination, transport: UplinkTransport) -> Lane:
        model = destination.model
        lane = Lane(
            destination=destination,
            transport=transport,
            state=DestinationState(model.name, transport.description),
            tags=destination.tags(self.plant),
            hazard_sources=frozenset(destination.hazard_sources(self.plant)),
            limiter=RateLimiter(model.rate_per_s),
            backoff=Backoff(model.retry_initial_s, model.retry_max_s),
            times=TimeText(model.time_zone),
        )
        return lane

    def load_cursors(self, lane: Lane) -> None:
        """Read the lane's cursors from the queue and forget what this node held in memory
        (held-back records, the base data done): at every start, because in a pair the other
        node may have queued, sent and moved the cursors meanwhile."""
        cursors = self.queue.cursors(lane.name)
        lane.reading_ts = {n[2:]: int(v) for n, v in cursors.items() if n.startswith("r:")}
        journal = cursors.get("journal")
        lane.journal_marker = None if journal is None else int(journal)
        lane.base_pending, lane.base_digest, lane.base_done = None, "", False
        lane.warnings_pending, lane.warnings_marker = [], 0
        lane.next_readings_ms = 0
        lane.loaded = True

    # -- producing ---------------------------------------------------------------------------
    def _put(
        self,
        lane: Lane,
        records: list[OutRecord],
        cursors: Mapping[str, str],
        *,
        hold: bool = False,
    ) -> PutResult:
        """Queue ``records``. Readings (``hold`` false) that do not fit are dropped for good:
        their cursors move. Base data and warnings (``hold``) that do not fit are held back:
        the caller moves its cursor only when all fit, and puts them again on its next tick."""
        model = lane.destination.model
        result = self.queue.put(
            lane.name,
            records,
            self.clock.now_ms(),
            max_records=model.max_records,
            cursors=cursors,
        )
        lane.state.queued += result.added
        for kind, n in result.added_kinds:
            lane.state.queued_by_kind[kind] = lane.state.queued_by_kind.get(kind, 0) + n
        lane.state.duplicates += result.duplicates
        lane.state.dropped += result.dropped_readings
        if not hold:
            lane.state.dropped += result.refused
        if result.dropped_readings or result.refused:
            fate = "held back, put again when there is room" if hold else "dropped"
            message = (
                f"uplink {lane.name}: queue full ({model.max_records} records): dropped the "
                f"{result.dropped_readings} oldest reading(s); {result.refused} new "
                f"{'/'.join(result.refused_kinds) or 'record'} record(s) {fate}"
            )
            (log.debug if lane.full else log.error)(message)
            self.system_alarms.set(f"uplink_queue_full:{lane.name}", True, message)
            lane.full = True
        if result.added:
            lane.wake.set()
        return result

    def queue_base(self, lane: Lane) -> None:
        """The base data, when it differs from what was queued last time; what a full queue
        held back, on the following calls."""
        if not lane.destination.model.send.base:
            lane.base_done = True
            return
        if lane.base_pending is not None:
            self._queue_held_base(lane, lane.base_pending)
            return
        plant, mapping = self.plant, lane.destination.mapping
        chosen = [plant.hazard_sources[c] for c in sorted(lane.hazard_sources)]
        records = [
            base_record(
                plant.park_code,
                "enterprise",
                ent.code,
                mapping["enterprise"],
                enterprise_sources(plant, ent),
            )
            for ent in plant.enterprises.values()
            if any(hs.enterprise == ent.code for hs in chosen)
        ]
        records += [
            base_record(
                plant.park_code,
                "hazard_source",
                hs.code,
                mapping["hazard_source"],
                hazard_source_sources(plant, hs),
            )
            for hs in chosen
        ]
        records += [
            base_record(
                plant.park_code,
                "tag",
                f"{t.enterprise}/{t.tag}",
                mapping["tag"],
                tag_sources(plant, t, lane.times),
            )
            for t in lane.tags
        ]
        digest = data_id(*BASE_KINDS, *(r.data_id for r in records))
        if self.queue.cursors(lane.name).get("base") == digest:
            lane.base_done = True
            return
        lane.base_digest = digest
        self._queue_held_base(lane, records)

    def _queue_held_base(self, lane: Lane, records: list[OutRecord]) -> None:
        result = self._put(lane, records, {}, hold=True)
        if result.refused:  # held back: the rest is put again on the next tick
            refused = set(result.refused_ids)
            lane.base_pending = [r for r in records if r.data_id in refused]
            return
        self._put(lane, [], {"base": lane.base_digest})
        lane.base_pending = None
        lane.base_done = True
        log.info("uplink: base data queued", extra={"destination": lane.name})

    def queue_readings(self, lane: Lane) -> None:
        records: list[OutRecord] = []
        cursors: dict[str, str] = {}
        mapping = lane.destination.mapping["reading"]
        for tag in lane.tags:
            value = self.live.latest(tag.enterprise, tag.tag)
            key = f"{tag.enterprise}/{tag.tag}"
            if value is None or value.ts_ms <= lane.reading_ts.get(key, -1):
                continue
            src = reading_sources(tag, value, lane.times)
            records.append(reading_record(self.plant.park_code, tag, mapping, src))
            cursors[f"r:{key}"] = str(value.ts_ms)
        if records:
            self._put(lane, records, cursors)
            for name, ts in cursors.items():
                lane.reading_ts[name[2:]] = int(ts)

    def queue_warnings(self, lane: Lane) -> int:
        """Journal rows after the lane's marker; returns how many rows were read."""
        if not lane.destination.model.send.warnings:
            return 0
        if lane.warnings_pending:
            return self._queue_held_warnings(lane, lane.warnings_pending, lane.warnings_marker)
        marker = lane.journal_marker
        if marker is None:  # a new destination: from now on, not the history
            newest = self.journal.entries(limit=1, newest=True)
            start = newest[0].id if newest else 0
            self._put(lane, [], {"journal": str(start)})
            lane.journal_marker = start
            return 0
        entries = self.journal.entries(after_id=marker, limit=JOURNAL_BATCH)
        if not entries:
            return 0
        records = []
        mapping = lane.destination.mapping["warning"]
        for entry in entries:
            if entry.alarm_id is None:
                continue
            try:
                alarm = self.alarms.get(entry.alarm_id)
            except AlarmNotFound:
                continue
            if alarm.hazard_source not in lane.hazard_sources:
                continue
            src = warning_sources(self.plant, entry, alarm, lane.times)
            records.append(warning_record(self.plant.park_code, entry, alarm, mapping, src))
        return self._queue_held_warnings(lane, records, entries[-1].id)

    def _queue_held_warnings(self, lane: Lane, records: list[OutRecord], marker: int) -> int:
        """Queue warning records and then move the journal marker to ``marker``; what a full
        queue refuses is held (the journal is not read further) and put again next tick."""
        result = self._put(lane, records, {}, hold=True)
        if result.refused:
            refused = set(result.refused_ids)
            lane.warnings_pending = [r for r in records if r.data_id in refused]
            lane.warnings_marker = marker
            return 0
        self._put(lane, [], {"journal": str(marker)})
        lane.warnings_pending = []
        lane.journal_marker = marker
        return len(records) or 1

    def _produce(self) -> None:
        while not self._stopping.is_set():
            now = self.clock.now_ms()
            busy = False
            for lane in self.lanes:
                if not lane.loaded:
                    self._guarded(lane, "cursors", self.load_cursors)
                    continue
                if not lane.base_done:
                    self._guarded(lane, "base data", self.queue_base)
                busy |= bool(self._guarded(lane, "warnings", self.queue_warnings))
                if now >= lane.next_readings_ms:
                    interval_ms = round(lane.destination.model.send.readings_interval_s * 1000)
                    lane.next_readings_ms = now + interval_ms
                    if lane.destination.model.send.readings:
                        self._guarded(lane, "readings", self.queue_readings)
            if not busy:
                self._stopping.wait(PRODUCER_TICK_S)

    def _guarded(self, lane: Lane, what: str, step: Any) -> Any:
        try:
            return step(lane)
        except SafetyHubError as exc:  # a full disk, a damaged file: tried again next tick
            log.error("uplink %s: queueing %s failed: %s", lane.name, what, exc)
        except Exception:  # a bug must not end the thread silently: logged, tried again
            log.exception("uplink %s: queueing %s failed", lane.name, what)
        self._stopping.wait(1.0)
        return None

    # -- sending -----------------------------------------------------------------------------
    def _send_loop(self, lane: Lane) -> None:
        while not self._stopping.is_set():
            try:
                self._send_once(lane)
            except SafetyHubError as exc:  # the queue's file (full disk, damage): again later
                log.error("uplink %s: %s", lane.name, exc)
                self._stopping.wait(1.0)
            except Exception:  # a bug must not end the thread silently: logged, tried again
                log.exception("uplink %s: sending failed", lane.name)
                self._stopping.wait(1.0)

    def _send_once(self, lane: Lane) -> None:
        """One batch: peek, rate limit, send, forget what is finished, back off on failure."""
        model = lane.destination.model
        self._check_down(lane)
        batch = self.queue.peek(lane.name, model.batch_records)
        if not batch:
            lane.wake.wait(0.5)
            lane.wake.clear()
            return
        granted = lane.limiter.grant(len(batch), time.monotonic())
        if granted == 0:
            self._stopping.wait(lane.limiter.wait_s(time.monotonic()))
            return
        batch = batch[:granted]
        outcome = lane.transport.send([q.record for q in batch])
        finished = batch[: outcome.done]
        self.queue.remove(lane.name, [q.seq for q in finished])
        for i, reason in sorted(outcome.rejected.items()):
            log.error(
                "uplink: record refused by the platform, not sent again",
                extra={
                    "destination": lane.name,
                    "data_id": batch[i].record.data_id,
                    "kind": batch[i].record.kind,
                    "reason": reason,
                },
            )
        now = self.clock.now_ms()
        if outcome.done:
            lane.state.succeeded(outcome.done, len(outcome.rejected), now)
        if outcome.error is None:
            lane.backoff.reset()
            self._clear_full(lane)
            return
        was_up = lane.state.connected is not False
        lane.state.failed(outcome.error, now)
        if was_up:
            log.warning(
                "uplink: destination down",
                extra={"destination": lane.name, "error": outcome.error},
            )
        self._check_down(lane)
        self._stopping.wait(lane.backoff.next_s())

    def _check_down(self, lane: Lane) -> None:
        name, state = lane.name, lane.state
        limit_ms = round(lane.destination.model.down_alarm_after_s * 1000)
        down_ms = state.down_for_ms(self.clock.now_ms())
        if down_ms >= limit_ms and state.down_since_ms is not None:
            self.system_alarms.set(
                f"uplink_down:{name}",
                True,
                f"uplink {name} ({state.transport}) down for {down_ms // 1000} s: {state.last_error}",
            )
        elif state.connected:
            self.system_alarms.set(f"uplink_down:{name}", False, f"uplink {name} delivers again")

    def _clear_full(self, lane: Lane) -> None:
        if not lane.full:
            return
        bound = lane.destination.model.max_records
        if self.queue.depth(lane.name).records < bound * FULL_CLEARS_BELOW:
            self.system_alarms.set(
                f"uplink_queue_full:{lane.name}", False, f"uplink {lane.name}: queue has room again"
            )
            lane.full = False

    # -- life --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the producer and a sender per destination; again after :meth:`stop` too (the
        node of a redundant pair that takes the lease over sends, the other does not)."""
        if self._running:
            return
        self._running = True
        self._stopping.clear()
        for lane in self.lanes:
            lane.loaded = False  # the producer reads the cursors first (a database may be away)
        self._producer = threading.Thread(target=self._produce, name="uplink-producer", daemon=True)
        self._producer.start()
        for lane in self.lanes:
            lane.thread = threading.Thread(
                target=self._send_loop, args=(lane,), name=f"uplink-{lane.name}", daemon=True
            )
            lane.thread.start()
            log.info(
                "uplink on",
                extra={
                    "destination": lane.name,
                    "transport": lane.state.transport,
                    "tags": len(lane.tags),
                },
            )

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._stopping.set()
        for lane in self.lanes:
            lane.wake.set()
        threads = [self._producer] + [lane.thread for lane in self.lanes]
        for thread in threads:
            if thread is not None:
                thread.join(10.0)
        for lane in self.lanes:
            lane.transport.close()

    def close(self) -> None:
        self.queue.close()

    # -- status ------------------------------------------------------------------------------
    def _depth(self, lane: Lane) -> Depth:
        try:
            lane.depth = self.queue.depth(lane.name)
        except SafetyHubError as exc:  # the state database away: the last depth read
            log.debug("uplink %s: queue depth not read: %s", lane.name, exc)
        return lane.depth

    def states(self) -> list[dict[str, Any]]:
        """Per destination, what ``/api/v1/system`` shows."""
        now = self.clock.now_ms()
        out = []
        for lane in self.lanes:
            s, depth = lane.state, self._depth(lane)
            out.append(
                {
                    "name": lane.name,
                    "transport": s.transport,
                    "connected": s.connected,
                    "backlog": depth.records,
                    "oldest_age_s": 0.0
                    if depth.oldest_ms is None
                    else max(0.0, (now - depth.oldest_ms) / 1000),
                    "queued": s.queued,
                    "queued_by_kind": dict(s.queued_by_kind),
                    "sent": s.sent,
                    "failed_attempts": s.failed_attempts,
                    "rejected": s.rejected,
                    "dropped": s.dropped,
                    "down_since": s.down_since_ms,
                    "last_success": s.last_success_ms,
                    "last_error": s.last_error,
                }
            )
        return out


class UplinkCollector(Collector):
    """``safety_hub_uplink_*{destination}``, read at scrape time."""

    def __init__(self, runtime: UplinkRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        states = self._runtime.states()
        gauges = {
            "connected": "1 while the last attempt to send succeeded",
            "backlog_records": "Records waiting in the destination's queue",
            "oldest_age_seconds": "Age of the oldest waiting record",
        }
        counters = {
            "queued": "Records put in the destination's queue",
            "sent": "Records the destination took",
            "failed_attempts": "Send attempts that failed (retried)",
            "rejected": "Records the destination refused for good (not retried)",
            "dropped": "Records dropped or refused because the queue was full",
        }
        keys = {
            "connected": "connected",
            "backlog_records": "backlog",
            "oldest_age_seconds": "oldest_age_s",
        }
        for name, text in gauges.items():
            family = GaugeMetricFamily(f"safety_hub_uplink_{name}", text, labels=["destination"])
            for s in states:
                value = s[keys[name]]
                family.add_metric(
                    [s["name"]], float(bool(value)) if name == "connected" else float(value)
                )
            yield family
        for name, text in counters.items():
            family_c = CounterMetricFamily(
                f"safety_hub_uplink_{name}_records"
                if name != "failed_attempts"
                else "safety_hub_uplink_failed_attempts",
                text,
                labels=["destination"],
            )
            for s in states:
                family_c.add_metric([s["name"]], float(s[name]))
            yield family_c

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
