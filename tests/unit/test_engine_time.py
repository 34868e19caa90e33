"""Rule engine and time: a reading stamped in the future cannot blind a tag, move its timers or
be evaluated twice."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from safety_hub.alarms.model import Condition
from safety_hub.clock import VirtualClock
from safety_hub.ingest.telemetry import Reading
from safety_hub.registry import Plant, default_plant_path, load_plant
from safety_hub.rules.engine import (
    AHEAD_MEMORY,
    DEFAULT_MAX_LEAD_MS,
    TRANSIT_SLACK_MS,
    RuleEngine,
)
from safety_hub.rules.loader import load_rules, parse_rules
from safety_hub.rules.model import RulePack

ALERT_RULES = Path(__file__).resolve().parents[2] / "alert_rules"
E01 = "e01-chloralkali"
T0 = 1_800_000_000_000  # hub time of the first reading in every test
AHEAD = 295_000  # inside the decoder's 300 s limit: what the tester sent
L2_KEY = "ToxicGasLevel2|e01-chloralkali|GT-1101"  # Cl2, level 2 at 0.6 ppm, no on-delay


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(default_plant_path())


@pytest.fixture(scope="module")
def shipped(plant: Plant) -> RulePack:
    return load_rules(ALERT_RULES, plant)


def pressure_rule(plant: Plant, on_delay: str = "0s") -> RulePack:
    """PT-1101 above 1.0 (no deadband), with an optional on-delay."""
    text = textwrap.dedent(
        f"""\
        groups:
          - name: test
            rules:
              - alert: PressureHighTest
                select: {{tag: PT-1101}}
                condition: {{type: threshold, setpoint: 1.0, direction: high, on_delay: {on_delay}}}
                labels: {{priority: medium, class: process}}
                annotations: {{summary: "{{{{tag}}}}", summary_en: "{{{{tag}}}}"}}
        """
    )
    return parse_rules([("test.yaml", text)], plant)


class Hub:
    """Drives an engine the way the hub does: readings stamped by the gateway, received at hub
    time, ``advance`` before each batch; keeps every condition emitted."""

    def __init__(self, engine: RuleEngine, clock: VirtualClock) -> None:
        self.engine = engine
        self.clock = clock
        self.out: list[Condition] = []

    @classmethod
    def new(cls, pack: RulePack, plant: Plant, **kwargs: Any) -> Hub:
        clock = VirtualClock(T0)
        return cls(RuleEngine(pack, plant, clock, **kwargs), clock)

    def receive(
        self, hub_ms: int, *readings: tuple[str, int, float] | tuple[str, int, float, str]
    ) -> list[Condition]:
        """At hub time ``hub_ms``, readings ``(tag, stamped_ms, value[, quality])`` of E01."""
        got = self.advance(hub_ms)
        batch = [Reading(E01, r[0], r[1], r[2], r[3] if len(r) == 4 else "good") for r in readings]
        new = self.engine.on_readings(batch, hub_ms)
        self.out += new
        return got + new

    def advance(self, hub_ms: int) -> list[Condition]:
        self.clock.set(hub_ms)
        got = self.engine.advance(hub_ms)
        self.out += got
        return got

    def restart(self, pack: RulePack, plant: Plant, hub_ms: int) -> None:
        """Snapshot through JSON and restore, as the hub does across a restart."""
        snapshot = json.loads(json.dumps(self.engine.snapshot()))
        self.clock = VirtualClock(hub_ms)
        self.engine = RuleEngine.restore(pack, plant, self.clock, snapshot)

    def events(self, key_prefix: str) -> list[tuple[bool, int]]:
        return [(c.active, c.ts_ms) for c in self.out if c.key.startswith(key_prefix)]


def test_reading_295_s_ahead_does_not_blind_the_detector(plant: Plant, shipped: RulePack) -> None:
    """The tester's case: after one Cl2 reading stamped 295 s ahead, a current reading at 8x
    the level-2 setpoint raises level 2 at once, stamped with its own time."""
    hub = Hub.new(shipped, plant)
    hub.receive(T0, ("GT-1101", T0, 0.0))
    hub.receive(T0 + 5000, ("GT-1101", T0 + 5000 + AHEAD, 0.0))
    got = hub.receive(T0 + 10_000, ("GT-1101", T0 + 10_000, 4.8))
    (l2,) = [c for c in got if c.key == L2_KEY]
    assert (l2.active, l2.ts_ms, l2.value) == (True, T0 + 10_000, 4.8)
    counters = hub.engine.counters
    assert (counters["ahead_readings"], counters["late_readings"]) == (1, 0)


def test_without_a_lead_bound_the_same_reading_blinds_the_detector(
    plant: Plant, shipped: RulePack
) -> None:
    """Control: with a lead as large as the decoder's limit (the old policy) the same two
    readings raise nothing and the current one is late, which is what the bound prevents."""
    hub = Hub.new(shipped, plant, max_lead_ms=300_000)
    hub.receive(T0, ("GT-1101", T0, 0.0))
    hub.receive(T0 + 5000, ("GT-1101", T0 + 5000 + AHEAD, 0.0))
    got = hub.receive(T0 + 10_000, ("GT-1101", T0 + 10_000, 4.8))
    assert [c for c in got if c.key == L2_KEY] == []
    assert hub.engine.counters["late_readings"] == 1


def test_gateway_clock_fast_then_corrected_skips_no_reading(plant: Plant) -> None:
    """A gateway whose clock runs 3 min fast for a minute and is then corrected: every reading
    is evaluated (each one flips the alarm), the fast ones within the slack before hub time, the
    corrected ones at their own timestamps, in order; none is late or a duplicate."""
    hub = Hub.new(pressure_rule(plant), plant)
    expected: list[bool] = []
    received: list[tuple[int, bool]] = []
    for i in range(200):
        hub_ms = T0 + i * 1000
        fast = 60 <= i < 120
        stamped = hub_ms + 180_000 if fast else hub_ms
        value = 1.5 if i % 2 else 0.5
        hub.receive(hub_ms, ("PT-1101", stamped, value))
        if i:
            expected.append(value > 1.0)
            received.append((hub_ms, fast))
    events = hub.events("PressureHighTest|")
    assert [active for active, _ in events] == expected
    times = [ts for _, ts in events]
    assert times == sorted(set(times))  # strictly in order
    for ts, (hub_ms, fast) in zip(times, received, strict=True):
        if fast:
            assert hub_ms - DEFAULT_MAX_LEAD_MS <= ts <= hub_ms
        else:
            assert ts == hub_ms  # in step: stamped == hub time
    counters = hub.engine.counters
    assert (counters["ahead_readings"], counters["late_readings"]) == (60, 0)
    assert counters["duplicate_readings"] == 0


def test_partly_corrected_clock_is_not_late_behind_its_fastest_reading(plant: Plant) -> None:
    """A clock 5 min fast corrected to 1 min fast (still beyond the lead): its readings are
    older than the fastest one already seen, yet evaluated, just before hub time (the lead
    allowed for transit)."""
    hub = Hub.new(pressure_rule(plant), plant)
    lead = DEFAULT_MAX_LEAD_MS
    hub.receive(T0, ("PT-1101", T0 + 300_000, 0.5))
    got = hub.receive(T0 + 1000, ("PT-1101", T0 + 1000 + 60_000, 1.5))
    assert [(c.active, c.ts_ms) for c in got] == [(True, T0 + 1000 - lead)]
    got = hub.receive(T0 + 2000, ("PT-1101", T0 + 2000 + 60_000, 0.5))
    assert [(c.active, c.ts_ms) for c in got] == [(False, T0 + 2000 - lead)]
    assert hub.engine.counters["late_readings"] == 0


def test_lagging_clock_is_not_late_after_a_far_ahead_glitch(plant: Plant) -> None:
    """A gateway 30 s behind the hub sends one reading stamped 4 min ahead: it is evaluated on
    the tag's own (lagging) timeline, so the gateway's next readings are not late."""
    hub = Hub.new(pressure_rule(plant), plant)
    hub.receive(T0, ("PT-1101", T0 - 30_000, 0.5))
    got = hub.receive(T0 + 1000, ("PT-1101", T0 + 240_000, 1.5))
    assert [(c.active, c.ts_ms) for c in got] == [(True, T0 + 1000 - 30_000)]
    got = hub.receive(T0 + 2000, ("PT-1101", T0 + 2000 - 30_000, 0.5))
    assert [(c.active, c.ts_ms) for c in got] == [(False, T0 + 2000 - 30_000)]
    assert hub.engine.counters["late_readings"] == 0


def test_on_delay_of_a_far_ahead_reading_runs_on_hub_time(plant: Plant) -> None:
    """A reading stamped 295 s ahead starts its 15 s on-delay on the tag's timeline in hub time
    (right after its previous reading, never later than its receive time): the alarm is raised
    by ``advance`` about 15 s after it was received, not 15 s after its stamp."""
    hub = Hub.new(pressure_rule(plant, on_delay="15s"), plant)
    hub.receive(T0, ("PT-1101", T0, 0.5))
    hub.receive(T0 + 1000, ("PT-1101", T0 + 1000 + AHEAD, 1.5))
    assert hub.advance(T0 + 15_000) == []
    (raised,) = hub.advance(T0 + 16_000)
    assert (raised.active, raised.ts_ms) == (True, T0 + 15_001)


def test_readings_within_the_lead_keep_their_own_timestamps(
    plant: Plant, shipped: RulePack
) -> None:
    """Readings stamped up to ``max_lead_ms`` ahead are evaluated at their own timestamps, so
    two SIS trips in one batch keep their source order (first-out); one millisecond further is
    evaluated on the tag's timeline (just after its previous reading)."""
    lead = DEFAULT_MAX_LEAD_MS
    hub = Hub.new(shipped, plant)
    hub.receive(T0, ("UZ-1101", T0, 0.0), ("UZ-1102", T0, 0.0), ("UZ-1103", T0, 0.0))
    got = hub.receive(
        T0 + 1000,
        ("UZ-1102", T0 + 1000 + lead, 1.0),  # the edge of the lead: its own time
        ("UZ-1101", T0 + 1000 + 300, 1.0),
        ("UZ-1103", T0 + 1000 + lead + 1, 1.0),  # just beyond: hub time
    )
    trips = {c.tag: c.ts_ms for c in got if c.alert == "SisTrip"}
    assert trips == {"UZ-1101": T0 + 1300, "UZ-1102": T0 + 1000 + lead, "UZ-1103": T0 + 1}
    assert hub.engine.counters["ahead_readings"] == 1


