"""Province mode at run time (docs/province.md): the subscription to the park hubs' records,
the de-duplication by ``dataId`` in ``province.sqlite``, the view the API reads and the
``safety_hub_province_*`` metrics.

Each message goes: parse (refused: counted by reason, acknowledged, never retried) -> seen
before? (a duplicate: counted, acknowledged) -> the bounds (refused: counted) -> the entity's
new state and the ``dataId`` committed together -> acknowledged. A store failure (full disk)
leaves the message unacknowledged: the broker delivers it again.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from safety_hub.clock import Clock
from safety_hub.errors import SafetyHubError
from safety_hub.ingest.spool import SpoolStore
from safety_hub.settings import MqttTarget, Settings
from safety_hub.uplink.province import TIER_RANK, Limits, ProvinceView, Refused, parse_record
from safety_hub.uplink.province_points import ProvincePoints
from safety_hub.uplink.province_store import PROVINCE_FILE, ProvinceStore

if TYPE_CHECKING:
    from connectors.uplink.province_feed import ProvinceFeed

log = logging.getLogger("safety_hub.province")

CLIENT_ID = "safety-hub-province"

Writer = Callable[[list[str], int], None]
"""(line protocol lines, now ms): append to the hub's spool; raises SafetyHubError (a full disk)"""


class ProvinceRuntime:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.limits = Limits(
            max_parks=settings.province_max_parks,
            max_enterprises=settings.province_max_enterprises,
            max_hazard_sources=settings.province_max_hazard_sources,
            max_tags=settings.province_max_tags,
            max_open_warnings=settings.province_max_open_warnings,
            max_payload_bytes=settings.province_max_payload_bytes,
        )
        self.view = ProvinceView(self.limits)
        self.points = ProvincePoints(settings.province_max_series)
        self.store = ProvinceStore(settings.data_dir / PROVINCE_FILE, settings.province_max_seen)
        for park, kind, data, received_ms in self.store.entities():
            self.view.restore(park, kind, data, received_ms)
            if kind == "reading":
                self.points.restore(park, data)
        self.write: Writer | None = None
        """where the province's points go (the hub's spool, then InfluxDB); None: nowhere"""
        self.accepted: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.duplicates = 0
        self._lock = threading.Lock()
        self.feed: ProvinceFeed | None = None
        self.stale_ms = round(settings.province_link_stale_s * 1000)

    def handle(self, park: str, payload: bytes) -> bool:
        """One message; True: acknowledge it."""
        try:
            record = parse_record(park, payload, self.limits)
            if self.store.seen(record.data_id):
                self._duplicate(record.park)
                return True
            self.view.check(record)
        except Refused as exc:
            with self._lock:
                self.refused[exc.reason] += 1
            self.points.refused(exc.reason)
            log.warning("province: record refused: %s", exc, extra={"park": park[:100]})
            return True
        now = self.clock.now_ms()
        try:
            # Spooled before it is kept: a repeat after a failed commit writes the same point
            # (same series and time) again, which InfluxDB overwrites.
            self._write_reading(record.park, record.kind, record.data, now)
            state = self.view.apply(record, now)
            taken = self.store.take(record, state, now)
        except SafetyHubError as exc:
            log.error("province: cannot keep a record, not acknowledged: %s", exc)
            return False
        if not taken:
            self._duplicate(record.park)
            return True
        with self._lock:
            self.accepted[record.kind] += 1
        self.points.taken(record.park)
        return True

    def _duplicate(self, park: str) -> None:
        with self._lock:
            self.duplicates += 1
        if park in self.view.parks:  # per park only for a park in the view (bounded)
            self.points.duplicate(park)

    def _write_reading(self, park: str, kind: str, data: dict[str, Any], now_ms: int) -> None:
        if kind != "reading" or self.write is None:
            return
        line = self.points.reading_line(park, data)
        if line is not None:
            self.write([line], now_ms)

    def stats_lines(self, now_ms: int) -> list[str]:
        """The province's statistics points (written with the hub's, every 10 s)."""
        return self.points.stats_lines(
            self.view.park_stats(now_ms, self.stale_ms), self.counters()["connected"], now_ms
        )

    def start(self, hub_url: str | None, target: MqttTarget | None) -> None:
        """Subscribe on the hub's own broker (``hub_url``: ``mqtt[s]://host:port``), with the
        credentials of ``SAFETY_HUB_MQTT_URL`` when it names any."""
        if self.feed is not None:
            return
        if hub_url is None:
            log.error("province mode: the hub has no MQTT broker to subscribe on")
            return
        from connectors.uplink.province_feed import ProvinceFeed

        parts = urlsplit(hub_url)
        self.feed = ProvinceFeed(
            parts.hostname or "127.0.0.1",
            parts.port or 1883,
            self.settings.province_topic_prefix,
            CLIENT_ID,
            self.handle,
            username=target.username if target else None,
            password=target.password if target else None,
            tls=parts.scheme == "mqtts",
        )
        self.feed.start()
        log.info("province mode on", extra={"topic": self.feed.topic})

    def stop(self) -> None:
        if self.feed is not None:
            self.feed.stop()
            self.feed = None

    def close(self) -> None:
        self.stop()
        self.store.close()

    # -- for the API -----------------------------------------------------------------------------
    def parks(self) -> list[dict[str, Any]]:
        return self.view.summaries(self.clock.now_ms(), self.stale_ms)

    def park(self, code: str) -> dict[str, Any] | None:
        return self.view.park(code, self.clock.now_ms(), self.stale_ms)

    def readings(self, code: str, enterprise: str | None = None) -> list[dict[str, Any]] | None:
        return self.view.readings(code, enterprise)

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {
                "connected": self.feed is not None and self.feed.connected.is_set(),
                "accepted": dict(self.accepted),
                "refused": dict(self.refused),
                "duplicates": self.duplicates,
                "seen": self.store.seen_count,
                "series": self.points.series,
                "uncharted": dict(self.points.uncharted),
            }


