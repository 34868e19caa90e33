"""Smoke test of bench/state_ingest.py: the hub on SQLite and on PostgreSQL state both store every
reading; the report is whole. Its figures are not asserted (no timing assertions); the counts are.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READINGS = 10_000


def test_both_state_backends_store_every_reading_and_the_report_has_the_figures(
    tmp_path: Path,
) -> None:
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.state_ingest",
            "--readings",
            str(READINGS),
            "--rounds",
            "1",
            "--alarm-probes",
            "2",
            "--settle",  # figures are not asserted: a short settling of the load
            "0.5",
            "--json",
            str(report_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert report["complete"] is True
    assert [(r["contender"], r["stored"]) for r in report["runs"]] == [
        ("sqlite", READINGS),
        ("postgresql", READINGS),
    ]
    runs = {r["contender"]: r for r in report["runs"]}
    assert runs["sqlite"]["postgres_spool_batches"] == 0  # no database server in use
    assert runs["postgresql"]["postgres_spool_batches"] > 0  # the spool went there
    # the server's CPU, counted in clock ticks: a short run's share may round to 0
    assert runs["postgresql"]["postgres_cpu_s_per_reading"] >= 0
    assert (
        report["ratio"] == report["best"]["postgresql"]["rate"] / report["best"]["sqlite"]["rate"]
    )
    assert "ratio postgresql/sqlite" in done.stdout
    for state in ("sqlite", "postgresql"):
        latency = report["alarm_latency"][state]
        assert latency["p99_ms"] >= latency["p50_ms"] > 0


def test_the_bench_says_how_to_run_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.state_ingest", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for option in ("--readings", "--batch", "--rounds", "--alarm-probes", "--alarm-load", "--json"):
        assert option in done.stdout
