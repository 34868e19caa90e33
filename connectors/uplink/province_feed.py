"""Province mode's subscription (docs/province.md): ``<prefix>/+/records`` on the provincial
hub's broker at QoS 1, with a persistent session, through paho-mqtt. A message is acknowledged
only after the handler returned True (its record committed, or refused for good); a handler
that fails leaves it unacknowledged, and the broker delivers it again on the next session."""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger("safety_hub.province.mqtt")

Handler = Callable[[str, bytes], bool]
"""(park from the topic, payload) -> acknowledge"""


class ProvinceFeed:
    def __init__(
        self,
        host: str,
        port: int,
        prefix: str,
        client_id: str,
        handler: Handler,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
    ) -> None:
        self.prefix = prefix
        self.topic = f"{prefix}/+/records"
        self.description = f"mqtt://{host}:{port} {self.topic}"
        self.connected = threading.Event()
        self._handler = handler
        self._host, self._port = host, port
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
            manual_ack=True,
        )
        self._client.max_inflight_messages_set(100)
        self._client.reconnect_delay_set(1, 5)  # back soon after a broker restart
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls:
            self._client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        self._client.connect_async(self._host, self._port, keepalive=30)
        self._client.loop_start()

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("province: connection refused: %s", reason)
            return
        client.subscribe(self.topic, qos=1)
        self.connected.set()
        log.info("province: subscribed", extra={"topic": self.topic})

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("province: broker connection lost: %s", reason)

    def _on_message(self, client: Any, _u: Any, message: Any) -> None:
        levels = str(message.topic).split("/")
        park = levels[-2] if len(levels) >= 2 else ""
        try:
            ack = self._handler(park, bytes(message.payload))
        except Exception:  # a bug must not end paho's thread: logged, not acknowledged
            log.exception("province: handling a record failed")
            ack = False
        if ack:
            client.ack(message.mid, message.qos)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()
