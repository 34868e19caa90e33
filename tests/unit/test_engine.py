"""Rule engine: thresholds, delays, voting, SIS, watchdogs, snapshot/restore, determinism."""

from __future__ import annotations

import json
import random
import textwrap
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from safety_hub.alarms.model import Condition
from safety_hub.clock import VirtualClock
from safety_hub.ingest.telemetry import Reading
from safety_hub.registry import Plant, default_plant_path, load_plant, parse_plant
from safety_hub.rules.engine import RuleEngine
from safety_hub.rules.loader import load_rules, parse_rules
from safety_hub.rules.model import RulePack

ALERT_RULES = Path(__file__).resolve().parents[2] / "alert_rules"
E01 = "e01-chloralkali"
ZONE = ("GT-1101", "GT-1102", "GT-1103")  # Z-TK101, 2oo3, Cl2 l1 0.3 / l2 0.6 ppm, every 5 s


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(default_plant_path())


@pytest.fixture(scope="module")
def shipped(plant: Plant) -> RulePack:
    return load_rules(ALERT_RULES, plant)


def rules(plant: Plant, body: str) -> RulePack:
    """A pack from one rule group written inline (``body`` is the list under ``rules:``)."""
    text = "groups:\n  - name: test\n    rules:\n" + textwrap.indent(
        textwrap.dedent(body), "      "
    )
    return parse_rules([("test.yaml", text)], plant)


def rule(alert: str, select: str, condition: str, extra: str = "") -> str:
    return f"""\
- alert: {alert}
  select: {select}
  condition: {condition}
  labels: {{priority: medium, class: process}}
  annotations: {{summary: "{{{{tag}}}} {{{{value}}}}", summary_en: "{{{{tag}}}} {{{{value}}}}"}}
{extra}"""


class Feed:
    """Drives an engine through readings on a virtual clock and keeps what it emitted."""

    def __init__(self, pack: RulePack, plant: Plant, start_ms: int = 0) -> None:
        self.clock = VirtualClock(start_ms)
        self.engine = RuleEngine(pack, plant, self.clock)
        self.out: list[Condition] = []

    def at(
        self, ms: int, *values: tuple[str, float] | tuple[str, float, str], ent: str = E01
    ) -> list[Condition]:
        """Advance to ``ms`` and deliver readings stamped ``ms`` (received at ``ms``)."""
        self.clock.set(ms)
        got = self.engine.advance(ms)
        readings = [Reading(ent, v[0], ms, v[1], v[2] if len(v) == 3 else "good") for v in values]
        if readings:
            got += self.engine.on_readings(readings, ms)
        self.out += got
        return got

    def advance(self, ms: int) -> list[Condition]:
        self.clock.set(ms)
        got = self.engine.advance(ms)
        self.out += got
        return got

    def events(self, alert: str | None = None) -> list[tuple[str, bool, int]]:
        return [
            (c.key.split("|")[-1], c.active, c.ts_ms)
            for c in self.out
            if alert is None or c.alert == alert
        ]


def test_noisy_signal_around_setpoint_gives_one_alarm(plant: Plant) -> None:
    """Noise around a setpoint with a deadband and an on-delay raises exactly one alarm and
    clears it once."""
    pack = rules(
        plant,
        rule(
            "PressureHighTest",
            "{tag: PT-1101}",
            "{type: threshold, setpoint: 1.0, direction: high, deadband: 0.1, on_delay: 10s}",
        ),
    )
    feed = Feed(pack, plant)
    rng = random.Random(7)
    ms = 0
    for _ in range(20):  # well below
        feed.at(ms, ("PT-1101", 0.5 + rng.uniform(-0.02, 0.02)))
        ms += 1000
    for _ in range(60):  # noise around the setpoint, always above the deadband (0.9)
        feed.at(ms, ("PT-1101", 1.0 + rng.uniform(-0.08, 0.08)))
        ms += 1000
    for _ in range(20):
        feed.at(ms, ("PT-1101", 0.5))
        ms += 1000
    events = feed.events("PressureHighTest")
    assert [active for _, active, _ in events] == [True, False]


