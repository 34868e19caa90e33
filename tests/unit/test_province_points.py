"""Province mode's InfluxDB points (docs/province.md, "InfluxDB"): the reading points and their
bound on series, the per-park statistics, the refusals, and the runtime that spools them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from safety_hub.clock import VirtualClock
from safety_hub.errors import DiskFullError
from safety_hub.ingest.lineproto import parse_line
from safety_hub.runtime.province import ProvinceRuntime
from safety_hub.settings import load_settings
from safety_hub.uplink.province import Limits, Refused, parse_record
from safety_hub.uplink.province_points import (
    PROVINCE_PARK_STATS,
    PROVINCE_READING,
    PROVINCE_REFUSALS,
    PROVINCE_STATS,
    ProvincePoints,
)

NOW = 1_790_000_000_000
_n = 0


def reading(**data: Any) -> dict[str, Any]:
    return {
        "enterprise": "e1",
        "hazard_source": "HS-1",
        "tag": "GT-1",
        "point_code": "e1/GT-1",
        "value": 0.42,
        "eu": "ppm",
        "quality": "good",
        "ts_ms": NOW - 5_000,
        **data,
    }


def message(kind: str, park: str = "pa", **data: Any) -> bytes:
    global _n
    _n += 1
    body = {"park": park, "dataId": f"{_n:032x}", "kind": kind, "key": "k", "data": data}
    return json.dumps(body).encode()


def by_measurement(lines: list[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for line in lines:
        parsed = parse_line(line)
        out.setdefault(parsed.measurement, []).append(parsed)
    return out


def test_a_reading_point_carries_its_codes_value_and_source_time() -> None:
    points = ProvincePoints(max_series=10)
    line = points.reading_line("pa", reading(hazard_source="HS 1,a=b", eu='m"3'))
    assert line is not None
    parsed = parse_line(line)
    assert parsed.measurement == PROVINCE_READING
    assert parsed.tags == {
        "park": "pa",
        "enterprise": "e1",
        "hazard_source": "HS 1,a=b",
        "tag": "GT-1",
    }
    assert parsed.fields == {"value": 0.42, "quality": "good", "eu": 'm"3'}
    assert parsed.timestamp == NOW - 5_000
    outside = parse_line(points.reading_line("pa", reading(hazard_source="")) or "")
    assert "hazard_source" not in outside.tags  # outside every hazard source: no empty tag


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"value": "high"}, "bad_value"),
        ({"value": float("nan")}, "bad_value"),
        ({"value": True}, "bad_value"),
        ({"ts_ms": None}, "bad_value"),
        ({"ts_ms": "2026-11-30"}, "bad_value"),
        ({"tag": "GT\n1"}, "bad_code"),  # a line break would end the point
        ({"enterprise": "e1\\"}, "bad_code"),  # a trailing backslash would escape the comma
    ],
)
def test_a_reading_that_cannot_be_a_point_is_counted_not_written(
    data: dict[str, Any], reason: str
) -> None:
    points = ProvincePoints(max_series=10)
    assert points.reading_line("pa", reading(**data)) is None
    assert points.uncharted == {reason: 1}
    lines = by_measurement(points.stats_lines([], True, NOW))
    (refusal,) = lines[PROVINCE_REFUSALS]
    assert refusal.tags == {"stage": "chart", "reason": reason} and refusal.fields == {"records": 1}


def test_reading_series_are_bounded_and_the_refusals_counted() -> None:
    points = ProvincePoints(max_series=2)
    assert points.reading_line("pa", reading(tag="A")) is not None
    assert points.reading_line("pb", reading(tag="A")) is not None
    assert points.reading_line("pa", reading(tag="B")) is None  # a third series
    assert points.reading_line("pa", reading(tag="A", value=2.0)) is not None  # a known one
    assert points.series == 2 and points.uncharted == {"too_many_series": 1}
    points.restore("pc", reading(tag="C"))  # a kept reading at start: the bound holds too
    assert points.series == 2


def test_park_statistics_count_since_the_previous_point() -> None:
    points = ProvincePoints(max_series=10)
    for _ in range(3):
        points.taken("pa")
    points.duplicate("pa")
    points.refused("too_many_parks")
    park = {
        "park": "pa",
        "worst_tier": "red",
        "open_warnings": 3,
        "by_tier": {"red": 1, "yellow": 2},
        "enterprises": 2,
        "hazard_sources": 4,
        "tags": 9,
        "last_record": NOW - 2_500,
        "link": "up",
    }
    first = by_measurement(points.stats_lines([park], True, NOW))
    (pa,) = first[PROVINCE_PARK_STATS]
    assert pa.tags == {"park": "pa"} and pa.timestamp == NOW
    assert pa.fields == {
        "worst_tier": 4,
        "open_warnings": 3,
        "warnings_red": 1,
        "warnings_orange": 0,
        "warnings_yellow": 2,
        "warnings_blue": 0,
        "enterprises": 2,
        "hazard_sources": 4,
        "tags": 9,
        "link_up": 1,
        "stale": 0,
        "records": 3,
        "duplicates": 1,
        "last_record_age_s": 2.5,
    }
    (hub,) = first[PROVINCE_STATS]
    assert hub.fields == {
        "connected": 1,
        "parks": 1,
        "records": 3,
        "duplicates": 1,
        "refused": 1,
        "series": 0,
    }
    (refusal,) = first[PROVINCE_REFUSALS]
    assert refusal.tags == {"stage": "record", "reason": "too_many_parks"}
    second = by_measurement(points.stats_lines([{**park, "link": "stale"}], False, NOW + 10_000))
    (pa,) = second[PROVINCE_PARK_STATS]
    assert pa.fields["records"] == pa.fields["duplicates"] == 0
    assert pa.fields["stale"] == 1 and pa.fields["link_up"] == 0
    assert PROVINCE_REFUSALS not in second  # nothing new to report


def test_a_park_code_with_a_backslash_is_refused() -> None:
    with pytest.raises(Refused) as info:
        parse_record("p\\a", message("enterprise", park="p\\a", enterprise="e1"), Limits())
    assert info.value.reason == "malformed"


class ListSpool:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.full = False

    def write(self, lines: list[str], now_ms: int) -> None:
        if self.full:
            raise DiskFullError("spool.sqlite", "disk full")
        self.lines += lines


def runtime(tmp_path: Path, spool: ListSpool, **settings: Any) -> ProvinceRuntime:
    prov = ProvinceRuntime(
        load_settings(data_dir=tmp_path, province=True, **settings), VirtualClock(NOW)
    )
    prov.write = spool.write
    return prov


def test_the_runtime_spools_readings_and_statistics(tmp_path: Path) -> None:
    spool = ListSpool()
    prov = runtime(tmp_path, spool, province_max_parks=1)
    assert prov.handle("pa", message("enterprise", enterprise="e1"))
    warn = {"enterprise": "e1", "point_code": "e1/GT-1", "tag": "GT-1", "state": "unacknowledged"}
    assert prov.handle("pa", message("warning", alarm_id=1, tier="orange", **warn))
    first = message("reading", **reading())
    assert prov.handle("pa", first) and prov.handle("pa", first)  # the second: a duplicate
    assert prov.handle("pb", message("enterprise", park="pb", enterprise="e9"))  # a park too many
    (point,) = by_measurement(spool.lines)[PROVINCE_READING]
    assert point.fields["value"] == 0.42
    stats = by_measurement(prov.stats_lines(NOW))
    (pa,) = stats[PROVINCE_PARK_STATS]
    assert pa.fields["worst_tier"] == 3 and pa.fields["warnings_orange"] == 1
    assert pa.fields["records"] == 3 and pa.fields["duplicates"] == 1
    assert [r.tags["reason"] for r in stats[PROVINCE_REFUSALS]] == ["too_many_parks"]
    prov.close()
    again = runtime(tmp_path, ListSpool(), province_max_series=1)
    assert again.points.series == 1  # the kept reading's series, back from province.sqlite
    again.close()


def test_a_full_spool_leaves_the_reading_unacknowledged(tmp_path: Path) -> None:
    spool = ListSpool()
    prov = runtime(tmp_path, spool)
    body = message("reading", **reading())
    spool.full = True
    assert prov.handle("pa", body) is False
    assert prov.counters()["accepted"] == {}  # not kept: the broker delivers it again
    spool.full = False
    assert prov.handle("pa", body) is True
    assert len(spool.lines) == 1 and prov.counters()["accepted"] == {"reading": 1}
    prov.close()