def test_far_ahead_reading_delivered_again_raises_nothing(plant: Plant) -> None:
    """A far-ahead batch delivered again (QoS 1) is a duplicate, even after a later reading
    cleared the alarm it raised, and for every far-ahead reading of the tag in it."""
    hub = Hub.new(pressure_rule(plant), plant)
    batch = [("PT-1101", T0 + AHEAD, 0.5), ("PT-1101", T0 + AHEAD + 500, 1.5)]
    hub.receive(T0, *batch)
    hub.receive(T0 + 1000, ("PT-1101", T0 + 1000, 0.5))
    lead = DEFAULT_MAX_LEAD_MS  # the first one is placed that long before its receive time
    assert hub.events("PressureHighTest|") == [(True, T0 - lead + 1), (False, T0 + 1000)]
    assert hub.receive(T0 + 2000, *batch) == []
    assert hub.engine.counters["duplicate_readings"] == 2
    got = hub.receive(T0 + 3000, ("PT-1101", T0 + 3000, 1.5))  # the tag is not blinded
    assert [(c.active, c.ts_ms) for c in got] == [(True, T0 + 3000)]


@pytest.mark.parametrize(
    ("restart_after_ms", "why"),
    [(10_000, "still far ahead"), (AHEAD + 60_000, "the hub clock has caught up with it")],
)
def test_far_ahead_redelivery_after_a_restart_raises_nothing(
    plant: Plant, restart_after_ms: int, why: str
) -> None:
    """Restored from a snapshot, the engine takes the redelivered far-ahead batch as a
    duplicate whether it comes back still far ahead or after the hub clock caught up with it,
    and then evaluates the gateway's current readings."""
    pack = pressure_rule(plant)
    hub = Hub.new(pack, plant)
    hub.receive(T0, ("PT-1101", T0, 0.5))
    hub.receive(T0 + 1000, ("PT-1101", T0 + 1000 + AHEAD, 1.5))
    assert hub.events("PressureHighTest|") == [(True, T0 + 1)]
    back = T0 + 1000 + restart_after_ms
    hub.restart(pack, plant, back)
    assert hub.receive(back, ("PT-1101", T0 + 1000 + AHEAD, 1.5)) == [], why
    assert hub.engine.counters["duplicate_readings"] == 1
    got = hub.receive(back + 1000, ("PT-1101", back + 1000, 0.5))
    assert [(c.active, c.ts_ms) for c in got] == [(False, back + 1000)]