def test_same_noise_without_deadband_chatters(plant: Plant) -> None:
    """Without a deadband or on-delay the same noise raises many alarms (what the deadband is
    for)."""
    pack = rules(
        plant,
        rule(
            "PressureHighTest",
            "{tag: PT-1101}",
            "{type: threshold, setpoint: 1.0, direction: high}",
        ),
    )
    feed = Feed(pack, plant)
    rng = random.Random(7)
    for i in range(60):
        feed.at(i * 1000, ("PT-1101", 1.0 + rng.uniform(-0.08, 0.08)))
    assert sum(active for _, active, _ in feed.events()) > 5


def test_excursion_shorter_than_on_delay_gives_no_alarm(plant: Plant) -> None:
    """Excursions above the setpoint shorter than the on-delay raise nothing, even with the
    clock advanced past their deadlines."""
    pack = rules(
        plant,
        rule(
            "PressureHighTest",
            "{tag: PT-1101}",
            "{type: threshold, setpoint: 1.0, direction: high, on_delay: 20s}",
        ),
    )
    feed = Feed(pack, plant)
    values = [0.5, 1.2, 1.2, 0.5, 1.3, 1.3, 1.3, 0.9, 0.5, 0.5, 0.5, 0.5]  # every 5 s: < 15 s above
    for i, v in enumerate(values):
        feed.at(i * 5000, ("PT-1101", v))
    feed.advance(len(values) * 5000 + 60_000)
    assert feed.events() == []


def test_on_delay_expires_by_the_clock_and_is_recorded(plant: Plant) -> None:
    """A sustained excursion is raised at on-delay expiry (event time) by ``advance`` even when
    no further reading arrives, and the condition carries the on-delay."""
    pack = rules(
        plant,
        rule(
            "PressureHighTest",
            "{tag: PT-1101}",
            "{type: threshold, setpoint: 1.0, direction: high, on_delay: 15s}",
        ),
    )
    feed = Feed(pack, plant)
    feed.at(0, ("PT-1101", 1.5))
    assert feed.advance(14_999) == []
    (raised,) = feed.advance(15_000)
    assert (raised.active, raised.ts_ms, raised.on_delay_s, raised.value) == (
        True,
        15_000,
        15.0,
        1.5,
    )


def test_off_delay_holds_the_alarm(plant: Plant) -> None:
    """The alarm clears only after the value stayed back for the off-delay; a return inside it
    cancels the clear."""
    pack = rules(
        plant,
        rule(
            "PressureHighTest",
            "{tag: PT-1101}",
            "{type: threshold, setpoint: 1.0, direction: high, off_delay: 20s}",
        ),
    )
    feed = Feed(pack, plant)
    feed.at(0, ("PT-1101", 1.5))
    feed.at(5000, ("PT-1101", 0.5))
    feed.at(10_000, ("PT-1101", 1.5))  # back inside the off-delay
    feed.at(15_000, ("PT-1101", 0.5))
    feed.advance(34_999)
    assert feed.events() == [("PT-1101", True, 0)]
    feed.advance(35_000)
    assert feed.events() == [("PT-1101", True, 0), ("PT-1101", False, 35_000)]


def test_cl2_level_1_then_level_2_then_back(plant: Plant, shipped: RulePack) -> None:
    """Cl2 rising through level 1 and level 2 and falling back raises each level once and
    clears each once, with priority, level and setpoint on the conditions."""
    feed = Feed(shipped, plant)
    for i, v in enumerate([0.0, 0.35, 0.35, 0.7, 0.7, 0.1]):
        feed.at(i * 5000, ("GT-1101", v), ("GT-1102", 0.0), ("GT-1103", 0.0))
    gas = [c for c in feed.out if c.alert.startswith("ToxicGas")]
    assert [(c.alert, c.active, c.ts_ms) for c in gas] == [
        ("ToxicGasLevel1", True, 5000),
        ("ToxicGasLevel2", True, 15_000),
        ("ToxicGasLevel1", False, 25_000),
        ("ToxicGasLevel2", False, 25_000),
    ]
    l1, l2 = gas[0], gas[1]
    assert (l1.priority, l1.level, l1.setpoint, l1.alarm_class, l1.latch) == (
        "medium",
        1,
        0.3,
        "gas",
        True,
    )
    assert (l2.priority, l2.level, l2.setpoint, l2.value) == ("high", 2, 0.6, 0.7)
    assert (l2.enterprise, l2.hazard_source, l2.tag, l2.zone) == (
        E01,
        "HS-E01-01",
        "GT-1101",
        "Z-TK101",
    )
    assert l2.key == "ToxicGasLevel2|e01-chloralkali|GT-1101"
    assert not [k for k in feed.engine.active_keys() if k.startswith("ToxicGas")]
    assert (
        l2.summary
        == "1#液氯储罐A路氯气检测器（GT-1101）有毒气体（Cl2）二级报警：0.7 ppm，报警值 0.6 ppm"
    )
    assert l2.summary_en == "GT-1101 toxic gas (Cl2) level-2 alarm: 0.7 ppm (setpoint 0.6 ppm)"


