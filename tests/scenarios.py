"""Scenario helper for tests: run a scenario (file or YAML text) and assert on its alarms.

    from tests.scenarios import run_scenario, assert_passed

    result = run_scenario(SCENARIOS / "chlorine_tank_leak.yaml")
    assert_passed(result)
    assert "GasLeakConfirmed|e01-chloralkali|Z-TK101" in result.keys_raised()
    assert result.raised_alerts() == [...]

``run_scenario`` replays through the real in-process hub (safety_hub.runtime.replay); texts
are resolved relative to the working directory (``plant: sample`` needs no file).
"""

from __future__ import annotations

from pathlib import Path

from safety_hub.runtime.replay import replay
from safety_hub.scenarios import ReplayResult, format_clock, load_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def shipped_scenarios() -> list[Path]:
    """Every scenario of the library (``scenarios/*.yaml``), by name."""
    return sorted(SCENARIOS.glob("*.yaml"))


def run_scenario(source: str | Path) -> ReplayResult:
    """Replay a scenario file or YAML text; raises ``ScenarioError`` when it does not load."""
    return replay(load_scenario(source))


def timeline_text(result: ReplayResult) -> str:
    return "\n".join(
        f"{format_clock(r.t_ms)} {r.action:<8} {r.alert} {r.subject} -> {r.to_state}"
        for r in result.timeline
    )


def assert_passed(result: ReplayResult) -> None:
    """Fail with the scenario's failures and its timeline when an expectation did not hold."""
    assert result.passed, (
        f"scenario {result.scenario!r} failed:\n"
        + "\n".join(result.failures)
        + "\ntimeline:\n"
        + timeline_text(result)
    )


def raised(result: ReplayResult) -> list[tuple[str, str]]:
    """(alert, subject) of every alarm raised, in order."""
    return [(r.alert, r.subject) for r in result.raised]
