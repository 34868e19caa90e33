"""A gateway outage through the whole hub (replay): at most 3 annunciations, none when the link
returns, and every consequence journaled as a suppressed child of the link alarm."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety_hub.runtime.replay import run_scenario
from safety_hub.scenarios.report import ReplayResult

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
LINK = "EnterpriseLinkDown|e02-sodium|e02-sodium"
BUDGET = 3  # the link alarm and, at most, zone-level alarms (issue 11)

LONG_QUIET = """\
scenario: 1
name: Two outages, one long and quiet, one short
start: 2026-06-06T22:00:00+08:00
duration: 70m
seed: 11
enterprises: [e02-sodium]
gateways:
  e02-sodium: {keepalive: 60s, batch: 50}
timeline:
  - {at: 2m, type: gateway_down, last_will: false}
  - {at: 42m, type: gateway_up}
  - {at: 50m, type: gateway_down, last_will: true}
  - {at: 50m30s, type: gateway_up}
"""


def annunciations(result: ReplayResult) -> list[tuple[int, str, str]]:
    return [(r.t_ms, r.alert, r.subject) for r in result.timeline if r.annunciated]


def test_gateway_down_annunciates_the_link_alarm_only() -> None:
    """The shipped scenario: one annunciation (the link alarm), none once the link returns
    at 6 min; the 65 consequences are raised suppressed, naming their parent."""
    result = run_scenario(SCENARIOS / "gateway_down.yaml")
    assert result.failures == []
    loud = annunciations(result)
    assert len(loud) <= BUDGET
    assert [a for a in loud if a[0] >= 6 * 60_000] == []
    assert [(alert, subject) for _, alert, subject in loud] == [
        ("EnterpriseLinkDown", "e02-sodium")
    ]
    children = [r for r in result.timeline if r.action == "raise" and r.key != LINK]
    assert len(children) > 50
    assert {r.to_state for r in children} == {"suppressed"}
    grouped = [a for a in result.alarms if a["labels"].get("parent") == LINK]
    assert {a["key"] for a in grouped} == {r.key for r in children}
    assert {a["alert"] for a in grouped} == {"TagStale", "GasDetectorStale", "GasVoteDegraded"}
    assert all(a["state"] == "normal" and a["count"] == 0 for a in grouped)


@pytest.mark.parametrize("outages", [LONG_QUIET])
def test_any_outage_length_stays_within_the_budget(outages: str) -> None:
    """A 40-minute outage without a last-will and a 30-second one with it: each gives one
    annunciation (the link alarm), and nothing annunciates after either return."""
    result = run_scenario(outages)
    loud = annunciations(result)
    first = [a for a in loud if a[0] < 42 * 60_000]
    second = [a for a in loud if a[0] >= 50 * 60_000]
    assert [a[1] for a in first] == ["EnterpriseLinkDown"]
    assert [a[1] for a in second] == ["EnterpriseLinkDown"]
    assert [a for a in loud if 42 * 60_000 <= a[0] < 50 * 60_000] == []  # the first return