def about_zone(conditions: Sequence[Condition]) -> list[Condition]:
    """The conditions about zone Z-TK101 or its detectors (other tags go stale in these tests)."""
    return [c for c in conditions if c.zone == "Z-TK101" and c.alert != "GasDetectorStale"]


def vote_events(feed: Feed) -> list[tuple[str, bool]]:
    return [(c.alert, c.active) for c in about_zone(feed.out) if c.tag is None]


def test_2oo3_one_detector_high_is_a_discrepancy_not_a_leak(
    plant: Plant, shipped: RulePack
) -> None:
    """One of three detectors above level 2 gives the discrepancy alarm after its on-delay and
    no leak."""
    feed = Feed(shipped, plant)
    for i in range(10):
        feed.at(i * 5000, ("GT-1101", 0.7 if i else 0.0), ("GT-1102", 0.0), ("GT-1103", 0.0))
    assert vote_events(feed) == [("GasVoteDiscrepancy", True)]
    (disc,) = [c for c in feed.out if c.alert == "GasVoteDiscrepancy"]
    assert (disc.zone, disc.tag, disc.ts_ms, disc.labels["votes"]) == (
        "Z-TK101",
        None,
        35_000,
        "1/3",
    )


def test_2oo3_two_detectors_high_is_a_leak(plant: Plant, shipped: RulePack) -> None:
    """Two of three detectors above level 2 raise the confirmed leak (critical) at once."""
    feed = Feed(shipped, plant)
    feed.at(0, *((t, 0.0) for t in ZONE))
    feed.at(5000, ("GT-1101", 0.7), ("GT-1102", 0.8), ("GT-1103", 0.0))
    (leak,) = [c for c in feed.out if c.alert == "GasLeakConfirmed"]
    assert (leak.active, leak.zone, leak.priority, leak.value, leak.ts_ms) == (
        True,
        "Z-TK101",
        "critical",
        0.8,
        5000,
    )
    assert leak.labels["votes"] == "2/3" and leak.labels["voting"] == "2oo3"
    assert vote_events(feed) == [("GasLeakConfirmed", True)]


def test_faulty_detector_degrades_vote_to_1oo2(plant: Plant, shipped: RulePack) -> None:
    """A detector with bad quality raises the degraded-vote alarm, and then one detector above
    level 2 is enough for the leak (1oo2 on the healthy two)."""
    feed = Feed(shipped, plant)
    feed.at(0, *((t, 0.0) for t in ZONE))
    feed.at(5000, ("GT-1101", 0.0), ("GT-1102", 0.0), ("GT-1103", 0.0, "bad"))
    assert vote_events(feed) == [("GasVoteDegraded", True)]
    degraded = next(c for c in about_zone(feed.out) if c.alert == "GasVoteDegraded")
    assert degraded.labels["faulty"] == "GT-1103" and degraded.alarm_class == "fault"
    feed.at(10_000, ("GT-1101", 0.7), ("GT-1102", 0.0), ("GT-1103", 0.0, "bad"))
    assert vote_events(feed) == [("GasVoteDegraded", True), ("GasLeakConfirmed", True)]
    feed.at(15_000, *((t, 0.0) for t in ZONE))  # all healthy and low again
    assert sorted(vote_events(feed)[2:]) == [
        ("GasLeakConfirmed", False),
        ("GasVoteDegraded", False),
    ]


