"""Hostile input for the issue-10 integration tests: poison payloads, publishers, alarm watchers.

Everything here talks to a real broker; nothing imports the hub. The sample park's chlorine
detectors of e01 (GT-1101..GT-1115: Cl2, 0-10 ppm, level 1 at 0.3, level 2 at 0.6 ppm) are the
"real alarm" of every test: a reading at 8x the level-2 setpoint must raise ToxicGasLevel2
within 10 s (GB 16808), whatever came before it.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.integration.hubproc import HubProcess, wait_for

ENT = "e01-chloralkali"
TELEMETRY = f"hazard/v1/{ENT}/telemetry"
REJECTED = f"hazard/v1/{ENT}/rejected"
DETECTORS = tuple(f"GT-{1101 + i}" for i in range(15))
LEVEL2 = "ToxicGasLevel2"
HIGH = 4.8  # 8x the level-2 setpoint (0.6 ppm), as in the issue; inside the 0-10 ppm range
NORMAL = 0.0
ALARM_DEADLINE_S = 10.0  # GB 16808: a level-2 gas alarm within 10 s
PAYLOAD_LIMIT = 1_048_576  # SAFETY_HUB_MAX_PAYLOAD_BYTES' default
SHIPPED_BROKER_CONFIG = Path(__file__).parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"
UNKNOWN_TAG = "NO-SUCH-TAG"


def shipped_size_limits() -> str:
    """The size-limit lines (``message_size_limit``, ``max_packet_size``) of the Mosquitto
    config we ship, so that a test broker refuses what the park's broker refuses."""
    keys = ("message_size_limit", "max_packet_size")
    lines = SHIPPED_BROKER_CONFIG.read_text().splitlines()
    return "\n".join(line.strip() for line in lines if line.split()[:1] and line.split()[0] in keys)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def reading(tag: str, v: float, ts: int | None = None) -> bytes:
    item: dict[str, Any] = {"tag": tag, "v": v}
    if ts is not None:
        item["ts"] = ts
    return json.dumps({"readings": [item]}).encode()


# -- MQTT clients ------------------------------------------------------------------------------


