"""The hub's own periodic statistics, written through the spool next to the readings.

The Grafana boards read InfluxDB only, and some of what they show lives in the hub: rejected
readings by reason, spool depth, gateway links, stale tags, which alarms are shown now. Every
``interval_s`` (10 s) the hub writes one point per measurement and series (schema in
docs/storage.md, "Hub statistics"):

- ``hub_stats``: spool depth and age, dead letters, sink and broker state, alarm events waiting
  for the broker and the oldest one's age, readings received /
  accepted / rejected since the previous point, alarms shown and those waiting for an
  acknowledgement, standing alarms (condition active for more than 24 h), annunciations
  in the last 10 minutes and whether the alarm system is in flood (ISA-18.2: more than 10 in
  10 minutes starts a flood, fewer than 5 ends it), alarms that chattered in the last 10 minutes
  (ISA-18.2 / EEMUA 191: 3 or more transitions into or out of alarm within 60 s);
- ``hub_enterprise_stats``: per enterprise, gateway online, readings since the previous point,
  registered tags and stale ones (in service, with an active stale-data alarm, suppressed or
  not), alarms shown and unacknowledged;
- ``hub_rejections``: per enterprise and reason, readings and messages rejected since the
  previous point (only series with something to report);
- ``hazard_source_stats``: per hazard source, the worst shown alarm tier (0 none, 1 blue/low,
  2 yellow/medium, 3 orange/high, 4 red/critical) and the alarms shown.

And at once, for every acknowledgement, an ``alarm_ack`` point: the time from the annunciation
to the acknowledgement, tagged like the alarm (the alarm performance board's time to ack).

Counts are deltas per interval, so ``sum()`` over any time bucket is the count in it and a hub
restart loses nothing that was written. Points go through the spool like alarm events: an
InfluxDB outage delays them, it does not lose them.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from safety_hub.alarms import Action, Alarm, AlarmService, AlarmState, Priority, Transition
from safety_hub.alarms.kpis import CHATTER_TRANSITIONS, CHATTER_WINDOW_MS
from safety_hub.alarms.model import CONDITION_EDGES, HIDDEN_STATES
from safety_hub.clock import Clock
from safety_hub.ingest.lineproto import series_prefix
from safety_hub.ingest.live import LiveTable
from safety_hub.ingest.spool import SpoolStore
from safety_hub.metrics import HubMetrics
from safety_hub.registry import Plant
from safety_hub.rules import RulePack

log = logging.getLogger("safety_hub.hub_stats")

HUB_STATS = "hub_stats"
ENTERPRISE_STATS = "hub_enterprise_stats"
REJECTIONS = "hub_rejections"
HAZARD_SOURCE_STATS = "hazard_source_stats"
ALARM_ACKS = "alarm_ack"
ALARM_DISPOSALS = "alarm_disposal"
OVERDUE_PRIORITIES = frozenset({Priority.HIGH, Priority.CRITICAL})  # red and orange
STANDING_MS = 24 * 3_600_000
"""ISA-18.2: an alarm whose condition has been active for more than 24 h is standing"""

TIER_OF_PRIORITY = {Priority.LOW: 1, Priority.MEDIUM: 2, Priority.HIGH: 3, Priority.CRITICAL: 4}
"""Park warning tiers: 1 blue, 2 yellow, 3 orange, 4 red (0: nothing shown)"""
SHOWN_STATES = frozenset(
    {
        AlarmState.UNACKNOWLEDGED,
        AlarmState.ACKNOWLEDGED,
        AlarmState.RTN_UNACKNOWLEDGED,
        AlarmState.LATCHED,
    }
)
TEN_MIN_MS = 600_000
FLOOD_START, FLOOD_END = 10, 5


def _counter_values(
    samples: Iterable[object], suffix: str = "_total"
) -> dict[tuple[str, ...], float]:
    """Label values -> value of a labelled prometheus counter's ``_total`` samples."""
    out: dict[tuple[str, ...], float] = {}
    for metric in samples:
        for sample in metric.samples:  # type: ignore[attr-defined]
            if sample.name.endswith(suffix):
                out[tuple(sample.labels.values())] = sample.value
    return out


@dataclass(frozen=True, slots=True)
class _Deltas:
    """Counts since the previous point, by label values (enterprise[, reason])."""

    received: dict[tuple[str, ...], int]
    accepted: dict[tuple[str, ...], int]
    rejected: dict[tuple[str, ...], int]
    messages: dict[tuple[str, ...], int]
    critical: dict[tuple[str, ...], int]  # messages on the critical topic (contract v1.1)
    critical_other: dict[tuple[str, ...], int]  # readings there that belong on telemetry