def test_snapshot_without_remembered_readings_still_restores(plant: Plant) -> None:
    """A snapshot written before far-ahead readings were remembered (no "ahead" key) restores:
    the tag's newest evaluated time is its hub-time placement, so current readings are
    evaluated."""
    pack = pressure_rule(plant)
    hub = Hub.new(pack, plant)
    hub.receive(T0, ("PT-1101", T0 + AHEAD, 1.5))
    snapshot = json.loads(json.dumps(hub.engine.snapshot()))
    assert snapshot["ahead"] == [[E01, "PT-1101", T0 + AHEAD, [T0 + AHEAD]]]
    del snapshot["ahead"]
    clock = VirtualClock(T0 + 1000)
    engine = RuleEngine.restore(pack, plant, clock, snapshot)
    got = engine.on_readings([Reading(E01, "PT-1101", T0 + 1000, 0.5, "good")], T0 + 1000)
    assert [(c.active, c.ts_ms) for c in got] == [(False, T0 + 1000)]


def test_a_flood_of_far_ahead_readings_moves_the_tag_at_most_the_lead(plant: Plant) -> None:
    """Many far-ahead readings of one tag in one batch take successive milliseconds from the
    transit slack before hub time, never past hub time; a reading stamped just after is
    evaluated, and only ``AHEAD_MEMORY`` raw timestamps are kept."""
    pack = pressure_rule(plant)
    hub = Hub.new(pack, plant, max_lead_ms=30)
    flood = [("PT-1101", T0 + AHEAD + i, 1.5 if i % 2 else 0.5) for i in range(40)]
    hub.receive(T0, *flood)
    counters = hub.engine.counters
    assert (counters["ahead_readings"], counters["late_readings"]) == (40, 0)
    times = [ts for _, ts in hub.events("PressureHighTest|")]
    assert max(times) == T0 - TRANSIT_SLACK_MS + 39 and max(times) <= T0
    got = hub.receive(T0 + 31, ("PT-1101", T0 + 31, 0.5))  # the flood ended high
    assert [(c.active, c.ts_ms) for c in got] == [(False, T0 + 31)]
    ((_, _, _, remembered),) = hub.engine.snapshot()["ahead"]
    assert len(remembered) == AHEAD_MEMORY


