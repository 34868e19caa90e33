"""The shipped scenario library replays green through the real pipeline, deterministically."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scenarios import SCENARIOS, assert_passed, run_scenario, shipped_scenarios


@pytest.mark.parametrize("path", shipped_scenarios(), ids=lambda p: p.stem)
def test_shipped_scenario_passes(path: Path) -> None:
    """Every scenario in scenarios/ meets all of its expectations in replay."""
    result = run_scenario(path)
    assert_passed(result)
    assert result.messages > 0 and result.readings > 0


def test_replay_is_deterministic() -> None:
    """The same scenario replayed twice gives an identical alarm timeline and alarm list."""
    first = run_scenario(SCENARIOS / "chlorine_tank_leak.yaml")
    second = run_scenario(SCENARIOS / "chlorine_tank_leak.yaml")
    assert first.timeline, "the scenario raises alarms"
    assert [r.as_json() for r in first.timeline] == [r.as_json() for r in second.timeline]
    assert first.alarms == second.alarms
    assert first.readings == second.readings
