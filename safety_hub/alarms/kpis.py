"""Alarm-system KPIs (ISA-18.2 / EEMUA 191) and alarm floods, as pure functions of the journal.

Only annunciations count (`model.is_annunciation`): an alarm that is shelved, suppressed or out of
service does not annunciate, so it adds nothing to rates, floods or bad actors. Definitions and
targets are in docs/alarms.md.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from safety_hub.alarms.disposal import FALSE_ALARM, from_entry
from safety_hub.alarms.model import (
    CONDITION_EDGES,
    HIDDEN_STATES,
    Action,
    Alarm,
    AlarmState,
    JournalEntry,
    Priority,
)

MINUTE_MS = 60_000
TEN_MIN_MS = 10 * MINUTE_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

FLOOD_WINDOW_MS = TEN_MIN_MS
FLOOD_STARTS_ABOVE = 10  # annunciations in the sliding window
FLOOD_ENDS_BELOW = 5
CHATTER_WINDOW_MS = MINUTE_MS
CHATTER_TRANSITIONS = 3  # into or out of alarm (CONDITION_EDGES), within the window
STANDING_AFTER_MS = DAY_MS
BAD_ACTORS = 10

# The label on a rule (and so on its alarms) that routes it to an operator position.
POSITION_LABEL = "operator_position"


@dataclass(frozen=True, slots=True)
class FloodEpisode:
    start_ms: int  # the annunciation that made it more than 10 in 10 minutes
    end_ms: int | None  # when fewer than 5 were left in the last 10 minutes; None: ongoing
    peak_count: int  # most annunciations in any 10 minutes during the flood
    alarm_count: int  # annunciations from the 10 minutes before the start up to the end

    def as_json(self) -> dict[str, Any]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "peak_count": self.peak_count,
            "alarm_count": self.alarm_count,
        }


@dataclass(frozen=True, slots=True)
class AlarmCount:
    alarm_id: int
    key: str
    alert: str
    count: int

    def as_json(self) -> dict[str, Any]:
        return {
            "alarm_id": self.alarm_id,
            "key": self.key,
            "alert": self.alert,
            "count": self.count,
        }


@dataclass(frozen=True, slots=True)
class StandingAlarm:
    alarm_id: int
    key: str
    alert: str
    active_since_ms: int

    def as_json(self) -> dict[str, Any]:
        return {
            "alarm_id": self.alarm_id,
            "key": self.key,
            "alert": self.alert,
            "active_since_ms": self.active_since_ms,
        }


@dataclass(frozen=True, slots=True)
class FalseAlarms:
    """False-alarm disposals of one detector (tag), for alarm rationalisation."""

    enterprise: str
    tag: str
    count: int

    def as_json(self) -> dict[str, Any]:
        return {"enterprise": self.enterprise, "tag": self.tag, "count": self.count}


@dataclass(frozen=True, slots=True)
class DisposalKpis:
    """The closed loop over the window (docs/alarms.md, "Disposal")."""

    needed: int = 0  # episodes of tier yellow or above that annunciated in the window
    disposed: int = 0  # of those, disposed (up to the window end)
    rate_pct: float | None = None  # disposed / needed; None when nothing needed disposal
    disposals: int = 0  # disposal records made in the window (any episode)
    median_time_to_dispose_ms: float | None = None  # of those records
    p90_time_to_dispose_ms: float | None = None  # nearest rank
    false_alarms: list[FalseAlarms] = field(default_factory=list)  # most first

    def as_json(self) -> dict[str, Any]:
        return {
            "needed": self.needed,
            "disposed": self.disposed,
            "rate_pct": self.rate_pct,
            "disposals": self.disposals,
            "median_time_to_dispose_ms": self.median_time_to_dispose_ms,
            "p90_time_to_dispose_ms": self.p90_time_to_dispose_ms,
            "false_alarms": [f.as_json() for f in self.false_alarms],
        }


def disposal_kpis(in_window: Sequence[JournalEntry], alarms: Mapping[int, Alarm]) -> DisposalKpis:
    """Disposal rate, time to dispose and false alarms per detector of the window's rows."""
    needed = {
        (e.alarm_id, e.raised_ms)
        for e in in_window
        if e.annunciated and e.priority is not None and e.priority.rank >= Priority.MEDIUM.rank
    }
    records = [(e.alarm_id, r) for e in in_window if (r := from_entry(e)) is not None]
    disposed = needed & {(alarm_id, r.raised_ms) for alarm_id, r in records}
    times = sorted(r.at_ms - r.raised_ms for _, r in records)
    false_by_tag = Counter(
        (a.enterprise, a.tag or a.zone or a.key)
        for alarm_id, r in records
        if r.category == FALSE_ALARM and alarm_id is not None and (a := alarms.get(alarm_id))
    )
    return DisposalKpis(
        needed=len(needed),
        disposed=len(disposed),
        rate_pct=100.0 * len(disposed) / len(needed) if needed else None,
        disposals=len(records),
        median_time_to_dispose_ms=float(statistics.median(times)) if times else None,
        p90_time_to_dispose_ms=float(times[math.ceil(0.9 * len(times)) - 1]) if times else None,
        false_alarms=[
            FalseAlarms(ent, tag, n)
            for (ent, tag), n in sorted(false_by_tag.items(), key=lambda i: (-i[1], i[0]))
        ],
    )