def _client(client_id: str = "", auth: tuple[str, str] | None = None) -> mqtt.Client:
    """A paho MQTT 5 client; ``auth``: (user, password) for a broker with access control."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if auth is not None:
        client.username_pw_set(*auth)
    return client


class Publisher:
    """A paho MQTT 5 publisher that counts the broker's PUBACKs, failures included."""

    def __init__(
        self,
        port: int,
        client_id: str = "",
        inflight: int = 1000,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.client = _client(client_id, auth)
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)
        self._lock = threading.Lock()
        self.sent = 0
        self.acked = 0
        self.failures: list[str] = []
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_for(self.client.is_connected, 10, f"a publisher connected to port {port}")

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self.acked += 1
            if reason.is_failure:
                self.failures.append(str(reason))

    def send(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Queue one message without waiting for its PUBACK (for floods)."""
        # paho refuses a message whose packet id (16 bits) is still outstanding.
        while self.sent - self.acked >= 30_000:
            time.sleep(0.01)
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise AssertionError(f"publish to {topic!r} failed: {mqtt.error_string(info.rc)}")
        with self._lock:
            self.sent += 1

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish with QoS 1 and wait until the broker has it (PUBACK)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise AssertionError(f"publish to {topic!r} failed: {mqtt.error_string(info.rc)}")
        with self._lock:
            self.sent += 1
        refused = len(self.failures)
        info.wait_for_publish(30)
        assert info.is_published(), f"no PUBACK for a {len(payload)}-byte message to {topic!r}"
        assert len(self.failures) == refused, f"the broker refused it: {self.failures[-1]}"

    def wait_all_acked(self, timeout: float) -> None:
        wait_for(
            lambda: self.acked >= self.sent,
            timeout,
            f"the broker to acknowledge every message ({self.acked} of {self.sent})",
            interval=0.2,
        )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8_field(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def flood_qos1(port: int, messages: Iterable[tuple[str, bytes]], window: int = 20_000) -> int:
    """Publish ``messages`` (topic, payload) at QoS 1 as fast as the broker takes them and wait
    for every PUBACK; returns how many. A bare MQTT 3.1.1 client on a socket: paho's Python
    loop manages about a thousand QoS 1 messages a second, far too slow for 200,000."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    client_id = _utf8_field(f"flood-{time.monotonic_ns()}")
    # protocol "MQTT" level 4, clean session, keep-alive 0 (off: the flood may take minutes)
    connect = _utf8_field("MQTT") + bytes([4, 0x02, 0, 0]) + client_id
    sock.sendall(b"\x10" + _remaining_length(len(connect)) + connect)
    connack = sock.recv(4)
    assert connack[:1] == b"\x20" and connack[3:4] == b"\x00", f"CONNACK {connack!r}"
    acked = 0
    sent = 0
    lock = threading.Condition()
    failure: list[str] = []

    def read_acks() -> None:
        nonlocal acked
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65_536)
            except OSError as exc:
                failure.append(repr(exc))
                chunk = b""
            if not chunk:
                with lock:
                    lock.notify_all()
                return
            buffer += chunk
            # Only PUBACKs (4 bytes: 0x40 0x02 id) come back to a client that subscribes to nothing.
            whole = len(buffer) // 4 * 4
            kinds = buffer[:whole:4]
            if kinds.count(0x40) != len(kinds):
                failure.append(f"a packet other than PUBACK: {buffer[:16]!r}")
            count = len(kinds)
            buffer = buffer[whole:]
            with lock:
                acked += count
                lock.notify_all()

    reader = threading.Thread(target=read_acks, daemon=True, name="flood-acks")
    reader.start()

    def room() -> bool:
        return sent - acked < window or bool(failure)

    def all_acked() -> bool:
        return acked >= sent or bool(failure)

    batch = bytearray()
    try:
        for topic, payload in messages:
            packet_id = sent % 65_535 + 1
            body = _utf8_field(topic) + packet_id.to_bytes(2, "big") + payload
            batch += b"\x32" + _remaining_length(len(body)) + body
            sent += 1
            if len(batch) > 64_000:
                sock.sendall(batch)
                batch.clear()
                with lock:
                    lock.wait_for(room, 60)
        sock.sendall(batch)
        with lock:
            done = lock.wait_for(all_acked, 300)
        assert done and not failure, f"{acked} of {sent} acknowledged; {failure}"
        return sent
    finally:
        with contextlib.suppress(OSError):
            sock.sendall(b"\xe0\x00")  # DISCONNECT
        sock.close()


