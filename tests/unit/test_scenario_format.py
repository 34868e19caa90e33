"""The scenario format's checks on operators, counts and odd messages (docs/scenarios.md):
refused actions, annunciation counts and floods, first-out, injected readings, out of service,
files expected not to load, and a state among several. Good files run through the real
in-process hub; broken ones are reported with file:line:col."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_hub.cli import main
from safety_hub.scenarios import ScenarioError, load_scenario
from simulators.player import remap_payload
from simulators.world import World, readings_of
from tests.scenarios import ROOT, SCENARIOS, assert_passed, run_scenario

LOAD_ERRORS = ROOT / "tests" / "data" / "scenarios"

HEAD = """\
scenario: 1
name: format check
start: 2026-06-05T14:00:00+08:00
duration: 6m
seed: 3
enterprises: [e01-chloralkali]
"""

BROKEN = (
    HEAD
    + """\
timeline:
  - {at: 1m, type: ack, alert: ToxicGasLevel1, tag: GT-1101, expect_refused: ""}
  - {at: 1m, type: out_of_service, alert: ToxicGasLevel1, tag: GT-1101}
  - {at: 1m, type: reading, tag: GT-1101, value: 1, ts: 5m}
  - {at: 1m, type: reading, tag: GT-1101, value: 1, ts: "2026-06-05T14:00:00"}
  - {at: 1m, type: reading, tag: GT-9999, value: 1}
expect:
  - {alert: ToxicGasLevel1, tag: GT-1101, state_at: 2m, state: [latched, bogus]}
  - {alert: "*", annunciations: {}}
  - {alert: "*", annunciations: {min: 3, max: 1}}
  - {alert: "*", raised_between: [0s, 1m], within: [0s, 1m]}
  - {alert: "*", no_flood: true}
  - {first_out: {alert: NoSuchAlert, tag: GT-1101}}
  - {alert: "*", annunciations: {max: 1}, within: [7m, 8m]}
  - {alert: "*", no_flood: true, first_out: {alert: ToxicGasLevel1}}
expect_load_error: []
"""
)


def test_new_keys_are_checked_strictly_with_file_line_col(tmp_path: Path) -> None:
    """Every mistake in the new keys is reported at once, at its own line."""
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    errors = caught.value.errors
    text = "\n".join(errors)
    expected = {
        8: "expect_refused",
        9: "reason",
        10: "ts '5m': give a signed offset from at",
        11: "an absolute ts needs a UTC offset",
        14: "unknown state 'bogus'; use one of normal, unacknowledged",
        15: "give min, max or both",
        16: "max 1 is below min 3",
        17: "within goes with annunciations, first_out, no_flood, notified, not_notified, "
        "not raised_between",
        18: "no_flood is about all alarms: leave out alert",
        21: "exactly one of raised_between",
        22: "expect_load_error: a text, or a non-empty list",
    }
    for line, fragment in expected.items():
        assert any(e.startswith(f"{path}:{line}:") and fragment in e for e in errors), (line, text)
    assert len(errors) == len(expected), text

    # with the schema errors gone, the names are checked against the plant and the rule pack
    fixed = "\n".join(
        line
        for i, line in enumerate(BROKEN.splitlines(), start=1)
        if i not in expected or i in (14,)
    ).replace("bogus", "acknowledged")
    path.write_text(fixed + "\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    errors = caught.value.errors
    text = "\n".join(errors)
    assert any(":8:29:" in e and "tag 'GT-9999' is not in the plant" in e for e in errors), text
    assert any(
        ":11:18: expect[1]: alert 'NoSuchAlert' is not in the rule pack" in e for e in errors
    ), text
    assert any(":12:" in e and "within starts after the end" in e for e in errors), text
    assert len(errors) == 3, text


def _run(body: str) -> list[str]:
    result = run_scenario(HEAD + body)
    return result.failures


TWO_ACTIONS = """\
timeline:
  - {at: 1m, type: force, tag: GT-1101, value: 0.5}
  - {at: 2m, type: %s, alert: ToxicGasLevel1, tag: GT-1101%s}
  - {at: 3m, type: %s, alert: ToxicGasLevel1, tag: GT-1101%s}
"""


def test_expect_refused_holds_only_for_the_named_refusal() -> None:
    """A refusal expected and given passes; one carried out, or refused for another reason, or
    refused without being expected is a failure at the action's line."""
    refused = ', expect_refused: "ILLEGAL_TRANSITION: not acknowledged"'
    assert _run(TWO_ACTIONS % ("reset", refused, "ack", "")) == []

    (carried_out,) = _run(TWO_ACTIONS % ("ack", ", expect_refused: not acknowledged", "reset", ""))
    assert carried_out.startswith("<scenario>:9:5: at 0:02:00, expected ack of ")
    assert "to be refused ('not acknowledged'); it was carried out: unacknowledged -> ack" in (
        carried_out
    )
    # the second ack is refused too, as expected
    both = ", expect_refused: already acknowledged"
    (first,) = _run(TWO_ACTIONS % ("ack", both, "ack", both))
    assert first.startswith("<scenario>:9:5:")

    (other,) = _run(TWO_ACTIONS % ("ack", "", "ack", ", expect_refused: not latched"))
    assert other.startswith("<scenario>:10:5: at 0:03:00, ack refused with 'illegal_transition:")
    assert "already acknowledged'; expected a refusal containing 'not latched'" in other

    (unexpected,) = _run(TWO_ACTIONS % ("reset", "", "ack", ""))
    assert unexpected.startswith("<scenario>:9:5: at 0:02:00, reset refused: alarm ")
    assert unexpected.endswith("cannot reset: not acknowledged")


