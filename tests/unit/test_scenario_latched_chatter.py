"""The shipped ``latched_chatter`` scenario: what its expectations cannot yet say (the scenario
format counts no annunciations), checked on its replay."""

from __future__ import annotations

from pathlib import Path

from safety_hub.runtime.replay import run_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "latched_chatter.yaml"
KEY = "ToxicGasLevel1|e01-chloralkali|GT-1208"
RESET_MS = 6 * 60_000 + 30_000


def test_fifteen_returns_of_a_latched_alarm_are_one_annunciation_and_no_flood() -> None:
    """Fifteen times gas in five minutes: one annunciation until the reset (before: fifteen and
    a flood), fourteen silent ``reactivate`` rows, one new alarm after the reset, no flood."""
    result = run_scenario(SCENARIO)
    assert result.passed, result.failures
    rows = [r for r in result.timeline if r.key == KEY]
    before_reset = [r for r in rows if r.t_ms < RESET_MS]
    assert sum(r.annunciated for r in before_reset) == 1
    assert [r.action for r in before_reset].count("reactivate") == 14
    assert not any(r.annunciated for r in rows if r.action == "reactivate")
    assert sum(r.annunciated for r in rows) == 2  # the gas after the reset is a new alarm
    assert result.floods == []
    (alarm,) = [a for a in result.alarms if a["key"] == KEY]
    assert (alarm["count"], alarm["returns"], alarm["state"]) == (2, 0, "unacknowledged")