def test_silent_detector_counts_as_faulty_in_the_vote(plant: Plant, shipped: RulePack) -> None:
    """A detector that stops publishing degrades the vote once it is stale (3 × 5 s)."""
    feed = Feed(shipped, plant)
    for i in range(8):
        feed.at(
            i * 5000, ("GT-1101", 0.0), ("GT-1102", 0.0), *([("GT-1103", 0.0)] if i == 0 else [])
        )
    (degraded,) = [c for c in about_zone(feed.out) if c.alert == "GasVoteDegraded"]
    assert (degraded.ts_ms, degraded.labels["faulty"]) == (15_000, "GT-1103")


def test_bypass_past_planned_end_escalates(plant: Plant) -> None:
    """A bypass is a standing low-priority alarm; left on past its planned end (registry) it
    raises the high-priority overdue alarm, by the clock alone."""
    sis_plant = load_plant(ALERT_RULES / "tests" / "plants" / "bypass_plant.yaml")
    pack = load_rules(ALERT_RULES / "sis.yaml", sis_plant)
    start = round(datetime.fromisoformat("2026-11-20T08:00:00+08:00").timestamp() * 1000)
    end = round(datetime.fromisoformat("2026-11-20T10:00:00+08:00").timestamp() * 1000)
    feed = Feed(pack, sis_plant, start)
    feed.at(start, ("UZ-101.BP", 1.0), ent="e1")
    assert [(c.alert, c.priority) for c in feed.out] == [("SisBypassActive", "low")]
    assert feed.advance(end - 1) == []
    (overdue,) = feed.advance(end + 60_000)
    assert (overdue.alert, overdue.active, overdue.priority, overdue.ts_ms) == (
        "SisBypassOverdue",
        True,
        "high",
        end,
    )
    assert overdue.labels["sif"] == "SIF-101"
    feed.at(end + 120_000, ("UZ-101.BP", 0.0), ent="e1")
    assert [(c.alert, c.active) for c in feed.out[-2:]] == [
        ("SisBypassActive", False),
        ("SisBypassOverdue", False),
    ]


def test_bypass_without_planned_end_uses_max_duration(plant: Plant, shipped: RulePack) -> None:
    """A bypass tag without a planned end is overdue after the rule's max_duration (8 h)."""
    feed = Feed(shipped, plant)
    feed.at(0, ("UZ-1101.BP", 1.0))
    feed.advance(8 * 3_600_000 - 1)
    assert feed.events("SisBypassOverdue") == []
    feed.advance(8 * 3_600_000)
    assert feed.events("SisBypassOverdue") == [("UZ-1101.BP", True, 8 * 3_600_000)]


def test_publisher_that_stops_gives_stale_alarm_in_its_window(
    plant: Plant, shipped: RulePack
) -> None:
    """A tag that stops publishing while its enterprise keeps reporting raises the stale alarm
    at last-receive + 3 × interval (hub time, fired by ``advance``) and clears with its next
    reading."""
    feed = Feed(shipped, plant)
    for ms in range(0, 30_000, 1000):
        feed.at(ms, ("TT-1101", 50.0), *([("PT-1101", 0.5)] if ms in (0, 5000, 10_000) else []))
        if ms == 24_000:
            feed.advance(24_999)
            assert [e for e in feed.events("TagStale") if e[0] == "PT-1101"] == []
    feed.at(30_000, ("PT-1101", 0.5))
    assert [e for e in feed.events("TagStale") if e[0] == "PT-1101"] == [
        ("PT-1101", True, 25_000),
        ("PT-1101", False, 30_000),
    ]


def test_gateway_last_will_gives_link_down(plant: Plant, shipped: RulePack) -> None:
    """The gateway's last-will (offline status) raises link down at once; online clears it."""
    feed = Feed(shipped, plant)
    feed.at(0, ("PT-1101", 0.5))
    (down,) = feed.engine.on_gateway_status(E01, False, 3000)
    assert (down.alert, down.active, down.ts_ms, down.tag, down.labels["cause"]) == (
        "EnterpriseLinkDown",
        True,
        3000,
        None,
        "offline",
    )
    assert down.key == "EnterpriseLinkDown|e01-chloralkali|e01-chloralkali"
    assert feed.engine.on_gateway_status(E01, False, 4000) == []  # raised once
    (up,) = feed.engine.on_gateway_status(E01, True, 9000)
    assert (up.active, up.ts_ms) == (False, 9000)


