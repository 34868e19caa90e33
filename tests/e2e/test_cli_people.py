"""`safety-hub people check|on-duty` as a user runs them, and a bad people file stopping the
hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import cli
from tests.fixtures import free_port

pytestmark = pytest.mark.e2e

BAD = """\
version: 1
people:
  - id: e01-safety
    name: 王建国
    roles: [enterprise_safety_oficer]
    scope: e01-chloralkali
    contacts:
      - {channel: email, url: "mailto://smtp.example.com?to=a@example.com"}
  - id: e02-safety
    name: 李秀英
    roles: [enterprise_safety_officer]
    scope: e02-sodum
    contacts:
      - {channel: email, url: "json://hooks.example.com/x"}
"""


def test_people_check_passes_the_sample_and_lists_every_error(tmp_path: Path) -> None:
    ok = cli("people", "check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "SUCCESS: 11 people, 1 roster(s)" in ok.stdout
    bad = tmp_path / "people.yaml"
    bad.write_text(BAD, encoding="utf-8")
    result = cli("people", "check", str(bad))
    assert result.returncode == 1
    assert "FAILED: 3 error(s)" in result.stdout
    assert f"{bad}:5:13:" in result.stdout
    assert "did you mean 'enterprise_safety_officer'" in result.stdout
    assert f"{bad}:12:5:" in result.stdout
    assert "did you mean 'e02-sodium'" in result.stdout
    assert "scheme json:// does not fit channel email" in result.stdout


def test_people_on_duty_at_a_time() -> None:
    result = cli("people", "on-duty", "--at", "2026-10-01T09:00+08:00", "--roster", "park-duty")
    assert result.returncode == 0, result.stderr
    assert "day 2026-10-01 08:00 - 2026-10-01 20:00: 周强 (park-duty-3)" in result.stdout
    assert "[override: 国庆调班" in result.stdout
    assert "next night from 2026-10-01 20:00" in result.stdout
    unknown = cli("people", "on-duty", "--roster", "park")
    assert unknown.returncode == 2
    assert "did you mean 'park-duty'?" in unknown.stderr
    assert cli("people", "on-duty", "--at", "tomorrow").returncode == 2


def test_a_bad_people_file_stops_the_hub_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "people.yaml"
    bad.write_text(BAD, encoding="utf-8")
    env = {
        "SAFETY_HUB_PEOPLE": str(bad),
        "SAFETY_HUB_DATA_DIR": str(tmp_path / "d"),
        "SAFETY_HUB_API_PORT": str(free_port()),  # 8080 may be someone else's
    }
    result = cli("run", env=env)
    assert result.returncode == 2
    assert f"{bad}:5:13:" in result.stderr
    assert "3 error(s)" in result.stderr
    missing = cli("run", env={**env, "SAFETY_HUB_PEOPLE": str(tmp_path / "nope.yaml")})
    assert missing.returncode == 2
    assert "SAFETY_HUB_PEOPLE" in missing.stderr and "not found" in missing.stderr