def test_out_of_service_by_subject_with_any_alert() -> None:
    """``alert: "*"`` acts on every existing alarm of the subject; out of service hides a raise."""
    body = """\
timeline:
  - {at: 1m, type: force, tag: GT-1101, value: 0.8}
  - {at: 2m, type: out_of_service, alert: "*", tag: GT-1101, reason: calibration}
  - {at: 3m, type: release, tag: GT-1101}
  - {at: 4m, type: force, tag: GT-1101, value: 0.8}
  - {at: 5m, type: return_to_service, alert: "*", tag: GT-1101}
  - {at: 5m, type: return_to_service, alert: "*", tag: GT-1102, expect_refused: not_found}
expect:
  - {alert: ToxicGasLevel1, tag: GT-1101, state_at: 2m30s, state: out_of_service}
  - {alert: ToxicGasLevel2, tag: GT-1101, state_at: 4m30s, state: out_of_service}
  - {alert: "*", tag: GT-1101, annunciations: {min: 2, max: 2}, within: [0s, 4m59s]}
  - {alert: "*", tag: GT-1101, annunciations: {min: 2, max: 2}, within: [5m, 6m]}
  - {alert: "*", tag: GT-1101, state_at: 5m30s, state: [unacknowledged, acknowledged]}
"""
    assert _run(body) == []


def test_annunciation_counts_and_no_flood_failures_name_what_was_found() -> None:
    """The shipped large release floods the screen: the bounds fail with the count found, and
    no_flood with the flood's start and peak; a window before the flood passes."""
    text = (SCENARIOS / "flood_large_release.yaml").read_text(encoding="utf-8")
    text += (
        '  - {alert: "*", annunciations: {max: 3}, within: [1m, 12m]}\n'
        "  - {no_flood: true}\n"
        "  - {no_flood: true, within: [0s, 1m]}\n"
        '  - {alert: "*", annunciations: {min: 1}, within: [0s, 1m]}\n'
    )
    result = run_scenario(text)
    assert len(result.failures) == 3, result.failures
    bound, flood, nothing = result.failures
    assert f"<scenario>:{text.count(chr(10)) - 3}:5: expected at most 3 annunciation(s)" in bound
    count = len([r for r in result.timeline if r.annunciated and 60_000 <= r.t_ms <= 720_000])
    assert count > 3 and f"within [1m, 12m], got {count}: " in bound
    assert "expected no alarm flood within [0s, 20m]; flood from 0:01:" in flood
    assert "(peak " in flood
    assert "expected at least 1 annunciation(s) of any alarm within [0s, 1m], got 0" in nothing
    assert json.loads(json.dumps(result.as_json()))["stats"]["annunciations"] == len(
        result.annunciations
    )


def test_the_gateway_outage_is_one_annunciation_and_no_flood() -> None:
    """Issue 11: the shipped gateway outage annunciates its link-down alarm only (at most 3),
    nothing when the link returns, and no flood; the file says so itself."""
    text = (SCENARIOS / "gateway_down.yaml").read_text(encoding="utf-8")
    assert "annunciations: {max: 3}" in text and "no_flood: true" in text
    result = run_scenario(text)
    assert result.failures == []
    assert [r.alert for r in result.timeline if r.annunciated] == ["EnterpriseLinkDown"]


def test_first_out_in_the_report_and_as_an_expectation() -> None:
    """The tank overfill's first alarm is TankLevelHigh LT-1101, the tag that is also the SIS
    trip's first-out in the field; the report lists the first-out of each hazard source's
    episode, and a wrong first_out expectation fails naming the real one."""
    text = (SCENARIOS / "tank_overfill_sis_trip.yaml").read_text(encoding="utf-8")
    text += (
        "  - {first_out: {alert: SisTrip, tag: UZ-1101}, within: [1m, 15m]}\n"
        "  - {alert: SisTrip, first_out: {alert: SisTrip, tag: UZ-1101}}\n"
    )
    result = run_scenario(text)
    (wrong,) = result.failures
    assert "expected the first annunciation within [1m, 15m] to be SisTrip UZ-1101" in wrong
    assert "it was TankLevelHigh LT-1101 at 0:0" in wrong
    report = result.as_json()["first_outs"]
    assert [(f["hazard_source"], f["alert"], f["subject"]) for f in report] == [
        ("HS-E01-01", "TankLevelHigh", "LT-1101")
    ]
    assert any("first-out e01-chloralkali/LT-1101" in n.text for n in result.notes)


