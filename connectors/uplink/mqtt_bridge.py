"""Federation: the park's records to another safety-hub's broker (docs/uplink.md, "MQTT
bridge"; the topic and payload in docs/mqtt-contract.md), through paho-mqtt.

Each record is one message on ``<topic_prefix>/<park>/records`` at QoS 1, in queue order:
``{"park", "dataId", "kind", "key", "data"}`` with ``data`` the record's source fields. A
record is delivered when its PUBACK came back. A batch whose PUBACKs do not all come back
within ``ack_timeout_s`` (or found no connection) is done up to the first record without one;
the rest is sent again later with the same ``dataId`` (at least once: the province drops
duplicates by ``dataId``). paho keeps the connection up (reconnecting in its own thread with
the destination's backoff) and holds at most ``MAX_QUEUED`` unacknowledged messages.

The connection is made by the first ``send`` and ended by ``close``; a ``send`` after ``close``
connects again. So the standby of a redundant pair, whose uplink does not run, holds no
connection under the client id the active node uses, and a node that acts again reconnects.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from safety_hub.uplink import OutRecord, SendOutcome
from safety_hub.uplink.schema import MqttBridgeModel

log = logging.getLogger("safety_hub.uplink.mqtt")

MAX_QUEUED = 2000
"""paho's bound on messages waiting for their PUBACK (a batch is at most 1000 records)"""


def records_topic(prefix: str, park: str) -> str:
    return f"{prefix}/{park}/records"


def payload(park: str, record: OutRecord) -> bytes:
    body = {
        "park": park,
        "dataId": record.data_id,
        "kind": record.kind,
        "key": record.key,
        "data": record.data,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()


class MqttBridgeTransport:
    def __init__(
        self,
        config: MqttBridgeModel,
        park: str,
        destination: str,
        credentials: tuple[str, str] | None = None,
        reconnect_s: tuple[float, float] = (1, 30),
    ) -> None:
        """``reconnect_s``: paho's reconnect delay, doubling from the first to the second (the
        destination's ``retry_initial_s`` and ``retry_max_s``, in whole seconds, at least 1)."""
        if set(park) & set("+#/") or not park:
            raise ValueError(f"park code {park!r} cannot be an MQTT topic level")
        self.config = config
        self.park = park
        self.topic = records_topic(config.topic_prefix, park)
        self.description = f"MQTT {config.host}:{config.port} {self.topic}"
        self._connected = threading.Event()
        self._last_error: str | None = None
        self._client_id = config.client_id or f"uplink-{park}-{destination}"[:64]
        self._credentials = credentials
        self._reconnect_s = reconnect_s
        self._client: mqtt.Client | None = None

    def _connecting(self) -> mqtt.Client:
        """The client, made and connecting (in paho's thread) on the first call after start or
        ``close``."""
        if self._client is not None:
            return self._client
        config = self.config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        client.max_queued_messages_set(MAX_QUEUED)
        client.max_inflight_messages_set(100)
        first, most = (max(1, round(s)) for s in self._reconnect_s)
        client.reconnect_delay_set(first, max(first, most))
        if self._credentials is not None:
            client.username_pw_set(*self._credentials)
        if config.tls:
            client.tls_set(ca_certs=config.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._connected.clear()
        client.connect_async(config.host, config.port, keepalive=config.keepalive_s)
        client.loop_start()
        self._client = client
        return client

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._last_error = f"CONNACK {reason}"
            log.warning("uplink mqtt: connection refused: %s", reason)
            return
        self._connected.set()
        self._last_error = None

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        self._last_error = f"disconnected: {reason}"

    def send(self, records: Sequence[OutRecord]) -> SendOutcome:
        client = self._connecting()
        if not self._connected.wait(min(self.config.ack_timeout_s, 2.0)):
            why = self._last_error or "not connected"
            return SendOutcome(0, error=f"{self.description}: {why}")
        infos: list[mqtt.MQTTMessageInfo] = []
        for record in records:
            info = client.publish(self.topic, payload(self.park, record), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            infos.append(info)
        deadline = time.monotonic() + self.config.ack_timeout_s
        done = 0
        for info in infos:
            remaining = deadline - time.monotonic()
            try:
                acked = info.is_published() or (
                    remaining > 0 and self._wait(info, remaining) and info.is_published()
                )
            except (RuntimeError, ValueError):
                acked = False
            if not acked:
                break
            done += 1
        if done == len(records):
            return SendOutcome(done)
        why = self._last_error or "no PUBACK in time"
        return SendOutcome(done, error=f"{self.description}: {why}")

    @staticmethod
    def _wait(info: mqtt.MQTTMessageInfo, timeout: float) -> bool:
        info.wait_for_publish(timeout)
        return True

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self._connected.clear()
