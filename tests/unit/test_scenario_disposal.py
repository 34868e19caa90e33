"""The scenario format's closed loop (docs/scenarios.md): the ``dispose`` action and the
``overdue_between`` / ``disposal_at`` expectations, on a replay's virtual clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety_hub.scenarios import ScenarioError, load_scenario
from tests.scenarios import SCENARIOS, assert_passed, run_scenario

HEAD = """\
scenario: 1
name: disposal format check
start: 2026-06-05T14:00:00+08:00
duration: 35m
seed: 3
enterprises: [e01-chloralkali]
timeline:
  - {at: 1m, type: force, tag: GT-1101, value: 1.5}
  - {at: 1m, type: force, tag: GT-1102, value: 1.5}
"""
# GT-1101 and GT-1102 past level 2: the zone's 2oo3 vote confirms the leak (critical, red).
RED = "alert: GasLeakConfirmed, zone: Z-TK101"


def test_the_shipped_scenario_goes_overdue_then_is_disposed() -> None:
    result = run_scenario(SCENARIOS / "disposal_overdue.yaml")
    assert_passed(result)
    actions = [(r.action, r.alert, r.user) for r in result.timeline if "dispos" in r.action]
    assert actions == [
        ("dispose", "ToxicGasLevel2", "zhang.wei"),
        ("disposal_overdue", "GasLeakConfirmed", None),
        ("dispose", "GasLeakConfirmed", "li.na"),
    ]
    red = next(a for a in result.alarms if a["alert"] == "GasLeakConfirmed")
    assert red["disposal"]["category"] == "real_release" and not red["disposal_overdue"]
    assert red["disposal_overdue_ms"] is not None


def test_missed_disposal_expectations_fail_at_their_line() -> None:
    body = f"""\
  - {{at: 2m, type: dispose, {RED}, category: false_alarm, text: bump test}}
expect:
  - {{{RED}, overdue_between: [30m, 35m]}}
  - {{{RED}, disposal_at: 3m, disposal: pending}}
  - {{{RED}, disposal_at: 1m30s, disposal: pending}}
  - {{{RED}, disposal_at: 30s, disposal: none}}
"""
    failures = run_scenario(HEAD + body).failures
    assert len(failures) == 2, failures
    assert failures[0].startswith("<scenario>:12:5: expected GasLeakConfirmed Z-TK101 overdue")
    assert "overdue: none" in failures[0]
    assert failures[1].startswith("<scenario>:13:5: at 3m, expected GasLeakConfirmed Z-TK101")
    assert "disposal pending; found e01-chloralkali|Z-TK101: disposed" in failures[1]


def test_an_undisposed_red_warning_goes_overdue_at_its_limit() -> None:
    body = f"""\
expect:
  - {{{RED}, overdue_between: [31m, 31m30s]}}
  - {{{RED}, disposal_at: 30m59s, disposal: pending}}
  - {{{RED}, disposal_at: 35m, disposal: overdue}}
  - {{alert: ToxicGasLevel1, tag: GT-1101, disposal_at: 35m, disposal: pending}}
"""
    assert run_scenario(HEAD + body).failures == []


def test_dispose_refusals_and_bad_keys() -> None:
    body = f"""\
  - {{at: 2m, type: dispose, {RED}, category: other, text: first}}
  - {{at: 3m, type: dispose, {RED}, category: other, text: second, expect_refused: already disposed}}
  - {{at: 3m, type: dispose, {RED}, category: other, text: third}}
"""
    (failure,) = run_scenario(HEAD + body).failures
    assert failure.startswith("<scenario>:12:5:") and "already disposed" in failure


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "  - {at: 2m, type: dispose, alert: GasLeakConfirmed, zone: Z-TK101, category: theft, text: x}",
            "category",
        ),
        (
            "  - {at: 2m, type: dispose, alert: GasLeakConfirmed, zone: Z-TK101, category: other}",
            "text",
        ),
        ("expect:\n  - {alert: GasLeakConfirmed, zone: Z-TK101, disposal_at: 2m}", "go together"),
        (
            "expect:\n  - {alert: GasLeakConfirmed, zone: Z-TK101, disposal_at: 2m, disposal: late}",
            "disposal",
        ),
        (
            "expect:\n  - {alert: GasLeakConfirmed, zone: Z-TK101, disposal_at: 40m, disposal: none}",
            "disposal_at is after the end",
        ),
    ],
)
def test_bad_disposal_keys_are_load_errors(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD + line + "\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert any(message in e and "bad.yaml:" in e for e in caught.value.errors), caught.value.errors
