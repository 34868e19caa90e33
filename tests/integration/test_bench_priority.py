"""Smoke test of bench/priority.py: with the hub's triage on and off every probe gets its
level-2 alarm and the report holds each mode's latencies (not asserted: no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_probe_gets_its_alarm_in_both_modes(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.priority", "--backlogs", "20", "--probes", "3"),
            *("--rounds", "1", "--json", str(report_path)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert report["20"]["missed"] == 0
    assert len(report["20"]["on"]) == len(report["20"]["off"]) == 3
