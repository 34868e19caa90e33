"""The hub's statistics measurements that the data-quality and alarm boards read."""

from __future__ import annotations

import json
from pathlib import Path

from connectors.influx import SqliteStore
from safety_hub.alarms import AlarmState
from safety_hub.clock import VirtualClock
from safety_hub.ingest.lineproto import parse_line
from safety_hub.ports import InboundMessage
from safety_hub.runtime.hub import Hub, Storage
from safety_hub.runtime.hub_stats import (
    ALARM_ACKS,
    ALARM_DISPOSALS,
    ENTERPRISE_STATS,
    HAZARD_SOURCE_STATS,
    HUB_STATS,
    REJECTIONS,
    ChatterTracker,
    FloodTracker,
)
from safety_hub.settings import load_settings
from tests.unit.fakes import MemorySource
from tests.unit.test_alarms_support import Rig

NOW = 1_790_000_000_000
E01 = "e01-chloralkali"


def _hub(tmp_path: Path) -> tuple[Hub, VirtualClock]:
    store = SqliteStore(tmp_path / "readings.sqlite")
    clock = VirtualClock(NOW)
    hub = Hub(
        load_settings(data_dir=tmp_path),
        clock=clock,
        storage=Storage(store, store, "test store"),
        source=MemorySource(),
    )
    return hub, clock


def _send(hub: Hub, ts: int, readings: list[dict[str, object]]) -> None:
    body = json.dumps({"ts": ts, "readings": readings}).encode()
    hub.ingest.process([InboundMessage(f"hazard/v1/{E01}/telemetry", body, ts)])


def _by_measurement(lines: list[str]) -> dict[str, list[tuple[dict[str, str], dict[str, object]]]]:
    out: dict[str, list[tuple[dict[str, str], dict[str, object]]]] = {}
    for line in lines:
        parsed = parse_line(line)
        out.setdefault(parsed.measurement, []).append((parsed.tags, parsed.fields))
    return out


def test_flood_starts_above_10_and_ends_below_5() -> None:
    """ISA-18.2 flood hysteresis over the sliding 10 minutes."""
    flood = FloodTracker()
    for i in range(10):
        flood.annunciation(NOW + i * 1_000)
    assert flood.count(NOW + 10_000) == 10 and not flood.in_flood
    flood.annunciation(NOW + 11_000)
    assert flood.in_flood
    # 10 min after the 6th annunciation 5 remain: still a flood; after the 7th, 4: over.
    assert flood.count(NOW + 5_000 + 600_000) == 5 and flood.in_flood
    assert flood.count(NOW + 6_000 + 600_000) == 4 and not flood.in_flood


def test_counts_are_deltas_per_interval(tmp_path: Path) -> None:
    """Rejections and readings are counted once, in the interval they happened."""
    hub, clock = _hub(tmp_path)
    _send(
        hub,
        NOW,
        [{"tag": "GT-1101", "v": 0.01}, {"tag": "NOPE-1", "v": 1}, {"tag": "LT-1101", "v": 1.2}],
    )
    first = _by_measurement(hub.stats.lines(NOW))
    assert first[REJECTIONS] == [
        (
            {"park": "alxa-hitech", "enterprise": E01, "reason": "unknown_tag"},
            {"readings": 1, "messages": 0},
        )
    ]
    e01 = next(f for t, f in first[ENTERPRISE_STATS] if t["enterprise"] == E01)
    assert (e01["readings_received"], e01["readings_accepted"], e01["readings_rejected"]) == (
        3,
        2,
        1,
    )
    assert e01["tags"] == len(hub.plant.tags_of(E01)) and e01["online"] == 0
    hub_fields = first[HUB_STATS][0][1]
    assert hub_fields["readings_accepted"] == 2 and hub_fields["enterprises"] == 5
    assert hub_fields["spool_readings"] >= 2  # nothing drained yet
    clock.advance(10_000)
    second = _by_measurement(hub.stats.lines(NOW + 10_000))
    assert REJECTIONS not in second
    e01 = next(f for t, f in second[ENTERPRISE_STATS] if t["enterprise"] == E01)
    assert e01["readings_received"] == 0
    assert {t["hazard_source"] for t, _ in second[HAZARD_SOURCE_STATS]} == set(
        hub.plant.hazard_sources
    )


