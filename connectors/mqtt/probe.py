"""The broker round trip, measured: publish to a topic of the hub's own and time what returns.

A probe connection of its own (clean session, TCP_NODELAY on our side like every hub
connection) subscribes to ``safety-hub/probe/<client id>`` at QoS 1 and publishes small QoS 1
messages to it, one at a time. Each sample is two times from the publish: until the broker's
PUBACK and until the message is delivered back. Both are packets the broker writes to the
same socket one right after the other, so on a broker without ``set_tcp_nodelay true``
Nagle's algorithm may hold the second until the first is acknowledged, which our delayed ACK
can put off by tens of milliseconds: one fast, one slow (see safety_hub/runtime/broker_probe.py).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from connectors.mqtt.ingest import MqttConfig

log = logging.getLogger("connectors.mqtt.probe")

PROBE_PREFIX = "safety-hub/probe/"
"""The hub's probe topics: ``safety-hub/probe/<client id>`` (docs/mqtt-contract.md)."""


class RoundTripProbe:
    """Measures samples of (PUBACK ms, delivery ms) on a short-lived connection of its own."""

    def __init__(self, config: MqttConfig, timeout_s: float = 2.0) -> None:
        self.config = config
        self.topic = PROBE_PREFIX + config.client_id
        self.timeout_s = timeout_s

    def measure(self, samples: int = 5, gap_s: float = 0.2) -> list[tuple[float, float]]:
        """``samples`` round trips, ``gap_s`` apart; fewer (none) when the broker does not
        answer or does not deliver (an ACL that denies the probe topic)."""
        c = self.config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{c.client_id}/_probe-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5 if c.protocol == "v5" else mqtt.MQTTv311,
        )
        if c.username:
            client.username_pw_set(c.username, c.password)
        if c.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        lock = threading.Lock()
        acked: dict[int, float] = {}
        delivered: dict[bytes, float] = {}
        events = threading.Condition(lock)
        subscribed = threading.Event()

        def on_socket_open(cl: mqtt.Client, userdata: Any, sock: Any) -> None:
            if isinstance(sock, socket.socket):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def on_connect(cl: mqtt.Client, *args: Any) -> None:
            cl.subscribe(self.topic, qos=1)

        def on_subscribe(cl: mqtt.Client, userdata: Any, mid: int, codes: Any, *a: Any) -> None:
            if all(not (isinstance(rc, ReasonCode) and rc.is_failure) for rc in codes):
                subscribed.set()

        def on_publish(cl: mqtt.Client, userdata: Any, mid: int, *args: Any) -> None:
            with events:
                acked[mid] = time.perf_counter()
                events.notify_all()

        def on_message(cl: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            with events:
                delivered[bytes(msg.payload)] = time.perf_counter()
                events.notify_all()

        client.on_socket_open = on_socket_open
        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_publish = on_publish
        client.on_message = on_message
        out: list[tuple[float, float]] = []
        try:
            client.connect(c.host, c.port, keepalive=max(5, c.keepalive_s))
        except OSError as exc:
            log.info("mqtt probe: cannot connect", extra={"error": str(exc)})
            return out
        client.loop_start()
        try:
            if not subscribed.wait(self.timeout_s):
                return out
            for k in range(samples):
                payload = f"{k}-{uuid.uuid4().hex[:8]}".encode()
                sent = time.perf_counter()
                info = client.publish(self.topic, payload, qos=1)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                with events:
                    events.wait_for(
                        lambda: info.mid in acked and payload in delivered,  # noqa: B023
                        self.timeout_s,
                    )
                    if info.mid not in acked or payload not in delivered:
                        break
                    out.append(
                        ((acked[info.mid] - sent) * 1000, (delivered[payload] - sent) * 1000)
                    )
                time.sleep(gap_s)
        finally:
            client.disconnect()
            client.loop_stop()
        return out
