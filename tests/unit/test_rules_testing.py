"""Rule unit tests (promtool-style): series notation, the runner, and the shipped pack tests."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from safety_hub.rules.testing import main_check, main_test, parse_series, run_rule_tests

ALERT_RULES = Path(__file__).resolve().parents[2] / "alert_rules"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def pos_of(path: Path, needle: str) -> str:
    """``line:col`` (1-based) of the only occurrence of ``needle`` in a file."""
    text = path.read_text(encoding="utf-8")
    assert text.count(needle) == 1, needle
    before = text[: text.index(needle)]
    return f"{before.count(chr(10)) + 1}:{len(before) - (before.rfind(chr(10)) + 1) + 1}"


def test_series_notation() -> None:
    """Plain values, a+bxn / a-bxn / axn expansions, gaps and qualities expand as documented."""
    assert parse_series("0 1+1x2 _ 5:bad _x2 3x1 4-1x2:uncertain") == [
        (0.0, "good"),
        (1.0, "good"),
        (2.0, "good"),
        (3.0, "good"),
        None,
        (5.0, "bad"),
        None,
        None,
        (3.0, "good"),
        (3.0, "good"),
        (4.0, "uncertain"),
        (3.0, "uncertain"),
        (2.0, "uncertain"),
    ]
    for bad in ("1,2", "5:broken", "x3", "1+x2"):
        with pytest.raises(ValueError, match="series token"):
            parse_series(bad)


def test_shipped_pack_tests_pass() -> None:
    """Every test file in alert_rules/tests passes against its rule files."""
    result = run_rule_tests(ALERT_RULES / "tests")
    assert result.failures == []
    assert result.tests >= 20
    assert {Path(f).name for f in result.files} >= {
        "gas_test.yaml",
        "tanks_test.yaml",
        "sis_test.yaml",
        "comms_test.yaml",
    }


def test_every_shipped_pack_has_tests() -> None:
    """Each shipped rule file is named by at least one test file, and every alert of it is
    checked by some test."""
    tested: set[str] = set()
    for test_file in (ALERT_RULES / "tests").glob("*.yaml"):
        text = test_file.read_text(encoding="utf-8")
        tested.update(part.split()[0].strip(",}") for part in text.split("alertname: ")[1:])
    from safety_hub.registry import default_plant_path, load_plant
    from safety_hub.rules.loader import load_rules

    pack = load_rules(ALERT_RULES, load_plant(default_plant_path()))
    assert {r.alert for r in pack} - tested == set()


def test_failed_expectation_is_located(tmp_path: Path) -> None:
    """A wrong expectation fails with file:line:col, the test name and what was active, and
    main_test returns 1."""
    test_file = write(
        tmp_path / "t.yaml",
        f"""\
        rule_files: [{ALERT_RULES / "gas.yaml"}]
        tests:
          - name: wrong on purpose
            enterprise: e01-chloralkali
            interval: 5s
            input_series:
              - {{tag: GT-1301, values: "0 45"}}
            alert_rule_test:
              - eval_time: 5s
                alertname: CombustibleGasLevel2
                exp_alerts: [{{tag: GT-1302}}]
        """,
    )
    result = run_rule_tests(test_file)
    owner = 'test "wrong on purpose", alert_rule_test "CombustibleGasLevel2"'
    assert result.failures == [
        f"{test_file}:{pos_of(test_file, '{tag: GT-1302}')}: {owner}: at 5s, CombustibleGasLevel2: "
        "expected e01-chloralkali/GT-1302 to be active; active: e01-chloralkali/GT-1301",
        f"{test_file}:{pos_of(test_file, 'eval_time: 5s')}: {owner}: at 5s, CombustibleGasLevel2: "
        "unexpected active alarm e01-chloralkali/GT-1301",
    ]
    out = io.StringIO()
    assert main_test([test_file], out=out) == 1
    assert "FAILED: 2 problem(s)" in out.getvalue()


def test_invalid_test_file_is_reported_with_positions(tmp_path: Path) -> None:
    """Schema errors in a test file (unknown key, bad series, bad duration) are all reported
    with their positions; a test naming an unknown tag or alert fails."""
    test_file = write(
        tmp_path / "t.yaml",
        """\
        rule_files: [../nowhere.yaml]
        tests:
          - name: broken
            interval: often
            input_series:
              - {tag: GT-1301, values: "0 1,2", colour: red}
        """,
    )
    result = run_rule_tests(test_file)
    messages = [f.split(": ", 1)[1] for f in result.failures]
    assert messages == [
        'test "broken": interval="often": bad duration \'often\': use e.g. 500ms, 30s, 5m, 1h30m, 1d',
        'test "broken", series "GT-1301": values="0 1,2": series token \'1,2\': use a number, '
        "a+bxn, a-bxn, axn, _ or _xn, optionally with :bad or :uncertain",
        'test "broken", series "GT-1301": unknown key \'colour\'; allowed: enterprise, tag, '
        "values, interval, start, ts_offset",
    ]
    assert [f.split(": ")[0] for f in result.failures] == [
        f"{test_file}:{pos_of(test_file, 'interval')}",
        f"{test_file}:{pos_of(test_file, 'values')}",
        f"{test_file}:{pos_of(test_file, 'colour')}",
    ]


def test_rule_files_that_do_not_load_fail_the_test_file(tmp_path: Path) -> None:
    """A test file whose rule files do not load reports their errors under its own position."""
    rules = write(tmp_path / "bad_rules.yaml", "groups:\n  - name: g\n    rules: [{alert: x}]\n")
    test_file = write(tmp_path / "t.yaml", f"rule_files: [{rules.name}]\ntests: []\n")
    result = run_rule_tests(test_file)
    assert result.failures[0] == f"{test_file}:1:1: cannot load the rule files:"
    assert any("missing required key 'condition'" in f for f in result.failures[1:])


def test_alarms_of_tags_without_series_are_out_of_scope(tmp_path: Path) -> None:
    """Only alarms about tags, zones and enterprises with input are compared: the stale alarms
    of every other tag of the park do not fail a test."""
    test_file = write(
        tmp_path / "t.yaml",
        f"""\
        rule_files: [{ALERT_RULES / "comms.yaml"}]
        tests:
          - name: only PT-1101 matters
            enterprise: e01-chloralkali
            interval: 5s
            input_series:
              - {{tag: PT-1101, values: "1x20"}}
            alert_rule_test:
              - {{eval_time: 100s, alertname: TagStale}}
        """,
    )
    assert run_rule_tests(test_file).failures == []


def test_main_check_exit_codes(tmp_path: Path) -> None:
    """``rules check`` returns 0 for the shipped packs and 1 with every error printed for a
    broken file."""
    out = io.StringIO()
    assert main_check([ALERT_RULES], out=out) == 0
    assert "SUCCESS: " in out.getvalue()
    broken = write(
        tmp_path / "broken.yaml", "groups:\n  - name: g\n    rules: [{alert: x, bogus: 1}]\n"
    )
    out = io.StringIO()
    assert main_check([broken], out=out) == 1
    printed = out.getvalue()
    assert f"{broken}:{pos_of(broken, 'bogus')}:" in printed and "unknown key 'bogus'" in printed
    assert "missing required key 'condition'" in printed


def test_main_test_runs_the_shipped_tests() -> None:
    """``rules test alert_rules/tests`` succeeds."""
    out = io.StringIO()
    assert main_test([ALERT_RULES / "tests"], out=out) == 0
    assert "SUCCESS" in out.getvalue()
