"""An enterprise gateway stand-in: publishes readings by the telemetry contract v1, revision 1.1.

One MQTT v5 client per enterprise, QoS 1, a retained ``online`` status and a last-will
``offline`` on ``hazard/v1/{enterprise}/status``, batches of readings with ``seq`` numbers.
Revision 1.1 (the default): the readings of the enterprise's safety-critical tags (gas
detectors and SIS tags, ``CRITICAL_KINDS``) go in messages of their own on
``hazard/v1/{enterprise}/critical``, sent before the rest of the same sample, which goes on
``.../telemetry``; one ``seq`` counter for both. ``critical_topic=False`` makes a revision 1.0
gateway: everything on ``.../telemetry``.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from safety_hub.ingest.telemetry import critical_topic as critical_topic_of
from safety_hub.ingest.telemetry import status_topic, telemetry_topic
from safety_hub.registry import Plant
from safety_hub.registry.checks import GAS_KINDS, SIS_KINDS

CRITICAL_KINDS = GAS_KINDS | SIS_KINDS
"""tag kinds whose readings a revision 1.1 gateway sends on the critical topic: gas detectors and
SIS tags, the kinds the hub's triage takes as safety-critical (``safety_hub.runtime.hub``)"""

R = TypeVar("R")


@dataclass(frozen=True)
class SimTag:
    tag: str
    kind: str
    lo: float
    hi: float
    interval_s: float = 10.0
    # The band between the tag's low and high alarm setpoints (default: its range); normal
    # values stay inside it, so a pressure with a negative normal band never reads as high.
    normal_lo: float | None = None
    normal_hi: float | None = None


def critical_tags(plant: Plant, enterprise: str) -> frozenset[str]:
    """The enterprise's tags whose readings go on its critical topic (``CRITICAL_KINDS``)."""
    return frozenset(t.tag for t in plant.tags_of(enterprise) if t.kind in CRITICAL_KINDS)


def by_topic(
    enterprise: str, readings: Sequence[R], tag_of: Callable[[R], str], critical: Collection[str]
) -> list[tuple[str, list[R]]]:
    """The readings of one sample as a gateway sends them, ``(topic, readings)`` in sending
    order: those of the ``critical`` tags on the critical topic first, then the rest on the
    telemetry topic, each in their sampled order; a topic without readings is left out. With no
    critical tags (a revision 1.0 gateway) everything is on the telemetry topic."""
    urgent = [r for r in readings if tag_of(r) in critical] if critical else []
    rest = [r for r in readings if tag_of(r) not in critical] if urgent else list(readings)
    out = [(critical_topic_of(enterprise), urgent)] if urgent else []
    if rest:
        out.append((telemetry_topic(enterprise), rest))
    return out


def normal_band(lo: float, hi: float, setpoints: Mapping[str, float]) -> tuple[float, float]:
    """The band between a process tag's low (l, ll) and high (h, hh) setpoints, within range."""
    low = max([lo, *(v for k, v in setpoints.items() if k in ("l", "ll"))])
    high = min([hi, *(v for k, v in setpoints.items() if k in ("h", "hh"))])
    return (low, high) if low < high else (lo, hi)


def normal_value(tag: SimTag, t_s: float, rng: random.Random) -> float:
    """A plausible value in normal operation: well below any alarm setpoint."""
    span = tag.hi - tag.lo
    if tag.kind in ("combustible_gas", "toxic_gas", "open_path_gas"):
        return round(max(0.0, tag.lo + span * 0.01 * abs(rng.gauss(0.5, 0.5))), 3)
    if tag.kind == "oxygen":
        return round(20.9 + rng.gauss(0, 0.05), 2)
    if tag.kind.startswith("sis") or tag.kind == "status":
        return 0.0
    lo = tag.lo if tag.normal_lo is None else tag.normal_lo
    hi = tag.hi if tag.normal_hi is None else tag.normal_hi
    wave = 0.5 + 0.1 * math.sin(t_s / 600 + zlib.crc32(tag.tag.encode()) % 7)
    return round(lo + (hi - lo) * (wave + rng.gauss(0, 0.005)), 3)


