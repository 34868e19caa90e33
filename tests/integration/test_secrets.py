"""A hub configured with a secret in every secret-bearing setting, whose broker and database
are both unreachable (so that errors are made and logged), shows none of them in its API
answers, its probes, its metrics or its log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.integration.hubproc import free_port, wait_for

SECRET = "s3cr3t-Pa55"


def test_a_running_hub_shows_no_secret_anywhere(tmp_path: Path) -> None:
    """Broker and InfluxDB URLs with passwords, an InfluxDB password and the admin token: the
    system view, readiness, metrics, a failed history read and every log line are free of them,
    while the hosts still show."""
    closed = free_port()  # nothing listens there: connection refused
    admin = f"{SECRET}-admin-token"
    env = {
        **os.environ,
        "SAFETY_HUB_DATA_DIR": str(tmp_path / "data"),
        "SAFETY_HUB_API_PORT": str(free_port()),
        "SAFETY_HUB_LOG_FORMAT": "json",
        "SAFETY_HUB_MQTT_URL": f"mqtt://hub:{SECRET}-mqtt@127.0.0.1:{closed}",
        "SAFETY_HUB_INFLUX_URL": f"http://ifx:{SECRET}-url@127.0.0.1:{closed}",
        "SAFETY_HUB_INFLUX_API": "v1",
        "SAFETY_HUB_INFLUX_PASSWORD": f"{SECRET}-password",
        "SAFETY_HUB_ADMIN_TOKEN": admin,
    }
    url = f"http://127.0.0.1:{env['SAFETY_HUB_API_PORT']}"
    auth = {"Authorization": f"Bearer {admin}"}
    log_path = tmp_path / "hub.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "safety_hub.cli", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def answering() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answering, 30, "the hub's API")
        wait_for(
            lambda: "not connected to the MQTT broker" in httpx.get(f"{url}/readyz").text,
            30,
            "readiness to name the broker",
        )
        answers = {
            "system": httpx.get(f"{url}/api/v1/system", headers=auth),
            "readyz": httpx.get(f"{url}/readyz"),
            "metrics": httpx.get(f"{url}/metrics"),
            "history": httpx.get(
                f"{url}/api/v1/tags/e01-chloralkali/GT-1101/history", headers=auth
            ),
        }
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert answers["readyz"].status_code == 503
    assert answers["history"].status_code == 503  # the database is unreachable
    system = answers["system"].json()
    assert system["mqtt_url"] == f"mqtt://127.0.0.1:{closed}"
    assert system["storage"] == f"InfluxDB v1 at http://127.0.0.1:{closed}"
    log_text = log_path.read_text()
    assert "hub starting" in log_text
    for name, text in {**{k: v.text for k, v in answers.items()}, "log": log_text}.items():
        assert SECRET not in text, (name, text[:2000])
