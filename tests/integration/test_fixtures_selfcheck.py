"""The server fixtures start real, private, working servers (the other integration tests rely on it)."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.fixtures.processes import (
    LOCALHOST,
    InfluxDB1Process,
    MosquittoProcess,
    VictoriaMetricsProcess,
    free_port,
    mqtt_connect_ok,
    port_accepts,
)
from tests.integration.hubproc import process_alive

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

TIMEOUT = 10.0
SYSTEM_BROKER_PORT = 1883


class Received:
    """Thread-safe inbox of (topic, payload) pairs filled by paho's network thread."""

    def __init__(self) -> None:
        self.items: queue.Queue[tuple[str, bytes]] = queue.Queue()

    def on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.items.put((msg.topic, bytes(msg.payload)))

    def take(self, count: int, timeout: float = TIMEOUT) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        got: list[tuple[str, bytes]] = []
        while len(got) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"received {len(got)} of {count} messages: {got}")
            try:
                got.append(self.items.get(timeout=remaining))
            except queue.Empty:
                continue
        return got


@contextmanager
def mqtt_client(
    port: int,
    *,
    client_id: str | None = None,
    v5_session_expiry: int | None = None,
    on_message: Callable[[mqtt.Client, object, mqtt.MQTTMessage], None] | None = None,
    connect_flags: dict[str, Any] | None = None,
) -> Iterator[mqtt.Client]:
    """A connected paho client (network thread running); MQTT 5 with a persistent session when
    ``v5_session_expiry`` is given, else MQTT 3.1.1 clean session. ``connect_flags`` gets the
    CONNACK flags."""
    v5 = v5_session_expiry is not None
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"selfcheck-{uuid.uuid4().hex[:10]}",
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else True,
    )
    connected: queue.Queue[Any] = queue.Queue()

    def on_connect(_c: mqtt.Client, _u: object, flags: Any, reason: Any, _p: object) -> None:
        if connect_flags is not None:
            connect_flags["session_present"] = flags.session_present
        connected.put(reason)

    client.on_connect = on_connect
    if on_message is not None:
        client.on_message = on_message
    if v5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = v5_session_expiry
        client.connect("127.0.0.1", port, keepalive=30, clean_start=False, properties=props)
    else:
        client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    try:
        reason = connected.get(timeout=TIMEOUT)
        assert not reason.is_failure, f"CONNACK {reason}"
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def subscribe(client: mqtt.Client, topic: str) -> None:
    acked: queue.Queue[object] = queue.Queue()
    client.on_subscribe = lambda *_args: acked.put(True)
    result, _mid = client.subscribe(topic, qos=1)
    assert result == mqtt.MQTT_ERR_SUCCESS
    acked.get(timeout=TIMEOUT)


def publish_qos1(client: mqtt.Client, topic: str, payload: bytes) -> None:
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(TIMEOUT)  # returns once the broker's PUBACK arrived
    assert info.is_published(), f"no PUBACK for {payload!r}"


def test_mosquitto_round_trips_qos1_on_its_own_port(mosquitto: MosquittoProcess) -> None:
    """A QoS 1 message goes through the private broker and never reaches the system one on 1883."""
    assert mosquitto.port != SYSTEM_BROKER_PORT
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    topic = f"selfcheck/{uuid.uuid4().hex}"
    ours, system = Received(), Received()
    with (
        mqtt_client(mosquitto.port, on_message=ours.on_message) as sub,
        mqtt_client(mosquitto.port) as pub,
    ):
        subscribe(sub, topic)
        if port_accepts(SYSTEM_BROKER_PORT) and mqtt_connect_ok("127.0.0.1", SYSTEM_BROKER_PORT):
            with mqtt_client(SYSTEM_BROKER_PORT, on_message=system.on_message) as sys_sub:
                subscribe(sys_sub, topic)
                publish_qos1(pub, topic, b"private")
                assert ours.take(1) == [(topic, b"private")]
                # A marker sent straight to 1883 arrives there alone: "private" never went there.
                with mqtt_client(SYSTEM_BROKER_PORT) as sys_pub:
                    publish_qos1(sys_pub, topic, b"marker")
                assert system.take(1) == [(topic, b"marker")]
        else:
            publish_qos1(pub, topic, b"private")
            assert ours.take(1) == [(topic, b"private")]
    assert ours.items.empty()
    assert f"on port {mosquitto.port}" in mosquitto.log_text()


def test_mosquitto_restart_keeps_persistent_session_queue(mosquitto: MosquittoProcess) -> None:
    """QoS 1 messages queued for an offline MQTT 5 persistent session survive a broker restart."""
    topic = f"selfcheck/{uuid.uuid4().hex}"
    client_id = f"persistent-{uuid.uuid4().hex[:8]}"
    with mqtt_client(mosquitto.port, client_id=client_id, v5_session_expiry=3600) as sub:
        subscribe(sub, topic)
    payloads = [f"m{i}".encode() for i in range(10)]
    with mqtt_client(mosquitto.port) as pub:
        for payload in payloads:
            publish_qos1(pub, topic, payload)

    port = mosquitto.port
    mosquitto.restart()
    assert mosquitto.port == port
    assert mosquitto.persistence_file.exists()

    inbox = Received()
    flags: dict[str, Any] = {}
    with mqtt_client(
        mosquitto.port,
        client_id=client_id,
        v5_session_expiry=3600,
        on_message=inbox.on_message,
        connect_flags=flags,
    ):
        assert flags["session_present"] is True
        got = inbox.take(10)
    assert sorted(payload for _topic, payload in got) == sorted(payloads)


