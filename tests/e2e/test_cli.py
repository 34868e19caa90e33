"""The CLI as a user runs it: help, bad configuration, and local mode end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.hubproc import HubProcess, wait_for

pytestmark = pytest.mark.e2e


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safety_hub.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_help_lists_the_commands_and_the_environment() -> None:
    """`--help` names every command, the main variables, and the port and scenario options."""
    result = cli("--help")
    assert result.returncode == 0
    for word in ("run", "demo", "simulate", "SAFETY_HUB_MQTT_URL", "SAFETY_HUB_INFLUX_URL"):
        assert word in result.stdout
    assert "--api-port" in cli("run", "--help").stdout
    demo = cli("demo", "--help").stdout
    for option in ("--api-port", "--scenario", "--speed", "--duration"):
        assert option in demo
    simulate = cli("simulate", "--help").stdout
    for option in ("--rate", "--no-critical-topic"):
        assert option in simulate


def test_no_command_prints_help_and_exits_2() -> None:
    """Running without a command is a usage error."""
    result = cli()
    assert result.returncode == 2
    assert "usage:" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "expect"),
    [
        ("SAFETY_HUB_API_PORT", "http", "valid integer"),
        ("SAFETY_HUB_MQTT_URL", "http://broker:1883", "mqtt://"),
        ("SAFETY_HUB_INFLUX_API", "v3", "'v1' or 'v2'"),
        ("SAFETY_HUB_INFLUX_URL", "influx:8086", "http://"),
        ("SAFETY_HUB_PLANT", "/nonexistent/plant.yaml", "not found"),
        ("SAFETY_HUB_SPOOL_SYNC", "sometimes", "'full' or 'normal'"),
    ],
)
def test_bad_setting_exits_2_naming_variable_and_value(
    variable: str, value: str, expect: str, tmp_path: Path
) -> None:
    """A bad value stops the hub with exit 2 and a message naming the variable and the value."""
    result = cli("run", env={variable: value, "SAFETY_HUB_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert variable in result.stderr
    assert repr(value) in result.stderr
    assert expect in result.stderr


@pytest.mark.parametrize("scenario", [None, "scenarios/chlorine_tank_leak.yaml"])
def test_simulate_without_a_broker_says_so_in_one_line(scenario: str | None) -> None:
    """No broker at the URL: exit 1 and a line naming the gateway and the address, no
    traceback (load mode and a scenario alike), once --connect-timeout has passed."""
    from tests.fixtures.processes import free_port

    port = free_port()
    args = ["simulate", "--url", f"mqtt://127.0.0.1:{port}", "--connect-timeout", "1"]
    args += [str(Path(__file__).parents[2] / scenario)] if scenario else ["--duration", "1"]
    result = cli(*args)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("simulate: gateway ") and f"127.0.0.1:{port}" in last, last


def test_v2_without_token_is_refused(tmp_path: Path) -> None:
    """No default secrets outside local mode: InfluxDB v2 needs a token."""
    result = cli(
        "run",
        env={"SAFETY_HUB_INFLUX_URL": "http://127.0.0.1:1", "SAFETY_HUB_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "SAFETY_HUB_INFLUX_TOKEN" in result.stderr


def test_invalid_plant_file_reports_file_and_line(tmp_path: Path) -> None:
    """A broken plant registry stops the hub with every error as file:line:col."""
    plant = tmp_path / "plant.yaml"
    plant.write_text(
        "version: 1\npark: {code: p, name: P}\nenterprises:\n  - code: e1\n    bogus_key: 1\n"
    )
    result = cli(
        "run", env={"SAFETY_HUB_PLANT": str(plant), "SAFETY_HUB_DATA_DIR": str(tmp_path / "d")}
    )
    assert result.returncode == 2
    assert f"{plant}:5:" in result.stderr


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_local_mode_end_to_end(tmp_path: Path) -> None:
    """With nothing configured, `safety-hub run` starts its own broker and store; data flows."""
    hub = HubProcess(tmp_path / "hub", {"SAFETY_HUB_EMBEDDED_MQTT_PORT": "1883"})
    hub.start()
    try:
        system = hub.get("/api/v1/system").json()
        mqtt_url = system["mqtt_url"]
        port = int(mqtt_url.rsplit(":", 1)[1])
        if _port_in_use(1883) and port != 1883:
            pass  # expected on machines that already run a broker: the hub took a free port
        assert system["mqtt_connected"] is True
        tags = hub.get("/api/v1/tags").json()
        first = tags[0]
        now = int(time.time() * 1000)
        body = json.dumps(
            {
                "readings": [
                    {"tag": first["tag"], "v": 1.25, "ts": now},
                    {"tag": "NO-SUCH-TAG", "v": 1},
                ]
            }
        )
        subprocess.run(
            [
                "mosquitto_pub",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-q",
                "1",
                "-t",
                f"hazard/v1/{first['enterprise']}/telemetry",
                "-m",
                body,
            ],
            check=True,
            timeout=10,
        )
        path = f"/api/v1/tags/{first['enterprise']}/{httpx.URL('/' + first['tag']).raw_path.decode()[1:]}"
        wait_for(
            lambda: hub.get(path + "/latest").json().get("value") == 1.25, 10, "the latest value"
        )
        wait_for(
            lambda: len(hub.get(path + "/history").json()["points"]) == 1, 10, "the stored reading"
        )
        assert hub.metric("safety_hub_readings_rejected_total") == 1
        assert hub.get(f"/api/v1/tags/{first['enterprise']}/NO-SUCH-TAG/latest").status_code == 404
    finally:
        assert hub.stop() == 0


def test_demo_runs_publishes_and_stores(tmp_path: Path) -> None:
    """`safety-hub demo` starts everything itself, shows progress, and the readings get stored."""
    from tests.integration.hubproc import free_port

    result = subprocess.run(
        [sys.executable, "-m", "safety_hub.cli", "demo", "--duration", "8"],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
        env={**os.environ, "SAFETY_HUB_API_PORT": str(free_port())},
    )
    assert result.returncode == 0, result.stderr
    assert "safety-hub demo: park alxa-hitech" in result.stdout
    progress = [line for line in result.stdout.splitlines() if line.startswith("[demo] published")]
    assert progress, result.stdout
    published = int(progress[-1].split()[2])
    assert published > 100
    import sqlite3

    stored = (
        sqlite3.connect(tmp_path / ".hub-data/demo/readings.sqlite")
        .execute("SELECT COUNT(*) FROM reading")
        .fetchone()[0]
    )
    assert stored == published
