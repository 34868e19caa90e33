"""Rule packs: strict loading with every error at once as file:line:col, and the shipped packs."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety_hub.errors import LoadError
from safety_hub.registry import Plant, default_plant_path, load_plant
from safety_hub.rules.loader import load_rules
from safety_hub.rules.schema import format_duration, parse_duration

ALERT_RULES = Path(__file__).resolve().parents[2] / "alert_rules"
SHIPPED = ["gas.yaml", "tanks.yaml", "sis.yaml", "comms.yaml"]

ANNOTATIONS = 'annotations: {summary: "报警", summary_en: "alarm"}'


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(default_plant_path())


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def pos_of(text: str, needle: str) -> str:
    """``line:col`` (1-based) of the only occurrence of ``needle``."""
    assert text.count(needle) == 1, needle
    before = text[: text.index(needle)]
    return f"{before.count(chr(10)) + 1}:{len(before) - (before.rfind(chr(10)) + 1) + 1}"


def errors_of(tmp_path: Path, plant: Plant, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(LoadError) as info:
        load_rules(path, plant)
    return info.value.errors


def one_rule(rule: str, group: str = "g1") -> str:
    """A file with one group holding ``rule`` (the YAML of one list item, indented 6)."""
    return f"groups:\n  - name: {group}\n    rules:\n{rule}"


@pytest.mark.parametrize("name", [*SHIPPED, ""])
def test_shipped_packs_load_against_sample_park(plant: Plant, name: str) -> None:
    """Every shipped rule file, and the alert_rules directory as one pack, loads against the
    sample park with no errors and no warnings."""
    pack = load_rules(ALERT_RULES / name, plant)
    assert len(pack) > 0
    assert pack.warnings == ()


def test_shipped_packs_cover_the_brief(plant: Plant) -> None:
    """The shipped pack has the condition types and priorities the standards ask for: gas
    level 2 high, level 1 medium, and mostly low priorities."""
    pack = load_rules(ALERT_RULES, plant)
    assert {r.type for r in pack} == {
        "threshold",
        "rate_of_change",
        "stale",
        "bad_quality",
        "out_of_range",
        "voting",
        "sis_state",
        "compound",
        "link_down",
        "clock_skew",
        "frozen",
    }
    for rule in pack:
        assert rule.annotations["summary"] and rule.annotations["summary_en"]
        if rule.alarm_class == "gas" and rule.level == 2:
            assert rule.priority in ("high", "critical")
        if rule.alarm_class == "gas" and rule.level == 1:
            assert rule.priority == "medium"
        if rule.alarm_class == "gas":
            assert rule.latch
    priorities = [r.priority for r in pack]
    assert priorities.count("low") > priorities.count("high") > priorities.count("critical")


def test_several_mistakes_reported_at_once_with_positions(tmp_path: Path, plant: Plant) -> None:
    """Unknown keys, bad durations, non-CamelCase names, duplicates, a setpoint beyond
    GB/T 50493, a long gas on-delay and an unknown compound member are all reported in one
    LoadError, sorted, each as file:line:col with its group and rule."""
    text = f"""\
groups:
  - name: gb50493
    rules:
      - alert: Cl2HighHigh
        select: {{kind: toxic_gas, gas: Cl2}}
        condition: {{type: threshold, setpoint: 3, direction: high}}
        labels: {{priority: high, class: gas, level: "2"}}
        {ANNOTATIONS}
      - alert: toxic_level_1
        select: {{kind: toxic_gas}}
        condition: {{type: threshold, setpoint: l1, on_delay: 90s, setpont: 2}}
        labels: {{priority: urgent, class: gas}}
        {ANNOTATIONS}
      - alert: Cl2HighHigh
        select: {{kind: toxic_gas}}
        condition: {{type: threshold, setpoint: l2, off_delay: 5 minutes}}
        labels: {{priority: high, class: gas}}
        {ANNOTATIONS}
      - alert: LeakAndFault
        condition: {{type: compound, all: [Cl2HighHigh, NoSuchAlert]}}
        labels: {{priority: high, class: gas}}
        {ANNOTATIONS}
