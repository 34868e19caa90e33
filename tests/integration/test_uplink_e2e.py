"""The provincial uplink end to end: the hub as its own process with a real Mosquitto, a TCP
platform written here (tests/fixtures/uplink_receiver.py) that decrypts every envelope; the
platform goes down and comes back, the hub is killed with SIGKILL while it sends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from safety_hub.registry import Plant, default_plant_path, load_plant
from simulators.gateway import Gateway
from tests.fixtures.uplink_receiver import Envelope, EnvelopeReceiver
from tests.integration.hubproc import HubProcess, wait_for

pytestmark = pytest.mark.integration

KEY = "0123456789abcdef"
KEY_ENV = "SAFETY_HUB_UPLINK_TEST_KEY"
ENTERPRISE = "e01-chloralkali"
SOURCE = "HS-E01-01"
TAGS = ["LT-1101", "PT-1101", "TT-1101", "LT-1102"]
# The issue asks for a 60 s cut; the suite keeps it short. SAFETY_HUB_TEST_UPLINK_OUTAGE_S=60
# runs the figure.
OUTAGE_S = float(os.environ.get("SAFETY_HUB_TEST_UPLINK_OUTAGE_S", "12"))
SERVICES = {k: f"svc-{k}" for k in ("enterprise", "hazard_source", "tag", "reading", "warning")}


def uplink_yaml(port: int, *, rate: float) -> str:
    services = "".join(f"        {k}: {v}\n" for k, v in SERVICES.items())
    return f"""\
version: 1
destinations:
  - name: province
    transport: tcp_envelope
    tcp:
      host: 127.0.0.1
      port: {port}
      app_id: test-app
      service_id: svc-default
      service_ids:
{services}      district_code: "152921"
      key_env: {KEY_ENV}
      ack: write
      ack_timeout_s: 0.2
      connect_timeout_s: 1
    send:
      readings_interval_s: 0.3
      hazard_grades: []
      hazard_sources: [{SOURCE}]
    rate_per_s: {rate}
    batch_records: 10
    down_alarm_after_s: 2
    retry_initial_s: 0.2
    retry_max_s: 0.5
"""


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(default_plant_path())


class Park:
    """The hub process, its gateway and the platform of one test."""

    def __init__(self, tmp_path: Path, mosquitto: Any, *, rate: float) -> None:
        self.receiver = EnvelopeReceiver(KEY.encode()).start()
        config = tmp_path / "uplink.yaml"
        config.write_text(uplink_yaml(self.receiver.port, rate=rate), encoding="utf-8")
        env = {
            "SAFETY_HUB_MQTT_URL": mosquitto.url,
            "SAFETY_HUB_UPLINK": str(config),
            KEY_ENV: KEY,
            "SAFETY_HUB_SPOOL_SYNC": "normal",
            "SAFETY_HUB_NOTIFY": "false",
        }
        self.hub = HubProcess(tmp_path / "hub", env)
        self.hub.start()
        self.gateway = Gateway("127.0.0.1", mosquitto.port, ENTERPRISE)
        assert self.gateway.wait_connected()
        self.step = 0
        self.base_ts = int(time.time() * 1000) - 600_000

    def uplink(self) -> dict[str, Any]:
        response = self.hub.get("/api/v1/system")
        response.raise_for_status()
        (state,) = response.json()["uplinks"]
        return dict(state)

    def system_alarm(self, name: str) -> bool:
        alarms = self.hub.get("/api/v1/system").json()["system_alarms"]
        return any(a["name"] == name and a["active"] for a in alarms)

    def publish_step(self) -> None:
        """One reading per tag, then wait until the hub queued all of them (so none is
        superseded before the next readings tick)."""
        self.step += 1
        before = self.queued_readings()
        readings = [{"tag": t, "v": value_of(self.step, i)} for i, t in enumerate(TAGS)]
        self.gateway.publish(readings, ts_ms=self.base_ts + self.step * 1000)
        # readings only: warnings queued meanwhile (a restarted hub's stale tags) do not count
        wait_for(
            lambda: self.queued_readings() >= before + len(TAGS), 20, f"step {self.step} queued"
        )

    def queued_readings(self) -> int:
        return int(self.uplink()["queued_by_kind"].get("reading", 0))

    def close(self) -> None:
        self.gateway.close()
        self.hub.stop()
        self.receiver.stop()


def value_of(step: int, position: int) -> float:
    return round(0.5 + step * 0.01 + position * 0.001, 3)


@pytest.fixture
def park(tmp_path: Path, mosquitto: Any) -> Any:
    parks: list[Park] = []

    def make(rate: float = 1000) -> Park:
        parks.append(Park(tmp_path, mosquitto, rate=rate))
        return parks[-1]

    yield make
    for p in parks:
        p.close()


def of_service(envelopes: dict[str, Envelope], kind: str) -> list[Envelope]:
    return [e for e in envelopes.values() if e.service_id == SERVICES[kind]]


def test_base_data_arrives_decrypted_and_matches_the_registry(park: Any, plant: Plant) -> None:
    """Enterprise, hazard source and every tag of the selected source arrive once each, framed
    and encrypted as the platform expects, with the registry's values."""
    p = park()
    tags = [t for t in plant.tags.values() if t.hazard_source == SOURCE]
    wait_for(lambda: len(of_service(p.receiver.unique(), "tag")) == len(tags), 30, "base data")
    envelopes = p.receiver.unique()
    assert p.receiver.problems == []
    assert {(e.app_id, e.district_code) for e in envelopes.values()} == {("test-app", "152921")}
    (ent,) = [e.records[0] for e in of_service(envelopes, "enterprise")]
    assert ent["ENTERPRISE_CODE"] == ENTERPRISE
    assert ent["LONGITUDE"] == plant.enterprises[ENTERPRISE].longitude
    (hs,) = [e.records[0] for e in of_service(envelopes, "hazard_source")]
    assert (hs["HAZARD_CODE"], hs["HAZARD_GRADE"]) == (SOURCE, 1)
    by_tag = {e.records[0]["BIT_NO"]: e.records[0] for e in of_service(envelopes, "tag")}
    assert set(by_tag) == {t.tag for t in tags}
    for info in tags:
        record = by_tag[info.tag]
        assert record["TARGET_CODE"] == f"{ENTERPRISE}/{info.tag}"
        assert record["EQUIP_CODE"] == info.equipment and record["HAZARD_CODE"] == SOURCE
        assert record["UNIT"] == info.eu
        assert (record["LOW_VALUE"], record["TOP_VALUE"]) == (info.range_lo, info.range_hi)
        sp = info.setpoints
        assert record["TOP_VALUE_02"] == sp.get("hh", sp.get("l2"))
        assert record["LOW_VALUE_02"] == sp.get("l")
        assert record["IS_USE"] == (1 if info.in_service else 0)
        assert (record["LONGITUDE"], record["LATITUDE"]) == (info.longitude, info.latitude)
    assert len(p.receiver.received()) == len(envelopes)  # nothing sent twice while all was well