def test_tier_and_time_to_ack(tmp_path: Path) -> None:
    """A chlorine level-2 alarm paints its hazard source; the ack writes its delay."""
    hub, clock = _hub(tmp_path)
    _send(hub, NOW, [{"tag": "GT-1101", "v": 0.9}])
    lines = _by_measurement(hub.stats.lines(NOW))
    tiers = {t["hazard_source"]: f["tier"] for t, f in lines[HAZARD_SOURCE_STATS]}
    assert tiers["HS-E01-01"] == 3  # level 2 on a grade-1 source: high, orange
    assert set(tiers.values()) == {0, 3}
    hub_fields = lines[HUB_STATS][0][1]
    assert hub_fields["alarms_shown"] == hub_fields["alarms_unacknowledged"] == 2  # L1 and L2
    assert hub_fields["annunciations_10min"] == 2
    clock.set(NOW + 42_000)
    alarm = hub.alarms.service.find(f"ToxicGasLevel2|{E01}|GT-1101")
    assert alarm is not None
    acked = hub.alarms.service.acknowledge(alarm.id, "zhang.wei")
    assert acked.state is AlarmState.ACKNOWLEDGED
    acks = [parse_line(b.lines) for b in hub.spool.peek(100_000) if b.lines.startswith(ALARM_ACKS)]
    assert len(acks) == 1
    assert acks[0].fields["time_to_ack_s"] == 42.0 and acks[0].timestamp == NOW + 42_000
    assert acks[0].tags["priority"] == "high" and acks[0].tags["tag"] == "GT-1101"
    after = _by_measurement(hub.stats.lines(NOW + 42_000))[HUB_STATS][0][1]
    assert after["alarms_unacknowledged"] == 1


def test_a_chattering_latched_detector_is_one_annunciation_and_one_chattering_alarm(
    tmp_path: Path,
) -> None:
    """GT-1208 (Cl2, level 1 at 0.3 ppm, latching) in and out every 10 s: the hub statistics
    count one annunciation in the sliding 10 minutes, no flood, and one chattering alarm,
    which leaves the count 10 minutes after it last chattered."""
    hub, clock = _hub(tmp_path)
    for i in range(6):
        clock.set(NOW + i * 10_000)
        _send(hub, NOW + i * 10_000, [{"tag": "GT-1208", "v": 0.4 if i % 2 == 0 else 0.01}])
    fields = _by_measurement(hub.stats.lines(NOW + 60_000))[HUB_STATS][0][1]
    assert (fields["annunciations_10min"], fields["in_flood"]) == (1, 0)
    assert fields["alarms_chattering"] == 1
    alarm = hub.alarms.service.find(f"ToxicGasLevel1|{E01}|GT-1208")
    assert alarm is not None and (alarm.count, alarm.returns) == (1, 2)
    later = _by_measurement(hub.stats.lines(NOW + 50_000 + 600_000))[HUB_STATS][0][1]
    assert later["alarms_chattering"] == 0


def test_chatter_needs_three_edges_within_a_minute() -> None:
    """Edges 40 s apart never put three in one minute; 30 s apart do (both ends count)."""
    rig = Rig()
    tracker = ChatterTracker()
    rig.svc.subscribe(tracker.on_transition)
    slow, fast = "Slow|e01-chloralkali|PT-1", "Fast|e01-chloralkali|PT-2"
    for step in range(4):
        rig.clock.set(NOW + step * 40_000)
        rig.svc.apply(rig.condition(slow, step % 2 == 0))
    assert tracker.count(rig.clock.now_ms()) == 0
    for step in range(3):
        rig.clock.set(NOW + 200_000 + step * 30_000)
        rig.svc.apply(rig.condition(fast, step % 2 == 0))
    assert tracker.count(rig.clock.now_ms()) == 1


