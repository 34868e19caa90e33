"""The uplink inside the hub (in process, virtual clock): a full queue is never silent, the
state shows in /api/v1/system and /metrics; a missing key stops the start with its name."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safety_hub.errors import ConfigError
from tests.fixtures.processes import free_port
from tests.unit.api_support import ADMIN_HEADERS, NOW, make_app, make_hub, publish

CONFIG = """\
version: 1
destinations:
  - name: province
    transport: tcp_envelope
    tcp:
      host: 127.0.0.1
      port: {port}
      app_id: app
      service_id: svc
      district_code: "152921"
      key_env: SAFETY_HUB_UPLINK_UNIT_KEY
    send:
      hazard_grades: []
      hazard_sources: [HS-E01-01]
    max_records: {max_records}
"""


def config(tmp_path: Path, max_records: int) -> Path:
    path = tmp_path / "uplink.yaml"
    path.write_text(CONFIG.format(port=free_port(), max_records=max_records), encoding="utf-8")
    return path


def test_full_queue_refuses_counts_and_raises_a_system_alarm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More base data than the bound: what does not fit is refused, counted, logged and a
    system alarm names the destination and what was refused; API and metrics show it."""
    monkeypatch.setenv("SAFETY_HUB_UPLINK_UNIT_KEY", "0123456789abcdef")
    hub = make_hub(tmp_path, uplink=config(tmp_path, 10))
    assert hub.uplink is not None
    (lane,) = hub.uplink.lanes
    hub.uplink.queue_base(lane)
    expected = 2 + len(lane.tags)  # enterprise, hazard source, tags
    ((alarm),) = [a for a in hub.system_alarms.active() if a.name == "uplink_queue_full:province"]
    assert f"refused {expected - 10} new record(s)" in alarm.message
    publish(hub, "e01-chloralkali", [{"tag": "LT-1101", "v": 1.0, "ts": NOW - 1000}])
    hub.uplink.queue_readings(lane)
    (state,) = hub.uplink.states()
    assert (state["backlog"], state["queued"], state["dropped"]) == (10, 10, expected - 10 + 1)
    with TestClient(make_app(hub, tmp_path), headers=ADMIN_HEADERS) as client:
        (shown,) = client.get("/api/v1/system").json()["uplinks"]
        assert (shown["name"], shown["backlog"], shown["dropped"]) == ("province", 10, expected - 9)
        metrics = client.get("/metrics").text
    assert (
        'safety_hub_uplink_dropped_records_total{destination="province"} ' + f"{expected - 9}.0"
        in metrics
    )
    assert 'safety_hub_uplink_backlog_records{destination="province"} 10.0' in metrics
    assert 'safety_hub_system_alarm{name="uplink_queue_full:province"} 1.0' in metrics


def test_missing_key_stops_the_start_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No AES key in the environment: ConfigError names the variable; a wrong length too,
    without echoing the key."""
    monkeypatch.delenv("SAFETY_HUB_UPLINK_UNIT_KEY", raising=False)
    with pytest.raises(ConfigError, match="SAFETY_HUB_UPLINK_UNIT_KEY"):
        make_hub(tmp_path, uplink=config(tmp_path, 100))
    monkeypatch.setenv("SAFETY_HUB_UPLINK_UNIT_KEY", "short-secret")
    with pytest.raises(ConfigError, match="must be 16, 24 or 32 bytes") as info:
        make_hub(tmp_path, uplink=config(tmp_path, 100))
    assert "short-secret" not in str(info.value)
