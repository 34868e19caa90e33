"""Every benchmark in bench/ answers ``--help`` with its usage and runs nothing (a bench that
ignored its arguments used to start its whole run on ``--help``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(
    p.stem
    for p in (ROOT / "bench").glob("*.py")
    if p.stem != "__init__" and '__name__ == "__main__"' in p.read_text()
)


def test_the_list_is_not_empty() -> None:
    assert {"__main__", "alarm_latency", "decode", "fairness", "naive_alarm"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_help_shows_usage_and_runs_nothing(module: str) -> None:
    name = "bench" if module == "__main__" else f"bench.{module}"
    done = subprocess.run(
        [sys.executable, "-m", name, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: "), done.stdout[:300]
    assert "-h, --help" in done.stdout