class _AckCountingClient(mqtt.Client):
    """paho's client that counts its QoS 1/2 messages the broker has not acknowledged yet
    (paho keeps them, but not in public).

    Every message goes through :meth:`publish`, and paho calls ``on_publish`` once per message
    it completes (QoS 0: sent; QoS 1/2: acknowledged by the broker). Which of the two comes
    first for one message is a race with the network thread, so each records what the other
    has not seen yet.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._count_lock = threading.Lock()
        self._waiting: dict[int, int] = {}  # mid -> QoS, published and not yet complete
        self._completed_early: set[int] = set()  # mids completed before publish() returned
        self.on_publish = self._on_complete

    def publish(
        self,
        topic: str,
        payload: mqtt.PayloadType = None,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> mqtt.MQTTMessageInfo:
        info = super().publish(topic, payload, qos, retain, properties)
        queued = info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            qos > 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN  # sent after reconnecting
        )
        if queued:
            with self._count_lock:
                if info.mid in self._completed_early:
                    self._completed_early.remove(info.mid)
                else:
                    self._waiting[info.mid] = qos
        return info

    def _on_complete(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        with self._count_lock:
            if self._waiting.pop(mid, None) is None:
                self._completed_early.add(mid)

    def unacknowledged(self) -> int:
        """QoS 1/2 messages published and not yet acknowledged by the broker."""
        with self._count_lock:
            return sum(1 for qos in self._waiting.values() if qos > 0)


class Gateway:
    """A connected gateway for one enterprise.

    :meth:`publish` sends one sample. By revision 1.1 (``critical_topic``, the default) the
    readings of ``critical_tags`` (give the enterprise's gas and SIS tags: :func:`critical_tags`)
    go first, in messages on the critical topic, the rest on the telemetry topic; with
    ``critical_topic=False`` (revision 1.0) everything goes on the telemetry topic. At most
    ``batch`` readings per message (None: one message per topic).
    """

    def __init__(
        self,
        host: str,
        port: int,
        enterprise: str,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        critical_tags: Collection[str] = (),
        critical_topic: bool = True,
        batch: int | None = None,
    ) -> None:
        if batch is not None and batch < 1:
            raise ValueError(f"gateway {enterprise}: batch must be >= 1, got {batch}")
        self.enterprise = enterprise
        self.seq = 0
        self.critical_topic = critical_topic
        self.critical_tags = frozenset(critical_tags)
        self.batch = batch
        self._client = _AckCountingClient(
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
        self.announce_online()
        self._connected.set()

    def announce_online(self) -> mqtt.MQTTMessageInfo:
        """Publish the retained ``online`` status (again): on connect, and after another
        publisher of this enterprise (a scenario's gateway) may have left ``offline`` behind."""
        return self._client.publish(
            status_topic(self.enterprise), json.dumps({"state": "online"}), qos=1, retain=True
        )

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    def publish(
        self, readings: Sequence[dict[str, object]], ts_ms: int | None = None
    ) -> list[mqtt.MQTTMessageInfo]:
        """Publish one sample (``{"tag", "v", "ts"?, "q"?}`` each), split by topic and batched
        (class doc), each message with the next ``seq`` and ``ts_ms`` when given; an empty
        sample is one empty message on the telemetry topic. One info per message, in order."""
        critical = self.critical_tags if self.critical_topic else ()
        groups = by_topic(self.enterprise, readings, lambda r: str(r.get("tag")), critical)
        out: list[mqtt.MQTTMessageInfo] = []
        for topic, group in groups or [(telemetry_topic(self.enterprise), [])]:
            step = self.batch or max(1, len(group))
            for start in range(0, max(1, len(group)), step):
                self.seq += 1
                body: dict[str, object] = {"seq": self.seq, "readings": group[start : start + step]}
                if ts_ms is not None:
                    body["ts"] = ts_ms
                payload = json.dumps(body, ensure_ascii=False)
                out.append(self._client.publish(topic, payload, qos=1))
        return out

    def publish_raw(
        self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1
    ) -> mqtt.MQTTMessageInfo:
        """Publish a ready payload (a scenario's message) on this gateway's connection."""
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    def pending(self) -> int:
        """Messages published but not yet acknowledged by the broker."""
        return self._client.unacknowledged()

    def close(self, graceful: bool = True, *, announce_offline: bool = True) -> None:
        """Stop. ``graceful``: wait for the broker's acks and DISCONNECT (no last-will), after
        publishing the retained ``offline`` status unless ``announce_offline`` is False. A
        gateway that never connected (no broker there) just stops."""
        if graceful and self._client.is_connected():
            deadline = time.monotonic() + 10
            while self.pending() and time.monotonic() < deadline:
                time.sleep(0.02)
            if not announce_offline:
                self._client.disconnect()
                self._client.loop_stop()
                return
            self._client.publish(
                status_topic(self.enterprise), json.dumps({"state": "offline"}), qos=1, retain=True
            ).wait_for_publish(5)
            self._client.disconnect()
        self._client.loop_stop()


# -- the gateway as a model (replay, recordings, and the scenario player) ---------------------


@dataclass(frozen=True, slots=True)
class Publication:
    """One MQTT message as a gateway (or the broker, for a last-will) sends it."""

    at_ms: int
    """scenario time of the send, epoch ms"""
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1


@dataclass(frozen=True, slots=True)
class SampledReading:
    tag: str
    value: float
    quality: str
    ts_ms: int


class GatewayModel:
    """An enterprise gateway by the telemetry contract v1 (revision 1.1), without a network.

    - Readings go out in messages of at most ``batch`` readings, each message with ``ts`` and an
      increasing ``seq`` (1, 2, ... for the life of the gateway, continuing after an outage).
    - Revision 1.1 (``critical_topic``, the default): of each sample, the readings of
      ``critical_tags`` (the enterprise's gas and SIS tags: :func:`critical_tags`) go first, in
      messages on ``hazard/v1/{enterprise}/critical``, the rest then on ``.../telemetry``; one
      ``seq`` counter for both topics. ``critical_topic=False``: revision 1.0, everything on
      ``.../telemetry``.
    - Timestamps carry the gateway's clock error: ``clock_skew_ms`` > 0 is a clock ahead.
    - On connect it publishes the retained ``{"state":"online"}``; the broker holds its last-will
      ``{"state":"offline"}``, published when the connection dies without a DISCONNECT: by
      MQTT, once 1.5 × the keepalive passed without a packet (``will_delay_ms``).
    - During an outage nothing is sent. With ``store_and_forward`` the readings of the outage
      are buffered (up to ``buffer_limit``, oldest dropped first, whatever the tag) and sent
      after reconnecting, with their original timestamps: all the buffered critical readings
      first (in order of sampling), then the rest, as a gateway that knows which of its data
      are urgent does.
    """

    def __init__(
        self,
        enterprise: str,
        *,
        batch: int = 100,
        keepalive_s: float = 30.0,
        clock_skew_ms: int = 0,
        store_and_forward: bool = False,
        buffer_limit: int = 100_000,
        critical_tags: Collection[str] = (),
        critical_topic: bool = True,
    ) -> None:
        if batch < 1:
            raise ValueError(f"gateway {enterprise}: batch must be >= 1, got {batch}")
        self.enterprise = enterprise
        self.batch = batch
        self.keepalive_s = keepalive_s
        self.clock_skew_ms = clock_skew_ms
        self.store_and_forward = store_and_forward
        self.buffer_limit = buffer_limit
        self.critical_tags = frozenset(critical_tags)
        self.critical_topic = critical_topic
        self.seq = 0
        self.online = False
        self.buffer: list[SampledReading] = []
        self.dropped = 0
        self._status = status_topic(enterprise)

    @property
    def will_delay_ms(self) -> int:
        return round(1.5 * self.keepalive_s * 1000)

    def connect(self, at_ms: int) -> list[Publication]:
        """Connect (or reconnect): the retained online status, then any buffered readings
        (the critical ones first)."""
        self.online = True
        out = [Publication(at_ms, self._status, b'{"state":"online"}', retain=True)]
        buffered, self.buffer = self.buffer, []
        out.extend(self._messages(at_ms, buffered))
        return out

    def disconnect(self, at_ms: int, *, graceful: bool) -> list[Publication]:
        """A clean stop publishes ``offline`` itself; a dead link leaves it to the broker's
        last-will (see ``last_will``), which the caller schedules ``will_delay_ms`` later."""
        self.online = False
        if graceful:
            return [Publication(at_ms, self._status, b'{"state":"offline"}', retain=True)]
        return []

    def last_will(self, at_ms: int) -> Publication:
        return Publication(at_ms, self._status, b'{"state":"offline"}', retain=True)

    def sample(self, at_ms: int, readings: Sequence[tuple[str, float, str]]) -> list[Publication]:
        """Publish (or buffer) readings sampled at ``at_ms``: (tag, value, quality) each."""
        stamped = [
            SampledReading(tag, value, quality, at_ms + self.clock_skew_ms)
            for tag, value, quality in readings
        ]
        if not self.online:
            if self.store_and_forward:
                self.buffer.extend(stamped)
                overflow = len(self.buffer) - self.buffer_limit
                if overflow > 0:
                    del self.buffer[:overflow]
                    self.dropped += overflow
            else:
                self.dropped += len(stamped)
            return []
        return self._messages(at_ms, stamped)

    def send_reading(self, at_ms: int, reading: SampledReading) -> Publication:
        """One reading with its own timestamp, in a message of its own (next ``seq``, message
        ``ts`` = the reading's, on the topic of its tag): a scenario's injected reading, sent
        whatever the link state."""
        return self._messages(at_ms, [reading])[0]

    def _messages(self, at_ms: int, readings: list[SampledReading]) -> list[Publication]:
        out: list[Publication] = []
        critical = self.critical_tags if self.critical_topic else ()
        for topic, group in by_topic(self.enterprise, readings, _tag_of, critical):
            for start in range(0, len(group), self.batch):
                chunk = group[start : start + self.batch]
                self.seq += 1
                body = {
                    "ts": max(r.ts_ms for r in chunk),
                    "seq": self.seq,
                    "readings": [_reading_json(r) for r in chunk],
                }
                payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
                out.append(Publication(at_ms, topic, payload))
        return out


def _tag_of(r: SampledReading) -> str:
    return r.tag


def _reading_json(r: SampledReading) -> dict[str, object]:
    item: dict[str, object] = {"tag": r.tag, "v": r.value, "ts": r.ts_ms}
    if r.quality != "good":
        item["q"] = r.quality
    return item
