"""Root-cause grouping of lost communication in the rule engine: the learned silence verdict,
children grouped under the link alarm, the grace after it clears, snapshot/restore mid-outage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_hub.alarms.model import Condition
from safety_hub.clock import VirtualClock
from safety_hub.ingest.telemetry import Reading
from safety_hub.registry import Plant, TagInfo, default_plant_path, load_plant
from safety_hub.rules.engine import RuleEngine
from safety_hub.rules.loader import load_rules
from safety_hub.rules.model import RulePack
from safety_hub.rules.slots import LEARN_CAP_MS, SILENCE_MIN_MS, EnterpriseSlot

ALERT_RULES = Path(__file__).resolve().parents[2] / "alert_rules"
E02 = "e02-sodium"
LINK = f"EnterpriseLinkDown|{E02}|{E02}"
CONSEQUENCES = ("TagStale", "GasDetectorStale", "GasVoteDegraded")


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(default_plant_path())


@pytest.fixture(scope="module")
def pack(plant: Plant) -> RulePack:
    return load_rules([ALERT_RULES / "comms.yaml", ALERT_RULES / "gas.yaml"], plant)


def normal_value(tag: TagInfo) -> float:
    if tag.kind == "oxygen":
        return 20.9
    if tag.kind.endswith("_gas") or tag.kind.startswith("sis") or tag.kind == "status":
        return tag.range_lo
    return (tag.range_lo + tag.range_hi) / 2


class Site:
    """Every tag of e02-sodium, reported once a second while the gateway is up."""

    def __init__(self, plant: Plant, pack: RulePack, engine: RuleEngine | None = None) -> None:
        self.clock = VirtualClock(0)
        self.engine = engine or RuleEngine(pack, plant, self.clock)
        self.tags = [t for (e, _), t in plant.tags.items() if e == E02]
        self.out: list[Condition] = []
        self.silent: set[str] = set()

    def run(self, start_ms: int, end_ms: int, *, up: bool = True) -> list[Condition]:
        """Advance second by second over [start, end), reporting every tag while ``up``."""
        got: list[Condition] = []
        for ms in range(start_ms, end_ms, 1000):
            self.clock.set(ms)
            got += self.engine.advance(ms)
            if up:
                readings = [
                    Reading(E02, t.tag, ms, normal_value(t), "good")
                    for t in self.tags
                    if t.tag not in self.silent
                ]
                got += self.engine.on_readings(readings, ms)
        got = [c for c in got if c.enterprise == E02]  # the others never report at all
        self.out += got
        return got


def test_learned_interval_bounds() -> None:
    """The silence verdict is the rule's ceiling until 8 gaps are learned, then three learned
    intervals (or mean + 4 deviations) within [10 s, ceiling]; sub-200 ms gaps are one
    publication, and an outage counts at most LEARN_CAP_MS."""
    ent = EnterpriseSlot("e", 0)
    for ms in range(0, 8000, 1000):
        ent.heard(ms)
    assert ent.silence_after(60_000) == 60_000  # 7 gaps: not learned yet
    ent.heard(8000)
    ent.heard(8050)  # the same publication split in two messages: no gap
    assert ent.silence_after(60_000) == SILENCE_MIN_MS  # 1 s gaps: the floor
    assert ent.alive_at(9000) and not ent.alive_at(10_100)
    for ms in range(20_000, 400_000, 20_000):
        ent.heard(ms)
    assert ent.silence_after(120_000) == pytest.approx(60_000, rel=0.1)  # 3 × 20 s
    assert ent.silence_after(30_000) == 30_000  # never beyond the rule's silence
    ent.heard(400_000 + 10 * LEARN_CAP_MS)  # a long outage is not the interval
    assert ent.gap_mean < LEARN_CAP_MS


def test_outage_raises_link_first_and_groups_every_consequence(
    plant: Plant, pack: RulePack
) -> None:
    """After 60 s of reports every second, the gateway stops: the link alarm is raised 10 s
    after the last message, before any tag's stale watchdog, and every stale tag, stale
    detector and degraded zone of the enterprise is raised grouped under it, suppressed by it.
    """
    site = Site(plant, pack)
    site.run(0, 60_000)
    assert [c for c in site.out if c.alert in (*CONSEQUENCES, "EnterpriseLinkDown")] == []
    got = site.run(60_000, 300_000, up=False)
    first = got[0]
    assert (first.alert, first.active, first.ts_ms, first.labels["cause"]) == (
        "EnterpriseLinkDown",
        True,
        69_000,
        "silence",
    )
    children = got[1:]
    assert {c.alert for c in children} == set(CONSEQUENCES)
    assert all(c.active and c.labels["parent"] == LINK for c in children)
    assert all(LINK in c.labels["suppressed_by"].split(",") for c in children)
    grouped = {k for k, why in site.engine.suppressed().items() if LINK in why}
    assert {c.key for c in children} == grouped
    assert len({c.key for c in children}) == len(children)  # each once


def test_children_clear_quietly_and_a_tag_that_stays_silent_is_ungrouped(
    plant: Plant, pack: RulePack
) -> None:
    """When the link returns, the link alarm clears and the children clear as their tags come
    back, still grouped (so quietly); a tag that stays silent past its grace (its stale window
    after the link cleared) is ungrouped and stands on its own."""
    site = Site(plant, pack)
    site.run(0, 60_000)
    site.run(60_000, 120_000, up=False)
    site.silent = {"PT-2105"}
    back = site.run(120_000, 121_000)
    assert ("EnterpriseLinkDown", False) in [(c.alert, c.active) for c in back]
    cleared = [c for c in back if c.alert in CONSEQUENCES]
    assert cleared and all(not c.active and c.labels.get("parent") == LINK for c in cleared)
    stuck = f"TagStale|{E02}|PT-2105"
    assert LINK in site.engine.suppressed_by(stuck)
    site.engine.suppression_changes()
    site.run(121_000, 140_000)  # its grace: 3 × 5 s after the link cleared
    assert site.engine.suppressed_by(stuck) == ()
    assert stuck in site.engine.active_keys()
    assert [c for c in site.out if c.key == stuck] == [
        next(c for c in site.out if c.key == stuck)
    ]  # raised once, as a child; never raised or cleared again
    released = [c for c in site.engine.suppression_changes() if not c.hold]
    assert any(stuck in c.keys and c.cause == LINK for c in released)


def test_one_silent_detector_stands_alone_while_its_gateway_reports(
    plant: Plant, pack: RulePack
) -> None:
    """A detector that falls silent while its gateway keeps reporting raises its own stale
    alarm (no parent) within 100 s; so does the zone's degraded vote. Bad quality is still an
    alarm of its own."""
    site = Site(plant, pack)
    site.run(0, 60_000)
    site.silent = {"GT-2201"}
    got = site.run(60_000, 160_000)
    stale = [c for c in got if c.key == f"GasDetectorStale|{E02}|GT-2201"]
    assert len(stale) == 1 and stale[0].active and "parent" not in stale[0].labels
    assert stale[0].ts_ms - 59_000 <= 100_000
    assert "suppressed_by" not in stale[0].labels
    degraded = [c for c in got if c.alert == "GasVoteDegraded"]
    assert degraded and all("parent" not in c.labels for c in degraded)
    assert not [c for c in got if c.alert == "EnterpriseLinkDown"]
    site.silent = set()
    site.clock.set(160_000)
    bad = site.engine.on_readings([Reading(E02, "GT-2202", 160_000, 0.0, "bad")], 160_000)
    bad += site.engine.advance(166_000)
    faults = [c for c in bad if c.alert == "GasDetectorBadQuality"]
    assert faults and "parent" not in faults[0].labels


def test_restart_mid_outage_raises_nothing_again(plant: Plant, pack: RulePack) -> None:
    """Restored from a snapshot taken mid-outage, the engine keeps the link raised and its
    children grouped: nothing is raised again, and the return is as quiet as without a
    restart."""
    site = Site(plant, pack)
    site.run(0, 60_000)
    site.run(60_000, 100_000, up=False)
    before = {c.key for c in site.out if c.active}
    assert LINK in before
    snapshot = json.loads(json.dumps(site.engine.snapshot()))
    clock = VirtualClock(100_000)
    restored = Site(plant, pack, RuleEngine.restore(pack, plant, clock, snapshot))
    restored.clock = clock
    assert restored.engine.suppressed() == site.engine.suppressed()
    assert snapshot["enterprise_intervals"][E02][2] == 8  # the learned interval is kept
    again = restored.run(100_000, 200_000, up=False)
    assert [c for c in again if c.active] == []
    back = restored.run(200_000, 260_000)
    assert all(not c.active for c in back)
    assert all(c.labels.get("parent") == LINK for c in back if c.alert in CONSEQUENCES)
    assert not [k for k, why in restored.engine.suppressed().items() if LINK in why]


def test_restart_keeps_the_learned_interval(plant: Plant, pack: RulePack) -> None:
    """Restored from a snapshot, the engine still knows the enterprise reports every second: a
    silence right after the restart is a link down after 10 s, not after the rule's 60 s."""
    site = Site(plant, pack)
    site.run(0, 30_000)
    snapshot = json.loads(json.dumps(site.engine.snapshot()))
    clock = VirtualClock(30_000)
    restored = Site(plant, pack, RuleEngine.restore(pack, plant, clock, snapshot))
    restored.clock = clock
    got = restored.run(30_000, 100_000, up=False)
    down = [c for c in got if c.alert == "EnterpriseLinkDown" and c.active]
    assert [c.ts_ms for c in down] == [29_000 + 10_000]