def test_silence_gives_link_down_and_suppresses_stale(plant: Plant, shipped: RulePack) -> None:
    """No reading from an enterprise for 60 s (nothing learned yet) raises link down; its stale
    tags are grouped under it, carry ``suppressed_by`` and the suppression API lists them."""
    feed = Feed(shipped, plant)
    feed.at(0, ("PT-1101", 0.5))
    feed.advance(59_999)
    assert (E01, True) not in [(k, a) for k, a, _ in feed.events("EnterpriseLinkDown")]
    feed.advance(60_000)
    assert (E01, True, 60_000) in feed.events("EnterpriseLinkDown")
    key = "TagStale|e01-chloralkali|PT-1101"
    link = "EnterpriseLinkDown|e01-chloralkali|e01-chloralkali"
    assert feed.engine.suppressed_by(key) == ("EnterpriseLinkDown", link)
    assert feed.engine.suppressed()[key] == ("EnterpriseLinkDown", link)
    feed.at(61_000, ("PT-1101", 0.5))
    assert feed.engine.suppressed_by(key) == ()


def test_bad_quality_raises_fault_and_no_concentration_alarm(
    plant: Plant, shipped: RulePack
) -> None:
    """A bad-quality reading far above level 2 raises only the detector fault (fault class,
    after its 5 s on-delay), never a concentration alarm; so does an out-of-range value."""
    feed = Feed(shipped, plant)
    for i in range(4):
        feed.at(i * 5000, ("GT-1101", 9.0, "bad"), ("GT-1102", 12.0), ("GT-1103", 0.0))
    alerts = {(c.alert, c.tag) for c in feed.out if c.active}
    assert ("GasDetectorBadQuality", "GT-1101") in alerts
    assert ("GasDetectorOutOfRange", "GT-1102") in alerts
    assert not [c for c in feed.out if c.alarm_class == "gas"]
    fault = next(c for c in feed.out if c.alert == "GasDetectorBadQuality")
    assert (fault.alarm_class, fault.ts_ms) == ("fault", 5000)
    assert feed.engine.counters["bad_quality_readings"] == 4
    assert feed.engine.counters["out_of_range_readings"] == 4


def test_snapshot_restore_mid_on_delay_continues_the_timer(plant: Plant, shipped: RulePack) -> None:
    """Restored from a JSON snapshot taken mid on-delay, the engine raises at the original
    deadline, and an alarm raised before the snapshot is not raised again."""
    feed = Feed(shipped, plant)
    feed.at(0, *((t, 0.0) for t in ZONE))
    feed.at(5000, ("GT-1101", 0.7), ("GT-1102", 0.0), ("GT-1103", 0.0))  # discrepancy due at 35 s
    raised_before = {c.key for c in feed.out if c.active}
    assert "ToxicGasLevel2|e01-chloralkali|GT-1101" in raised_before
    snapshot = json.loads(json.dumps(feed.engine.snapshot()))

    clock = VirtualClock(10_000)
    engine = RuleEngine.restore(shipped, plant, clock, snapshot)
    after: list[Condition] = []
    for ms in (10_000, 15_000, 20_000, 25_000, 30_000):
        clock.set(ms)
        after += engine.advance(ms)
        after += engine.on_readings(
            [
                Reading(E01, "GT-1101", ms, 0.7, "good"),
                Reading(E01, "GT-1102", ms, 0.0, "good"),
                Reading(E01, "GT-1103", ms, 0.0, "good"),
            ],
            ms,
        )
    assert about_zone(after) == []
    clock.set(35_000)
    (disc,) = [
        c for c in engine.advance(35_000) if c.alert == "GasVoteDiscrepancy" and c.zone == "Z-TK101"
    ]
    assert (disc.active, disc.ts_ms) == (True, 35_000)
    assert not {c.key for c in after if c.active} & raised_before
    cleared = engine.on_readings([Reading(E01, "GT-1101", 40_000, 0.0, "good")], 40_000)
    assert ("ToxicGasLevel2", False) in [(c.alert, c.active) for c in cleared]