"""
    path = write(tmp_path, text)
    errors = errors_of(tmp_path, plant, text)
    owner = 'group "gb50493"'
    assert errors == [
        f'{path}:{pos_of(text, "setpoint: 3")}: {owner}, rule "Cl2HighHigh": setpoint 3 ppm '
        "(8.7 mg/m³) exceeds 200 %OEL of Cl2 (2 mg/m³ = 0.69 ppm) (tag e01-chloralkali/GT-1101 "
        "and 42 more)",
        f'{path}:{pos_of(text, "alert: toxic_level_1")}: {owner}, rule "toxic_level_1": alert '
        'name "toxic_level_1" must be CamelCase: an upper-case letter, then letters and digits '
        "(e.g. ToxicGasLevel2)",
        f'{path}:{pos_of(text, "on_delay: 90s")}: {owner}, rule "toxic_level_1": on_delay 1m30s '
        "exceeds 60s: a gas alarm's on-delay is at most 60 s (GB 16808)",
        f'{path}:{pos_of(text, "setpont")}: {owner}, rule "toxic_level_1": unknown key '
        "'condition.setpont'; did you mean 'setpoint'?",
        f'{path}:{pos_of(text, "priority: urgent")}: {owner}, rule "toxic_level_1": '
        'labels.priority="urgent": use one of critical, high, medium, low',
        f'{path}:14:9: {owner}, rule "Cl2HighHigh": duplicate alert "Cl2HighHigh" (first at '
        f"{path}:4:9)",
        f'{path}:{pos_of(text, "off_delay")}: {owner}, rule "Cl2HighHigh": '
        "condition.off_delay=\"5 minutes\": bad duration '5 minutes': use e.g. 500ms, 30s, 5m, "
        "1h30m, 1d",
        f'{path}:{pos_of(text, "NoSuchAlert")}: {owner}, rule "LeakAndFault": compound refers '
        'to unknown alert "NoSuchAlert"',
    ]


def test_combustible_and_oxygen_setpoint_limits(tmp_path: Path, plant: Plant) -> None:
    """A numeric setpoint is judged against the level-1 or level-2 limit its ``level`` label
    names (level 2 without one), and an oxygen-deficiency setpoint below 19.5 %VOL is rejected."""
    rules = "".join(
        f"""\
      - alert: {alert}
        select: {{kind: {kind}}}
        condition: {{type: threshold, setpoint: {sp}, direction: {direction}}}
        labels: {{priority: high, class: gas{level}}}
        {ANNOTATIONS}
"""
        for alert, kind, sp, direction, level in [
            ("CombustibleLevel1Test", "combustible_gas", 30, "high", ', level: "1"'),
            ("CombustibleNoLevelTest", "combustible_gas", 45, "high", ""),
            ("CombustibleLevel2Test", "combustible_gas", 55, "high", ', level: "2"'),
            ("OxygenLowTest", "oxygen", 19, "low", ""),
            ("OpenPathTest", "open_path_gas", 2.5, "high", ""),
        ]
    )
    errors = errors_of(tmp_path, plant, one_rule(rules))
    messages = [e.split(": ", 2)[2] for e in errors]
    assert messages == [
        "setpoint 30 %LEL exceeds 25 %LEL (GB/T 50493 level-1 limit) (tag e01-chloralkali/GT-1301 and 42 more)",
        "setpoint 55 %LEL exceeds 50 %LEL (GB/T 50493 level-2 limit) (tag e01-chloralkali/GT-1301 and 42 more)",
        "setpoint 19 %VOL is below 19.5 %VOL: the oxygen-deficiency alarm must sound at 19.5 %VOL (tag e01-chloralkali/OT-1901 and 8 more)",
        "setpoint 2.5 LEL·m exceeds 2 LEL·m (GB/T 50493 level-2 limit for open-path detectors) (tag e04-finechem/GT-4303 and 1 more)",
    ]


def test_toxic_limit_in_idlh_mode(tmp_path: Path, plant: Plant) -> None:
    """On a detector in idlh_mode the limit is 10 %IDLH (H2S: 43 mg/m³ = 30.9 ppm)."""
    rule = f"""\
      - alert: H2SHighTest
        select: {{tag: GT-3205}}
        condition: {{type: threshold, setpoint: 40, direction: high}}
        labels: {{priority: high, class: gas, level: "2"}}
        {ANNOTATIONS}
"""
    (error,) = errors_of(tmp_path, plant, one_rule(rule))
    assert error.endswith(
        "setpoint 40 ppm (55.8 mg/m³) exceeds 10 %IDLH of H2S (43 mg/m³ = 30.8 ppm) "
        "(tag e03-coalchem/GT-3205)"
    )


def test_gas_on_delay_of_60s_is_allowed(tmp_path: Path, plant: Plant) -> None:
    """An on-delay of exactly 60 s on a gas rule loads (GB 16808 allows up to 60 s)."""
    rule = f"""\
      - alert: ToxicSlowTest
        select: {{kind: toxic_gas}}
        condition: {{type: threshold, setpoint: l1, on_delay: 1m}}
        labels: {{priority: medium, class: gas}}
        {ANNOTATIONS}
