"""Fair ingest through a real Mosquitto: one enterprise floods, another's alarm still comes, the
hub's link stays up, and every QoS 0 message of the flood is either taken or counted as dropped.

The figures (probe delays under the flood, against no flood) are bench/fairness.py's job; this
test asserts what must hold whatever the machine's speed.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.fixtures.processes import MosquittoProcess
from tests.integration.hostile import (
    DETECTORS,
    AlarmWatcher,
    Publisher,
    _remaining_length,
    _utf8_field,
    assert_alarm_still_fires,
    now_ms,
    wait_ingesting,
)
from tests.integration.hubproc import HubProcess, wait_for

pytestmark = pytest.mark.integration

FLOODER = "e02-sodium"
FLOOD_TAG = "PT-2101"


def flood_qos0(port: int, count: int, stop: threading.Event) -> int:
    """Write ``count`` one-reading QoS 0 messages of FLOODER as fast as a socket takes them
    (MQTT 3.1.1 by hand: paho's Python loop is slower than the hub). Returns how many went."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    connect = _utf8_field("MQTT") + bytes([4, 0x02, 0, 0]) + _utf8_field(f"flood-{now_ms()}")
    sock.sendall(b"\x10" + _remaining_length(len(connect)) + connect)
    assert sock.recv(4)[:1] == b"\x20"
    topic = _utf8_field(f"hazard/v1/{FLOODER}/telemetry")
    sent = 0
    try:
        while sent < count and not stop.is_set():
            batch = bytearray()
            for _ in range(min(500, count - sent)):
                body = json.dumps({"readings": [{"tag": FLOOD_TAG, "v": 0.3, "ts": now_ms()}]})
                packet = topic + body.encode()
                batch += b"\x30" + _remaining_length(len(packet)) + packet
                sent += 1
            sock.sendall(batch)
    finally:
        with contextlib.suppress(OSError):
            sock.sendall(b"\xe0\x00")
        sock.close()
    return sent


def of_flooder(exposition: str, name: str) -> float:
    """Sum of ``name``'s samples labelled with the flooding enterprise."""
    label = f'enterprise="{FLOODER}"'
    total = 0.0
    for line in exposition.splitlines():
        key, _, value = line.rpartition(" ")
        if key.startswith(name + "{") and label in key:
            total += float(value)
    return total


def test_a_qos0_flood_of_one_enterprise_does_not_blind_another(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """While e02's gateway floods 60,000 QoS 0 messages at full speed, level-2 readings of e01
    raise their alarms within 10 s each (e01 has its own broker session and intake lane); the
    hub's connections stay up; afterwards every flood message is accounted for: taken by the hub
    or counted in safety_hub_qos0_dropped_total, none lost silently."""
    hub = HubProcess(tmp_path / "hub", {"SAFETY_HUB_MQTT_URL": mosquitto.url})
    hub.start()
    pub = Publisher(mosquitto.port)
    watcher = AlarmWatcher(mosquitto.port)
    stop = threading.Event()
    try:
        wait_ingesting(hub, pub)
        connects = hub.metric("safety_hub_mqtt_connects_total")
        sent: list[int] = []
        flooder = threading.Thread(
            target=lambda: sent.append(flood_qos0(mosquitto.port, 60_000, stop)), daemon=True
        )
        flooder.start()
        wait_for(
            lambda: hub.metric("safety_hub_readings_received_total") > 2000,
            30,
            "the flood to reach the hub",
        )
        for tag in DETECTORS[:3]:
            assert_alarm_still_fires(pub, watcher, hub, tag, f"a QoS 0 flood of {FLOODER}")
        flooder.join(120)
        assert sent and sent[0] == 60_000

        def accounted() -> bool:
            text = hub.metrics_text()
            took = of_flooder(text, "safety_hub_readings_received_total")
            dropped = of_flooder(text, "safety_hub_qos0_dropped_total")
            return took + dropped == sent[0]

        wait_for(accounted, 120, "every flood message to be taken or counted as dropped")
        assert hub.metric("safety_hub_mqtt_connects_total") == connects, "a connection dropped"
        assert_alarm_still_fires(pub, watcher, hub, DETECTORS[4], "the flood")
    finally:
        stop.set()
        pub.close()
        watcher.close()
        hub.stop()


def test_the_single_session_of_an_earlier_version_is_emptied_then_ended(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """Messages an earlier hub's single persistent session (client id safety-hub-ingest) still
    held are processed and stored by the new hub, then the broker forgets that session."""
    old = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="safety-hub-ingest", protocol=mqtt.MQTTv5
    )
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    subscribed = threading.Event()
    old.on_subscribe = lambda *a: subscribed.set()
    old.connect("127.0.0.1", mosquitto.port, clean_start=False, properties=props)
    old.loop_start()
    old.subscribe("hazard/v1/+/telemetry/#", qos=1)
    assert subscribed.wait(10)
    old.loop_stop()
    old.disconnect()  # the session stays, and queues what comes next
    pub = Publisher(mosquitto.port)
    ts = now_ms() - 10_000
    for i in range(5):
        body = {"readings": [{"tag": "GT-1101", "v": 0.1, "ts": ts + i}]}
        pub.publish("hazard/v1/e01-chloralkali/telemetry", json.dumps(body).encode())
    pub.wait_all_acked(10)

    hub = HubProcess(tmp_path / "hub", {"SAFETY_HUB_MQTT_URL": mosquitto.url})
    hub.start()
    try:
        history = f"/api/v1/tags/e01-chloralkali/GT-1101/history?start={ts - 1}&end={ts + 10}"
        wait_for(
            lambda: len(hub.get(history).json()["points"]) == 5,
            30,
            "the readings the old session held to be stored",
        )
        wait_for(
            lambda: "previous single session ended" in hub.log_path.read_text(),
            30,
            "the old session to be ended",
        )
        present: list[bool] = []
        probe = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="safety-hub-ingest", protocol=mqtt.MQTTv5
        )
        probe.on_connect = lambda c, u, flags, rc, p: present.append(flags.session_present)
        probe.connect("127.0.0.1", mosquitto.port, clean_start=False)
        probe.loop_start()
        wait_for(lambda: bool(present), 10, "the probe's CONNACK")
        probe.loop_stop()
        probe.disconnect()
        assert present == [False], "the broker still keeps the old single session"
    finally:
        pub.close()
        hub.stop()


def test_each_enterprise_has_its_own_session(mosquitto: MosquittoProcess, tmp_path: Path) -> None:
    """The hub connects one persistent session per registered enterprise (subscribed to its
    topics only), a catch-all for unregistered ones and a publisher, and reports itself ready
    only once all of them are up."""
    hub = HubProcess(tmp_path / "hub", {"SAFETY_HUB_MQTT_URL": mosquitto.url})
    hub.start()
    try:
        wait_for(lambda: "safety-hub-ingest/_publisher" in mosquitto.log_text(), 10, "log")
        log = mosquitto.log_text()
        for code in ("e01-chloralkali", "e05-tankfarm"):
            assert f"safety-hub-ingest/{code} 1 hazard/v1/{code}/telemetry/#" in log
            assert f"safety-hub-ingest/{code} 1 hazard/v1/{code}/status" in log
        assert "safety-hub-ingest/_unregistered 0 hazard/v1/+/telemetry/#" in log
        assert hub.get("/readyz").json()["mqtt_connected"] is True
    finally:
        hub.stop()