class TopicCollector:
    """Every message on a topic filter, as (topic, payload bytes), in arrival order."""

    def __init__(self, port: int, topic_filter: str, auth: tuple[str, str] | None = None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = _client(auth=auth)
        self.client.max_inflight_messages_set(1000)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_connect = lambda client, *args: client.subscribe(topic_filter, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(10), f"could not subscribe to {topic_filter!r}"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def payloads(self, start: int = 0) -> list[bytes]:
        with self._lock:
            return [payload for _, payload in self.messages[start:]]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass(frozen=True)
class Mark:
    """A point in the alarm event stream: events after it are new."""

    index: int
    max_seq: int


class AlarmWatcher(TopicCollector):
    """The hub's alarm events on ``hazard/v1/+/alarms``."""

    def __init__(self, port: int, auth: tuple[str, str] | None = None) -> None:
        super().__init__(port, "hazard/v1/+/alarms", auth)

    def events(self, start: int = 0) -> list[dict[str, Any]]:
        return [json.loads(p) for p in self.payloads(start)]

    def mark(self) -> Mark:
        events = self.events()
        return Mark(len(events), max((e.get("seq", 0) for e in events), default=0))

    def matching(
        self, since: Mark, action: str | tuple[str, ...], tag: str, alert: str = LEVEL2
    ) -> list[dict[str, Any]]:
        """New (not re-sent) events of one action (or any of several) on one alarm after
        ``since``."""
        actions = (action,) if isinstance(action, str) else action
        return [
            e
            for e in self.events(since.index)
            if e.get("action") in actions
            and not e.get("recovered")
            and e.get("seq", 0) > since.max_seq
            and e["alarm"]["alert"] == alert
            and e["alarm"]["tag"] == tag
        ]


def raise_level2(
    pub: Publisher,
    watcher: AlarmWatcher,
    hub: HubProcess,
    tag: str,
    after: str,
    topic: str = TELEMETRY,
) -> dict[str, Any]:
    """Publish a current reading of ``tag`` at 8x its level-2 setpoint; its ToxicGasLevel2
    raise event must arrive within 10 s (``reactivate`` when the alarm is still latched from an
    earlier probe: active again, without a second annunciation). ``after`` names what came
    before, for the message."""
    since = watcher.mark()
    sent = time.monotonic()
    pub.publish(topic, reading(tag, HIGH, now_ms()))
    deadline = sent + ALARM_DEADLINE_S
    while time.monotonic() < deadline:
        found = watcher.matching(since, ("raise", "reactivate"), tag)
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError(
        f"no {LEVEL2} raise event for {tag} within {ALARM_DEADLINE_S:.0f} s of a level-2 "
        f"reading ({HIGH} ppm) published after {after}; readiness: {_readiness(hub)}\n"
        f"hub log tail:\n{hub.log_tail(15)}"
    )


def back_to_normal(
    pub: Publisher, watcher: AlarmWatcher, hub: HubProcess, tag: str, topic: str = TELEMETRY
) -> None:
    """A current normal reading of ``tag``: its level-2 condition clears (the alarm may stay
    latched; a new activation after the clear raises again)."""
    since = watcher.mark()
    pub.publish(topic, reading(tag, NORMAL, now_ms()))
    wait_for(
        lambda: bool(watcher.matching(since, "clear", tag)),
        ALARM_DEADLINE_S,
        f"{LEVEL2} of {tag} to clear after a normal reading\n{hub.log_tail(15)}",
    )


def assert_alarm_still_fires(
    pub: Publisher, watcher: AlarmWatcher, hub: HubProcess, tag: str, after: str
) -> None:
    """The GB 16808 check that ends every test: a real level-2 reading still alarms in 10 s."""
    raise_level2(pub, watcher, hub, tag, after)
    back_to_normal(pub, watcher, hub, tag)


def wait_ingesting(hub: HubProcess, pub: Publisher, timeout: float = 20) -> None:
    """Wait until the hub takes readings from the broker (its subscription is in place): a
    normal reading of the last detector, repeated, until the accepted counter moves."""
    start = hub.metric("safety_hub_readings_accepted_total")

    def moved() -> bool:
        pub.publish(TELEMETRY, reading(DETECTORS[-1], NORMAL, now_ms()))
        return hub.metric("safety_hub_readings_accepted_total") > start

    wait_for(moved, timeout, f"the hub to ingest from the broker\n{hub.log_tail(15)}", 0.5)


def _readiness(hub: HubProcess) -> str:
    try:
        return hub.get("/readyz").text
    except Exception as exc:  # the message must still be written
        return f"unavailable ({exc!r})"


def rejection_total(hub: HubProcess) -> float:
    """Message-level plus reading-level rejections, every enterprise and reason."""
    return hub.metric("safety_hub_messages_rejected_total") + hub.metric(
        "safety_hub_readings_rejected_total"
    )


# -- a client we did not write -----------------------------------------------------------------

_PUBACK = re.compile(r"received PUBACK \(Mid: ?\d+, RC: ?(\d+)\)")


@dataclass(frozen=True)
class PubResult:
    returncode: int
    output: str

    @property
    def puback_reason(self) -> int | None:
        """The reason code of the broker's PUBACK (0: accepted), None when none came."""
        found = _PUBACK.search(self.output)
        return int(found.group(1)) if found else None


def mosquitto_pub_file(port: int, topic: str, path: Path, timeout: float = 120) -> PubResult:
    """``mosquitto_pub -V mqttv5 -q 1 -f FILE`` with its debug output (the PUBACK's code)."""
    done = subprocess.run(
        [
            "mosquitto_pub",
            "-d",
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-t",
            topic,
            "-f",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PubResult(done.returncode, done.stdout + done.stderr)


# -- poison payloads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Poison:
    name: str
    payload: bytes
    # True: the contract makes it a rejection (one report, counted); False: valid; None: the
    # contract allows either (a decoder may or may not read it).
    rejected: bool | None


GBK_NAME = "氯气检测器".encode("gbk")  # what a gateway with a GBK code page sends
HUGE_INT = b"9" * 5000  # past Python's 4300-digit int/str limit and any double


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _with_number(field: str, number: bytes, tag: str, ts: int) -> bytes:
    if field == "v":
        return b'{"readings":[{"tag":"%s","v":%s,"ts":%d}]}' % (tag.encode(), number, ts)
    if field == "ts":
        return b'{"readings":[{"tag":"%s","v":0.0,"ts":%s}]}' % (tag.encode(), number)
    return b'{"seq":%s,"readings":[{"tag":"%s","v":0.0,"ts":%d}]}' % (number, tag.encode(), ts)


def hand_picked_poisons(tag: str, now: int) -> list[Poison]:
    """The issue's poisons, each built around a reading of ``tag`` at ``now`` where it has one."""
    good = b'{"tag":"%s","v":0.0,"ts":%d}' % (tag.encode(), now)
    valid = b'{"readings":[%s]}' % good
    poisons = [
        # The headline: 1,000 levels in a field the contract ignores stopped every alarm.
        Poison(
            "nesting 1000 in an ignored field",
            b'{"x":%s,"readings":[%s]}' % (_nested(1000), good),
            None,
        ),
        Poison(
            "nesting 100000 in an ignored field",
            b'{"x":%s,"readings":[%s]}' % (_nested(100_000), good),
            None,
        ),
        Poison("nesting 1000 in readings", b'{"readings":%s}' % _nested(1000), True),
        Poison("nesting 100000 in readings", b'{"readings":%s}' % _nested(100_000), True),
        Poison(
            "GBK bytes as the tag",
            b'{"readings":[{"tag":"%s","v":0.0,"ts":%d}]}' % (GBK_NAME, now),
            True,
        ),
        Poison(
            "GBK bytes in an ignored field",
            b'{"note":"%s","readings":[%s]}' % (GBK_NAME, good),
            True,
        ),
        Poison(
            "a cut UTF-8 character at the end of a string",
            b'{"readings":[%s],"note":"\xe6\xb0"}' % good,
            True,
        ),
        Poison("an invalid byte after the document", valid + b"\xff", True),
        Poison("truncated JSON", valid[: len(valid) // 2], True),
        Poison("1e400 in v", _with_number("v", b"1e400", tag, now), True),
        Poison("1e400 in ts", _with_number("ts", b"1e400", tag, now), True),
        Poison("1e400 in seq", _with_number("seq", b"1e400", tag, now), True),
        Poison("NaN in v", _with_number("v", b"NaN", tag, now), True),
        Poison("NaN in ts", _with_number("ts", b"NaN", tag, now), True),
        Poison("NaN in seq", _with_number("seq", b"NaN", tag, now), True),
        Poison("a 5000-digit v", _with_number("v", HUGE_INT, tag, now), True),
        Poison("a 5000-digit ts", _with_number("ts", HUGE_INT, tag, now), True),
        Poison("a 5000-digit seq", _with_number("seq", HUGE_INT, tag, now), True),
        Poison(
            "50,000 tiny readings",
            b'{"readings":[%s]}' % b",".join([b"{}"] * 50_000),
            True,
        ),
        Poison("a negative ts", _with_number("ts", b"-1", tag, now), True),
        Poison("ts in seconds", _with_number("ts", str(now // 1000).encode(), tag, now), True),
        Poison(
            "ts ten years ahead",
            _with_number("ts", str(now + 10 * 365 * 86_400_000).encode(), tag, now),
            True,
        ),
        # Inside the 300 s limit: valid for the decoder, and must not blind the engine.
        Poison("ts 295 s ahead", _with_number("ts", str(now + 295_000).encode(), tag, now), None),
        Poison("an empty payload", b"", True),
        Poison("a JSON string", b'"readings"', True),
        Poison("a JSON number", b"42", True),
        Poison("JSON null", b"null", True),
        Poison("an array", b"[%s]" % good, True),
    ]
    return poisons


HAND_PICKED_COUNT = len(hand_picked_poisons(DETECTORS[0], 0))

# Hypothesis-generated poisons. Every strategy below yields a payload the contract rejects
# (malformed, wrong shape, or readings that name no registered tag), so each one must produce
# exactly one rejection report.

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_reading_like = st.fixed_dictionaries(
    {"tag": st.text(max_size=12) | _values, "v": _values},
    optional={"ts": _values, "q": _values},
)
_message_like = st.fixed_dictionaries(
    {"readings": st.lists(_reading_like | _values, min_size=1, max_size=5)},
    optional={"ts": _values, "seq": _values, "note": _values},
)
_documents = st.one_of(_message_like, _values)


def _encode(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=True, allow_nan=True).encode()


_BAD_UTF8 = [b"\xff", b"\xc3", b"\xe6\xb0", b"\xed\xa0\x80", b"\xc0\xaf", GBK_NAME]
_ODD_NUMBERS = [
    b"1e400",
    b"-1e400",
    b"NaN",
    b"Infinity",
    b"-0",
    b"1e-400",
    HUGE_INT,
    b"-" + HUGE_INT,
    b"0.1e99999",
    b"18446744073709551616",
]


@st.composite
def _truncated(draw: st.DrawFn) -> bytes:
    data = _encode(draw(_message_like))
    return data[: draw(st.integers(0, len(data) - 1))]


@st.composite
def _bad_utf8(draw: st.DrawFn) -> bytes:
    # The base is ASCII (ensure_ascii), so an inserted sequence can never complete a character.
    data = _encode(draw(_documents))
    at = draw(st.integers(0, len(data)))
    return data[:at] + draw(st.sampled_from(_BAD_UTF8)) + data[at:]


@st.composite
def _deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(2, 50_000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    inner = b"0" if opener != b"[" else b""
    closing = closer * depth if draw(st.booleans()) else closer * draw(st.integers(0, depth - 1))
    nest = opener * depth + inner + closing
    if draw(st.booleans()):
        return b'{"readings":%s}' % nest
    return b'{"x":%s,"readings":[{"tag":"%s","v":1}]}' % (nest, UNKNOWN_TAG.encode())


@st.composite
def _odd_numbers(draw: st.DrawFn) -> bytes:
    v, ts, seq = (draw(st.sampled_from(_ODD_NUMBERS)) for _ in range(3))
    return b'{"seq":%s,"readings":[{"tag":"%s","v":%s,"ts":%s}]}' % (
        seq,
        UNKNOWN_TAG.encode(),
        v,
        ts,
    )


def _not_a_valid_message(document: object) -> bool:
    return not (isinstance(document, dict) and document.get("readings") == [])


poison_payloads = st.one_of(
    _documents.filter(_not_a_valid_message).map(_encode),
    _truncated(),
    _bad_utf8(),
    _deep(),
    _odd_numbers(),
    st.binary(max_size=300),
)


def hypothesis_poisons(count: int) -> list[bytes]:
    """``count`` distinct payloads from ``poison_payloads``; derandomized, so every run sends
    the same ones."""
    found: dict[bytes, None] = {}  # insertion-ordered set: the generator repeats itself

    @settings(
        max_examples=count * 5,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(poison_payloads)
    def collect(payload: bytes) -> None:
        found[payload] = None

    collect()
    assert len(found) >= count, f"hypothesis gave only {len(found)} distinct payloads"
    return list(found)[:count]


# -- the broker's log --------------------------------------------------------------------------


def subscriptions_logged(log_path: Path, client_id: str, topic_filter: str) -> int:
    """How many times the broker logged ``client_id`` subscribing to ``topic_filter``."""
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return 0
    pattern = re.compile(rf" {re.escape(client_id)} \d+ {re.escape(topic_filter)}\s*$", re.M)
    return len(pattern.findall(text))