def test_restore_keeps_late_data_policy_and_watchdogs(plant: Plant, shipped: RulePack) -> None:
    """After a restore, a reading older than the last one evaluated is still late, and a tag
    silent since before the restart goes stale at its original deadline."""
    feed = Feed(shipped, plant)
    feed.at(10_000, ("PT-1101", 0.5))
    snapshot = json.loads(json.dumps(feed.engine.snapshot()))
    clock = VirtualClock(20_000)
    engine = RuleEngine.restore(shipped, plant, clock, snapshot)
    assert engine.on_readings([Reading(E01, "PT-1101", 9000, 5.0, "good")], 20_000) == []
    assert engine.counters["late_readings"] == 1
    clock.set(80_000)  # the whole enterprise is silent: the stale waits for the link verdict
    stale = [c for c in engine.advance(80_000) if c.key == "TagStale|e01-chloralkali|PT-1101"]
    assert [(c.active, c.ts_ms) for c in stale] == [(True, 35_000)]
    assert stale[0].labels["parent"] == "EnterpriseLinkDown|e01-chloralkali|e01-chloralkali"


def test_restore_rejects_unknown_snapshot_version(plant: Plant, shipped: RulePack) -> None:
    """A snapshot of another format version is refused, not half-loaded."""
    with pytest.raises(ValueError, match="version"):
        RuleEngine.restore(shipped, plant, VirtualClock(0), {"version": 99})


def scripted_run(plant: Plant, pack: RulePack) -> list[Condition]:
    rng = random.Random(42)
    tags = [t for t in plant.tags.values() if t.enterprise == E01]
    clock = VirtualClock(0)
    engine = RuleEngine(pack, plant, clock)
    out: list[Condition] = []
    for step in range(200):
        ms = step * 1000
        clock.set(ms)
        out += engine.advance(ms)
        batch = []
        for tag in rng.sample(tags, 20):
            span = tag.range_hi - tag.range_lo
            quality = rng.choice(["good"] * 18 + ["bad", "uncertain"])
            batch.append(
                Reading(
                    E01,
                    tag.tag,
                    ms - rng.randint(0, 3000),
                    tag.range_lo + rng.uniform(0, span),
                    quality,
                )
            )
        out += engine.on_readings(batch, ms)
        if step == 120:
            out += engine.on_gateway_status(E01, False, ms)
    return out


def test_same_input_twice_gives_identical_conditions(plant: Plant, shipped: RulePack) -> None:
    """Two engines fed the same readings, statuses and clock emit identical conditions in the
    same order."""
    first = scripted_run(plant, shipped)
    assert len(first) > 50
    assert scripted_run(plant, shipped) == first


def test_conditions_alternate_raise_and_clear_per_key(plant: Plant, shipped: RulePack) -> None:
    """Over a random run every alarm instance alternates raise, clear, raise...: nothing is
    raised twice or cleared while not raised."""
    state: dict[str, bool] = {}
    for c in scripted_run(plant, shipped):
        assert state.get(c.key, False) != c.active, c.key
        state[c.key] = c.active


def test_late_and_duplicate_readings_are_counted_not_evaluated(plant: Plant) -> None:
    """A reading older than the newest evaluated one is late and a repeat of its timestamp is a
    duplicate: neither changes an alarm, both are counted."""
    pack = rules(
        plant,
        rule(
            "PressureHighTest",
            "{tag: PT-1101}",
            "{type: threshold, setpoint: 1.0, direction: high}",
        ),
    )
    feed = Feed(pack, plant)
    feed.at(10_000, ("PT-1101", 0.5))
    late = feed.engine.on_readings([Reading(E01, "PT-1101", 5000, 5.0, "good")], 11_000)
    dup = feed.engine.on_readings([Reading(E01, "PT-1101", 10_000, 5.0, "good")], 11_000)
    unknown = feed.engine.on_readings([Reading(E01, "NOPE", 12_000, 5.0, "good")], 12_000)
    assert late == dup == unknown == []
    c = feed.engine.counters
    assert (c["late_readings"], c["duplicate_readings"], c["unknown_tags"], c["readings"]) == (
        1,
        1,
        1,
        4,
    )


