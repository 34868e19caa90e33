"""Record a live MQTT telemetry stream into a file that ``safety-hub replay`` plays back.

Subscribes (MQTT v5, QoS 1, a clean session of its own) to every enterprise's telemetry,
critical (contract revision 1.1: gas and SIS readings) and status topics and writes each message
with its receive time as JSON Lines; the format is in ``safety_hub/scenarios/recording.py`` and
docs/scenarios.md.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import IO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from safety_hub.ingest.telemetry import (
    CRITICAL_SUBSCRIPTION,
    STATUS_SUBSCRIPTION,
    TELEMETRY_SUBSCRIPTION,
)
from safety_hub.scenarios.recording import RecordedMessage, header

TOPICS = [TELEMETRY_SUBSCRIPTION, CRITICAL_SUBSCRIPTION, STATUS_SUBSCRIPTION]


class Recorder:
    def __init__(
        self,
        out: Path,
        host: str,
        port: int,
        *,
        url: str,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.out = out
        self.count = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._file: IO[str] = out.open("w", encoding="utf-8")
        self._file.write(
            json.dumps(header(url, TOPICS, time.time_ns() // 1_000_000), ensure_ascii=False) + "\n"
        )
        self._file.flush()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"safety-hub-recorder-{random.randrange(1 << 30):x}",
            protocol=mqtt.MQTTv5,
        )
        if username:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe([(t, 1) for t in TOPICS])

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        rec = RecordedMessage(
            time.time_ns() // 1_000_000, msg.topic, bytes(msg.payload), bool(msg.retain)
        )
        line = json.dumps(rec.as_json(), ensure_ascii=False)
        with self._lock:
            self._file.write(line + "\n")
            self.count += 1

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        return self._subscribed.wait(timeout)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            self._file.close()
