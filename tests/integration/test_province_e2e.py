"""Federation and province mode end to end (issue 15): two park hubs and one provincial hub,
each ``safety-hub run`` as its own process, one Mosquitto per park and one for the province.
The parks send over the MQTT bridge; the province hub (SAFETY_HUB_PROVINCE=on) keeps the view.

- A Cl2 reading past level 2 in park A shows up as park A's red/orange tier in the province
  API (polled; the time it took is printed, not asserted); park B stays without a warning.
- The province broker stopped for a while, then back: every record park A sent arrives at the
  province exactly once by dataId, and the latest reading of each tag is the last one sent.
- Park A's hub killed with SIGKILL while it drains its backlog to the province: after its
  restart every reading arrives (by source time, per tag), each dataId taken once.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from safety_hub.registry import default_plant_path
from simulators.gateway import Gateway
from tests.fixtures.processes import MosquittoProcess
from tests.integration.hubproc import HubProcess, stop_all, wait_for

pytestmark = pytest.mark.integration

ENTERPRISE = "e01-chloralkali"
SOURCE = "HS-E01-01"
CHLORINE_LEAK = Path(__file__).parent.parent.parent / "scenarios" / "chlorine_tank_leak.yaml"
CL2 = "GT-1101"  # Cl2 detector, l1 0.3 ppm, l2 0.6 ppm
TAGS = ["LT-1101", "PT-1101", "TT-1101"]
# The issue asks for a 60 s cut. The suite publishes the same 60 steps (180 readings) as the
# issue's cut at a step a second, spread over 20 s (the uplink taking readings every 0.1 s).
# SAFETY_HUB_TEST_PROVINCE_OUTAGE_S=60 runs the figure.
OUTAGE_S = float(os.environ.get("SAFETY_HUB_TEST_PROVINCE_OUTAGE_S", "20"))
CUT_STEPS = 60  # gateway steps during the cut, spread over it


def bridge_yaml(port: int, readings_interval_s: float = 0.3) -> str:
    return f"""\
version: 1
destinations:
  - name: prov
    transport: mqtt_bridge
    mqtt: {{host: 127.0.0.1, port: {port}, ack_timeout_s: 2}}
    send:
      readings_interval_s: {readings_interval_s:g}
      hazard_grades: []
      hazard_sources: [{SOURCE}]
    rate_per_s: 25  # slow enough that a backlog takes seconds to drain (killed mid-uplink)
    batch_records: 10
    down_alarm_after_s: 2
    retry_initial_s: 0.2
    retry_max_s: 0.5
"""


class Listener:
    """Every record message on the province broker, with a persistent session (so it also
    sees what arrives while it reconnects after the broker's restart)."""

    def __init__(self, port: int) -> None:
        self.got: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"listen-{uuid.uuid4().hex[:8]}",
            clean_session=False,
        )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe("province/v1/+/records", qos=1)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        with self._lock:
            self.got.append(json.loads(message.payload))

    def first_readings(self, park: str) -> dict[str, list[int]]:
        """Per point code, the source times of its readings in the order they first arrived."""
        seen: set[str] = set()
        out: dict[str, list[int]] = {}
        with self._lock:
            for g in self.got:
                if g["park"] != park or g["kind"] != "reading" or g["dataId"] in seen:
                    continue
                seen.add(g["dataId"])
                out.setdefault(g["key"], []).append(g["data"]["ts_ms"])
        return out

    def ids(self, park: str) -> list[str]:
        with self._lock:
            return [g["dataId"] for g in self.got if g["park"] == park]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class ParkHub:
    """A park hub with its uplink to the province; :meth:`connect` (once the hub is up, see
    :func:`start_parks`) connects its gateway."""

    def __init__(
        self,
        tmp: Path,
        broker: MosquittoProcess,
        province_port: int,
        plant: Path,
        readings_interval_s: float = 0.3,
    ):
        tmp.mkdir(parents=True, exist_ok=True)
        config = tmp / "uplink.yaml"
        config.write_text(bridge_yaml(province_port, readings_interval_s), encoding="utf-8")
        env = {
            "SAFETY_HUB_MQTT_URL": broker.url,
            "SAFETY_HUB_UPLINK": str(config),
            "SAFETY_HUB_PLANT": str(plant),
            "SAFETY_HUB_SPOOL_SYNC": "normal",
            "SAFETY_HUB_NOTIFY": "false",
        }
        self.hub = HubProcess(tmp / "hub", env)
        self.broker = broker
        self.gateway: Gateway | None = None

    def connect(self) -> None:
        self.gateway = Gateway("127.0.0.1", self.broker.port, ENTERPRISE)
        assert self.gateway.wait_connected()

    def publish(self, readings: list[dict[str, object]], ts_ms: int | None = None) -> None:
        assert self.gateway is not None
        self.gateway.publish(readings, ts_ms=ts_ms)

    def uplink(self) -> dict[str, Any]:
        (state,) = self.hub.get("/api/v1/system").json()["uplinks"]
        return dict(state)

    def close(self) -> None:
        if self.gateway is not None:
            self.gateway.close()