def test_mosquitto_users_and_acl(mosquitto_factory: Callable[..., MosquittoProcess]) -> None:
    """With ``users`` the broker refuses anonymous and wrong-password clients and admits users."""
    broker = mosquitto_factory(users={"gw": "s3cret"}, acl_text="user gw\ntopic readwrite #\n")
    assert broker.url_with_credentials() == f"mqtt://gw:s3cret@127.0.0.1:{broker.port}"
    assert mqtt_connect_ok("127.0.0.1", broker.port, "gw", "s3cret")
    assert not mqtt_connect_ok("127.0.0.1", broker.port)
    assert not mqtt_connect_ok("127.0.0.1", broker.port, "gw", "wrong")


def _lines(measurement: str, count: int, start_ms: int) -> str:
    return "\n".join(f"{measurement},tag=t{i % 3} value={i}.5 {start_ms + i}" for i in range(count))


def test_influxdb1_accepts_line_protocol_and_counts(
    influxdb1: InfluxDB1Process, influx_db: str
) -> None:
    """POST /write?db=X&precision=ms on the session InfluxDB 1.6 stores every point; count() sees them."""
    now = int(time.time() * 1000)
    response = httpx.post(
        f"{influxdb1.url}/write",
        params={"db": influx_db, "precision": "ms"},
        content=_lines("selfcheck", 25, now),
    )
    assert response.status_code == 204, response.text
    assert influxdb1.count(influx_db, "selfcheck") == 25
    assert influxdb1.count(influx_db, "selfcheck", where="\"tag\" = 't0'") == 9
    assert influxdb1.count(influx_db, "absent") == 0


def test_influxdb1_kill_and_restart_keeps_data(influxdb1_private: InfluxDB1Process) -> None:
    """Points acknowledged by InfluxDB survive SIGKILL: the restarted server (same port) has them."""
    server = influxdb1_private
    server.create_database("durable")
    server.write("durable", _lines("pressure", 40, int(time.time() * 1000)))
    port, rpc_port = server.port, server.rpc_port
    server.kill()
    assert not server.running
    server.start()
    assert (server.port, server.rpc_port) == (port, rpc_port)
    assert server.count("durable", "pressure") == 40


def test_victoria_metrics_accepts_v2_write_and_counts(
    victoria_metrics: VictoriaMetricsProcess,
) -> None:
    """POST /api/v2/write?org=o&bucket=b&precision=ms lands in VictoriaMetrics as metric <m>_<f>."""
    now = int(time.time() * 1000)
    response = httpx.post(
        f"{victoria_metrics.url}/api/v2/write",
        params={"org": "o", "bucket": "b", "precision": "ms"},
        content=_lines("selfcheck", 30, now),
    )
    assert response.status_code == 204, response.text
    metric = VictoriaMetricsProcess.metric_name("selfcheck", "value")
    assert metric == "selfcheck_value"
    assert victoria_metrics.wait_for_samples(30, metric) == 30
    assert victoria_metrics.count_series(metric) == 3
    assert victoria_metrics.count_samples() == 30  # nothing else was written


def test_a_hub_outlives_no_bench_killed_before_its_cleanup(tmp_path: Path) -> None:
    """A process that started a hub (HubProcess) and is then killed -9, with no chance to
    stop it, takes the hub with it: the kernel sends the hub SIGTERM (and the hub's own
    children follow their hub)."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tests.integration.hubproc import HubProcess\n"
        "hub = HubProcess(Path(sys.argv[1]), {'SAFETY_HUB_LOG_LEVEL': 'warning'})\n"
        "hub.start()\n"
        "print(hub.proc.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "hub")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    hub_pid = 0
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"the parent did not start a hub: {line!r}"
        hub_pid = int(line)
        assert process_alive(hub_pid)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 30
        while process_alive(hub_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not process_alive(hub_pid), "the hub outlived the process that started it"
    finally:
        parent.kill()
        if hub_pid and process_alive(hub_pid):  # the test failed: leave no hub behind either
            os.kill(hub_pid, signal.SIGKILL)


def test_free_ports_are_outside_the_kernels_ephemeral_range() -> None:
    """No outgoing connection can take a test server's port as its local end while the server
    is down for a restart: free_port picks outside ip_local_port_range, and the port binds."""
    low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(50):
        port = free_port()
        assert not low <= port <= high, port
        with socket.socket() as sock:
            sock.bind((LOCALHOST, port))