"""
    pack = load_rules(write(tmp_path, one_rule(rule)), plant)
    assert pack.rule("ToxicSlowTest").condition.on_delay == 60_000  # type: ignore[union-attr]


def test_gas_detector_fault_must_be_raised_within_100s(tmp_path: Path, plant: Plant) -> None:
    """A stale rule on gas detectors whose window exceeds 100 s is rejected, and so is any
    on-delay over 60 s (the alarm service records at most 60 s)."""
    rules = f"""\
      - alert: GasStaleTest
        select: {{kind: combustible_gas}}
        condition: {{type: stale, intervals: 25}}
        labels: {{priority: low, class: fault}}
        {ANNOTATIONS}
      - alert: GasQualityTest
        select: {{kind: combustible_gas}}
        condition: {{type: bad_quality, on_delay: 2m}}
        labels: {{priority: low, class: fault}}
        {ANNOTATIONS}
"""
    errors = errors_of(tmp_path, plant, one_rule(rules))
    assert (
        "stale window 25 × 5 s = 2m5s for gas detector e01-chloralkali/GT-1301 exceeds 100s"
        in errors[0]
    )
    assert errors[1].endswith(
        "on_delay 2m exceeds 60s: the alarm service records on-delays of at most 60 s "
        "(Condition.on_delay_s)"
    )


def test_selector_matching_no_tag_is_a_warning(tmp_path: Path, plant: Plant) -> None:
    """A selector that matches nothing loads, with a located warning that says why."""
    text = one_rule(
        f"""\
      - alert: NowhereTest
        select: {{enterprise: e99-nowhere, kind: level}}
        condition: {{type: threshold, setpoint: h}}
        labels: {{priority: low, class: process}}
        {ANNOTATIONS}
      - alert: NoSetpointTest
        select: {{kind: pressure}}
        condition: {{type: threshold, setpoint: l1}}
        labels: {{priority: low, class: process}}
        {ANNOTATIONS}
"""
    )
    path = write(tmp_path, text)
    pack = load_rules(path, plant)
    assert pack.warnings == (
        f'{path}:{pos_of(text, "select: {enterprise")}: group "g1", rule "NowhereTest": selector '
        'matches no tag (enterprise "e99-nowhere" is not in the plant): the rule does nothing '
        "with this plant",
        f'{path}:{pos_of(text, "select: {kind: pressure")}: group "g1", rule "NoSetpointTest": '
        "selector matches no tag (no selected tag has setpoint l1): the rule does nothing with "
        "this plant",
    )


def test_references_cycles_and_suppression(tmp_path: Path, plant: Plant) -> None:
    """Compound rules that refer to each other in a cycle, a suppressed_by naming nothing, and
    a compound without all/any are errors."""
    rules = f"""\
      - alert: FirstTest
        condition: {{type: compound, any: [SecondTest]}}
        labels: {{priority: low, class: system}}
        {ANNOTATIONS}
      - alert: SecondTest
        condition: {{type: compound, all: [FirstTest]}}
        labels: {{priority: low, class: system}}
        {ANNOTATIONS}
      - alert: ThirdTest
        condition: {{type: compound}}
        labels: {{priority: low, class: system}}
        {ANNOTATIONS}
        suppressed_by: [Unplugged, ThirdTest]
"""
    messages = [e.split(": ", 2)[2] for e in errors_of(tmp_path, plant, one_rule(rules))]
    assert messages == [
        "compound rules refer to each other in a cycle: FirstTest -> SecondTest -> FirstTest",
        "compound needs exactly one of all: or any:",
        'suppressed_by "Unplugged" is neither an alert of the pack nor a plant state (out_of_service)',
        "a rule cannot suppress itself",
    ]


def test_rule_with_type_error_still_counts_for_references(tmp_path: Path, plant: Plant) -> None:
    """A rule set aside for a type error is still a known alert: a compound naming it gets no
    misleading "unknown alert" error."""
    rules = f"""\
      - alert: BrokenTest
        select: {{kind: pressure}}
        condition: {{type: threshold, setpoint: h, deadband: lots}}
        labels: {{priority: low, class: process}}
        {ANNOTATIONS}
      - alert: ComboTest
        condition: {{type: compound, any: [BrokenTest]}}
        labels: {{priority: low, class: process}}
        {ANNOTATIONS}