def test_the_closed_loop_counts_and_the_disposal_point(tmp_path: Path) -> None:
    """Episodes needing disposal and disposals as deltas, the overdue red/orange count, and
    an ``alarm_disposal`` point at each disposal."""
    hub, clock = _hub(tmp_path)
    _send(hub, NOW, [{"tag": "GT-1101", "v": 0.9}])  # level 1 (yellow) and level 2 (orange)
    first = _by_measurement(hub.stats.lines(NOW))[HUB_STATS][0][1]
    assert (first["disposals_needed"], first["disposals"]) == (2, 0)
    assert first["alarms_disposal_overdue"] == 0
    clock.set(NOW + 2 * 3_600_000)  # orange: 2 h
    hub.alarms.tick()
    svc = hub.alarms.service
    level2 = svc.find(f"ToxicGasLevel2|{E01}|GT-1101")
    assert level2 is not None and level2.disposal_overdue
    second = _by_measurement(hub.stats.lines(NOW + 2 * 3_600_000))[HUB_STATS][0][1]
    assert second["alarms_disposal_overdue"] == 1  # (2 h without readings: stale tags raised)
    clock.set(NOW + 2 * 3_600_000 + 30_000)
    svc.dispose(level2.id, "zhang.wei", "false_alarm", "bump test")
    points = [
        parse_line(b.lines) for b in hub.spool.peek(100_000) if b.lines.startswith(ALARM_DISPOSALS)
    ]
    assert len(points) == 1
    assert points[0].fields["time_to_dispose_s"] == 7230.0
    assert points[0].tags["category"] == "false_alarm" and points[0].tags["tag"] == "GT-1101"
    third = _by_measurement(hub.stats.lines(NOW + 2 * 3_600_000 + 30_000))[HUB_STATS][0][1]
    assert (third["disposals"], third["alarms_disposal_overdue"]) == (1, 0)


def test_alarm_events_waiting_for_the_broker_are_in_hub_stats(tmp_path: Path) -> None:
    """hub_stats carries the alarm outbox's gauges (what the outbox publisher last saw), so the
    data-quality board shows alarm events stuck behind a broker outage."""
    hub, _ = _hub(tmp_path)
    fields = _by_measurement(hub.stats.lines(NOW))[HUB_STATS][0][1]
    assert (fields["alarm_outbox_events"], fields["alarm_outbox_age_s"]) == (0, 0.0)
    hub.metrics.alarm_outbox_events.set(3)
    hub.metrics.alarm_outbox_age.set(42.5)
    fields = _by_measurement(hub.stats.lines(NOW + 10_000))[HUB_STATS][0][1]
    assert (fields["alarm_outbox_events"], fields["alarm_outbox_age_s"]) == (3, 42.5)


def test_the_critical_topic_and_readings_misplaced_there_are_counted_per_enterprise(
    tmp_path: Path,
) -> None:
    """Messages on an enterprise's critical topic (contract v1.1) are counted in its
    statistics, and so are readings there that are neither gas detectors nor SIS."""
    hub, clock = _hub(tmp_path)
    body = json.dumps(
        {"ts": NOW, "readings": [{"tag": "GT-1101", "v": 0.01}, {"tag": "LT-1101", "v": 1.2}]}
    ).encode()
    hub.ingest.process([InboundMessage(f"hazard/v1/{E01}/critical", body, NOW)])
    _send(hub, NOW, [{"tag": "GT-1102", "v": 0.01}])  # telemetry: not counted as critical
    lines = _by_measurement(hub.stats.lines(NOW))
    e01 = next(f for t, f in lines[ENTERPRISE_STATS] if t["enterprise"] == E01)
    assert (e01["critical_messages"], e01["critical_other_readings"]) == (1, 1)
    assert e01["readings_accepted"] == 3
    others = [f for t, f in lines[ENTERPRISE_STATS] if t["enterprise"] != E01]
    assert all(f["critical_messages"] == 0 for f in others)
    clock.advance(10_000)
    later = _by_measurement(hub.stats.lines(NOW + 10_000))
    e01 = next(f for t, f in later[ENTERPRISE_STATS] if t["enterprise"] == E01)
    assert (e01["critical_messages"], e01["critical_other_readings"]) == (0, 0)
