"""Province mode's points for InfluxDB (docs/province.md, "InfluxDB"): what the province board
reads. Pure: line protocol text, counters and the bound on reading series; the runtime appends
the lines to the hub's spool, which the hub's sink writes like every other point.

- ``province_reading``: every reading record taken, at its source time (``ts_ms``), tagged
  ``park``, ``enterprise``, ``hazard_source``, ``tag``; fields ``value``, ``quality``, ``eu``.
  The tag values come from outsiders: at most ``max_series`` distinct series (all parks
  together) are written; a reading of one more is kept in the view but not written, counted as
  ``too_many_series``; one without a finite number value or an integer time as ``bad_value``.
- ``province_park_stats`` (every stats interval, one point per park in the view, so bounded by
  ``SAFETY_HUB_PROVINCE_MAX_PARKS``): worst tier (0-4), open warnings in total and by tier,
  enterprises, hazard sources, tags, age of the last record, link up / stale, records taken and
  duplicates since the previous point.
- ``province_stats`` (one point): subscribed, parks, records taken / duplicates / refused since
  the previous point, reading series written.
- ``province_refusals`` (only series with something to report): per ``stage`` (``record``: the
  record was refused and not taken; ``chart``: taken, its reading not written) and ``reason``,
  ``records`` since the previous point.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from safety_hub.ingest.lineproto import escape_string_field, format_float, series_prefix
from safety_hub.uplink.province import TIER_RANK

PROVINCE_READING = "province_reading"
PROVINCE_PARK_STATS = "province_park_stats"
PROVINCE_STATS = "province_stats"
PROVINCE_REFUSALS = "province_refusals"
TIERS = ("red", "orange", "yellow", "blue")
"""worst first, as in the view"""
_MAX_TEXT = 200

SeriesKey = tuple[str, str, str, str]
"""(park, enterprise, hazard_source, tag)"""


def _field_set(fields: Mapping[str, int | float | str]) -> str:
    parts = []
    for key, value in fields.items():
        if isinstance(value, str):
            parts.append(f'{key}="{escape_string_field(value)}"')
        elif isinstance(value, float):
            parts.append(f"{key}={format_float(value)}")
        else:
            parts.append(f"{key}={int(value)}i")
    return ",".join(parts)


def _text(value: Any) -> str:
    """A field's text: bounded, control characters (a line break ends a point) as spaces."""
    text = "" if value is None else str(value)[:_MAX_TEXT]
    return text if text.isprintable() else "".join(c if c.isprintable() else " " for c in text)


