"""Smoke test of bench/ingest_e2e.py: both contenders store every reading; the report is whole.

The bench's figures are not asserted (no timing assertions); its exact counts are.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READINGS = 20_000


def test_both_contenders_store_every_reading_and_the_report_has_the_figures(
    tmp_path: Path,
) -> None:
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ingest_e2e",
            "--readings",
            str(READINGS),
            "--rounds",
            "1",
            "--also",
            "SAFETY_HUB_MQTT_PROCESS=off",
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
    assert report["readings"] == READINGS and report["batch"] == 100
    assert report["broker"] == "acl"  # as docker-compose runs it: a user per enterprise
    also = "hub[SAFETY_HUB_MQTT_PROCESS=off]"
    assert [(r["contender"], r["stored"]) for r in report["runs"]] == [
        ("hub", READINGS),
        (also, READINGS),
        ("baseline", READINGS),
    ]
    assert (
        report["ratio_also"][also]
        == report["best"][also]["rate"] / report["best"]["baseline"]["rate"]
    )
    for name in ("hub", also, "baseline"):
        best = report["best"][name]
        assert best["rate"] > 0 and best["seconds"] > 0
        assert best["cpu_s_per_reading"] > 0 and best["peak_rss_mib"] > 0
    assert report["ratio"] == report["best"]["hub"]["rate"] / report["best"]["baseline"]["rate"]
    assert "ratio hub/baseline" in done.stdout
    assert "stored" in done.stderr  # progress while it runs


def test_the_bench_says_how_to_run_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ingest_e2e", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for option in ("--readings", "--batch", "--rounds", "--json", "--also"):
        assert option in done.stdout
