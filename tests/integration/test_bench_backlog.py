"""Smoke test of bench/backlog.py: a smaller backlog (100,000 readings) queued for a stopped
hub, one round of both cases. The level-2 alarm arrives in both, every backlog reading is
stored, and a reading on the critical topic is not held behind the backlog: its alarm arrives
before the hub has accepted the backlog. No timings are asserted.

Why 100,000 and not fewer: at 20,000 the backlog drains in about 0.3 s, the order of the
spread between the first deliveries of the hub's two receiving child processes (the telemetry
sessions' and the critical sessions', spawned at about the same time) on a loaded machine; with
20,000 the critical case once counted the whole backlog accepted when its alarm arrived (1 of
about 30 runs). 100,000 take over a second to drain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READINGS = 100_000


def test_the_alarm_arrives_and_on_the_critical_topic_it_passes_the_backlog(
    tmp_path: Path,
) -> None:
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.backlog", "--readings", str(READINGS)),
            *("--rounds", "1", "--topic", "both", "--json", str(report_path)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert report["complete"] is True
    cases = {c["topic"]: c for c in report["cases"]}
    assert [c["topic"] for c in report["cases"]] == ["critical", "telemetry"]
    for topic, case in cases.items():
        assert case["alarm_s"] is not None, f"{topic}: no level-2 alarm within 60 s"
        assert case["stored"] == READINGS, f"{topic}: {case['stored']} of {READINGS} stored"
        assert case["accepted"] == READINGS + 1, topic  # the backlog and the probe
        assert case["drained_s"] is not None and case["stored_s"] is not None
        assert case["accepted_at_alarm"] is not None
    # on its own session the gas reading did not wait for the backlog
    assert cases["critical"]["accepted_at_alarm"] < READINGS, cases["critical"]
    assert set(report["per_topic"]) == {"critical", "telemetry"}
    assert report["critical_over_telemetry"] is not None
    assert "alarm on critical / alarm on telemetry" in done.stdout
    assert "after start: accepted" in done.stderr  # progress while it runs


def test_the_bench_says_how_to_run_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.backlog", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for option in ("--readings", "--rounds", "--topic", "--json"):
        assert option in done.stdout
    assert "backlog" in done.stdout and "critical" in done.stdout
