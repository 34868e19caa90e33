"""The ``frozen`` condition (a detector whose value stays identical too long), the registry's
``holds_at`` and frozen detectors in k-of-n votes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from safety_hub.alarms.model import Condition
from safety_hub.clock import VirtualClock
from safety_hub.errors import LoadError
from safety_hub.ingest.telemetry import Reading
from safety_hub.registry import Plant, default_plant_path, load_plant
from safety_hub.rules.engine import RuleEngine
from safety_hub.rules.loader import load_rules, parse_rules
from safety_hub.rules.model import RulePack
from tests.unit.test_registry import errors_of, one_tag, pos_of

ALERT_RULES = Path(__file__).resolve().parents[2] / "alert_rules"
E01 = "e01-chloralkali"
T0 = 1_800_000_000_000
HOUR = 3_600_000
FROZEN = "GasDetectorFrozen|e01-chloralkali|"
ZONE = ("GT-1101", "GT-1102", "GT-1103")  # Z-TK101, 2oo3, Cl2 l2 = 0.6 ppm


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(default_plant_path())


@pytest.fixture(scope="module")
def shipped(plant: Plant) -> RulePack:
    return load_rules(ALERT_RULES, plant)


class Field:
    """An engine fed like the hub feeds it: every tag of the zone each ``step`` ms of hub
    time, stamped at hub time; GT-1101 always reads ``stuck``, the others move."""

    def __init__(self, pack: RulePack, plant: Plant) -> None:
        self.pack, self.plant = pack, plant
        self.clock = VirtualClock(T0)
        self.engine = RuleEngine(pack, plant, self.clock)
        self.out: list[Condition] = []
        self.n = 0

    def run(self, until_ms: int, step: int = 5_000, **values: float) -> None:
        while self.clock.now_ms() + step <= T0 + until_ms:
            now = self.clock.now_ms() + step
            self.clock.set(now)
            self.out += self.engine.advance(now)
            self.n += 1
            moving = 0.01 * (self.n % 7)
            batch = [
                Reading(E01, tag, now, values.get(tag.replace("-", "_"), moving), "good")
                for tag in ZONE
            ]
            self.out += self.engine.on_readings(batch, now)

    def restart(self) -> None:
        snapshot = json.loads(json.dumps(self.engine.snapshot()))
        self.engine = RuleEngine.restore(self.pack, self.plant, self.clock, snapshot)

    def raised(self, prefix: str) -> list[tuple[bool, int]]:
        return [(c.active, c.ts_ms - T0) for c in self.out if c.key.startswith(prefix)]


def test_identical_value_raises_after_the_kinds_time_and_clears_when_it_moves(
    plant: Plant, shipped: RulePack
) -> None:
    """GT-1101 repeats 0.05 from the first reading (t = 5 s): the fault is raised with the first
    identical reading 2 h later, not one reading earlier, and clears with the first other value."""
    field = Field(shipped, plant)
    field.run(2 * HOUR, GT_1101=0.05)
    assert field.raised(FROZEN) == []
    field.run(2 * HOUR + 5_000, GT_1101=0.05)
    assert field.raised(FROZEN) == [(True, 2 * HOUR + 5_000)]
    (cond,) = [c for c in field.out if c.key.startswith(FROZEN)]
    assert (cond.tag, cond.alarm_class, cond.value, cond.labels["window"]) == (
        "GT-1101",
        "fault",
        0.05,
        "2h",
    )
    field.run(2 * HOUR + 60_000, GT_1101=0.05)
    field.run(2 * HOUR + 65_000, GT_1101=0.06)
    assert field.raised(FROZEN) == [(True, 2 * HOUR + 5_000), (False, 2 * HOUR + 65_000)]


def test_frozen_member_degrades_the_vote_and_a_leak_under_the_others_is_confirmed(
    plant: Plant, shipped: RulePack
) -> None:
    """While GT-1101 is frozen the 2oo3 zone votes 1oo2 over GT-1102/GT-1103, so GT-1102 alone
    above level 2 confirms the leak; the same reading without the frozen fault is only a
    discrepancy (the blind spot the frozen rule closes)."""
    field = Field(shipped, plant)
    field.run(2 * HOUR + 5_000, GT_1101=0.0)
    assert field.raised("GasVoteDegraded|e01-chloralkali|Z-TK101") == [(True, 2 * HOUR + 5_000)]
    (degraded,) = [c for c in field.out if c.key == "GasVoteDegraded|e01-chloralkali|Z-TK101"]
    assert degraded.labels["faulty"] == "GT-1101"
    field.run(2 * HOUR + 10_000, GT_1101=0.0, GT_1102=0.8)
    assert field.raised("GasLeakConfirmed|e01-chloralkali|Z-TK101") == [(True, 2 * HOUR + 10_000)]

    healthy = Field(shipped, plant)
    healthy.run(HOUR, GT_1101=0.0)
    healthy.run(HOUR + 5_000, GT_1101=0.0, GT_1102=0.8)
    assert healthy.raised("GasLeakConfirmed") == []


def test_the_count_and_the_fault_survive_a_restart(plant: Plant, shipped: RulePack) -> None:
    """The time since the value last changed is in the snapshot (a restart does not start the
    2 h again), and a restored frozen fault still counts against the vote."""
    field = Field(shipped, plant)
    field.run(HOUR, GT_1101=0.05)
    field.restart()
    field.run(2 * HOUR + 5_000, GT_1101=0.05)
    assert field.raised(FROZEN) == [(True, 2 * HOUR + 5_000)]
    field.restart()
    field.run(2 * HOUR + 10_000, GT_1101=0.05, GT_1102=0.8)
    assert field.raised("GasLeakConfirmed|e01-chloralkali|Z-TK101") == [(True, 2 * HOUR + 10_000)]


def test_bad_quality_and_silence_are_not_frozen(plant: Plant, shipped: RulePack) -> None:
    """Only valid values feed the check: a detector reporting bad quality at one value is a
    quality fault, not frozen, and its value is not compared across the bad stretch."""
    engine = RuleEngine(shipped, plant, VirtualClock(T0))
    out: list[Condition] = []
    for i in range(0, 3 * HOUR // 60_000):
        now = T0 + i * 60_000
        out += engine.advance(now)
        out += engine.on_readings([Reading(E01, "GT-1104", now, 0.2, "bad")], now)
    assert [c for c in out if c.alert == "GasDetectorFrozen"] == []
    assert any(c.alert == "GasDetectorBadQuality" and c.active for c in out)


def rule_error(tmp_path: Path, plant: Plant, after: str) -> str:
    text = textwrap.dedent(
        f"""\
        groups:
          - name: g1
            rules:
              - alert: FrozenTest
                condition: {{type: frozen, after: {after}}}
                labels: {{priority: low, class: fault}}
                annotations: {{summary: "冻结", summary_en: "frozen"}}
        """
    )
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LoadError) as info:
        load_rules(path, plant)
    (error,) = info.value.errors
    return error


@pytest.mark.parametrize(
    ("after", "message"),
    [
        ("{sis_trip: 1h}", "'sis_trip' is not a measured tag kind"),
        ("{toxic: 1h}", "'toxic' is not a measured tag kind"),
        ("{toxic_gas: 0s}", "toxic_gas: the duration must be above 0"),
        ("{toxic_gas: 2}", "a duration needs a unit"),
        ("2h", "should be a mapping of tag kind to duration"),
    ],
)
def test_rule_after_is_checked(tmp_path: Path, plant: Plant, after: str, message: str) -> None:
    """``after`` maps measured tag kinds to positive durations; anything else is a load error
    at the condition."""
    error = rule_error(tmp_path, plant, after)
    assert error.startswith(f'{tmp_path / "rules.yaml"}:5:35: group "g1", rule "FrozenTest": ')
    assert "condition.after" in error
    assert message in error


def test_a_frozen_rule_watches_only_the_kinds_it_gives_a_time_for(plant: Plant) -> None:
    """Tags of kinds missing from ``after`` get no instance."""
    pack = parse_rules(
        [
            (
                "t.yaml",
                "groups:\n  - name: g\n    rules:\n      - alert: FrozenTest\n"
                "        condition: {type: frozen, after: {oxygen: 1h}}\n"
                "        labels: {priority: low, class: fault}\n"
                '        annotations: {summary: "冻结", summary_en: "frozen"}\n',
            )
        ],
        plant,
    )
    engine = RuleEngine(pack, plant, VirtualClock(T0))
    out: list[Condition] = []
    for i in range(0, 62):
        now = T0 + i * 60_000
        out += engine.on_readings(
            [Reading(E01, "OT-1901", now, 20.9, "good"), Reading(E01, "GT-1101", now, 0.0, "good")],
            now,
        )
    assert [(c.tag, c.active) for c in out] == [("OT-1901", True)]


@pytest.mark.parametrize(
    ("body", "needle", "message"),
    [
        (
            "tag: GT-1\nkind: toxic_gas\neu: ppm\nrange: [0, 10]\ngas: Cl2\n"
            "setpoints: {l1: 0.3, l2: 0.6}\nholds_at: 12",
            "holds_at: 12",
            "holds_at 12 is outside the range [0, 10]",
        ),
        (
            "tag: UZ-1\nkind: sis_trip\nsis: {sif: SIF-1}\nholds_at: 0",
            "holds_at: 0",
            "holds_at is only for measured values, not sis_trip",
        ),
    ],
)
def test_registry_holds_at_is_checked_at_its_line(
    tmp_path: Path, body: str, needle: str, message: str
) -> None:
    """``holds_at`` must be a value the tag can report: within its range, on a measured tag."""
    text = one_tag(body)
    line, col = pos_of(text, needle)
    errors = errors_of(tmp_path, text)
    assert [e for e in errors if "holds_at" in e] == [
        f"{tmp_path / 'plant.yaml'}:{line}:{col}: enterprises[0].tags[0] "
        f'"{body.split(chr(10))[0][5:]}": {message}'
    ]


def test_the_sample_park_names_a_zero_suppressed_detector(plant: Plant) -> None:
    """The registry's field reaches the tag: the fence detector GT-1901 holds 0 legitimately."""
    assert plant.tags[(E01, "GT-1901")].holds_at == 0.0
    assert plant.tags[(E01, "GT-1101")].holds_at is None