def park_b_plant(tmp: Path) -> Path:
    text = default_plant_path().read_text(encoding="utf-8")
    path = tmp / "park_b.yaml"
    path.write_text(text.replace("code: alxa-hitech", "code: park-b", 1), encoding="utf-8")
    return path


def start_parks(*parks: ParkHub) -> None:
    """The park hubs start side by side (after the province hub: what a park sends before the
    province subscribes is not kept for it); then their gateways connect."""
    for park in parks:
        park.hub.spawn()
    for park in parks:
        park.hub.wait_started()
    for park in parks:
        park.connect()


@contextlib.contextmanager
def running_federation(
    tmp_path: Path,
    mosquitto_factory: Callable[..., MosquittoProcess],
    readings_interval_s: float = 0.3,
) -> Any:
    """The province broker and hub, park A and park B (each park's uplink sending its readings
    every ``readings_interval_s``)."""
    prov_broker = mosquitto_factory()
    province = HubProcess(
        tmp_path / "province",
        {
            "SAFETY_HUB_MQTT_URL": prov_broker.url,
            "SAFETY_HUB_PROVINCE": "on",
            "SAFETY_HUB_PROVINCE_LINK_STALE_S": "30",
            "SAFETY_HUB_NOTIFY": "false",
        },
    )
    a = ParkHub(
        tmp_path / "a",
        mosquitto_factory(),
        prov_broker.port,
        default_plant_path(),
        readings_interval_s,
    )
    b = ParkHub(
        tmp_path / "b",
        mosquitto_factory(),
        prov_broker.port,
        park_b_plant(tmp_path),
        readings_interval_s,
    )
    listener: Listener | None = None
    try:
        province.start()
        listener = Listener(prov_broker.port)
        start_parks(a, b)
        yield prov_broker, province, listener, a, b
    finally:
        for park in (a, b):
            park.close()
        if listener is not None:
            listener.close()
        stop_all(a.hub, b.hub, province)


@pytest.fixture
def federation(tmp_path: Path, mosquitto_factory: Callable[..., MosquittoProcess]) -> Any:
    with running_federation(tmp_path, mosquitto_factory) as running:
        yield running


@pytest.fixture
def federation_quick_readings(
    tmp_path: Path, mosquitto_factory: Callable[..., MosquittoProcess]
) -> Any:
    """The federation with the parks' uplinks taking readings every 0.1 s (the least allowed),
    for a test that publishes many steps, each waiting for its readings in the queue (two steps
    within one interval would go up as one)."""
    with running_federation(tmp_path, mosquitto_factory, readings_interval_s=0.1) as running:
        yield running


def parks(province: HubProcess) -> dict[str, dict[str, Any]]:
    response = province.get("/api/v1/province/parks")
    response.raise_for_status()
    return {p["park"]: p for p in response.json()["parks"]}


def queued_up_to(park: ParkHub, ts_ms: int) -> bool:
    """Every tag's reading of ``ts_ms`` is in the park hub's uplink queue (its per-tag cursor,
    committed with the records). The uplink sends each tag's latest value per interval, so the
    next step must wait for this one: two steps within one interval would go up as one."""
    path = park.hub.data_dir / "uplink.sqlite"
    if not path.exists():
        return False
    names = [f"r:{ENTERPRISE}/{tag}" for tag in TAGS]
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as conn:
            rows = conn.execute(
                f"SELECT value FROM uplink_cursor WHERE name IN ({','.join('?' * len(names))})",
                names,
            ).fetchall()
    except sqlite3.OperationalError:  # the hub is creating it
        return False
    return len(rows) == len(TAGS) and all(int(v) >= ts_ms for (v,) in rows)


def seen_ids(province: HubProcess, park: str) -> list[str]:
    with sqlite3.connect(province.data_dir / "province.sqlite") as conn:
        rows = conn.execute("SELECT data_id FROM province_seen WHERE park = ?", (park,))
        return [r[0] for r in rows]


