"""Province mode without a broker: what a bridge message must hold, the bounds, the worst
open tier per park / enterprise / hazard source, and the de-duplication by dataId in a real
SQLite file (kept across a restart, bounded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from safety_hub.clock import VirtualClock
from safety_hub.errors import ConfigError
from safety_hub.runtime.province import ProvinceRuntime
from safety_hub.settings import load_settings
from safety_hub.uplink.province import Limits, ProvinceView, Refused, parse_record
from safety_hub.uplink.province_store import ProvinceStore

LIMITS = Limits(max_parks=2, max_enterprises=2, max_tags=2, max_payload_bytes=2048)
_n = 0


def message(kind: str, park: str = "pa", **data: Any) -> bytes:
    global _n
    _n += 1
    fields = {"enterprise": "e1", "tag": "GT-1", "point_code": "e1/GT-1", **data}
    if kind == "hazard_source":
        fields.setdefault("hazard_source", "HS-1")
    body = {"park": park, "dataId": f"{_n:032x}", "kind": kind, "key": "k", "data": fields}
    return json.dumps(body).encode()


def warning(alarm_id: int, tier: str, state: str = "unacknowledged", **more: Any) -> bytes:
    return message(
        "warning", alarm_id=alarm_id, tier=tier, state=state, hazard_source="HS-1", **more
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * 3000, "oversized"),
        (b"\xff{", "malformed"),
        (b"[1]", "malformed"),
        (message("gossip"), "unknown_kind"),
        (message("reading", park="other"), "malformed"),
        (message("warning", alarm_id=1, state="normal"), "malformed"),  # no tier
        (
            json.dumps({"park": "pa", "dataId": "XYZ", "kind": "tag", "data": {}}).encode(),
            "malformed",
        ),
    ],
)
def test_bad_messages_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(Refused) as info:
        parse_record("pa", payload, LIMITS)
    assert info.value.reason == reason


def take(view: ProvinceView, payload: bytes, park: str = "pa") -> None:
    record = parse_record(park, payload, LIMITS)
    view.check(record)
    view.apply(record, 1000)


def test_the_worst_open_tier_rolls_up_and_a_cleared_warning_closes() -> None:
    view = ProvinceView(LIMITS)
    take(view, message("hazard_source", name="tank"))
    take(view, warning(1, "yellow"))
    take(view, warning(2, "red", tag="GT-2", point_code="e1/GT-2"))
    park = view.park("pa", 1000, 10_000)
    assert park is not None and park["worst_tier"] == "red" and park["open_warnings"] == 2
    (ent,) = park["enterprise_list"]
    assert ent["worst_tier"] == "red" and ent["hazard_sources"][0]["worst_tier"] == "red"
    take(view, warning(2, "red", state="normal"))  # cleared
    take(view, warning(1, "yellow", disposal_state="disposed"))
    park = view.park("pa", 1000, 10_000)
    assert park is not None and park["worst_tier"] is None and park["warnings"] == []
    (summary,) = view.summaries(1000 + 20_000, 10_000)
    assert summary["link"] == "stale"


def test_bounds_refuse_new_parks_and_tags_but_not_known_ones() -> None:
    view = ProvinceView(LIMITS)
    take(view, message("reading", ts_ms=1))
    take(view, message("tag", tag="GT-2", point_code="e1/GT-2"))
    take(view, message("reading", ts_ms=2))  # a known point code
    with pytest.raises(Refused) as info:
        take(view, message("reading", tag="GT-3", point_code="e1/GT-3"))
    assert info.value.reason == "too_many_readings"
    take(view, message("enterprise", park="pb"), park="pb")
    with pytest.raises(Refused) as parks:
        take(view, message("enterprise", park="pc"), park="pc")
    assert parks.value.reason == "too_many_parks"


def test_an_older_reading_does_not_replace_a_newer_one() -> None:
    view = ProvinceView(LIMITS)
    take(view, message("reading", ts_ms=20, value=2))
    take(view, message("reading", ts_ms=10, value=1))
    assert [r["value"] for r in view.readings("pa") or []] == [2]


def runtime(tmp_path: Path, **settings: Any) -> ProvinceRuntime:
    return ProvinceRuntime(
        load_settings(data_dir=tmp_path, province=True, **settings), VirtualClock(1_000_000)
    )


def test_a_repeated_data_id_is_taken_once_also_after_a_restart(tmp_path: Path) -> None:
    prov = runtime(tmp_path)
    red = warning(7, "red")
    assert prov.handle("pa", red) and prov.handle("pa", red)
    assert prov.handle("pa", b"{}")  # refused: acknowledged, counted
    counters = prov.counters()
    assert counters["accepted"] == {"warning": 1} and counters["duplicates"] == 1
    assert counters["refused"] == {"malformed": 1}
    prov.close()
    again = runtime(tmp_path)
    assert again.handle("pa", red)
    assert again.counters()["duplicates"] == 1 and again.counters()["accepted"] == {}
    assert again.parks()[0]["worst_tier"] == "red"  # the view came back from the file
    again.close()


def test_the_seen_table_is_bounded(tmp_path: Path) -> None:
    store = ProvinceStore(tmp_path / "p.sqlite", max_seen=1000)
    view = ProvinceView(Limits())
    for i in range(1200):
        record = parse_record("pa", message("reading", ts_ms=i), Limits())
        assert store.take(record, view.apply(record, i), i)
    assert store.seen_count <= 1100
    store.close()


def test_province_mode_is_refused_on_a_redundant_pair(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="redundant pair"):
        load_settings(
            data_dir=tmp_path,
            province=True,
            ha=True,
            state_url="postgresql://u:p@127.0.0.1:5432/db",
            mqtt_url="mqtt://127.0.0.1:1883",
        )
