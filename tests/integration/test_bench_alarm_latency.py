"""Smoke test of bench/alarm_latency.py: every probed gas detector's level-2 alarm is matched,
under both load shapes; the report is whole. Its figures are not asserted (no timing
assertions); its counts are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBES = 6


def test_every_probe_gets_its_level_2_alarm_under_both_load_shapes(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.alarm_latency", "--rates", "1000"),
            *("--probes", str(PROBES), "--gap", "0.05", "--json", str(report_path)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cases = json.loads(report_path.read_text())
    assert [(c["rate"], c["shape"]) for c in cases] == [(1000, "burst"), (1000, "spread")]
    for case in cases:
        assert case["probes"] == case["answered"] == PROBES
        assert case["p50_ms"] is not None and case["p50_ms"] <= case["p99_ms"] <= case["max_ms"]
        assert case["offered_per_s"] > 0 and case["ingested_per_s"] > 0
        assert case["baseline_p50_ms"] is not None


def test_help_describes_the_probes_and_runs_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.alarm_latency", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--quick" in done.stdout and "gas detectors" in done.stdout
