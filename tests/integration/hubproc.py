"""Run ``safety-hub run`` as a separate process, as an operator would, for kill/restart tests."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.processes import die_with_parent, free_port


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def process_alive(pid: int) -> bool:
    """Running (a zombie left for init to reap counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def metric_sum(exposition: str, name: str) -> float:
    """Sum of a metric's samples (all label sets, or the one ``name{...}`` spells) in a
    Prometheus text exposition; 0 when there is none."""
    total = 0.0
    found = False
    for line in exposition.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == name or key.startswith(name + "{"):
            total += float(value)
            found = True
    return total if found else 0.0


class HubProcess:
    """``safety-hub run`` in a subprocess. It gets a random SAFETY_HUB_ADMIN_TOKEN unless
    ``env`` gives one; :meth:`get` and :meth:`post` send it as the bearer token."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str],
        *,
        wrap: Callable[[list[str]], list[str]] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """``wrap`` turns the command line into another (``ip netns exec NS ...``); ``host`` is
        where the test reaches the API (the hub must listen there: SAFETY_HUB_API_HOST)."""
        self.data_dir = data_dir
        self.wrap = wrap
        self.port = free_port()
        self.env = {
            **os.environ,
            "SAFETY_HUB_DATA_DIR": str(data_dir),
            "SAFETY_HUB_API_PORT": str(self.port),
            "SAFETY_HUB_LOG_FORMAT": "json",
            "SAFETY_HUB_ADMIN_TOKEN": secrets.token_urlsafe(24),
            **env,
        }
        self.token = self.env["SAFETY_HUB_ADMIN_TOKEN"]
        self.auth = {"Authorization": f"Bearer {self.token}"}
        self.proc: subprocess.Popen[bytes] | None = None
        self._terminated: subprocess.Popen[bytes] | None = None  # sent SIGTERM by terminate()
        self.log_path = data_dir / "hub.log"
        self.url = f"http://{host}:{self.port}"

    def start(self, timeout: float = 60.0, *, standby: bool = False) -> None:
        """Start and wait until ``/readyz`` answers 200; with ``standby`` (a redundant pair's
        second node, never ready while the other acts) until it serves the API as a standby
        that has read the lease and names the active node."""
        self.spawn()
        self.wait_started(timeout, standby=standby)

    def spawn(self) -> None:
        """Start the process without waiting for it (several hubs start side by side; then
        :meth:`wait_started` for each)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        argv = [sys.executable, "-m", "safety_hub.cli", "run"]
        self.proc = subprocess.Popen(
            self.wrap(argv) if self.wrap else argv,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # a bench or test killed before it could stop the hub does not leave it running
            preexec_fn=die_with_parent(signal.SIGTERM),
        )

    def wait_started(self, timeout: float = 60.0, *, standby: bool = False) -> None:
        """Wait until the spawned hub is ready (or, with ``standby``, serves as a standby)."""
        ready, what = (self._standby, "standby") if standby else (self._ready, "ready")
        try:
            wait_for(ready, timeout, f"the hub to be {what} at {self.url}")
        except AssertionError as exc:  # the log as it is now, not as it was at the start
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"hub exited with {self.proc.returncode}\n{self.log_tail()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _standby(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"hub exited with {self.proc.returncode}\n{self.log_tail()}")
        try:
            ha = self.ha()
            return ha.get("role") == "standby" and ha.get("active_node") is not None
        except httpx.HTTPError:
            return False

    def ha(self) -> dict[str, Any]:
        """The ``ha`` block of ``/api/v1/system``."""
        response = self.get("/api/v1/system")
        response.raise_for_status()
        block: dict[str, Any] = response.json()["ha"]
        return block

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self.auth, timeout=10)

    def post(self, path: str, json: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=json, headers=self.auth, timeout=10)

    def metrics_text(self) -> str:
        """The ``/metrics`` exposition as served (no authentication needed)."""
        response = httpx.get(f"{self.url}/metrics", timeout=60)
        response.raise_for_status()
        return response.text

    def metric(self, name: str) -> float:
        """Sum of a metric's samples (all label sets)."""
        return metric_sum(self.get("/metrics").text, name)

    def journal(self, limit: int = 10_000) -> list[dict[str, Any]]:
        """The alarm journal, oldest first (the last ``limit`` rows)."""
        response = self.get(f"/api/v1/alarms/journal?limit={limit}")
        response.raise_for_status()
        rows: list[dict[str, Any]] = response.json()
        return rows

    # -- the process as the kernel sees it (Linux /proc) ----------------------------------------
    @property
    def pid(self) -> int:
        assert self.proc is not None and self.proc.poll() is None, "the hub is not running"
        return self.proc.pid

    def _status_kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def rss_bytes(self) -> int:
        """Resident memory now (VmRSS)."""
        return self._status_kib("VmRSS") * 1024

    def peak_rss_bytes(self) -> int:
        """Peak resident memory (VmHWM) since the start or the last :meth:`reset_peak_rss`."""
        return self._status_kib("VmHWM") * 1024

    def reset_peak_rss(self) -> bool:
        """Reset VmHWM to the current RSS (writing 5 to clear_refs); False when not permitted."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    # -- the log ----------------------------------------------------------------------------
    def log_lines(self, start: int = 0) -> list[str]:
        """Lines of the hub's log (stdout and stderr, every run) from line index ``start`` on."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return text.splitlines()[start:]

    def log_line_count(self) -> int:
        return len(self.log_lines())

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        """Send SIGTERM without waiting (:meth:`stop` then waits), so that several hubs shut
        down side by side."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self._terminated = self.proc

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        if self._terminated is not self.proc:  # one SIGTERM per process
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_all(*hubs: HubProcess) -> None:
    """SIGTERM to every hub at once, then wait for each (as :meth:`HubProcess.stop`)."""
    for hub in hubs:
        hub.terminate()
    for hub in hubs:
        hub.stop()
