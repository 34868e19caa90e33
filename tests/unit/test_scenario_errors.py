"""Scenario files are validated strictly: every mistake reported at once with file:line:col."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_hub.cli import main
from safety_hub.scenarios import ScenarioError, load_scenario
from tests.scenarios import SCENARIOS, run_scenario

BROKEN = """\
scenario: 1
name: broken on purpose
duration: 10m
enterprises: [e01-chloralkali, e09-nowhere]
wind: {speed_m_s: 2, from_deg: 270, stabilty: D}
devices:
  - {id: leak, type: leak, gas: Xe, x_m: 1, y_m: 2}
  - {id: leak, type: tank, level: GT-1101}
  - {id: sif, type: sis, sif: SIF-9999, voting: 2oo3, inputs: [{tag: LT-1101, trip_at: 2}]}
  - {id: odd, type: blender}
timeline:
  - {at: 1m, type: leak_start, device: nope}
  - {at: 20m, type: detector_fault, tag: LT-1101, fault: stuck}
  - {at: 2m, type: ack, alert: NoSuchAlert, tag: GT-1101}
  - {at: soon, type: leak_stop, device: leak}
expect:
  - {alert: ToxicGasLevel2, tag: GT-9999, raised_between: [1m, 2m]}
  - {alert: ToxicGasLevel2, tag: GT-1101}
  - {alert: ToxicGasLevel2, tag: GT-1101, raised_between: [3m, 1m]}
"""


def test_every_error_with_file_line_col(tmp_path: Path) -> None:
    """One load reports every mistake, each at its line, with a message naming key and value."""
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    errors = caught.value.errors
    text = "\n".join(errors)
    assert all(e.startswith(f"{path}:") for e in errors), text
    expected = {
        4: "enterprise 'e09-nowhere' is not in the plant",
        5: "unknown key 'wind.stabilty'; did you mean 'stability'",
        10: "unknown type; use one of leak, tank, sis, detector, process",
        15: "at=\"soon\": bad duration 'soon'",
        18: "exactly one of raised_between",
        19: "ends before it starts",
    }
    for line, fragment in expected.items():
        assert any(e.split(":")[1] == str(line) and fragment in e for e in errors), (line, text)
    assert len(errors) == len(expected), text


def test_semantic_errors_after_schema(tmp_path: Path) -> None:
    """Names checked against the plant and the rule pack, each at its own line."""
    text = "\n".join(
        line
        for line in BROKEN.splitlines()
        if "blender" not in line
        and "soon" not in line
        and "[3m, 1m]" not in line
        and line.strip() != "- {alert: ToxicGasLevel2, tag: GT-1101}"
    )
    text = text.replace("e09-nowhere", "e02-sodium").replace("stabilty", "stability")
    text = text.replace("{id: leak, type: tank", "{id: tank, type: tank")
    path = tmp_path / "semantic.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    errors = "\n".join(caught.value.errors)
    for fragment in (
        "semantic.yaml:7:28: device \"leak\": gas 'Xe' is not in the plant's gas table",
        "tag 'GT-1101' is a toxic_gas tag; expected level",
        "no sis_* tag of the plant belongs to SIF 'SIF-9999'",
        "voting 2oo3 needs 3 inputs, got 1",
        "no device 'nope'",
        "is after the end of the scenario",
        "tag 'LT-1101' is a level tag, not a gas detector",
        "alert 'NoSuchAlert' is not in the rule pack",
        "tag 'GT-9999' is not in the plant's simulated enterprises",
    ):
        assert fragment in errors, (fragment, errors)


def test_cli_exit_codes_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """replay exits 0 on pass (with a JSON report), 1 on a failed expectation, 2 on errors."""
    report = tmp_path / "report.json"
    assert (
        main(["replay", str(SCENARIOS / "chlorine_tank_leak.yaml"), "--report", str(report)]) == 0
    )
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["passed"] is True and doc["timeline"][0]["alert"] == "ToxicGasLevel1"
    out = capsys.readouterr().out
    assert "GasLeakConfirmed" in out and "PASS" in out

    wrong = (SCENARIOS / "chlorine_tank_leak.yaml").read_text(encoding="utf-8")
    wrong = wrong.replace(
        "{alert: ToxicGasLevel1, tag: GT-1103, not_raised: true}",
        "{alert: ToxicGasLevel1, tag: GT-1101, not_raised: true}",
    )
    failing = tmp_path / "failing.yaml"
    failing.write_text(wrong, encoding="utf-8")
    assert main(["replay", "-q", str(failing)]) == 1
    out = capsys.readouterr().out
    assert (
        "FAIL" in out and f"{failing}:31:5: expected ToxicGasLevel1 GT-1101 not to be raised" in out
    )

    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN, encoding="utf-8")
    assert main(["replay", str(broken)]) == 2
    assert f"{broken}:5:" in capsys.readouterr().err


def test_run_scenario_from_text_and_recording_round_trip(tmp_path: Path) -> None:
    """A scenario given as text runs; its messages written as a recording replay the same alarms."""
    text = (SCENARIOS / "hcn_leak_2oo3.yaml").read_text(encoding="utf-8")
    result = run_scenario(text)
    assert result.passed, result.failures
    from safety_hub.runtime.replay import replay_recording
    from safety_hub.scenarios import load_scenario as load
    from safety_hub.scenarios.recording import RecordedMessage, header
    from simulators.world import World

    scenario = load(text)
    rec = tmp_path / "capture.jsonl"
    with rec.open("w", encoding="utf-8") as f:
        f.write(json.dumps(header("mqtt://test", [], scenario.start_ms)) + "\n")
        for pub in World(scenario).messages():
            msg = RecordedMessage(pub.at_ms, pub.topic, pub.payload, pub.retain)
            f.write(json.dumps(msg.as_json(), ensure_ascii=False) + "\n")
    played = replay_recording(rec, scenario.plant, scenario.pack)
    assert played.keys_raised() == result.keys_raised()
    assert played.readings == result.readings


def test_unknown_event_type_lists_the_types_even_beside_schema_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "scenario: 1\nname: x\nduration: 10q\ntimeline:\n  - {at: 1m, type: leak_starts}\n",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    errors = caught.value.errors
    assert any(e.startswith(f"{path}:3:") and "bad duration" in e for e in errors), errors
    (hint,) = [e for e in errors if "leak_starts" in e]
    assert hint.startswith(f"{path}:5:") and "use one of leak_start, leak_stop" in hint
