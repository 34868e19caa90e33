"""A gateway clock far ahead of the hub's: its readings are accepted as skewed (not rejected),
evaluated with the sent time, stored and shown at the receive time with the sent time beside
it, and reported to the sender as a warning."""

from __future__ import annotations

import json
from pathlib import Path

from safety_hub.ingest.decoder import TelemetryDecoder
from safety_hub.ingest.lineproto import parse_line
from safety_hub.ingest.telemetry import Reading
from tests.unit.test_pipeline import NOW, Rig

HOUR = 3_600_000


def decoder() -> TelemetryDecoder:
    return TelemetryDecoder({("e1", "GT-1101"): 1}, {"e1"}, lambda: NOW)


def test_a_reading_an_hour_ahead_is_accepted_as_skewed() -> None:
    """Beyond SAFETY_HUB_MAX_FUTURE_S (300 s) but within the horizon: accepted, counted and
    noted with the sent time; the reading keeps its sent timestamp for the rule engine."""
    body = {"readings": [{"tag": "GT-1101", "v": 1.0, "ts": NOW + HOUR}]}
    msg = decoder().decode("hazard/v1/e1/telemetry", json.dumps(body).encode())
    assert msg.readings == [Reading("e1", "GT-1101", NOW + HOUR, 1.0, "good")]
    assert (msg.rejected, msg.skewed, msg.skewed_after) == (0, 1, NOW + 300_000)
    (note,) = msg.skew_notes
    assert note.as_json() == {
        "reason": "skewed_timestamp",
        "index": 0,
        "tag": "GT-1101",
        "detail": f"ts {NOW + HOUR} is 3600 s ahead of the hub's clock (more than 300 s): "
        "accepted as skewed, evaluated and stored at the hub's receive time with the sent ts "
        "as source_ts",
    }


def test_within_the_max_future_nothing_is_skewed_and_beyond_the_horizon_is_rejected() -> None:
    """299 s ahead is an ordinary reading; 8 days ahead is a wrong unit or a broken clock."""
    body = {
        "readings": [
            {"tag": "GT-1101", "v": 1.0, "ts": NOW + 299_000},
            {"tag": "GT-1101", "v": 2.0, "ts": NOW + 8 * 86_400_000},
        ]
    }
    msg = decoder().decode("hazard/v1/e1/telemetry", json.dumps(body).encode())
    assert [r.ts_ms for r in msg.readings] == [NOW + 299_000]
    assert msg.skewed == 0
    assert [(r.index, r.reason.value) for r in msg.rejections] == [(1, "future_timestamp")]


def test_skewed_readings_are_stored_at_receive_time_with_source_ts_and_reported(
    tmp_path: Path,
) -> None:
    """Two readings of one message 1 h ahead, 2 s apart, and one in step: the skewed ones are
    spooled at the receive time (the newest exactly at it, the other 2 s before) with
    ``source_ts`` and ``ts_quality``; the live table shows the receive time; the rule engine
    (a listener) gets the sent times; the sender gets a warning report; a metric counts them."""
    rig = Rig(tmp_path)
    seen: list[Reading] = []
    rig.ingest.add_listener(seen.extend)
    msg = rig.message(
        "e1",
        [
            {"tag": "T1", "v": 1.5, "ts": NOW + HOUR - 2_000},
            {"tag": "T1", "v": 1.6, "ts": NOW + HOUR},
            {"tag": "T 2,x=y", "v": 9.0, "ts": NOW - 10},
        ],
        n=7,
    )
    rig.ingest.process([msg])
    assert rig.source.acked == [msg]
    lines = [parse_line(line) for line in rig.spool.peek(10)[0].lines.split("\n")]
    assert [(p.timestamp, p.fields) for p in lines] == [
        (
            NOW - 2_000,
            {
                "value": 1.5,
                "quality": "good",
                "source_ts": NOW + HOUR - 2_000,
                "ts_quality": "skewed",
            },
        ),
        (NOW, {"value": 1.6, "quality": "good", "source_ts": NOW + HOUR, "ts_quality": "skewed"}),
        (NOW - 10, {"value": 9.0, "quality": "good"}),
    ]
    latest = rig.live.latest("e1", "T1")
    assert latest is not None and (latest.ts_ms, latest.value) == (NOW, 1.6)
    assert [r.ts_ms for r in seen] == [NOW + HOUR - 2_000, NOW + HOUR, NOW - 10]
    [(topic, payload)] = rig.source.published
    report = json.loads(payload)
    assert topic == "hazard/v1/e1/rejected"
    assert (report["seq"], report["accepted"], report["rejected_count"]) == (7, 3, 0)
    assert report["rejected"] == []
    assert report["skewed_count"] == 2
    assert [(w["index"], w["reason"]) for w in report["skewed"]] == [
        (0, "skewed_timestamp"),
        (1, "skewed_timestamp"),
    ]
    assert rig.metric("safety_hub_readings_skewed_total", enterprise="e1") == 2
    assert rig.metric("safety_hub_readings_accepted_total", enterprise="e1") == 3
