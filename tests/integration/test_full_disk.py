"""A full data disk: alarms are still evaluated, journaled and published; readings wait
unacknowledged and none is lost once space comes back. A real tmpfs that the test fills."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.processes import MosquittoProcess
from tests.fixtures.tmpfs import mounted_tmpfs
from tests.integration.hubproc import HubProcess, wait_for

pytestmark = pytest.mark.integration

ENT = "e01-chloralkali"
MIB = 1024 * 1024


def _watch(port: int, topic: str) -> tuple[mqtt.Client, queue.Queue[dict[str, Any]]]:
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    ready: queue.Queue[int] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.put(json.loads(m.payload))
    client.on_subscribe = lambda *a: ready.put(1)
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.get(timeout=10)
    return client, got


def _raised(events: queue.Queue[dict[str, Any]], alert: str, tag: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            return False
        alarm = event["alarm"]
        if event["action"] == "raise" and alarm["alert"] == alert and alarm["tag"] == tag:
            return True
    return False


def test_alarms_go_on_and_no_reading_is_lost_when_the_data_disk_is_full(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """With every byte of the data dir's filesystem taken, a level-2 chlorine reading still
    raises its alarm over MQTT within 10 s (journal and outbox write into the released disk
    reserve), /readyz says why it is not ready, the message stays unacknowledged, and after
    space comes back the reading is stored and everything is acknowledged."""
    with mounted_tmpfs(tmp_path / "data", 24 * MIB) as fs:
        hub = HubProcess(
            fs.path / "hub",
            {
                "SAFETY_HUB_MQTT_URL": mosquitto.url,
                "SAFETY_HUB_DISK_RESERVE_BYTES": str(4 * MIB),
                "SAFETY_HUB_SPOOL_SYNC": "normal",
            },
        )
        hub.log_path = tmp_path / "hub.log"  # the hub's own log must not live on the full disk
        hub.start()
        watcher, events = _watch(mosquitto.port, f"hazard/v1/{ENT}/alarms")
        try:
            assert (fs.path / "hub" / "disk-reserve").stat().st_size == 4 * MIB
            filled = fs.fill()
            assert fs.free_bytes() == 0, f"filler took {filled} bytes, some still free"
            # 1. The disk is full: the first write that fails gives up the reserve, and the
            # alarm is journaled and published in the space that frees.
            ts = int(time.time() * 1000)
            body = {"readings": [{"tag": "GT-1101", "v": 0.8, "ts": ts}]}
            watcher.publish(f"hazard/v1/{ENT}/telemetry", json.dumps(body), qos=1)
            assert _raised(events, "ToxicGasLevel2", "GT-1101", timeout=10), hub.log_tail()
            wait_for(lambda: not (fs.path / "hub" / "disk-reserve").exists(), 10, "the release")
            assert "disk_full" in json.dumps(hub.get("/api/v1/system").json())
            # 2. Something else takes most of that space too: less than half the reserve is
            # left. Readings are held unacknowledged now, yet still evaluated: a second
            # detector's level-2 reading raises its alarm.
            fs.fill()
            fs.unfill(keep_bytes=fs.filler.stat().st_size - MIB)
            ts2 = int(time.time() * 1000)
            body = {"readings": [{"tag": "GT-1102", "v": 0.8, "ts": ts2}]}
            watcher.publish(f"hazard/v1/{ENT}/telemetry", json.dumps(body), qos=1)
            assert _raised(events, "ToxicGasLevel2", "GT-1102", timeout=10), hub.log_tail()

            def not_ready() -> dict[str, Any] | None:
                resp = httpx.get(f"{hub.url}/readyz", timeout=5)
                return resp.json() if resp.status_code == 503 else None

            wait_for(lambda: not_ready() is not None, 15, "/readyz to answer 503")
            readiness = not_ready()
            assert readiness is not None
            assert any("data directory" in p and "held" in p for p in readiness["problems"]), (
                readiness
            )
            assert hub.metric("safety_hub_ingest_held_messages") >= 1
            alarms = {
                a["tag"]: a
                for a in hub.get(f"/api/v1/alarms?enterprise={ENT}").json()
                if a["alert"] == "ToxicGasLevel2"
            }
            assert alarms["GT-1102"]["state"] == "unacknowledged"

            # 3. Space comes back: the held reading is stored, everything acknowledged.
            fs.unfill()
            wait_for(
                lambda: httpx.get(f"{hub.url}/readyz", timeout=5).status_code == 200,
                30,
                "/readyz to answer 200 once space is back",
            )
            assert hub.metric("safety_hub_ingest_held_messages") == 0
            for tag, when in (("GT-1101", ts), ("GT-1102", ts2)):
                history = f"/api/v1/tags/{ENT}/{tag}/history?start={when - 1}&end={when + 1}"
                wait_for(
                    lambda history=history: (
                        [p["value"] for p in hub.get(history).json()["points"]] == [0.8]
                    ),
                    30,
                    f"the reading of {tag} to be stored",
                )
            assert (
                not (fs.path / "hub" / "disk-reserve").exists()
                or (fs.path / "hub" / "disk-reserve").stat().st_size == 4 * MIB
            )
        finally:
            watcher.loop_stop()
            watcher.disconnect()
            hub.stop()