def test_a_cl2_leak_in_park_a_is_park_a_red_tier_at_the_province(federation: Any) -> None:
    _, province, _, a, _ = federation
    wait_for(lambda: {"alxa-hitech", "park-b"} <= set(parks(province)), 60, "both parks' base data")
    view = parks(province)
    assert view["alxa-hitech"]["link"] == "up" and view["alxa-hitech"]["worst_tier"] is None
    assert view["park-b"]["enterprises"] >= 1 and view["park-b"]["hazard_sources"] == 1
    started = time.monotonic()
    a.publish([{"tag": CL2, "v": 1.2}])
    wait_for(
        lambda: parks(province)["alxa-hitech"]["worst_tier"] in ("red", "orange"),
        30,
        "park A's tier at the province",
        interval=0.1,
    )
    print(
        f"\nCl2 past l2 in park A -> park A's tier at the province: {time.monotonic() - started:.2f} s"
    )
    detail = province.get("/api/v1/province/parks/alxa-hitech").json()
    (ent,) = [e for e in detail["enterprise_list"] if e["enterprise"] == ENTERPRISE]
    (hs,) = [h for h in ent["hazard_sources"] if h["hazard_source"] == SOURCE]
    assert ent["worst_tier"] == hs["worst_tier"] == detail["worst_tier"]
    assert any(w["tag"] == CL2 for w in detail["warnings"])
    assert parks(province)["park-b"]["worst_tier"] is None
    metrics = province.metrics_text()
    assert 'safety_hub_province_park_worst_tier{park="alxa-hitech"}' in metrics
    assert province.metric("safety_hub_province_accepted_records_total") > 0
    assert province.get("/api/v1/province/parks/nowhere").status_code == 404


def test_the_chlorine_leak_scenario_in_park_a_turns_park_a_red_at_the_province(
    federation: Any,
) -> None:
    """The issue's proof: ``safety-hub simulate`` plays the chlorine-leak scenario into park A's
    broker; the 2oo3 leak confirmation (critical) makes park A red at the province, down to
    its enterprise and hazard source, park B untouched. The time from park A raising the alarm
    to the province showing red is printed (the issue asks for 10 s; not a test assertion)."""
    _, province, _, a, _ = federation
    wait_for(lambda: {"alxa-hitech", "park-b"} <= set(parks(province)), 60, "both parks' base data")
    argv = [sys.executable, "-m", "safety_hub.cli", "simulate", str(CHLORINE_LEAK)]
    argv += ["--url", a.broker.url, "--speed", "15"]
    sim = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: confirmed(a) is not None, 90, "park A's leak confirmation")
        wait_for(
            lambda: parks(province)["alxa-hitech"]["worst_tier"] == "red",
            60,
            "park A red at the province",
            interval=0.1,
        )
        seen_ms = int(time.time() * 1000)
        alarm = confirmed(a)
        assert alarm is not None
        print(
            f"\nleak confirmed in park A -> red at the province: {(seen_ms - alarm['raised_ms']) / 1000:.2f} s"
        )
    finally:
        sim.kill()
        sim.wait()
    detail = province.get("/api/v1/province/parks/alxa-hitech").json()
    (ent,) = [e for e in detail["enterprise_list"] if e["enterprise"] == ENTERPRISE]
    (hs,) = [h for h in ent["hazard_sources"] if h["hazard_source"] == SOURCE]
    assert detail["worst_tier"] == ent["worst_tier"] == hs["worst_tier"] == "red"
    tiers = {(w["tag"], w["tier"]) for w in detail["warnings"]}
    assert {("GT-1101", "yellow"), ("GT-1101", "orange")} <= tiers, tiers  # level 1 and 2
    assert parks(province)["park-b"]["worst_tier"] is None


def confirmed(park: ParkHub) -> dict[str, Any] | None:
    """Park A's GasLeakConfirmed alarm (the 2oo3 vote of the tank's Cl2 detectors), or None."""
    alarms = park.hub.get(f"/api/v1/alarms?enterprise={ENTERPRISE}").json()
    return next((x for x in alarms if x["alert"] == "GasLeakConfirmed"), None)