def test_rate_of_change_per_minute(plant: Plant) -> None:
    """A level rising faster than the rate (per minute, over the window) raises the alarm once
    the readings span half the window."""
    pack = rules(
        plant,
        rule("LevelRisingTest", "{tag: LT-1101}", "{type: rate_of_change, rate: 0.1, window: 60s}"),
    )
    feed = Feed(pack, plant)
    for i in range(13):  # +0.05 m every 5 s = 0.6 m/min
        feed.at(i * 5000, ("LT-1101", 1.0 + 0.05 * i))
    (raised,) = feed.out
    assert (raised.ts_ms, round(raised.value or 0, 6)) == (30_000, 0.6)


def test_clock_skew_from_reading_timestamps(plant: Plant, shipped: RulePack) -> None:
    """Readings stamped 30 s behind the hub raise clock skew for the enterprise after its
    on-delay; in-step readings clear it."""
    feed = Feed(shipped, plant)
    for i in range(8):
        ms = i * 10_000
        feed.clock.set(ms)
        feed.out += feed.engine.advance(ms)
        feed.out += feed.engine.on_readings(
            [Reading(E01, "PT-1101", ms - 30_000 + i, 0.5, "good")], ms
        )
    (skew,) = [c for c in feed.out if c.alert == "EnterpriseClockSkew"]
    assert (skew.active, skew.ts_ms, skew.enterprise, skew.labels["skew"]) == (
        True,
        20_000,
        E01,
        "+30s",
    )
    cleared = feed.engine.on_readings([Reading(E01, "PT-1101", 80_000, 0.5, "good")], 80_000)
    assert [(c.alert, c.active) for c in cleared] == [("EnterpriseClockSkew", False)]


def test_compound_needs_all_members_in_the_same_hazard_source(
    plant: Plant, shipped: RulePack
) -> None:
    """``all:`` fires when every referenced alert is active in one hazard source, not when they
    are active in different ones."""
    feed = Feed(shipped, plant)
    feed.at(0, ("UZ-1101.BP", 1.0), ("UZ-1301.FLT", 1.0))  # HS-E01-01 and HS-E01-03
    feed.advance(10_000)
    assert feed.events("SisBypassedAndFaulty") == []
    feed.at(20_000, ("UZ-1102.FLT", 1.0))  # HS-E01-01, raised after its 5 s on-delay
    feed.advance(25_000)
    assert feed.events("SisBypassedAndFaulty") == [("HS-E01-01", True, 25_000)]
    feed.at(30_000, ("UZ-1101.BP", 0.0))
    assert feed.events("SisBypassedAndFaulty")[-1] == ("HS-E01-01", False, 30_000)


def test_out_of_service_tag_is_suppressed_by_design(plant: Plant, shipped: RulePack) -> None:
    """An alarm on a tag out of service is still emitted, labelled ``suppressed_by``."""
    feed = Feed(shipped, plant)
    feed.at(0, ("GT-5104", 45.0), ent="e05-tankfarm")
    l2 = next(c for c in feed.out if c.alert == "CombustibleGasLevel2")
    assert l2.labels["suppressed_by"] == "out_of_service"


def test_priority_is_the_rules_before_the_grade_rule(plant: Plant) -> None:
    """Conditions carry the rule's priority even on a grade-1 source: raising a level-2 alarm
    there to high is the alarm service's job (it keeps both)."""
    text = rule("ToxicTest", "{tag: GT-1101}", "{type: threshold, setpoint: 0.5, direction: high}")
    labels = 'priority: medium, level: "2"'
    pack = rules(plant, text.replace("priority: medium", labels).replace("process", "gas"))
    feed = Feed(pack, plant)
    feed.at(5000, ("GT-1101", 0.6))  # HS-E01-01, grade 1
    assert [(c.priority, c.level) for c in feed.out] == [("medium", 2)]


def test_readings_touch_only_their_own_tag_instances(plant: Plant, shipped: RulePack) -> None:
    """Rules are indexed by (enterprise, tag) at construction: the instances a reading feeds
    are exactly those of its tag."""
    engine = RuleEngine(shipped, plant, VirtualClock(0))
    slot = engine._slots[(E01, "GT-1101")]
    fed = [i.rt.alert for i in (*slot.values, *slot.faults, *slot.ranges, *slot.stales)]
    fed += [v.rt.alert for v, _ in slot.votes]
    assert sorted(fed) == sorted(
        [
            "ToxicGasLevel1",
            "ToxicGasLevel2",
            "GasDetectorBadQuality",
            "GasDetectorOutOfRange",
            "GasDetectorStale",
            "GasDetectorFrozen",
            "GasLeakConfirmed",
            "GasVoteDiscrepancy",
            "GasVoteDegraded",
        ]
    )


