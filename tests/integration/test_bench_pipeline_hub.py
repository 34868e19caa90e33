"""Smoke test of bench/pipeline.py's hub case: the whole hub in process takes every reading
handed to it and gives each to its sink once; the report holds the CPU figures (not asserted:
no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_hub_case_counts_every_reading_and_reports_cpu(tmp_path: Path) -> None:
    """bench.pipeline --hub exits 0 only when the sink was given exactly the readings sent."""
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.pipeline", "--hub", "--readings", "5000"),
            *("--json", str(report_path)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [report] = json.loads(report_path.read_text())
    assert set(report) == {
        "readings_per_s",
        "cpu_us_per_reading",
        "ingest_thread_us_per_reading",
        "sink_thread_us_per_reading",
    }
    assert report["ingest_thread_us_per_reading"] > 0
    assert "hub in process, 5,000 readings" in done.stdout
