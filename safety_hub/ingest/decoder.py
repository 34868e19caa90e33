"""The telemetry decoder (contract v1) and the ``Decoder`` port the ingest worker is typed against.

Decoding takes a fast path (msgspec, typed) for well-formed messages and falls back to a
per-reading slow path only when the fast path fails, so one bad reading never costs the rest of
its batch and every rejection carries a reason. msgspec was chosen by measurement
(see bench/decode.py): it decodes and validates several times faster than pydantic or json.

``decode`` never raises: whatever an outsider sends is a ``DecodedMessage`` of accepted readings
and rejections (the contract: :mod:`safety_hub.ingest.telemetry`).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from operator import attrgetter
from typing import Annotated, Literal, Protocol

import msgspec

from safety_hub.ingest.telemetry import (
    INT64_MAX,
    INT64_MIN,
    MAX_JSON_DEPTH,
    MAX_KEPT_REJECTIONS,
    MAX_TAG_ECHO_CHARS,
    QUALITIES,
    DecodedMessage,
    DecodeLimits,
    Reading,
    Rejection,
    RejectReason,
    depth_bound,
    describe,
    enterprise_of_topic,
    int_text,
    is_utf8_text,
    json_problem,
    log_decoder_bug,
    nesting_problem,
    quote,
    utf8_problem,
)


class Decoder(Protocol):
    """What the ingest worker needs of a telemetry protocol: one MQTT message in, its accepted
    readings and rejections out. A second telemetry protocol (another topic tree, another
    payload format) plugs in here. ``decode`` must never raise: whatever the sender did is a
    rejection."""

    def decode(self, topic: str, payload: bytes) -> DecodedMessage: ...


# The fast path has two msgspec schemas. The exact one forbids unknown fields, so a message it
# takes is exactly 3 levels deep and needs no nesting check: the common case pays nothing for
# the guard. A message with unknown fields (ignored, as the contract says) takes the lenient one,
# and stays on the fast path unless its extra containers could nest past MAX_JSON_DEPTH.
_Tag = Annotated[str, msgspec.Meta(min_length=1)]  # "" is the slow path's invalid_reading
_Seq = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]  # reports echo it
# gc=False: these hold only strings, numbers and lists of each other, never a cycle, so the
# garbage collector need not track the hundred objects a message decodes into.


class _FastReading(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    tag: _Tag
    v: float
    ts: int | None = None
    q: Literal["good", "bad", "uncertain"] | None = None


class _FastMessage(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    readings: list[_FastReading]
    ts: int | None = None
    seq: _Seq | None = None


class _LenientReading(msgspec.Struct, gc=False):
    tag: _Tag
    v: float
    ts: int | None = None
    q: Literal["good", "bad", "uncertain"] | None = None


class _LenientMessage(msgspec.Struct, gc=False):
    readings: list[_LenientReading]
    ts: int | None = None
    seq: _Seq | None = None


_fast_decoder = msgspec.json.Decoder(_FastMessage)
_lenient_decoder = msgspec.json.Decoder(_LenientMessage)
_new_tuple = tuple.__new__
_TAG, _TS, _VALUE = attrgetter("tag"), attrgetter("ts"), attrgetter("v")


class TelemetryDecoder:
    """Decode and validate payloads against the plant registry.

    ``known_tags`` maps (enterprise, tag) to anything (the registry's TagInfo);
    ``enterprises`` is the set of registered enterprise codes.
    """

    def __init__(
        self,
        known_tags: Mapping[tuple[str, str], object],
        enterprises: set[str] | frozenset[str],
        clock_ms: Callable[[], int],
        limits: DecodeLimits | None = None,
    ) -> None:
        self._known = known_tags
        self._enterprises = frozenset(enterprises)
        self._owners: dict[str, list[str]] = {}
        # The registered tags of each enterprise: the hot path asks "tag in this enterprise's
        # set" once per reading, without building an (enterprise, tag) key for it.
        tags_of: dict[str, set[str]] = {}
        for ent, tag in known_tags:
            self._owners.setdefault(tag, []).append(ent)
            tags_of.setdefault(ent, set()).add(tag)
        self._tags_of: dict[str, frozenset[str]] = {e: frozenset(t) for e, t in tags_of.items()}
        self._now = clock_ms
        self.limits = limits or DecodeLimits()

    def decode(self, topic: str, payload: bytes) -> DecodedMessage:
        """Decode and validate one message. Never raises: every failure is a rejection."""
        try:
            return self._decode(topic, payload)
        except Exception as exc:
            # Last resort against a bug of our own: nothing of the message is accepted (a fresh
            # result, not the half-filled one), and the ingest of the park goes on.
            log_decoder_bug("decode", exc)
            msg = DecodedMessage(enterprise=self._registered_enterprise(topic), seq=None)
            msg.reject(
                Rejection(
                    RejectReason.MALFORMED_JSON,
                    f"the hub failed to decode this payload ({type(exc).__name__}); "
                    "nothing of it was accepted",
                )
            )
            return msg

    def _registered_enterprise(self, topic: str) -> str:
        try:
            enterprise = enterprise_of_topic(topic)
        except Exception:
            return ""
        return enterprise if enterprise in self._enterprises else ""

    def _decode(self, topic: str, payload: bytes) -> DecodedMessage:
        enterprise = enterprise_of_topic(topic)
        if enterprise is None:
            msg = DecodedMessage(enterprise="", seq=None)
            msg.reject(
                Rejection(
                    RejectReason.BAD_TOPIC,
                    f"topic {quote(topic, 80)} is not hazard/v1/<enterprise>/telemetry or .../critical",
                )
            )
            return msg
        msg = DecodedMessage(enterprise=enterprise, seq=None)
        if enterprise not in self._enterprises:
            msg.reject(
                Rejection(
                    RejectReason.UNKNOWN_ENTERPRISE,
                    f"enterprise {quote(enterprise, MAX_TAG_ECHO_CHARS)} of topic "
                    f"{quote(topic, 80)} is not in the plant registry",
                )
            )
            return msg
        if len(payload) > self.limits.max_payload_bytes:
            msg.reject(
                Rejection(
                    RejectReason.PAYLOAD_TOO_LARGE,
                    f"payload of {len(payload)} bytes exceeds the limit of "
                    f"{self.limits.max_payload_bytes} bytes",
                )
            )
            return msg
        now = self._now()
        fast: _FastMessage | _LenientMessage | None
        try:
            fast = _fast_decoder.decode(payload)
        except Exception:
            # The exact schema decodes every string it meets, so what it accepts is UTF-8. The
            # lenient one skips ignored strings unread, and the contract makes a payload that is
            # not UTF-8 malformed_json wherever the bad byte is: check it all here, and only when
            # there is a non-ASCII byte at all (isascii() is far cheaper than decoding).
            if not payload.isascii():
                try:
                    payload.decode("utf-8")
                except UnicodeDecodeError as exc:
                    msg.reject(Rejection(RejectReason.MALFORMED_JSON, utf8_problem(payload, exc)))
                    return msg
            fast = _decode_lenient(payload)
        if fast is None:
            # Anything msgspec refuses (a bad reading, NaN, deep nesting, a lone surrogate) is
            # read again by the slow path, which judges reading by reading.
            self._slow_path(msg, payload, now)
            return msg
        readings: Sequence[_FastReading | _LenientReading] = fast.readings
        msg.seq = fast.seq
        msg.total = len(readings)
        done = self._accept_plain(msg, readings, fast.ts, now)
        if done < len(readings):
            # From the first reading that is not plainly acceptable on, each is judged on its
            # own (and rejected or flagged with its reason).
            self._check_all(
                msg,
                ((i, r.tag, r.v, r.ts, r.q) for i, r in enumerate(readings[done:], done)),
                fast.ts,
                now,
            )
        return msg

    def _accept_plain(
        self,
        msg: DecodedMessage,
        readings: Sequence[_FastReading | _LenientReading],
        msg_ts: int | None,
        now: int,
    ) -> int:
        """Accept readings while each is plainly acceptable (registered tag, finite value,
        timestamp inside the window); return how many. The hot path: the same verdicts as
        ``_check_all`` for such readings. A message whose readings are all plainly acceptable
        (the usual case) is judged column by column, in C: the tags, values and timestamps
        taken out once, checked as sets and bounds, and the readings made by ``map``."""
        enterprise = msg.enterprise
        known = self._tags_of.get(enterprise, frozenset())
        limits = self.limits
        earliest = now - limits.max_age_ms
        latest = now + limits.max_future_ms
        default_ts = msg_ts if msg_ts is not None else now
        if not readings:
            return 0
        tags = list(map(_TAG, readings))
        stamps = list(map(_TS, readings))
        values = list(map(_VALUE, readings))
        if None in stamps:
            stamps = [default_ts if when is None else when for when in stamps]
        if (
            known.issuperset(tags)
            and earliest <= min(stamps)
            and max(stamps) <= latest
            and all(map(math.isfinite, values))
        ):
            qualities = [r.q or "good" for r in readings]
            msg.readings.extend(
                map(
                    _new_tuple,
                    repeat(Reading),
                    zip(repeat(enterprise), tags, stamps, values, qualities, strict=False),
                )
            )
            return len(readings)
        append = msg.readings.append
        isfinite = math.isfinite
        count = 0
        for tag, when, value, r in zip(tags, stamps, values, readings, strict=True):
            if not earliest <= when <= latest or tag not in known or not isfinite(value):
                break
            append(_new_tuple(Reading, (enterprise, tag, when, value, r.q or "good")))
            count += 1
        return count

    def _slow_path(self, msg: DecodedMessage, payload: bytes, now: int) -> None:
        # The standard library parser on purpose: it reads NaN, Infinity and 1e400 as floats,
        # so such a value costs only its own reading (non_finite_value), not the batch. The
        # payload was checked to be UTF-8 before the fast path, so decoding cannot fail here
        # (and json.loads on the bytes would have guessed UTF-16 and UTF-32 too).
        problem = _payload_problem(payload)
        if problem is None:
            try:
                doc = json.loads(payload.decode("utf-8"))
            except (ValueError, RecursionError) as exc:
                problem = json_problem(exc)
            else:
                problem = nesting_problem(payload, doc)
        if problem is not None:
            msg.reject(Rejection(RejectReason.MALFORMED_JSON, problem))
            return
        if not isinstance(doc, dict):
            msg.reject(
                Rejection(
                    RejectReason.INVALID_MESSAGE,
                    f"payload must be a JSON object, got {describe(doc)}",
                )
            )
            return
        msg_ts = doc.get("ts")
        if msg_ts is not None and (not isinstance(msg_ts, int) or isinstance(msg_ts, bool)):
            msg.reject(
                Rejection(
                    RejectReason.INVALID_MESSAGE,
                    f"message 'ts' must be an integer epoch in ms, got {describe(msg_ts)}",
                )
            )
            return
        seq = doc.get("seq")
        if seq is not None and (
            not isinstance(seq, int) or isinstance(seq, bool) or not INT64_MIN <= seq <= INT64_MAX
        ):
            msg.reject(
                Rejection(
                    RejectReason.INVALID_MESSAGE,
                    f"'seq' must be a 64-bit integer, got {describe(seq)}",
                )
            )
            return
        msg.seq = seq
        if "readings" not in doc:
            msg.reject(Rejection(RejectReason.INVALID_MESSAGE, "'readings' is missing"))
            return
        readings = doc["readings"]
        if not isinstance(readings, list):
            msg.reject(
                Rejection(
                    RejectReason.INVALID_MESSAGE,
                    f"'readings' must be a list, got {describe(readings)}",
                )
            )
            return
        msg.total = len(readings)
        items: list[tuple[int, str, float, int | None, str | None]] = []
        for index, raw in enumerate(readings):
            reason = _shape_problem(raw)
            if reason is not None:
                if msg.keeps(reason):
                    tag = raw.get("tag") if isinstance(raw, dict) else None
                    msg.rejections.append(
                        Rejection(
                            reason,
                            _shape_detail(raw),
                            index,
                            tag if isinstance(tag, str) else None,
                        )
                    )
                continue
            assert isinstance(raw, dict)
            items.append((index, raw["tag"], float(raw["v"]), raw.get("ts"), raw.get("q")))
        self._check_all(msg, items, msg_ts, now)

    def _check_all(
        self,
        msg: DecodedMessage,
        items: Iterable[tuple[int, str, float, int | None, str | None]],
        msg_ts: int | None,
        now: int,
    ) -> None:
        enterprise = msg.enterprise
        known = self._known
        earliest = now - self.limits.max_age_ms
        latest = now + self.limits.max_future_ms
        farthest = now + self.limits.max_age_ms  # further: a wrong unit, not a clock
        default_ts = msg_ts if msg_ts is not None else now
        accepted = msg.readings
        for index, tag, value, ts, quality in items:
            # Each rejection is counted; its detail is built only while it is kept.
            if (enterprise, tag) not in known:
                owned = RejectReason.WRONG_ENTERPRISE if tag in self._owners else None
                if msg.keeps(owned or RejectReason.UNKNOWN_TAG):
                    msg.rejections.append(self._unknown(index, tag, enterprise))
                continue
            if not math.isfinite(value):
                if msg.keeps(RejectReason.NON_FINITE_VALUE):
                    msg.rejections.append(
                        Rejection(
                            RejectReason.NON_FINITE_VALUE,
                            f"value {value!r} is not a finite number",
                            index,
                            tag,
                        )
                    )
                continue
            when = default_ts if ts is None else ts
            if when > latest:
                if when <= farthest:
                    # A gateway clock ahead of the hub's: accepted and flagged, never lost.
                    self._skewed(msg, index, tag, when, now, latest)
                    accepted.append(
                        _new_tuple(Reading, (enterprise, tag, when, value, quality or "good"))
                    )
                    continue
                if msg.keeps(RejectReason.FUTURE_TIMESTAMP):
                    msg.rejections.append(
                        Rejection(
                            RejectReason.FUTURE_TIMESTAMP,
                            f"ts {int_text(when)} is {int_text(-((now - when) // 1000))} s "
                            f"ahead of the hub's clock (limit {self.limits.max_age_ms // 1000}"
                            f" s, the horizon){_unit_hint(when, earliest, latest)}",
                            index,
                            tag,
                        )
                    )
                continue
            if when < earliest:
                if msg.keeps(RejectReason.TOO_OLD):
                    msg.rejections.append(
                        Rejection(
                            RejectReason.TOO_OLD,
                            f"ts {int_text(when)} is older than the horizon of "
                            f"{self.limits.max_age_ms // 1000} s"
                            f"{_unit_hint(when, earliest, latest)}",
                            index,
                            tag,
                        )
                    )
                continue
            # tuple.__new__ skips the NamedTuple constructor's Python-level wrapper: hot path.
            accepted.append(_new_tuple(Reading, (enterprise, tag, when, value, quality or "good")))

    def _skewed(
        self, msg: DecodedMessage, index: int, tag: str, when: int, now: int, latest: int
    ) -> None:
        """Count an accepted reading stamped beyond ``max_future_ms`` and note why."""
        if not msg.skewed:
            msg.skewed_after = latest
        msg.skewed += 1
        if len(msg.skew_notes) < MAX_KEPT_REJECTIONS:
            msg.skew_notes.append(
                Rejection(
                    RejectReason.SKEWED_TIMESTAMP,
                    f"ts {when} is {(when - now) // 1000} s ahead of the hub's clock (more than "
                    f"{self.limits.max_future_ms // 1000} s): accepted as skewed, evaluated and "
                    "stored at the hub's receive time with the sent ts as source_ts",
                    index,
                    tag,
                )
            )

    def _unknown(self, index: int, tag: str, enterprise: str) -> Rejection:
        owners = self._owners.get(tag)
        if owners:
            return Rejection(
                RejectReason.WRONG_ENTERPRISE,
                f"tag {quote(tag, MAX_TAG_ECHO_CHARS)} belongs to enterprise {owners[0]!r}, "
                f"not {enterprise!r}",
                index,
                tag,
            )
        return Rejection(
            RejectReason.UNKNOWN_TAG,
            f"tag {quote(tag, MAX_TAG_ECHO_CHARS)} is not registered for enterprise {enterprise!r}",
            index,
            tag,
        )


def _unit_hint(when: int, earliest: int, latest: int) -> str:
    """Why a timestamp is out of the window, when a wrong unit would put it inside."""
    if earliest <= when * 1000 <= latest:
        return " (looks like seconds, not milliseconds)"
    if earliest <= when // 1000 <= latest:
        return " (looks like microseconds, not milliseconds)"
    if earliest <= when // 1_000_000 <= latest:
        return " (looks like nanoseconds, not milliseconds)"
    return ""


def _shape_problem(raw: object) -> RejectReason | None:
    """Why one reading of the slow path is malformed, or None when its shape is fine."""
    problem = _shape_check(raw)
    return None if problem is None else problem[0]


def _shape_detail(raw: object) -> str:
    """The detail of ``_shape_problem``'s verdict (built only for rejections that are kept)."""
    problem = _shape_check(raw)
    return "" if problem is None else problem[1]()


def _shape_check(raw: object) -> tuple[RejectReason, Callable[[], str]] | None:
    if not isinstance(raw, dict):
        return (
            RejectReason.INVALID_READING,
            lambda: f"reading must be an object, got {describe(raw)}",
        )
    tag = raw.get("tag")
    if not isinstance(tag, str) or tag == "":
        return (
            RejectReason.INVALID_READING,
            lambda: f"'tag' must be a non-empty string, got {describe(tag)}",
        )
    if not tag.isascii() and not is_utf8_text(tag):
        # JSON can escape half of a UTF-16 pair (\ud800) alone; no registry holds such a tag
        # and no UTF-8 report can carry it back unescaped.
        return (
            RejectReason.INVALID_READING,
            lambda: f"'tag' {quote(tag, MAX_TAG_ECHO_CHARS)} contains a lone UTF-16 surrogate",
        )
    if "v" not in raw:
        return RejectReason.INVALID_READING, lambda: "'v' is missing"
    value = raw["v"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return RejectReason.INVALID_READING, lambda: f"'v' must be a number, got {describe(value)}"
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return (
                RejectReason.NON_FINITE_VALUE,
                lambda: f"'v' {int_text(value)} is too large for a double",
            )
    ts = raw.get("ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int)):
        return (
            RejectReason.INVALID_TIMESTAMP,
            lambda: f"'ts' must be an integer epoch in ms, got {describe(ts)}",
        )
    q = raw.get("q")
    if q is not None and q not in QUALITIES:
        return (
            RejectReason.INVALID_QUALITY,
            lambda: f"'q' must be one of good|bad|uncertain, got {describe(q)}",
        )
    return None


def _payload_problem(payload: bytes) -> str | None:
    """Why a payload cannot be JSON before parsing it at all, or None."""
    if not payload.strip():
        return "payload is empty"
    return None


def _decode_lenient(payload: bytes) -> _LenientMessage | None:
    """The fast path for a message with unknown fields, or None to take the slow path."""
    try:
        fast = _lenient_decoder.decode(payload)
    except Exception:
        return None
    if depth_bound(payload, 2 + len(fast.readings), 3) > MAX_JSON_DEPTH:
        return None  # extra containers that may nest too deep: the slow path measures them
    if _has_long_digit_run(payload):
        return None  # msgspec skips an ignored number unread; json.loads refuses it
    return fast


# A run of more digits than Python converts to an int (4300 by default) is found by a substring
# search once every digit is the same byte: C speed, linear, however many long runs there are.
_DIGITS_AS_ZERO = bytes(b"0"[0] if b"0"[0] <= b <= b"9"[0] else b" "[0] for b in range(256))


def _has_long_digit_run(payload: bytes) -> bool:
    limit = sys.get_int_max_str_digits()
    if limit == 0:
        return False  # no digit limit set: every integer converts
    return b"0" * (limit + 1) in payload.translate(_DIGITS_AS_ZERO)