def _code(value: Any) -> str | None:
    """A tag value: printable, no backslash (line protocol cannot escape one at its end)."""
    text = "" if value is None else str(value)
    if len(text) > _MAX_TEXT or not text.isprintable() or "\\" in text:
        return None
    return text


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class ProvincePoints:
    """Thread-safe: records are taken on the subscription's thread, the statistics are written
    on the hub's statistics thread."""

    def __init__(self, max_series: int) -> None:
        self.max_series = max_series
        self._series: set[SeriesKey] = set()
        self._lock = threading.Lock()
        self._taken: Counter[str] = Counter()
        self._duplicates: Counter[str] = Counter()
        self._refused: Counter[tuple[str, str]] = Counter()
        self.uncharted: Counter[str] = Counter()
        """readings taken but not written, by reason, since the start (for /metrics)"""

    @staticmethod
    def series_of(park: str, data: Mapping[str, Any]) -> SeriesKey | None:
        """The reading's series; None when a code cannot be a tag value."""
        codes = [_code(park), *(_code(data.get(k)) for k in ("enterprise", "hazard_source", "tag"))]
        if any(c is None for c in codes):
            return None
        p, e, h, t = (str(c) for c in codes)
        return (p, e, h, t)

    def restore(self, park: str, data: Mapping[str, Any]) -> None:
        """A kept reading at start: its series counts against the bound again."""
        key = self.series_of(park, data)
        with self._lock:
            if key is not None and len(self._series) < self.max_series:
                self._series.add(key)

    def reading_line(self, park: str, data: Mapping[str, Any]) -> str | None:
        """The ``province_reading`` point of a reading record; None (counted): not written."""
        value = _number(data.get("value"))
        ts = data.get("ts_ms")
        if value is None or isinstance(ts, bool) or not isinstance(ts, int) or ts <= 0:
            self._uncharted("bad_value")
            return None
        key = self.series_of(park, data)
        if key is None:
            self._uncharted("bad_code")
            return None
        with self._lock:
            if key not in self._series:
                if len(self._series) >= self.max_series:
                    self._refused["chart", "too_many_series"] += 1
                    self.uncharted["too_many_series"] += 1
                    return None
                self._series.add(key)
        tags = dict(zip(("park", "enterprise", "hazard_source", "tag"), key, strict=True))
        fields: dict[str, int | float | str] = {"value": value}
        fields["quality"] = _text(data.get("quality")) or "good"
        if data.get("eu") is not None:
            fields["eu"] = _text(data.get("eu"))
        return series_prefix(PROVINCE_READING, tags) + _field_set(fields) + f" {ts}"

    def _uncharted(self, reason: str) -> None:
        with self._lock:
            self._refused["chart", reason] += 1
            self.uncharted[reason] += 1

    def taken(self, park: str) -> None:
        with self._lock:
            self._taken[park] += 1

    def duplicate(self, park: str) -> None:
        with self._lock:
            self._duplicates[park] += 1

    def refused(self, reason: str) -> None:
        with self._lock:
            self._refused["record", reason] += 1

    @property
    def series(self) -> int:
        with self._lock:
            return len(self._series)

    def stats_lines(
        self, parks: Iterable[Mapping[str, Any]], connected: bool, now_ms: int
    ) -> list[str]:
        """The statistics points at ``now_ms``; ``parks``: the view's park statistics
        (:meth:`ProvinceView.park_stats`). Counts are since the previous call."""
        with self._lock:
            taken, self._taken = self._taken, Counter()
            duplicates, self._duplicates = self._duplicates, Counter()
            refused, self._refused = self._refused, Counter()
            series = len(self._series)
        hub: dict[str, int | float | str] = {
            "connected": int(connected),
            "parks": 0,
            "records": sum(taken.values()),
            "duplicates": sum(duplicates.values()),
            "refused": sum(n for (stage, _), n in refused.items() if stage == "record"),
            "series": series,
        }
        out: list[str] = []
        known = 0
        for p in parks:
            known += 1
            code = str(p["park"])
            by_tier: Mapping[str, int] = p["by_tier"]
            fields: dict[str, int | float | str] = {
                "worst_tier": TIER_RANK.get(str(p["worst_tier"]), 0),
                "open_warnings": int(p["open_warnings"]),
                **{f"warnings_{tier}": int(by_tier.get(tier, 0)) for tier in TIERS},
                "enterprises": int(p["enterprises"]),
                "hazard_sources": int(p["hazard_sources"]),
                "tags": int(p["tags"]),
                "link_up": int(p["link"] == "up"),
                "stale": int(p["link"] == "stale"),
                "records": taken.pop(code, 0),
                "duplicates": duplicates.pop(code, 0),
            }
            if p["last_record"]:
                fields["last_record_age_s"] = max(0.0, (now_ms - int(p["last_record"])) / 1000)
            out.append(
                series_prefix(PROVINCE_PARK_STATS, {"park": code})
                + _field_set(fields)
                + f" {now_ms}"
            )
        hub["parks"] = known
        out.append(series_prefix(PROVINCE_STATS, {}) + _field_set(hub) + f" {now_ms}")
        for (stage, reason), n in sorted(refused.items()):
            key = {"stage": stage, "reason": reason}
            out.append(series_prefix(PROVINCE_REFUSALS, key) + f"records={n}i {now_ms}")
        return out
