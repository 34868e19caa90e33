"""`safety-hub run` on a damaged state file stops at once: exit 2, the file and what to do on
stderr, no traceback. Run as an operator would, against a real broker (no embedded one)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.processes import MosquittoProcess, free_port

pytestmark = pytest.mark.integration


def run_hub(data_dir: Path, broker: MosquittoProcess) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SAFETY_HUB_DATA_DIR": str(data_dir),
        "SAFETY_HUB_MQTT_URL": broker.url,
        "SAFETY_HUB_API_PORT": str(free_port()),
        "SAFETY_HUB_ADMIN_TOKEN": secrets.token_urlsafe(24),
    }
    try:
        return subprocess.run(
            [sys.executable, "-m", "safety_hub.cli", "run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the hub did not stop on the damaged file:\n{exc.stderr!r}") from exc


def damage(path: Path) -> None:
    """An SQLite header followed by bytes that are no database (a file overwritten by chance)."""
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        ("spool.sqlite", "readings not yet written to storage"),
        ("alarms.sqlite", "system of record"),
    ],
)
def test_a_damaged_state_file_stops_the_start_with_exit_2_and_the_way_out(
    tmp_path: Path, mosquitto: MosquittoProcess, name: str, advice: str
) -> None:
    """A corrupted spool.sqlite, then alarms.sqlite: exit 2, stderr names the file, says it is
    damaged and how to salvage it with sqlite3's .recover, and shows no traceback."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    damage(data_dir / name)
    done = run_hub(data_dir, mosquitto)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith(f"safety-hub: damaged state file {data_dir / name}: ")
    assert advice in message
    assert f"sqlite3 {data_dir / name} .recover | sqlite3 {data_dir / name}.recovered" in message