def build_province(
    settings: Settings, clock: Clock, registry: Any, spool: SpoolStore | None = None
) -> ProvinceRuntime | None:
    """``spool``: where the province's points go (the hub's, which its sink writes to InfluxDB)."""
    if not settings.province:
        return None
    runtime = ProvinceRuntime(settings, clock)
    if spool is not None:
        runtime.write = lambda lines, now_ms: spool.append([("\n".join(lines), len(lines))], now_ms)
    registry.register(ProvinceCollector(runtime))
    return runtime


class ProvinceCollector(Collector):
    """``safety_hub_province_*``, read at scrape time."""

    def __init__(self, runtime: ProvinceRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        c = self._runtime.counters()
        yield GaugeMetricFamily(
            "safety_hub_province_connected",
            "1 while subscribed to the parks' records",
            value=float(c["connected"]),
        )
        accepted = CounterMetricFamily(
            "safety_hub_province_accepted_records", "Records taken", labels=["kind"]
        )
        for kind, n in sorted(c["accepted"].items()):
            accepted.add_metric([kind], float(n))
        yield accepted
        refused = CounterMetricFamily(
            "safety_hub_province_refused_records", "Records refused, by reason", labels=["reason"]
        )
        for reason, n in sorted(c["refused"].items()):
            refused.add_metric([reason], float(n))
        yield refused
        uncharted = CounterMetricFamily(
            "safety_hub_province_uncharted_readings",
            "Readings taken but not written to InfluxDB, by reason",
            labels=["reason"],
        )
        for reason, n in sorted(c["uncharted"].items()):
            uncharted.add_metric([reason], float(n))
        yield uncharted
        yield GaugeMetricFamily(
            "safety_hub_province_series",
            "Reading series written to InfluxDB (bounded by SAFETY_HUB_PROVINCE_MAX_SERIES)",
            value=float(c["series"]),
        )
        yield CounterMetricFamily(
            "safety_hub_province_duplicate_records",
            "Records dropped as seen before (by dataId)",
            value=float(c["duplicates"]),
        )
        parks = self._runtime.parks()
        tier = GaugeMetricFamily(
            "safety_hub_province_park_worst_tier",
            "Worst open warning tier per park: 4 red, 3 orange, 2 yellow, 1 blue, 0 none",
            labels=["park"],
        )
        age = GaugeMetricFamily(
            "safety_hub_province_park_open_warnings", "Open warnings per park", labels=["park"]
        )
        for p in parks:
            tier.add_metric([p["park"]], float(TIER_RANK.get(str(p["worst_tier"]), 0)))
            age.add_metric([p["park"]], float(p["open_warnings"]))
        yield tier
        yield age
        yield GaugeMetricFamily(
            "safety_hub_province_parks", "Parks in the province's view", value=float(len(parks))
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