class FloodTracker:
    """Annunciations of the last 10 minutes and the flood state with its hysteresis."""

    def __init__(self) -> None:
        self._times: deque[int] = deque()
        self.in_flood = False
        self._lock = threading.Lock()

    def on_transition(self, t: Transition) -> None:
        if t.annunciated:
            self.annunciation(t.ts_ms)

    def annunciation(self, ts_ms: int) -> None:
        with self._lock:
            self._expire(ts_ms)
            self._times.append(ts_ms)
            if len(self._times) > FLOOD_START:
                self.in_flood = True

    def count(self, now_ms: int) -> int:
        """Annunciations in ``(now - 10 min, now]``; ends a flood that ended by ``now``."""
        with self._lock:
            self._expire(now_ms)
            return len(self._times)

    def _expire(self, now_ms: int) -> None:
        # One at a time: the flood ends the moment fewer than 5 remain, even if another
        # annunciation follows before anyone looks.
        while self._times and self._times[0] <= now_ms - TEN_MIN_MS:
            self._times.popleft()
            if len(self._times) < FLOOD_END:
                self.in_flood = False


class ChatterTracker:
    """Alarms that chattered in the last 10 minutes, by the KPI's definition
    (``alarms.kpis``): 3 or more in-service transitions into or out of alarm within 60 s,
    counted when the third one happens. A latched alarm whose gas comes and goes chatters
    though it annunciates once."""

    def __init__(self) -> None:
        self._edges: dict[int, deque[int]] = {}  # alarm id -> its edges of the last minute
        self._chattered: dict[int, int] = {}  # alarm id -> when it last chattered
        self._lock = threading.Lock()

    def on_transition(self, t: Transition) -> None:
        if t.action not in CONDITION_EDGES or t.to_state in HIDDEN_STATES:
            return
        with self._lock:
            edges = self._edges.setdefault(t.alarm.id, deque())
            edges.append(t.ts_ms)
            while t.ts_ms - edges[0] > CHATTER_WINDOW_MS:
                edges.popleft()
            if len(edges) >= CHATTER_TRANSITIONS:
                self._chattered[t.alarm.id] = t.ts_ms

    def count(self, now_ms: int) -> int:
        """Alarms that chattered in ``(now - 10 min, now]``; forgets older edges."""
        with self._lock:
            self._chattered = {
                i: ts for i, ts in self._chattered.items() if ts > now_ms - TEN_MIN_MS
            }
            self._edges = {
                i: e for i, e in self._edges.items() if e and now_ms - e[-1] <= CHATTER_WINDOW_MS
            }
            return len(self._chattered)