def test_a_current_reading_just_after_a_far_ahead_one_is_not_late(plant: Plant) -> None:
    """The first reading of a tag is stamped far ahead; the gateway's next, honest reading was
    stamped before the hub received the first (transit): it is evaluated, not late."""
    hub = Hub.new(pressure_rule(plant), plant)
    hub.receive(T0, ("PT-1101", T0 + AHEAD, 0.5))
    got = hub.receive(T0 + 50, ("PT-1101", T0 - 200, 1.5))
    assert [(c.active, c.ts_ms) for c in got] == [(True, T0 - 200)]
    assert hub.engine.counters["late_readings"] == 0


def test_clock_skew_rule_still_sees_the_raw_timestamp(plant: Plant, shipped: RulePack) -> None:
    """Readings evaluated at hub time still name the fast gateway clock: clock skew is raised
    after its on-delay with the raw skew."""
    hub = Hub.new(shipped, plant)
    for i in range(8):
        hub_ms = T0 + i * 10_000
        hub.receive(hub_ms, ("PT-1101", hub_ms + 180_000, 0.5))
    (skew,) = [c for c in hub.out if c.alert == "EnterpriseClockSkew"]
    assert (skew.active, skew.labels["skew"]) == (True, "-180s")


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_max_lead_must_be_whole_non_negative_milliseconds(
    plant: Plant, shipped: RulePack, bad: Any
) -> None:
    """A negative, fractional or boolean ``max_lead_ms`` is refused with its name and value."""
    with pytest.raises(ValueError, match=rf"max_lead_ms={bad!r}"):
        RuleEngine(shipped, plant, VirtualClock(T0), max_lead_ms=bad)