def test_first_outs_follow_the_episodes_of_a_hazard_source() -> None:
    """A new episode (and first-out) only after nothing of the source was shown any more."""
    result = run_scenario(SCENARIOS / "operator_actions.yaml")
    assert_passed(result)
    firsts = result.first_outs()
    # the level-1 alarm latched, was reset (episode over), then out of service: one episode
    assert [(src, r.alert, r.subject) for src, r in firsts] == [
        ("HS-E01-01", "ToxicGasLevel1", "GT-1101")
    ]


INJECTED = """\
timeline:
  - {at: 1m, type: reading, tag: GT-1101, value: 0.5, ts: +8d, expect_rejected: future}
  - {at: 2m, type: reading, tag: GT-1101, value: 0.5, ts: -5m, expect_rejected: too_old}
  - {at: 3m, type: reading, tag: GT-1101, value: 0.5, ts: -8d}
  - {at: 4m, type: reading, tag: GT-1102, value: 0.6}
  - {at: 4m, type: reading, tag: GT-1102, value: 0.6, ts: 2026-06-05T14:04:00+08:00}
"""


def test_injected_readings_go_through_the_gateway_and_the_decoder() -> None:
    """Each injected reading is a message of its own with the gateway's next seq and its own
    ts (offsets from at, or absolute); the decoder takes them as any gateway message."""
    scenario = load_scenario(HEAD + INJECTED)
    start = scenario.start_ms
    world = World(scenario)
    pubs = [p for p in world.messages() if b'"GT-11' in p.payload and b'"readings":[{' in p.payload]
    injected = {(code, seq): index for (code, seq), (index, _e) in world.injected.items()}
    assert sorted(injected.values()) == [0, 1, 2, 3, 4]
    docs = {
        json.loads(p.payload)["seq"]: json.loads(p.payload)
        for p in pubs
        if ("e01-chloralkali", json.loads(p.payload)["seq"]) in injected
    }
    stamps = [d["readings"][0]["ts"] for _, d in sorted(docs.items())]
    assert stamps == [
        start + 60_000 + 8 * 86_400_000,
        start + 120_000 - 300_000,
        start + 180_000 - 8 * 86_400_000,
        start + 240_000,
        start + 240_000,
    ]
    assert all(len(d["readings"]) == 1 and d["ts"] == d["readings"][0]["ts"] for d in docs.values())
    decoded = [(at, r.tag, r.ts_ms) for at, r in readings_of(scenario) if r.value == 0.6]
    assert decoded == [(start + 240_000, "GT-1102", start + 240_000)] * 2
    # the player maps them like every other timestamp: ts' = t0 + (ts - start) / speed
    payload = remap_payload(pubs[0].payload, lambda ts: 1_000 + (ts - start) // 10)
    assert json.loads(payload)["readings"][0]["ts"] == 1_000 + (pubs[0].at_ms - start) // 10


def test_rejections_of_injected_readings_are_checked_at_their_line() -> None:
    """Expected and found: nothing; expected and accepted, or rejected unexpectedly: a failure
    at the event's line with the hub's reason."""
    failures = _run(INJECTED)
    assert len(failures) == 2, failures
    rejected, accepted = failures
    assert accepted.startswith("<scenario>:9:5: expected the hub to reject the reading")
    assert "('too_old'); it accepted it" in accepted
    assert rejected.startswith("<scenario>:10:5: the hub rejected the reading: too_old: ts ")


def test_a_file_expected_not_to_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """expect_load_error: replay passes (exit 0) when every text is in the errors, fails (1)
    when one is missing; a file that loads fails its expect_load_error like an expectation."""
    cases = sorted(LOAD_ERRORS.glob("*.yaml"))
    assert len(cases) >= 2
    for case in cases:
        assert main(["replay", "-q", str(case)]) == 0, capsys.readouterr()
        assert f"PASS  {case}: does not load" in capsys.readouterr().out

    broken = tmp_path / "broken.yaml"
    text = (LOAD_ERRORS / "unknown_names.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("not in the rule pack", "no such text"), encoding="utf-8")
    assert main(["replay", "-q", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  {broken}: does not load (2 error(s))" in out
    assert f"{broken}:11:1: expected a load error containing " in out
    assert "is no such text" in out and "the errors were:" in out

    loads = tmp_path / "loads.yaml"
    loads.write_text(HEAD + 'expect_load_error: "unknown key"\n', encoding="utf-8")
    assert main(["replay", "-q", str(loads)]) == 1
    assert (
        f"{loads}:7:1: expected the file to fail to load with 'unknown key'; it loaded"
        in capsys.readouterr().out
    )


def test_the_documented_file_that_must_not_load_passes(tmp_path: Path) -> None:
    """docs/scenarios.md's example of expect_load_error does what the page says."""
    doc = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    section = doc.split("### Files that must not load", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "unknown_names.yaml"
    path.write_text(example, encoding="utf-8")
    assert main(["replay", "-q", str(path)]) == 0
    path.write_text(example.replace("GT-9999", "GT-1101"), encoding="utf-8")
    assert main(["replay", "-q", str(path)]) == 1
