"""Replay knows about people: scenario expectations on notifications (who was told, by which
channel, by when; nobody told about a shelved alarm), with the sample park's people (the
park-duty roster's night officer on 2026-06-05 is park-duty-1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety_hub.runtime.replay import replay
from safety_hub.scenarios.loader import parse_scenario

SCENARIO = """scenario: 1
name: Cl2 on GT-1101, nobody acknowledges; GT-1102's alarm shelved before its gas
start: 2026-06-05T03:00:00+08:00
duration: 7m
enterprises: [e01-chloralkali]
timeline:
  - {at: 10s, type: force, tag: GT-1102, value: 0.5}
  - {at: 20s, type: shelve, alert: ToxicGasLevel1, tag: GT-1102, duration: 1h, reason: maintenance}
  - {at: 30s, type: release, tag: GT-1102}
  - {at: 1m, type: force, tag: GT-1101, value: 0.8}
  - {at: 2m, type: force, tag: GT-1102, value: 0.5}
expect:
  - {alert: ToxicGasLevel2, tag: GT-1101, notified: {person: e01-safety, channel: email, kind: alarm}, within: [1m, 1m10s]}
  - {alert: ToxicGasLevel2, tag: GT-1101, notified: {person: park-duty-1, channel: webhook}, within: [6m, 6m10s]}
  - {alert: ToxicGasLevel1, tag: GT-1102, not_notified: true, within: [1m, 7m]}
"""


def test_notification_expectations_hold_and_a_wrong_one_fails_located(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = replay(parse_scenario(SCENARIO, "n.yaml", tmp_path))
    assert good.failures == [], good.failures
    assert {(n.person_id, n.kind) for n in good.notifications} >= {
        ("e01-safety", "alarm"),
        ("park-duty-1", "escalation"),
    }
    wrong = SCENARIO.replace("within: [6m, 6m10s]", "within: [5m, 5m50s]").replace(
        "not_notified: true, within: [1m, 7m]", "not_notified: true"
    )
    bad = replay(parse_scenario(wrong, "n.yaml", tmp_path))
    assert len(bad.failures) == 2, bad.failures
    assert bad.failures[0] == (
        "n.yaml:14:5: expected park-duty-1 webhook notified about ToxicGasLevel2 GT-1101 within "
        "[5m, 5m50s]; sent about it: e01-safety email alarm at 0:01:04, park-duty-1 webhook "
        "escalation at 0:06:03"
    )
    assert "expected nobody notified about ToxicGasLevel1 GT-1102" in bad.failures[1]
    monkeypatch.setenv("SAFETY_HUB_NOTIFY", "off")
    off = replay(parse_scenario(SCENARIO, "n.yaml", tmp_path))
    assert off.notifications == [] and "notifications are off in this run" in off.failures[0]
