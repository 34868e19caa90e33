"""`safety-hub demo` as a newcomer runs it: a taken API port, and an incident played into it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.integration.hubproc import free_port, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHLORINE = ROOT / "scenarios" / "chlorine_tank_leak.yaml"
HINT = "--api-port N or SAFETY_HUB_API_PORT=N"
BANNER = "safety-hub demo: park"
CONSOLE = re.compile(r"console\s+http://127\.0\.0\.1:(\d+)/console/#token=(\S+)")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The user's environment without a chosen API port, the broker on any free port."""
    env = {k: v for k, v in os.environ.items() if k.upper() != "SAFETY_HUB_API_PORT"}
    env.update(
        SAFETY_HUB_DATA_DIR=str(tmp_path / "data"), SAFETY_HUB_EMBEDDED_MQTT_PORT="0", **extra
    )
    return env


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port that another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def port_8080_taken() -> Iterator[None]:
    """The default API port taken: by this test unless something on the machine has it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", 8080))
        sock.listen()
    except OSError:
        pass  # taken already, which is the point
    try:
        yield
    finally:
        sock.close()


class Demo:
    """`safety-hub demo ARGS` in a subprocess; its stdout is collected line by line."""

    def __init__(self, tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "safety_hub.cli", "demo", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.port = 0
        self.token = ""

    @staticmethod
    def _read(stream: IO[str] | None, into: list[str]) -> None:
        assert stream is not None
        for line in stream:
            into.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines) + "\n--- stderr ---\n" + "\n".join(self.errors[-30:])

    def wait_line(self, prefix: str, timeout: float) -> str:
        """The first line of stdout that starts with ``prefix``, once there is one."""

        def found() -> str | None:
            return next((line for line in self.lines if line.startswith(prefix)), None)

        def seen() -> bool:
            if found() is None and self.proc.poll() is not None:
                for reader in self._readers:
                    reader.join(5)  # the last lines the demo wrote before it exited
                if found() is None:
                    raise AssertionError(f"the demo exited ({self.proc.returncode}) first")
            return found() is not None

        try:
            wait_for(seen, timeout, f"{prefix!r} from the demo", interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output()}") from None
        line = found()
        assert line is not None
        return line

    def wait_banner(self) -> None:
        line = self.wait_line("  console", 60)
        found = CONSOLE.search(line)
        assert found, line
        self.port, self.token = int(found.group(1)), found.group(2)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.port}{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)
        return code


def _run_cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safety_hub.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


@pytest.mark.parametrize(
    ("command", "by"),
    [("demo", "variable"), ("demo", "option"), ("run", "option"), ("run", "variable")],
)
def test_a_chosen_port_that_is_taken_stops_with_exit_2_and_the_hint(
    command: str, by: str, taken_port: int, tmp_path: Path
) -> None:
    """A port the user chose that another program holds: one line naming it and how to choose
    another, exit 2, no banner, and nothing started (no data directory)."""
    extra = {"SAFETY_HUB_API_PORT": str(taken_port)} if by == "variable" else {}
    args = [command, "--api-port", str(taken_port)] if by == "option" else [command]
    if command == "demo":
        args += ["--duration", "5"]
    result = _run_cli(args, _env(tmp_path, **extra), tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1, result.stderr
    assert f"port {taken_port}" in errors[0]
    assert HINT in errors[0]
    assert BANNER not in result.stdout
    assert "console" not in result.stdout
    assert not (tmp_path / "data").exists()


def test_8080_taken_and_no_port_chosen_the_demo_takes_a_free_one(
    port_8080_taken: None, tmp_path: Path
) -> None:
    """With 8080 taken and no port chosen the demo listens on a free port, the banner shows it
    (and says why), and the API answers there with the banner's token."""
    demo = Demo(tmp_path, ["--duration", "120"], _env(tmp_path))
    try:
        demo.wait_banner()
        assert demo.port != 8080
        assert any("(port 8080 is taken)" in line for line in demo.lines), demo.output()
        assert not any(HINT in line for line in demo.errors), demo.output()
        system = demo.get("/api/v1/system")
        assert system.status_code == 200, system.text
        assert system.json()["mqtt_connected"] is True
    finally:
        assert demo.stop() == 0, demo.output()


def _journal(demo: Demo, key: str) -> list[dict[str, object]]:
    rows = demo.get("/api/v1/alarms/journal?limit=10000")
    assert rows.status_code == 200, rows.text
    return [row for row in rows.json() if row["key"] == key]


def test_scenario_played_into_the_demo_raises_its_alarms_without_flapping(
    tmp_path: Path,
) -> None:
    """`demo --scenario chlorine --speed 30`: the leak raises GT-1101's level-2 alarm, and its
    level-1 alarm is raised once, not again each time the demo's own gateway would have sent
    clean air for the same detector (every 5 s: twice in the leak's 5 minutes at 30x, and
    more after it); the demo prints the transitions and the outcome."""
    demo = Demo(
        tmp_path,
        ["--scenario", str(CHLORINE), "--speed", "30", "--api-port", str(free_port())],
        _env(tmp_path),
    )
    try:
        demo.wait_banner()
        assert any(line.startswith("  scenario ") for line in demo.lines), demo.output()
        # the verdict depends on timing at 30x (speed belongs to bench/): only that it is told
        verdict = demo.wait_line("[scenario] outcome:", 240).split(":", 1)[1].strip()
        assert verdict.startswith(("PASS  ", "FAIL  ")), demo.output()
        assert verdict[6:].startswith("Liquid chlorine leak at storage tank TK-101  ("), verdict
        level2 = _journal(demo, "ToxicGasLevel2|e01-chloralkali|GT-1101")
        assert [r for r in level2 if r["action"] == "raise"], level2
        level1 = _journal(demo, "ToxicGasLevel1|e01-chloralkali|GT-1101")
        raises = [r for r in level1 if r["action"] == "raise"]
        assert len(raises) == 1, level1
        assert any(
            "raise high ToxicGasLevel2 e01-chloralkali/GT-1101" in line for line in demo.lines
        )
    finally:
        assert demo.stop() == 0, demo.output()
