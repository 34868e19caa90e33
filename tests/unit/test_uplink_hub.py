"""The uplink inside the hub (in process, virtual clock): a full queue is never silent, the
state shows in /api/v1/system and /metrics; a missing key stops the start with its name."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safety_hub.errors import ConfigError
from tests.fixtures.processes import free_port
from tests.fixtures.uplink_receiver import EnvelopeReceiver
from tests.integration.hubproc import wait_for
from tests.unit.api_support import ADMIN_HEADERS, NOW, make_app, make_hub, publish

KEY = "0123456789abcdef"
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


def config(tmp_path: Path, max_records: int, port: int | None = None) -> Path:
    path = tmp_path / "uplink.yaml"
    port = port or free_port()
    path.write_text(CONFIG.format(port=port, max_records=max_records), encoding="utf-8")
    return path


def test_full_queue_holds_base_data_drops_readings_and_raises_a_system_alarm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More base data than the bound: the rest is held back (put again once there is room), a
    reading that does not fit is dropped and counted, a system alarm says so; API and metrics
    show it; once the platform takes records, all base data arrives and the alarm clears."""
    monkeypatch.setenv("SAFETY_HUB_UPLINK_UNIT_KEY", KEY)
    port = free_port()
    hub = make_hub(tmp_path, uplink=config(tmp_path, 10, port))
    assert hub.uplink is not None
    (lane,) = hub.uplink.lanes
    hub.uplink.queue_base(lane)
    expected = 2 + len(lane.tags)  # enterprise, hazard source, tags
    (alarm,) = [a for a in hub.system_alarms.active() if a.name == "uplink_queue_full:province"]
    assert f"{expected - 10} new tag record(s) held back" in alarm.message
    publish(hub, "e01-chloralkali", [{"tag": "LT-1101", "v": 1.0, "ts": NOW - 1000}])
    hub.uplink.queue_readings(lane)
    (state,) = hub.uplink.states()
    assert (state["backlog"], state["queued"], state["dropped"]) == (10, 10, 1)
    receiver = EnvelopeReceiver(KEY.encode())
    receiver.port = port
    with TestClient(make_app(hub, tmp_path), headers=ADMIN_HEADERS) as client:
        (shown,) = client.get("/api/v1/system").json()["uplinks"]
        assert (shown["name"], shown["dropped"]) == ("province", 1)
        metrics = client.get("/metrics").text
        assert 'safety_hub_uplink_dropped_records_total{destination="province"} 1.0' in metrics
        assert 'safety_hub_system_alarm{name="uplink_queue_full:province"} 1.0' in metrics
        receiver.start()
        try:
            wait_for(lambda: len(receiver.unique()) == expected, 30, "all base data")
            wait_for(
                lambda: (
                    not any(
                        a.name.startswith("uplink_queue_full") for a in hub.system_alarms.active()
                    )
                ),
                10,
                "the alarm cleared",
            )
        finally:
            receiver.stop()
    assert receiver.problems == [] and len(receiver.received()) == expected  # each once
    bits = {e.records[0].get("BIT_NO") for e in receiver.unique().values()} - {None}
    assert bits == {t.tag for t in lane.tags}


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