@pytest.mark.parametrize("outage_s", [OUTAGE_S])
def test_outage_and_kill_lose_nothing_and_keep_order(park: Any, outage_s: float) -> None:
    """The platform down for ``outage_s``, then back, and the hub killed (SIGKILL) while it
    drains its backlog: every reading arrives, exactly once by dataId, in order per tag; a
    re-sent dataId carries the same record."""
    p = park(rate=25)  # slow enough that the backlog takes seconds to drain
    wait_for(lambda: p.uplink()["backlog"] == 0 and p.uplink()["sent"] > 0, 30, "base data sent")
    for _ in range(3):
        p.publish_step()
    p.receiver.stop()
    down_at = time.monotonic()
    while time.monotonic() - down_at < outage_s:
        p.publish_step()
    state = p.uplink()
    assert state["connected"] is False and state["backlog"] > 0 and state["last_error"]
    wait_for(lambda: p.system_alarm("uplink_down:province"), 10, "the uplink_down system alarm")
    metrics = p.hub.metrics_text()
    assert 'safety_hub_uplink_connected{destination="province"} 0.0' in metrics
    assert p.hub.metric("safety_hub_uplink_backlog_records") > 0
    assert p.hub.metric("safety_hub_uplink_failed_attempts_total") > 0
    p.receiver.start()
    arrived = len(p.receiver.received())
    wait_for(lambda: len(p.receiver.received()) >= arrived + 10, 30, "the backlog draining")
    assert p.uplink()["backlog"] > 0, "killed mid-uplink: records must still be waiting"
    p.hub.kill9()
    p.hub.start()
    for _ in range(3):
        p.publish_step()
    wait_for(lambda: p.uplink()["backlog"] == 0, 60, "the backlog sent")
    wait_for(lambda: not p.system_alarm("uplink_down:province"), 10, "the alarm cleared")

    assert p.receiver.problems == []
    received = p.receiver.received()
    first: dict[str, Envelope] = {}
    for envelope in received:
        seen = first.setdefault(envelope.data_id, envelope)
        assert seen.records == envelope.records, "a re-sent dataId must carry the same record"
    readings = [e.records[0] for e in first.values() if e.service_id == SERVICES["reading"]]
    for i, tag in enumerate(TAGS):
        values = [r["VALUE"] for r in readings if r["BIT_NO"] == tag]
        assert values == [value_of(step, i) for step in range(1, p.step + 1)], tag
    assert len(readings) == len(TAGS) * p.step
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "safety_hub.cli",
            "uplink",
            "status",
            "--data-dir",
            str(p.hub.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "province: 0 record(s) waiting" in status.stdout
    assert f"readings queued for {len(TAGS)} tag(s)" in status.stdout


def test_warnings_go_up_with_tier_and_disposal_state(park: Any) -> None:
    """A high-high level raises an alarm: its warning goes up with the tier the API shows;
    the disposal goes up as a later record of the same alarm, disposed, with its category."""
    p = park()
    wait_for(lambda: p.uplink()["backlog"] == 0 and p.uplink()["sent"] > 0, 30, "base data sent")
    p.gateway.publish([{"tag": "LT-1101", "v": 2.5}], ts_ms=int(time.time() * 1000))

    def warnings() -> list[dict[str, Any]]:
        return [e.records[0] for e in of_service(p.receiver.unique(), "warning")]

    wait_for(lambda: any(w["BIT_NO"] == "LT-1101" for w in warnings()), 30, "the warning")
    (raised, *_) = [w for w in warnings() if w["BIT_NO"] == "LT-1101"]
    alarm = p.hub.get(f"/api/v1/alarms/{raised['ALARM_ID']}").json()
    assert raised["ALARM_LEVEL"] == alarm["tier"] and raised["HAZARD_CODE"] == SOURCE
    assert raised["ALARM_VALUE"] == 2.5 and raised["DISPOSAL_STATE"] == "open"
    assert raised["TARGET_CODE"] == f"{ENTERPRISE}/LT-1101"
    body = {"category": "false_alarm", "text": "level transmitter checked: drift"}
    response = p.hub.post(f"/api/v1/alarms/{raised['ALARM_ID']}/dispose", body)
    assert response.status_code == 200, response.text
    wait_for(
        lambda: any(
            w["ALARM_ID"] == raised["ALARM_ID"] and w["DISPOSAL_STATE"] == "disposed"
            for w in warnings()
        ),
        30,
        "the disposal",
    )
    (disposed,) = [w for w in warnings() if w["DISPOSAL_STATE"] == "disposed"]
    assert (
        disposed["DISPOSAL_TYPE"] == "false_alarm" and disposed["DISPOSAL_REMARK"] == body["text"]
    )
    assert p.receiver.problems == []


def test_http_destination_backfills_after_5xx_with_the_same_data_ids(
    tmp_path: Path, mosquitto: Any, plant: Plant
) -> None:
    """An HTTP destination answering 503 for a while: its batches come again with the same
    dataIds and records; once it answers 200 the backlog empties and the base data is all
    there, with the registry's values."""
    from tests.fixtures.receivers import WebhookReceiver

    with WebhookReceiver() as receiver:
        receiver.status = 503
        config = tmp_path / "uplink.yaml"
        config.write_text(
            "version: 1\ndestinations:\n  - name: city\n    transport: http\n"
            f"    http: {{url: 'http://127.0.0.1:{receiver.port}/up'}}\n"
            f"    send: {{hazard_grades: [], hazard_sources: [{SOURCE}]}}\n"
            "    retry_initial_s: 0.2\n    retry_max_s: 0.5\n",
            encoding="utf-8",
        )
        env = {"SAFETY_HUB_MQTT_URL": mosquitto.url, "SAFETY_HUB_UPLINK": str(config)}
        hub = HubProcess(tmp_path / "hub", env)
        hub.start()

        def state() -> dict[str, Any]:
            return dict(hub.get("/api/v1/system").json()["uplinks"][0])

        try:
            wait_for(lambda: len(receiver.requests) >= 3, 30, "three refused attempts")
            assert state()["connected"] is False and "HTTP 503" in state()["last_error"]
            receiver.status = 200
            wait_for(lambda: state()["backlog"] == 0, 30, "the backlog sent")
        finally:
            hub.stop()
    seen: dict[str, dict[str, Any]] = {}
    for request in receiver.requests:
        body = request.json()
        assert body["park"] == plant.park_code
        for record in body["records"]:
            assert seen.setdefault(record["dataId"], record) == record
    tags = {r["data"]["BIT_NO"]: r["data"] for r in seen.values() if r["kind"] == "tag"}
    expected = [t for t in plant.tags.values() if t.hazard_source == SOURCE]
    assert set(tags) == {t.tag for t in expected}
    for info in expected:
        assert (tags[info.tag]["UNIT"], tags[info.tag]["TOP_VALUE"]) == (info.eu, info.range_hi)
    assert sum(r["kind"] == "hazard_source" for r in seen.values()) == 1
