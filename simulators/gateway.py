"""An enterprise gateway stand-in: publishes readings by the telemetry contract v1.

One MQTT v5 client per enterprise, QoS 1, a retained ``online`` status and a last-will
``offline`` on ``hazard/v1/{enterprise}/status``, batches of readings with ``seq`` numbers.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from safety_hub.telemetry import status_topic, telemetry_topic


@dataclass(frozen=True)
class SimTag:
    tag: str
    kind: str
    lo: float
    hi: float
    interval_s: float = 10.0


def normal_value(tag: SimTag, t_s: float, rng: random.Random) -> float:
    """A plausible value in normal operation: well below any alarm setpoint."""
    span = tag.hi - tag.lo
    if tag.kind in ("combustible_gas", "toxic_gas", "open_path_gas"):
        return round(max(0.0, tag.lo + span * 0.01 * abs(rng.gauss(0.5, 0.5))), 3)
    if tag.kind == "oxygen":
        return round(20.9 + rng.gauss(0, 0.05), 2)
    if tag.kind.startswith("sis") or tag.kind == "status":
        return 0.0
    wave = 0.5 + 0.1 * math.sin(t_s / 600 + hash(tag.tag) % 7)
    return round(tag.lo + span * (wave + rng.gauss(0, 0.005)), 3)


class Gateway:
    """A connected gateway for one enterprise."""

    def __init__(
        self,
        host: str,
        port: int,
        enterprise: str,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.enterprise = enterprise
        self.seq = 0
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"gw-{enterprise}-{random.randrange(1 << 30):x}",
            protocol=mqtt.MQTTv5,
        )
        if username:
            self._client.username_pw_set(username, password)
        self._client.max_inflight_messages_set(200)
        self._client.max_queued_messages_set(0)
        self._client.will_set(
            status_topic(enterprise), json.dumps({"state": "offline"}), qos=1, retain=True
        )
        self._connected = threading.Event()
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = lambda *a: self._connected.clear()
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason: object,
        properties: object,
    ) -> None:
        client.publish(
            status_topic(self.enterprise), json.dumps({"state": "online"}), qos=1, retain=True
        )
        self._connected.set()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    def publish(
        self, readings: Sequence[dict[str, object]], ts_ms: int | None = None
    ) -> mqtt.MQTTMessageInfo:
        self.seq += 1
        body: dict[str, object] = {"seq": self.seq, "readings": list(readings)}
        if ts_ms is not None:
            body["ts"] = ts_ms
        return self._client.publish(
            telemetry_topic(self.enterprise), json.dumps(body, ensure_ascii=False), qos=1
        )

    def pending(self) -> int:
        """Messages published but not yet acknowledged by the broker."""
        return len(self._client._out_messages)

    def close(self, graceful: bool = True) -> None:
        if graceful:
            deadline = time.monotonic() + 10
            while self.pending() and time.monotonic() < deadline:
                time.sleep(0.02)
            self._client.publish(
                status_topic(self.enterprise), json.dumps({"state": "offline"}), qos=1, retain=True
            ).wait_for_publish(5)
            self._client.disconnect()
        self._client.loop_stop()