def test_a_bridge_cut_then_restored_delivers_every_record_exactly_once(
    federation_quick_readings: Any,
) -> None:
    prov_broker, province, listener, a, _ = federation_quick_readings
    wait_for(lambda: "alxa-hitech" in parks(province), 60, "park A at the province")
    wait_for(lambda: a.uplink()["backlog"] == 0, 30, "park A's base data sent")
    base_ts = int(time.time() * 1000) - 300_000
    step = 0

    def publish_step() -> None:
        nonlocal step
        step += 1
        a.publish(
            [{"tag": t, "v": step + i / 10} for i, t in enumerate(TAGS)],
            ts_ms=base_ts + step * 1000,
        )
        wait_for(lambda: queued_up_to(a, base_ts + step * 1000), 20, f"step {step} queued")

    for _ in range(3):
        publish_step()
    prov_broker.stop()
    down_at = time.monotonic()
    for k in range(1, CUT_STEPS + 1):
        publish_step()  # each waits for its readings in the queue (the readings interval)
        # pacing, not an assertion: the steps span the whole cut
        time.sleep(max(0.0, down_at + k * OUTAGE_S / CUT_STEPS - time.monotonic()))
    state = a.uplink()
    assert state["connected"] is False and state["backlog"] > 0
    prov_broker.start()
    restored = time.monotonic()
    for _ in range(2):
        publish_step()
    wait_for(lambda: a.uplink()["backlog"] == 0, 60, "park A's backlog sent")
    sent = a.uplink()["sent"]
    wait_for(lambda: len(seen_ids(province, "alxa-hitech")) >= sent, 30, "the province took all")
    print(
        f"\nbridge cut {restored - down_at:.0f} s, {CUT_STEPS} steps; "
        f"backlog delivered {time.monotonic() - restored:.2f} s after"
    )
    seen = seen_ids(province, "alxa-hitech")
    assert len(seen) == len(set(seen)) == sent  # each record taken once
    wait_for(lambda: set(listener.ids("alxa-hitech")) == set(seen), 10, "the listener's ids")
    assert set(listener.ids("alxa-hitech")) == set(seen)  # none missing, none extra
    for key, times in listener.first_readings("alxa-hitech").items():
        assert times == sorted(times), f"{key}: readings out of order"
    readings = province.get("/api/v1/province/parks/alxa-hitech/readings").json()["readings"]
    latest = {r["tag"]: r for r in readings}
    for i, tag in enumerate(TAGS):
        assert latest[tag]["value"] == step + i / 10
        assert latest[tag]["ts_ms"] == base_ts + step * 1000
    # A repeat (a re-send after a lost PUBACK looks the same) is dropped by its dataId.
    before = province.metric("safety_hub_province_duplicate_records_total")
    repeat = next(g for g in listener.got if g["park"] == "alxa-hitech")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="repeat")
    client.connect("127.0.0.1", prov_broker.port)
    client.loop_start()
    topic = "province/v1/alxa-hitech/records"
    client.publish(topic, json.dumps(repeat), qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()
    wait_for(
        lambda: province.metric("safety_hub_province_duplicate_records_total") > before,
        20,
        "the repeat counted as a duplicate",
    )
    assert len(seen_ids(province, "alxa-hitech")) == len(seen)
    duplicates = province.metric("safety_hub_province_duplicate_records_total")
    print(
        f"messages at the province broker: {len(listener.ids('alxa-hitech'))}, "
        f"unique {len(seen)}, duplicates dropped by dataId: {duplicates:.0f}"
    )


def test_a_park_hub_killed_mid_uplink_loses_nothing(federation_quick_readings: Any) -> None:
    prov_broker, province, listener, a, _ = federation_quick_readings
    wait_for(lambda: "alxa-hitech" in parks(province), 60, "park A at the province")
    wait_for(lambda: a.uplink()["backlog"] == 0, 60, "park A's base data sent")
    base_ts = int(time.time() * 1000) - 300_000
    steps: list[int] = []

    def publish_step() -> None:
        steps.append(base_ts + (len(steps) + 1) * 1000)
        a.publish([{"tag": t, "v": len(steps)} for t in TAGS], ts_ms=steps[-1])
        wait_for(lambda: queued_up_to(a, steps[-1]), 20, f"step {len(steps)} queued")

    prov_broker.stop()
    for _ in range(60):  # 180 records at 25/s: seconds of backlog to be killed in
        publish_step()
    prov_broker.start()
    arrived = len(listener.ids("alxa-hitech"))
    wait_for(lambda: len(listener.ids("alxa-hitech")) >= arrived + 5, 60, "the drain started")
    assert a.uplink()["backlog"] > 0, "killed mid-uplink: records must still be waiting"
    a.hub.kill9()
    a.hub.start()
    for _ in range(2):
        publish_step()
    wait_for(lambda: a.uplink()["backlog"] == 0, 60, "park A's backlog sent after the restart")
    wait_for(
        lambda: set(listener.ids("alxa-hitech")) == set(seen_ids(province, "alxa-hitech")),
        30,
        "the province's dataIds and the broker's",
    )
    seen = seen_ids(province, "alxa-hitech")
    assert len(seen) == len(set(seen))
    times = listener.first_readings("alxa-hitech")
    for tag in TAGS:
        got = times[f"{ENTERPRISE}/{tag}"]
        lost = [steps.index(ts) for ts in sorted(set(steps) - set(got))]
        assert not lost, f"{tag}: the readings of steps {lost} (of {len(steps)}) lost"
        assert got == sorted(got), f"{tag}: readings out of order"
    messages = listener.ids("alxa-hitech")
    print(
        f"\nkill -9 mid-uplink: {len(messages)} messages, {len(set(messages))} unique dataIds, "
        f"{len(seen)} taken by the province"
    )