@dataclass(frozen=True, slots=True)
class Kpis:
    """KPIs over the window ``(window_start_ms, window_end_ms]`` for one position or all."""

    operator_position: str | None
    window_start_ms: int
    window_end_ms: int
    annunciations: int
    rate_per_10min: float  # averages over the window
    rate_per_hour: float
    rate_per_day: float
    peak_10min: int  # most annunciations in any sliding 10 minutes of the window
    flood_time_pct: float
    chattering: list[AlarmCount]  # count: most transitions within one minute
    standing: list[StandingAlarm]  # active and in service for more than 24 h, at the window end
    bad_actors: list[AlarmCount]  # top 10 by annunciations in the window
    priority_mix_pct: dict[str, float]  # of the annunciations in the window
    acknowledgements: int
    mean_time_to_ack_ms: float | None
    median_time_to_ack_ms: float | None
    disposal: DisposalKpis = field(default_factory=DisposalKpis)

    def as_json(self) -> dict[str, Any]:
        return {
            "operator_position": self.operator_position,
            "window_start_ms": self.window_start_ms,
            "window_end_ms": self.window_end_ms,
            "annunciations": self.annunciations,
            "rate_per_10min": self.rate_per_10min,
            "rate_per_hour": self.rate_per_hour,
            "rate_per_day": self.rate_per_day,
            "peak_10min": self.peak_10min,
            "flood_time_pct": self.flood_time_pct,
            "chattering": [c.as_json() for c in self.chattering],
            "standing": [s.as_json() for s in self.standing],
            "bad_actors": [b.as_json() for b in self.bad_actors],
            "priority_mix_pct": dict(self.priority_mix_pct),
            "acknowledgements": self.acknowledgements,
            "mean_time_to_ack_ms": self.mean_time_to_ack_ms,
            "median_time_to_ack_ms": self.median_time_to_ack_ms,
            "disposal": self.disposal.as_json(),
        }


class _SlidingCount:
    """How many annunciations lie in ``(t - window, t]``, for any t."""

    def __init__(self, times: Iterable[int], window_ms: int) -> None:
        self.times = sorted(times)
        self.window_ms = window_ms

    def at(self, t: int) -> int:
        return bisect_right(self.times, t) - bisect_right(self.times, t - self.window_ms)

    def changes(self, since_ms: int, until_ms: int) -> list[int]:
        """The times in ``(since_ms, until_ms]`` where the count can change, in order."""
        moments = {t for t in self.times if since_ms < t <= until_ms}
        moments.update(
            t + self.window_ms for t in self.times if since_ms < t + self.window_ms <= until_ms
        )
        return sorted(moments)


def flood_episodes(
    annunciation_times: Iterable[int],
    *,
    now_ms: int,
    window_ms: int = FLOOD_WINDOW_MS,
    starts_above: int = FLOOD_STARTS_ABOVE,
    ends_below: int = FLOOD_ENDS_BELOW,
) -> list[FloodEpisode]:
    """Flood episodes up to ``now_ms``: start above 10 in 10 minutes, end below 5 (hysteresis)."""
    counter = _SlidingCount((t for t in annunciation_times if t <= now_ms), window_ms)
    if not counter.times:
        return []
    episodes: list[FloodEpisode] = []
    start: int | None = None
    peak = 0
    for moment in counter.changes(counter.times[0] - 1, now_ms):
        count = counter.at(moment)
        if start is None:
            if count > starts_above:
                start, peak = moment, count
        elif count < ends_below:
            alarms = _count_between(counter.times, start - window_ms, moment, end_inclusive=False)
            episodes.append(FloodEpisode(start, moment, peak, alarms))
            start = None
        else:
            peak = max(peak, count)
    if start is not None:
        alarms = _count_between(counter.times, start - window_ms, now_ms, end_inclusive=True)
        episodes.append(FloodEpisode(start, None, peak, alarms))
    return episodes


def time_in_flood_ms(episodes: Iterable[FloodEpisode], since_ms: int, until_ms: int) -> int:
    total = 0
    for episode in episodes:
        end = until_ms if episode.end_ms is None else min(episode.end_ms, until_ms)
        total += max(0, end - max(episode.start_ms, since_ms))
    return total


def peak_count(
    annunciation_times: Iterable[int], since_ms: int, until_ms: int, window_ms: int = TEN_MIN_MS
) -> int:
    """Most annunciations in any sliding window that ends within ``(since_ms, until_ms]``."""
    counter = _SlidingCount(annunciation_times, window_ms)
    moments = [since_ms + 1, *counter.changes(since_ms + 1, until_ms)]
    return max(counter.at(m) for m in moments)