"""
    (error,) = errors_of(tmp_path, plant, one_rule(rules))
    assert 'rule "BrokenTest": condition.deadband="lots"' in error


def test_condition_type_errors(tmp_path: Path, plant: Plant) -> None:
    """An unknown or missing condition type names the allowed types; a contradicting direction
    and a number without a direction are errors."""
    rules = f"""\
      - alert: WeirdTest
        condition: {{type: thresh}}
        labels: {{priority: low, class: process}}
        {ANNOTATIONS}
      - alert: NoTypeTest
        condition: {{setpoint: h}}
        labels: {{priority: low, class: process}}
        {ANNOTATIONS}
      - alert: DirectionTest
        select: {{kind: level}}
        condition: {{type: threshold, setpoint: l, direction: high}}
        labels: {{priority: low, class: process}}
        {ANNOTATIONS}
      - alert: NumberTest
        select: {{kind: level}}
        condition: {{type: threshold, setpoint: 2}}
        labels: {{priority: low, class: process}}
        {ANNOTATIONS}
"""
    messages = [e.split(": ", 2)[2] for e in errors_of(tmp_path, plant, one_rule(rules))]
    types = "threshold, rate_of_change, stale, bad_quality, out_of_range, voting, sis_state, compound, link_down, clock_skew, frozen"
    assert messages == [
        f'condition.type="thresh": unknown type; use one of {types}',
        f"condition needs a type: one of {types}",
        "direction high contradicts setpoint l (a low setpoint)",
        "setpoint 2 is a number: say direction: high or low",
    ]


def test_labels_and_annotations_are_checked(tmp_path: Path, plant: Plant) -> None:
    """Missing priority/class and summary_en, an unknown placeholder and a bad level are
    errors."""
    rule = """\
      - alert: LabelsTest
        select: {kind: level}
        condition: {type: threshold, setpoint: h}
        labels: {level: "3"}
        annotations: {summary: "{{tag}} {{valeu}}"}
"""
    messages = [e.split(": ", 2)[2] for e in errors_of(tmp_path, plant, one_rule(rule))]
    assert messages == [  # sorted by position, then text
        "labels needs 'class' (one of gas, process, fault, sis, comms, system)",
        "labels needs 'priority' (one of critical, high, medium, low)",
        'labels.level="3": use "1" or "2"',
        "annotations needs 'summary_en' (English text)",
        "annotations.summary: unknown placeholder {{valeu}}; use tag, name, enterprise, "
        "hazard_source, unit, equipment, zone, gas, eu, value, setpoint, level, sif, votes, "
        "faulty, window, skew, planned_end",
    ]


def test_duplicate_across_files_names_the_first(tmp_path: Path, plant: Plant) -> None:
    """Alert names are unique across the files of a pack; the second names the first's place."""
    rule = f"""\
      - alert: SameTest
        select: {{kind: level}}
        condition: {{type: threshold, setpoint: h}}
        labels: {{priority: low, class: process}}
        {ANNOTATIONS}
"""
    write(tmp_path, one_rule(rule), "a.yaml")
    write(tmp_path, one_rule(rule, "g2"), "b.yaml")
    with pytest.raises(LoadError) as info:
        load_rules(tmp_path, plant)
    assert info.value.errors == [
        f'{tmp_path / "b.yaml"}:4:9: group "g2", rule "SameTest": duplicate alert "SameTest" '
        f"(first at {tmp_path / 'a.yaml'}:4:9)"
    ]


def test_yaml_problems_are_located(tmp_path: Path, plant: Plant) -> None:
    """A YAML syntax error, a duplicate key and an empty file are reported with positions."""
    write(tmp_path, "groups:\n  - name: [unclosed\n", "a.yaml")
    write(tmp_path, "groups: []\ngroups: []\n", "b.yaml")
    write(tmp_path, "", "c.yaml")
    with pytest.raises(LoadError) as info:
        load_rules(tmp_path, plant)
    a, b, c = info.value.errors
    assert a.startswith(f"{tmp_path / 'a.yaml'}:3:1: YAML syntax error")
    assert b == f"{tmp_path / 'b.yaml'}:2:1: duplicate key 'groups' (first at line 1)"
    assert c == f"{tmp_path / 'c.yaml'}:1:1: the file is empty (expected groups:)"


def test_empty_directory_is_an_error(tmp_path: Path, plant: Plant) -> None:
    """A directory without rule files is an error, not an empty pack."""
    with pytest.raises(LoadError, match="no rule files"):
        load_rules(tmp_path, plant)


def test_durations() -> None:
    """Durations need a unit; compound durations add up; formatting inverts parsing."""
    assert parse_duration("1h30m") == 5_400_000
    assert parse_duration("500ms") == 500
    assert parse_duration("1.5s") == 1500
    assert format_duration(5_400_000) == "1h30m"
    assert format_duration(0) == "0s"
    for bad in ("30", "5 minutes", "", "1y"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    with pytest.raises(ValueError, match="needs a unit"):
        parse_duration(30)
