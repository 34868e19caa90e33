"""MQTT ingest over paho-mqtt 2.x: a persistent v5 session with manual acknowledgement.

The callbacks only hand work over. A message is acknowledged (``ack``) by the core once its
readings are durably spooled; a message received on an earlier connection is never acked on a
later one (its packet id may by then name another message): the broker redelivers it instead,
and storage overwrites the repeated reading with itself.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from safety_hub.ports import InboundMessage

log = logging.getLogger("connectors.mqtt")


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    tls: bool = False
    protocol: str = "v5"  # or "v311" for brokers that only speak 3.1.1
    session_expiry_s: int = 7 * 86_400
    receive_maximum: int = 1000
    keepalive_s: int = 30
    subscriptions: tuple[str, ...] = field(default_factory=tuple)
    # Subscriptions whose retained messages the broker must not replay (MQTT 5 Retain
    # Handling 2): telemetry is a stream, a retained copy replayed at every reconnect would be
    # evaluated again with a new receive time. With 3.1.1 the core sees ``retained`` instead.
    no_retained: tuple[str, ...] = field(default_factory=tuple)
    # MQTT 5 Maximum Packet Size on CONNECT: the broker never sends us a larger packet, so an
    # oversized message is never read into memory. None: no limit.
    max_packet_bytes: int | None = None
    # False: a clean session that the broker forgets at disconnect (no queue while away).
    persistent: bool = True
    subscribe_qos: int = 1
    # Messages whose topic this says True for are dropped at once, before any other work
    # (a catch-all subscription that must skip what other sessions receive).
    ignore_topic: Callable[[str], bool] | None = None
    min_reconnect_s: int = 1
    max_reconnect_s: int = 30

    def validate(self) -> None:
        """Check the configuration without any I/O."""
        if not self.host:
            raise ValueError("mqtt: host is empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"mqtt: port {self.port} is out of range")
        if self.protocol not in ("v5", "v311"):
            raise ValueError(f"mqtt: protocol must be v5 or v311, got {self.protocol!r}")
        if self.subscribe_qos not in (0, 1):
            raise ValueError(f"mqtt: subscribe_qos must be 0 or 1, got {self.subscribe_qos}")
        if self.max_packet_bytes is not None and self.max_packet_bytes < 1024:
            raise ValueError(f"mqtt: max_packet_bytes {self.max_packet_bytes} is below 1024")


@dataclass(frozen=True, slots=True)
class _AckToken:
    owner: MqttIngest
    generation: int
    mid: int
    qos: int


ConnectionListener = Callable[[bool, str], None]


class MqttIngest:
    """Implements the core's ``MessageSource`` protocol."""

    def __init__(self, config: MqttConfig, on_connection: ConnectionListener | None = None) -> None:
        config.validate()
        self.config = config
        self._on_connection = on_connection
        self._handler: Callable[[InboundMessage], None] | None = None
        self._generation = 0
        self._connected = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # notified when an ack frees a place
        self.ignored = 0
        """messages dropped by ``config.ignore_topic`` (another session of the hub takes them)"""
        v5 = config.protocol == "v5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else not config.persistent,
            manual_ack=True,
        )
        self._client.max_queued_messages_set(0)  # outgoing publishes queue while offline
        self._client.max_inflight_messages_set(100)
        if config.username:
            self._client.username_pw_set(config.username, config.password)
        if config.tls:
            self._client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self._client.reconnect_delay_set(config.min_reconnect_s, config.max_reconnect_s)
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message
        self._client.on_socket_open = self._handle_socket_open
        self._client.on_connect_fail = self._handle_connect_fail
        self.acks_skipped = 0
        self._connect_failures = 0
        self.session_present: bool | None = None
        self.unacked = 0  # QoS 1 messages handed over and not acknowledged yet
        # QoS 1 messages the broker sent beyond our Receive Maximum (Mosquitto 2.0.11 does,
        # while acknowledgements flow); each was held back until a place was free
        self.overruns = 0
        self.last_message_monotonic = time.monotonic()

    # -- MessageSource ----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self, handler: Callable[[InboundMessage], None]) -> None:
        self._handler = handler
        self._stopping = False
        kwargs: dict[str, Any] = {"keepalive": self.config.keepalive_s}
        if self.config.protocol == "v5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if self.config.persistent:
                props.SessionExpiryInterval = self.config.session_expiry_s
            props.ReceiveMaximum = self.config.receive_maximum
            if self.config.max_packet_bytes is not None:
                props.MaximumPacketSize = self.config.max_packet_bytes
            kwargs["clean_start"] = not self.config.persistent
            kwargs["properties"] = props
        self._client.connect_async(self.config.host, self.config.port, **kwargs)
        self._client.loop_start()
        log.info(
            "mqtt: connecting",
            extra={
                "host": self.config.host,
                "port": self.config.port,
                "client_id": self.config.client_id,
            },
        )

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def ack(self, message: InboundMessage) -> None:
        token = message.token
        if not isinstance(token, _AckToken) or token.qos == 0:
            return
        if token.owner is not self:
            token.owner.ack(message)
            return
        with self._lock:
            current = self._generation
            self.unacked = max(0, self.unacked - 1)
            self._room.notify()
        if token.generation != current or not self._connected.is_set():
            self.acks_skipped += 1  # the broker will redeliver it on this connection
            return
        self._client.ack(token.mid, token.qos)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise RuntimeError(f"mqtt: publish to {topic!r} failed: {mqtt.error_string(info.rc)}")

    def publish_confirmed(self, topic: str, payload: bytes, timeout_s: float) -> bool:
        """Publish with QoS 1 and wait for the broker's PUBACK; False when it did not come."""
        if not self._connected.is_set():
            return False
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def publish_confirmed_many(
        self, messages: Sequence[tuple[str, bytes]], timeout_s: float
    ) -> int:
        """Publish all with QoS 1 at once, then wait for their PUBACKs (one deadline for all);
        how many of the first ones were acknowledged, in order."""
        if not self._connected.is_set():
            return 0
        infos: list[mqtt.MQTTMessageInfo] = []
        for topic, payload in messages:
            info = self._client.publish(topic, payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
            infos.append(info)
        deadline = time.monotonic() + timeout_s
        for done, info in enumerate(infos):
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                return done
            if not info.is_published():
                return done
        return len(infos)

    def stop(self, *, end_session: bool = False) -> None:
        """Disconnect; with ``end_session`` the broker also forgets the session (MQTT 5: session
        expiry 0 on DISCONNECT), with whatever it still queued for it."""
        self._stopping = True
        with self._room:
            self._room.notify_all()
        if end_session and self.config.protocol == "v5":
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
            self._client.disconnect(properties=props)
        else:
            self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        if end_session and self.config.protocol == "v311":
            # 3.1.1 has no session expiry: a clean connect under the same id ends the session.
            cleaner = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.config.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=True,
            )
            if self.config.username:
                cleaner.username_pw_set(self.config.username, self.config.password)
            if self.config.tls:
                cleaner.tls_set(cert_reqs=ssl.CERT_REQUIRED)
            try:
                cleaner.connect(self.config.host, self.config.port, keepalive=10)
                cleaner.loop(1.0)
                cleaner.disconnect()
            except OSError as exc:
                log.warning("mqtt: could not end the session", extra={"error": str(exc)})

    def unsubscribe(self, topics: tuple[str, ...]) -> None:
        if topics:
            self._client.unsubscribe(list(topics))

    # -- paho callbacks (network thread: hand over only) -------------------------------------
    def _handle_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # paho never sets TCP_NODELAY; Nagle's algorithm would add tens of ms to every PUBACK.
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("mqtt: connection refused", extra={"reason": str(reason)})
            if self._on_connection is not None:
                self._on_connection(False, f"connection refused: {reason}")
            return
        with self._lock:
            self._generation += 1
        self._connect_failures = 0
        session_present = bool(getattr(flags, "session_present", False))
        self.session_present = session_present
        v5 = self.config.protocol == "v5"
        qos = self.config.subscribe_qos
        for topic in self.config.subscriptions:
            if v5 and topic in self.config.no_retained:
                options = SubscribeOptions(
                    qos=qos, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND
                )
                client.subscribe(topic, options=options)
            else:
                client.subscribe(topic, qos=qos)
        self._connected.set()
        log.info(
            "mqtt: connected",
            extra={"session_present": session_present, "generation": self._generation},
        )
        if self._on_connection is not None:
            self._on_connection(True, "connected")

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # The broker did not answer at all (down, wrong port): paho retries; the hub alarms.
        self._connect_failures += 1
        if self._connect_failures == 1 or self._connect_failures % 30 == 0:
            log.warning(
                "mqtt: cannot reach the broker; retrying",
                extra={
                    "host": self.config.host,
                    "port": self.config.port,
                    "attempts": self._connect_failures,
                },
            )
        if self._on_connection is not None:
            self._on_connection(False, "cannot reach the broker")

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        # Our own disconnect at shutdown is routine; any other is an outage worth a warning.
        level = logging.INFO if self._stopping else logging.WARNING
        log.log(level, "mqtt: disconnected", extra={"reason": str(reason)})
        if self._on_connection is not None:
            self._on_connection(False, str(reason))

    def _wait_for_room(self) -> None:
        """Count one more QoS 1 message in flight; first, while the broker has sent more than
        our Receive Maximum, wait for an ack to free a place. The broker should never do that,
        but Mosquitto 2.0.11 does while acks flow (a quota it refills too often): without this
        wait a backlog at the broker became a backlog in the hub's memory. Waiting here stops
        paho reading the socket, so TCP holds the broker back. The wait is cut to a quarter
        of the keepalive, so that a long hold (a full spool) cannot cost the connection."""
        limit = self.config.receive_maximum
        deadline = time.monotonic() + self.config.keepalive_s / 4
        with self._room:
            if self.unacked >= limit:
                self.overruns += 1
                if self.overruns == 1:
                    log.warning(
                        "mqtt: the broker sent more unacknowledged messages than the Receive "
                        "Maximum; holding them back until acks free places",
                        extra={"client_id": self.config.client_id, "receive_maximum": limit},
                    )
            while self.unacked >= limit and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._room.wait(left)
            self.unacked += 1

    def _handle_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        ignore = self.config.ignore_topic
        if ignore is not None and ignore(msg.topic):
            if msg.qos:  # another session of the hub takes it; never leave it unacknowledged
                client.ack(msg.mid, msg.qos)
            self.ignored += 1
            if self.ignored == 1:
                log.info(
                    "mqtt: this session receives a copy of messages another session of the hub "
                    "takes, and drops it; a broker user whose ACL denies those topics spares the "
                    "broker and the hub the copies (docs/deploy.md, 'Broker access control')",
                    extra={"client_id": self.config.client_id, "topic": msg.topic[:200]},
                )
            return
        handler = self._handler
        self.last_message_monotonic = time.monotonic()
        if msg.qos:
            self._wait_for_room()
        token = _AckToken(self, self._generation, msg.mid, msg.qos)
        inbound = InboundMessage(
            topic=msg.topic,
            payload=bytes(msg.payload),
            received_ms=time.time_ns() // 1_000_000,
            token=token,
            redelivered=bool(msg.dup),
            qos=msg.qos,
            retained=bool(msg.retain),
        )
        if handler is not None:
            handler(inbound)
