"""`safety-hub uplink check|status` and `run` with an uplink, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "connectors" / "uplink" / "uplink.example.yaml"
SECRETS = {
    "SAFETY_HUB_UPLINK_PROVINCE_KEY": "0123456789abcdef",
    "SAFETY_HUB_UPLINK_CITY_TOKEN": "t",
    "SAFETY_HUB_UPLINK_PROVHUB_USER": "u",
    "SAFETY_HUB_UPLINK_PROVHUB_PASSWORD": "p",
}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAFETY_HUB_")}
    return subprocess.run(
        [sys.executable, "-m", "safety_hub.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
    )


def test_check_accepts_the_sample_and_names_missing_secrets() -> None:
    """The shipped sample is valid; without its secrets in the environment check exits 1."""
    good = cli("uplink", "check", str(EXAMPLE), env=SECRETS)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "SUCCESS: 3 destination(s)" in good.stdout
    bare = cli("uplink", "check", str(EXAMPLE))
    assert bare.returncode == 1
    assert "SAFETY_HUB_UPLINK_PROVINCE_KEY is not set" in bare.stdout


def test_check_reports_every_error_with_file_and_line(tmp_path: Path) -> None:
    """A bad file: every error as file:line:col, exit 1."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("mode: ecb", "mode: cfb").replace("port: 9300", "port: 99999")
    bad = tmp_path / "uplink.yaml"
    bad.write_text(text, encoding="utf-8")
    result = cli("uplink", "check", str(bad), env=SECRETS)
    assert result.returncode == 1
    lines = text.splitlines()
    port_line = next(i for i, line in enumerate(lines, 1) if "port: 99999" in line)
    mode_line = next(i for i, line in enumerate(lines, 1) if "mode: cfb" in line)
    assert f"{bad}:{port_line}:" in result.stdout and f"{bad}:{mode_line}:" in result.stdout


def test_status_without_a_queue_and_run_without_its_key(tmp_path: Path) -> None:
    """status on a fresh data directory says there is no queue; run without the AES key
    exits 2 naming the variable, before it opens anything."""
    status = cli("uplink", "status", "--data-dir", str(tmp_path))
    assert status.returncode == 0 and "no uplink queue" in status.stdout
    env = {"SAFETY_HUB_UPLINK": str(EXAMPLE), "SAFETY_HUB_DATA_DIR": str(tmp_path / "data")}
    run = cli("run", "--api-port", "0", env=env)
    assert run.returncode == 2
    assert "SAFETY_HUB_UPLINK_PROVINCE_KEY" in run.stderr and "docs/uplink.md" in run.stderr
    assert not (tmp_path / "data").exists()  # stopped before any state file was opened