def test_custom_plant_zone_and_numeric_setpoint() -> None:
    """A 1oo2 zone of a small plant votes a leak with one detector, never a discrepancy."""
    small = parse_plant(
        textwrap.dedent(
            """\
            version: 1
            park: {code: p1, name: 测试园区}
            enterprises:
              - code: e1
                name: 测试企业
                tags:
                  - {tag: GT-1, kind: combustible_gas, eu: "%LEL", range: [0, 100], gas: CH4, setpoints: {l1: 20, l2: 40}, zone: Z1, voting: 1oo2}
                  - {tag: GT-2, kind: combustible_gas, eu: "%LEL", range: [0, 100], gas: CH4, setpoints: {l1: 20, l2: 40}, zone: Z1, voting: 1oo2}
            """
        )
    )
    body = ""
    for report in ("leak", "discrepancy"):
        body += rule(
            f"Vote{report.title()}",
            "{kind: combustible_gas}",
            f"{{type: voting, report: {report}, setpoint: 30}}",
        )
    feed = Feed(rules(small, body), small)
    feed.at(0, ("GT-1", 35.0), ("GT-2", 0.0), ent="e1")
    assert [(c.alert, c.zone, c.setpoint) for c in feed.out] == [("VoteLeak", "Z1", 30.0)]


def test_on_readings_accepts_any_order_of_tags(plant: Plant, shipped: RulePack) -> None:
    """Readings of different tags in one batch are independent of their order within it."""
    a = Feed(shipped, plant)
    b = Feed(shipped, plant)
    values: Sequence[tuple[str, float]] = [("PT-1101", 1.3), ("TT-1101", 50.0), ("LT-1101", 2.4)]
    a.at(0, *values)
    b.at(0, *reversed(values))
    assert sorted(a.out, key=lambda c: c.key) == sorted(b.out, key=lambda c: c.key)


def test_suppression_changes_feed_the_alarm_service(plant: Plant, shipped: RulePack) -> None:
    """``suppression_changes`` first reports every suppression (out-of-service tags), then only
    what a suppressing alarm's raise or clear changed, grouped by cause as hold or release."""
    feed = Feed(shipped, plant)
    first = feed.engine.suppression_changes()
    assert {(c.cause, c.hold) for c in first} == {("out_of_service", True)}
    assert "GasDetectorStale|e05-tankfarm|GT-5104" in first[0].keys
    assert feed.engine.suppression_changes() == []
    feed.engine.on_gateway_status(E01, False, 1000)
    (held,) = feed.engine.suppression_changes()
    assert (held.cause, held.hold) == ("EnterpriseLinkDown", True)
    assert "TagStale|e01-chloralkali|PT-1101" in held.keys
    assert all(k.startswith("TagStale|e01-chloralkali|") for k in held.keys)
    feed.engine.on_gateway_status(E01, True, 2000)
    (released,) = feed.engine.suppression_changes()
    assert (released.cause, released.hold, released.keys) == (
        "EnterpriseLinkDown",
        False,
        held.keys,
    )


def test_a_standby_taking_over_gives_every_tag_a_full_window_from_the_takeover(
    plant: Plant, shipped: RulePack
) -> None:
    """An engine that did not listen for an hour (a redundant pair's standby) raises no stale
    or link-down alarm for that hour once resumed; a tag that stays silent after the takeover
    is stale in its window, counted from the takeover. Without resume the hour raises them."""
    hour = 3_600_000
    idle = Feed(shipped, plant)
    idle.advance(hour)
    assert idle.events("EnterpriseLinkDown") and idle.events("TagStale")
    resumed = Feed(shipped, plant)
    resumed.engine.resume(hour)
    resumed.advance(hour + 1_000)
    assert resumed.events("EnterpriseLinkDown") == [] and resumed.events("TagStale") == []
    resumed.advance(hour + 60_000)
    assert (E01, True, hour + 60_000) in resumed.events("EnterpriseLinkDown")