class HubStatsWriter:
    def __init__(
        self,
        *,
        plant: Plant,
        rules: RulePack,
        metrics: HubMetrics,
        spool: SpoolStore,
        live: LiveTable,
        alarms: AlarmService,
        clock: Clock,
        extra: Callable[[int], list[str]] | None = None,
    ) -> None:
        """``extra(now_ms)``: more points to write with these (province mode's)."""
        self._plant = plant
        self._extra = extra
        self._metrics = metrics
        self._spool = spool
        self._live = live
        self._alarms = alarms
        self._clock = clock
        self._stale_alerts = frozenset(r.alert for r in rules if r.type == "stale")
        self._previous: dict[str, dict[tuple[str, ...], float]] = {}
        self.flood = FloodTracker()
        self.chatter = ChatterTracker()
        # The closed loop since the previous point: episodes needing disposal, disposals.
        self._loop_lock = threading.Lock()
        self._needed = self._disposed = 0
        alarms.subscribe(self._on_transition)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.points_written = 0

    def _on_transition(self, t: Transition) -> None:
        self.flood.on_transition(t)
        self.chatter.on_transition(t)
        self._count_disposal(t)
        if t.action is not Action.ACK:
            return
        a = t.alarm
        if a.raised_ms is None or a.acknowledged_ms is None:
            return
        key = {
            "park": self._plant.park_code,
            "enterprise": a.enterprise,
            "hazard_source": a.hazard_source,
            "alert": a.alert,
            "tag": a.tag or "",
            "zone": a.zone or "",
            "priority": a.priority.value,
        }
        fields = {"time_to_ack_s": max(0, a.acknowledged_ms - a.raised_ms) / 1000, "alarm_id": a.id}
        self._spool.append([(self._line(ALARM_ACKS, key, fields, t.ts_ms), 1)], t.ts_ms)

    def _count_disposal(self, t: Transition) -> None:
        """Count the episodes needing disposal and the disposals; an ``alarm_disposal`` point
        for every disposal (time to dispose, category: the board's closed-loop panels)."""
        a = t.alarm
        with self._loop_lock:
            if t.annunciated and a.priority.rank >= Priority.MEDIUM.rank:
                self._needed += 1
            if t.action is Action.DISPOSE:
                self._disposed += 1
        if t.action is not Action.DISPOSE or a.disposal is None:
            return
        d = a.disposal
        key = {
            "park": self._plant.park_code,
            "enterprise": a.enterprise,
            "hazard_source": a.hazard_source,
            "alert": a.alert,
            "tag": a.tag or "",
            "zone": a.zone or "",
            "priority": a.priority.value,
            "category": d.category,
        }
        fields = {"time_to_dispose_s": max(0, d.at_ms - d.raised_ms) / 1000, "alarm_id": a.id}
        self._spool.append([(self._line(ALARM_DISPOSALS, key, fields, t.ts_ms), 1)], t.ts_ms)

    def _deltas(
        self, name: str, current: dict[tuple[str, ...], float]
    ) -> dict[tuple[str, ...], int]:
        before = self._previous.get(name, {})
        self._previous[name] = current
        return {k: int(v - before.get(k, 0.0)) for k, v in current.items()}

    def lines(self, now_ms: int) -> list[str]:
        """One point per series, at ``now_ms``."""
        m = self._metrics
        deltas = _Deltas(
            received=self._deltas("received", _counter_values(m.readings_received.collect())),
            accepted=self._deltas("accepted", _counter_values(m.readings_accepted.collect())),
            rejected=self._deltas("rejected", _counter_values(m.readings_rejected.collect())),
            messages=self._deltas("messages", _counter_values(m.messages_rejected.collect())),
            critical=self._deltas("critical", _counter_values(m.critical_topic_messages.collect())),
            critical_other=self._deltas(
                "critical_other", _counter_values(m.critical_topic_other_readings.collect())
            ),
        )
        alarms: list[Alarm] = [
            a for a in self._alarms.list(limit=1_000_000) if a.state in SHOWN_STATES
        ]
        out, online = self._enterprise_lines(deltas, alarms, now_ms)
        out += self._rejection_lines(deltas, now_ms)
        out += self._hazard_source_lines(alarms, now_ms)
        out.append(self._hub_line(deltas, alarms, online, now_ms))
        if self._extra is not None:
            out += self._extra(now_ms)
        return out

    def _enterprise_lines(
        self, deltas: _Deltas, alarms: list[Alarm], now_ms: int
    ) -> tuple[list[str], int]:
        """The ``hub_enterprise_stats`` points, and how many gateways are online."""
        park = self._plant.park_code
        stale_keys = {
            (a.enterprise, a.tag)
            for a in self._alarms.list(include_normal=True, limit=1_000_000)
            if a.alert in self._stale_alerts and a.active
        }
        gateways = self._live.gateways()
        out: list[str] = []

        def per_enterprise(table: dict[tuple[str, ...], int], enterprise: str) -> int:
            return sum(v for k, v in table.items() if k and k[0] == enterprise)

        online = 0
        for code in self._plant.enterprises:
            gw = gateways.get(code)
            is_online = gw is not None and gw.online
            online += is_online
            mine = [a for a in alarms if a.enterprise == code]
            tags = self._plant.tags_of(code)
            fields = {
                "online": int(is_online),
                "readings_received": per_enterprise(deltas.received, code),
                "readings_accepted": per_enterprise(deltas.accepted, code),
                "readings_rejected": per_enterprise(deltas.rejected, code),
                "critical_messages": per_enterprise(deltas.critical, code),
                "critical_other_readings": per_enterprise(deltas.critical_other, code),
                "tags": len(tags),
                "tags_stale": sum(t.in_service and (code, t.tag) in stale_keys for t in tags),
                "alarms_shown": len(mine),
                "alarms_unacknowledged": sum(not a.acknowledged for a in mine),
            }
            out.append(
                self._line(ENTERPRISE_STATS, {"park": park, "enterprise": code}, fields, now_ms)
            )
        return out, online

    def _rejection_lines(self, deltas: _Deltas, now_ms: int) -> list[str]:
        """The ``hub_rejections`` points: only series with something to report."""
        park = self._plant.park_code
        out: list[str] = []
        for (enterprise, reason), n in sorted(deltas.rejected.items()):
            msgs = deltas.messages.get((enterprise, reason), 0)
            if n or msgs:
                key = {"park": park, "enterprise": enterprise, "reason": reason}
                out.append(self._line(REJECTIONS, key, {"readings": n, "messages": msgs}, now_ms))
        return out

    def _hazard_source_lines(self, alarms: list[Alarm], now_ms: int) -> list[str]:
        """The ``hazard_source_stats`` points: worst tier and alarms shown per hazard source."""
        out: list[str] = []
        for code, hs in self._plant.hazard_sources.items():
            mine = [a for a in alarms if a.hazard_source == code]
            tier = max((TIER_OF_PRIORITY[a.priority] for a in mine), default=0)
            key = {
                "park": self._plant.park_code,
                "enterprise": hs.enterprise,
                "hazard_source": code,
            }
            hs_fields = {
                "tier": tier,
                "alarms_shown": len(mine),
                "alarms_unacknowledged": sum(not a.acknowledged for a in mine),
                "grade": hs.computed_grade or 0,
            }
            out.append(self._line(HAZARD_SOURCE_STATS, key, hs_fields, now_ms))
        return out

    def _hub_line(self, deltas: _Deltas, alarms: list[Alarm], online: int, now_ms: int) -> str:
        """The ``hub_stats`` point: the hub as a whole."""
        sample = self._metrics.registry.get_sample_value
        depth = self._spool.depth()
        age_s = 0.0 if depth.oldest_ms is None else max(0.0, (now_ms - depth.oldest_ms) / 1000)
        annunciations = self.flood.count(now_ms)
        fields_hub: dict[str, int | float] = {
            "spool_readings": depth.readings,
            "spool_batches": depth.batches,
            "spool_bytes": depth.bytes,
            "spool_age_s": float(age_s),
            "dead_letters": depth.dead_letters,
            "sink_up": int(sample("safety_hub_sink_up") or 0),
            "mqtt_connected": int(sample("safety_hub_mqtt_connected") or 0),
            "alarm_outbox_events": int(sample("safety_hub_alarm_outbox_events") or 0),
            "alarm_outbox_age_s": float(sample("safety_hub_alarm_outbox_age_seconds") or 0.0),
            "readings_received": sum(deltas.received.values()),
            "readings_accepted": sum(deltas.accepted.values()),
            "readings_rejected": sum(deltas.rejected.values()),
            "enterprises": len(self._plant.enterprises),
            "enterprises_online": online,
            "alarms_shown": len(alarms),
            "alarms_unacknowledged": sum(not a.acknowledged for a in alarms),
            "alarms_standing": sum(
                a.active_since_ms is not None and now_ms - a.active_since_ms > STANDING_MS
                for a in alarms
            ),
            "annunciations_10min": annunciations,
            "in_flood": int(self.flood.in_flood),
            "alarms_chattering": self.chatter.count(now_ms),
            **self._loop_fields(),
        }
        return self._line(HUB_STATS, {"park": self._plant.park_code}, fields_hub, now_ms)

    def _loop_fields(self) -> dict[str, int | float]:
        """The closed loop: red/orange warnings overdue now; needed and done since last time."""
        overdue = sum(
            a.disposal_overdue and a.priority in OVERDUE_PRIORITIES
            for a in self._alarms.list(include_normal=True, limit=1_000_000)
        )
        with self._loop_lock:
            needed, disposed = self._needed, self._disposed
            self._needed = self._disposed = 0
        return {
            "alarms_disposal_overdue": overdue,
            "disposals_needed": needed,
            "disposals": disposed,
        }

    @staticmethod
    def _line(
        measurement: str, tags: dict[str, str], fields: Mapping[str, int | float], ts: int
    ) -> str:
        parts = [
            f"{k}={v!r}" if isinstance(v, float) else f"{k}={int(v)}i" for k, v in fields.items()
        ]
        return series_prefix(measurement, tags) + ",".join(parts) + f" {ts}"

    def write(self, now_ms: int | None = None) -> int:
        """Spool one set of points; returns how many."""
        now = self._clock.now_ms() if now_ms is None else now_ms
        lines = self.lines(now)
        self._spool.append([("\n".join(lines), len(lines))], now)
        self.points_written += len(lines)
        return len(lines)

    def start(self, interval_s: float = 10.0) -> None:
        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.write()
                except Exception:
                    log.exception("hub stats: write failed")

        self._thread = threading.Thread(target=run, name="hub-stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