def most_within(times: Sequence[int], window_ms: int) -> int:
    """Most of the sorted ``times`` that fit in a span of ``window_ms`` (ends inclusive)."""
    best = 0
    first = 0
    for last, t in enumerate(times):
        while t - times[first] > window_ms:
            first += 1
        best = max(best, last - first + 1)
    return best


def compute_kpis(
    *,
    entries: Sequence[JournalEntry],
    all_annunciation_times: Sequence[int],
    alarms: Mapping[int, Alarm],
    window_ms: int,
    now_ms: int,
    operator_position: str | None,
) -> Kpis:
    """KPIs over ``(now_ms - window_ms, now_ms]``.

    ``entries`` are the journal rows of the window and of the 10 minutes before it (the peak's
    sliding window looks back), ``all_annunciation_times`` every annunciation up to ``now_ms``
    (a flood's hysteresis depends on how it began), both already narrowed to the position's
    alarms; ``alarms`` the current alarms by id.
    """
    since_ms = now_ms - window_ms
    in_window = [e for e in entries if since_ms < e.ts_ms <= now_ms]
    annunciations = [e for e in in_window if e.annunciated]
    count = len(annunciations)

    episodes = flood_episodes(all_annunciation_times, now_ms=now_ms)
    flood_ms = time_in_flood_ms(episodes, since_ms, now_ms)
    peak = peak_count((e.ts_ms for e in entries if e.annunciated), since_ms, now_ms)

    chatter_times: dict[int, list[int]] = defaultdict(list)
    for e in in_window:
        if (
            e.alarm_id is not None
            and e.action in CONDITION_EDGES
            and e.to_state not in HIDDEN_STATES
        ):
            chatter_times[e.alarm_id].append(e.ts_ms)
    chattering = sorted(
        (
            _alarm_count(alarms, alarm_id, most)
            for alarm_id, times in chatter_times.items()
            if (most := most_within(times, CHATTER_WINDOW_MS)) >= CHATTER_TRANSITIONS
        ),
        key=lambda c: (-c.count, c.alarm_id),
    )

    by_alarm = Counter(e.alarm_id for e in annunciations if e.alarm_id is not None)
    bad_actors = [
        _alarm_count(alarms, alarm_id, n)
        for alarm_id, n in sorted(by_alarm.items(), key=lambda item: (-item[1], item[0]))
    ][:BAD_ACTORS]

    by_priority = Counter(e.priority for e in annunciations)
    mix = {p.value: (100.0 * by_priority[p] / count if count else 0.0) for p in Priority}

    ack_times = [
        e.ts_ms - e.raised_ms
        for e in in_window
        if e.action is Action.ACK and e.raised_ms is not None
    ]

    return Kpis(
        operator_position=operator_position,
        window_start_ms=since_ms,
        window_end_ms=now_ms,
        annunciations=count,
        rate_per_10min=count * TEN_MIN_MS / window_ms,
        rate_per_hour=count * HOUR_MS / window_ms,
        rate_per_day=count * DAY_MS / window_ms,
        peak_10min=peak,
        flood_time_pct=100.0 * flood_ms / window_ms,
        chattering=chattering,
        standing=standing_alarms(alarms.values(), now_ms),
        bad_actors=bad_actors,
        priority_mix_pct=mix,
        acknowledgements=len(ack_times),
        mean_time_to_ack_ms=statistics.fmean(ack_times) if ack_times else None,
        median_time_to_ack_ms=float(statistics.median(ack_times)) if ack_times else None,
        disposal=disposal_kpis(in_window, alarms),
    )


def standing_alarms(alarms: Iterable[Alarm], now_ms: int) -> list[StandingAlarm]:
    """In service with the condition active for more than 24 h, oldest first."""
    standing = [
        StandingAlarm(a.id, a.key, a.alert, a.active_since_ms)
        for a in alarms
        if a.state in (AlarmState.UNACKNOWLEDGED, AlarmState.ACKNOWLEDGED)
        and a.active_since_ms is not None
        and now_ms - a.active_since_ms > STANDING_AFTER_MS
    ]
    return sorted(standing, key=lambda s: (s.active_since_ms, s.alarm_id))


def alarms_of_position(alarms: Iterable[Alarm], position: str | None) -> Collection[int] | None:
    """Ids of the alarms routed to ``position``; None means every alarm."""
    if position is None:
        return None
    return {a.id for a in alarms if a.labels.get(POSITION_LABEL) == position}


def _alarm_count(alarms: Mapping[int, Alarm], alarm_id: int, count: int) -> AlarmCount:
    alarm = alarms.get(alarm_id)
    return AlarmCount(alarm_id, alarm.key if alarm else "", alarm.alert if alarm else "", count)


def _count_between(times: Sequence[int], after: int, until: int, *, end_inclusive: bool) -> int:
    lo = bisect_right(times, after)
    hi = bisect_right(times, until) if end_inclusive else bisect_right(times, until - 1)
    return hi - lo
