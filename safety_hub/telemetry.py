"""MQTT telemetry contract v1: topics, payload decoding and per-reading validation.

Topic  ``hazard/v1/{enterprise}/telemetry`` (sub-topics allowed).
Payload ``{"ts": <epoch ms, optional>, "seq": <int, optional>,
           "readings": [{"tag": "GT-1101", "v": 12.5, "ts": <optional>,
                         "q": "good|bad|uncertain" (optional)}]}``

Decoding takes a fast path (msgspec, typed) for well-formed messages and falls back to a
per-reading slow path only when the fast path fails, so one bad reading never costs the rest of
its batch and every rejection carries a reason. msgspec was chosen by measurement
(see bench/decode.py): it decodes and validates several times faster than pydantic or json.

Whatever an outsider sends, ``decode`` and ``parse_status`` return; they never raise. A payload
the parsers cannot take (not UTF-8 anywhere, nested deeper than ``MAX_JSON_DEPTH``, an integer
with more digits than Python converts, truncated) is one ``malformed_json`` rejection, and
everything a rejection echoes back is bounded (``MAX_TAG_ECHO_CHARS``, ``MAX_DETAIL_CHARS``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import accumulate, repeat
from operator import sub
from typing import Annotated, Any, Literal, NamedTuple

import msgspec

log = logging.getLogger(__name__)

TOPIC_ROOT = "hazard"
CONTRACT_VERSION = "v1"
TELEMETRY_SUBSCRIPTION = "hazard/v1/+/telemetry/#"
STATUS_SUBSCRIPTION = "hazard/v1/+/status"

QUALITIES = ("good", "bad", "uncertain")

# A valid message is 3 levels deep (message, readings, reading); the rest is headroom for
# ignored fields of later revisions. A fixed limit, rather than whatever the parsers' recursion
# allows at the caller's stack depth, makes the verdict on a payload the same everywhere.
MAX_JSON_DEPTH = 64
# Bounded echo: a rejection report never carries more of the sender's text than this.
MAX_TAG_ECHO_CHARS = 64
MAX_DETAIL_CHARS = 200
ELLIPSIS = "\u2026"
MAX_KEPT_REJECTIONS = 100
"""rejections kept with their details per message; the rest are only counted by reason"""
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def telemetry_subscription(enterprise: str) -> str:
    """The topic filter of one enterprise's telemetry (its sub-topics included)."""
    return f"{TOPIC_ROOT}/{CONTRACT_VERSION}/{enterprise}/telemetry/#"


def telemetry_topic(enterprise: str) -> str:
    return f"{TOPIC_ROOT}/{CONTRACT_VERSION}/{enterprise}/telemetry"


def rejected_topic(enterprise: str) -> str:
    return f"{TOPIC_ROOT}/{CONTRACT_VERSION}/{enterprise}/rejected"


def status_topic(enterprise: str) -> str:
    return f"{TOPIC_ROOT}/{CONTRACT_VERSION}/{enterprise}/status"


class RejectReason(StrEnum):
    """Stable reason codes, published to the enterprise and used as metric labels."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    MALFORMED_JSON = "malformed_json"
    INVALID_MESSAGE = "invalid_message"
    BAD_TOPIC = "bad_topic"
    UNKNOWN_ENTERPRISE = "unknown_enterprise"
    INVALID_READING = "invalid_reading"
    UNKNOWN_TAG = "unknown_tag"
    WRONG_ENTERPRISE = "wrong_enterprise"
    NON_FINITE_VALUE = "non_finite_value"
    INVALID_QUALITY = "invalid_quality"
    INVALID_TIMESTAMP = "invalid_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    TOO_OLD = "too_old"
    RETAINED = "retained"


class Reading(NamedTuple):
    """One accepted reading, in the tag's registered engineering unit."""

    enterprise: str
    tag: str
    ts_ms: int
    value: float
    quality: str


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectReason
    detail: str
    index: int | None = None  # reading index in the message; None: the whole message
    tag: str | None = None

    def __post_init__(self) -> None:
        # Enforced here rather than at each call site, so that no path can echo a megabyte of
        # the sender's text (or a lone surrogate, which no UTF-8 encoder takes) into a report.
        detail = self.detail
        if len(detail) > MAX_DETAIL_CHARS or not detail.isascii():
            object.__setattr__(self, "detail", _echo(detail, MAX_DETAIL_CHARS))
        tag = self.tag
        if tag is not None and (len(tag) > MAX_TAG_ECHO_CHARS or not tag.isascii()):
            object.__setattr__(self, "tag", _echo(tag, MAX_TAG_ECHO_CHARS))

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason.value, "detail": self.detail}
        if self.index is not None:
            out["index"] = self.index
        if self.tag is not None:
            out["tag"] = self.tag
        return out


@dataclass(slots=True)
class DecodedMessage:
    """What one message gave: the accepted readings, and the rejections.

    Every rejection is counted in ``rejected_by_reason``; only the first
    ``MAX_KEPT_REJECTIONS`` are kept with their details, so that a 1 MiB message of half a
    million bad readings costs a counter, not half a million objects. Add them with
    :meth:`reject`, or test :meth:`keeps` first where building the detail is the cost.
    """

    enterprise: str
    seq: int | None
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    total: int = 0  # readings in the message, accepted or not
    rejected_by_reason: dict[RejectReason, int] = field(default_factory=dict)

    def keeps(self, reason: RejectReason) -> bool:
        """Count one rejection of ``reason``; True when its details are to be kept."""
        counts = self.rejected_by_reason
        counts[reason] = counts.get(reason, 0) + 1
        return len(self.rejections) < MAX_KEPT_REJECTIONS

    def reject(self, rejection: Rejection) -> None:
        if self.keeps(rejection.reason):
            self.rejections.append(rejection)

    @property
    def rejected(self) -> int:
        """Rejections in the message, kept or not."""
        return sum(self.rejected_by_reason.values())

    @property
    def whole_message_rejected(self) -> bool:
        return bool(self.rejections) and self.rejections[0].index is None


# The fast path has two msgspec schemas. The exact one forbids unknown fields, so a message it
# takes is exactly 3 levels deep and needs no nesting check: the common case pays nothing for
# the guard. A message with unknown fields (ignored, as the contract says) takes the lenient one,
# and stays on the fast path unless its extra containers could nest past MAX_JSON_DEPTH.
_Tag = Annotated[str, msgspec.Meta(min_length=1)]  # "" is the slow path's invalid_reading
_Seq = Annotated[int, msgspec.Meta(ge=_INT64_MIN, le=_INT64_MAX)]  # reports echo it


class _FastReading(msgspec.Struct, forbid_unknown_fields=True):
    tag: _Tag
    v: float
    ts: int | None = None
    q: Literal["good", "bad", "uncertain"] | None = None


class _FastMessage(msgspec.Struct, forbid_unknown_fields=True):
    readings: list[_FastReading]
    ts: int | None = None
    seq: _Seq | None = None


class _LenientReading(msgspec.Struct):
    tag: _Tag
    v: float
    ts: int | None = None
    q: Literal["good", "bad", "uncertain"] | None = None


class _LenientMessage(msgspec.Struct):
    readings: list[_LenientReading]
    ts: int | None = None
    seq: _Seq | None = None


_fast_decoder = msgspec.json.Decoder(_FastMessage)
_lenient_decoder = msgspec.json.Decoder(_LenientMessage)
_new_tuple = tuple.__new__


def enterprise_of_topic(topic: str) -> str | None:
    """The enterprise of a v1 telemetry topic, or None when the topic is not one."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != TOPIC_ROOT or parts[1] != CONTRACT_VERSION:
        return None
    if parts[3] != "telemetry" or parts[2] == "":
        return None
    return parts[2]


def enterprise_of_status_topic(topic: str) -> str | None:
    """The enterprise of a ``hazard/v1/{enterprise}/status`` topic, or None."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != TOPIC_ROOT or parts[1] != CONTRACT_VERSION:
        return None
    if parts[3] != "status" or parts[2] == "":
        return None
    return parts[2]


def parse_status(payload: bytes) -> tuple[bool, str]:
    """Gateway status: ``{"state": "online"|"offline", ...}`` or the bare words; (online, detail).

    Never raises: a payload that cannot be read (not UTF-8, malformed or too deeply nested JSON,
    a number too long to convert) is offline, with a short detail saying why.
    """
    try:
        return _parse_status(payload)
    except Exception as exc:  # last resort: a status message must never stop the ingest thread
        _log_decoder_bug("parse_status", exc)
        return False, f"unreadable status payload (the hub failed on it: {type(exc).__name__})"


_STATUS_DETAIL_CHARS = 80


def _parse_status(payload: bytes) -> tuple[bool, str]:
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        return False, f"unreadable status payload: {_utf8_problem(payload, exc)}"
    state: object = text
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return False, f"unreadable status payload: {_json_problem(exc)}"
        problem = _nesting_problem(payload, doc)
        if problem is not None:
            return False, f"unreadable status payload: {problem}"
        state = doc.get("state") if isinstance(doc, dict) else None
        if isinstance(state, bool):
            state = "true" if state else "false"
        elif isinstance(state, int) and _INT64_MIN <= state <= _INT64_MAX:
            state = str(state)
        elif state is None:
            state = ""
        elif not isinstance(state, str):
            return False, f"unreadable status payload: 'state' is {_describe(state)}"
    assert isinstance(state, str)
    state = state.lower()
    if state in ("online", "up", "1", "true"):
        return True, state
    if state == "":
        return False, "empty status (retained status cleared)"
    return False, _echo(state, _STATUS_DETAIL_CHARS)


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_payload_bytes: int = 1_048_576
    max_future_ms: int = 300_000  # 5 min
    max_age_ms: int = 7 * 86_400_000  # the horizon


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
        for ent, tag in known_tags:
            self._owners.setdefault(tag, []).append(ent)
        self._now = clock_ms
        self.limits = limits or DecodeLimits()

    def decode(self, topic: str, payload: bytes) -> DecodedMessage:
        """Decode and validate one message. Never raises: every failure is a rejection."""
        try:
            return self._decode(topic, payload)
        except Exception as exc:
            # Last resort against a bug of our own: nothing of the message is accepted (a fresh
            # result, not the half-filled one), and the ingest of the park goes on.
            _log_decoder_bug("decode", exc)
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
                    f"topic {_quote(topic, 80)} is not hazard/v1/<enterprise>/telemetry",
                )
            )
            return msg
        msg = DecodedMessage(enterprise=enterprise, seq=None)
        if enterprise not in self._enterprises:
            msg.reject(
                Rejection(
                    RejectReason.UNKNOWN_ENTERPRISE,
                    f"enterprise {_quote(enterprise, MAX_TAG_ECHO_CHARS)} of topic "
                    f"{_quote(topic, 80)} is not in the plant registry",
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
                    msg.reject(Rejection(RejectReason.MALFORMED_JSON, _utf8_problem(payload, exc)))
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
        self._check_all(
            msg,
            ((i, r.tag, r.v, r.ts, r.q) for i, r in enumerate(readings)),
            fast.ts,
            now,
        )
        return msg

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
                problem = _json_problem(exc)
            else:
                problem = _nesting_problem(payload, doc)
        if problem is not None:
            msg.reject(Rejection(RejectReason.MALFORMED_JSON, problem))
            return
        if not isinstance(doc, dict):
            msg.reject(
                Rejection(
                    RejectReason.INVALID_MESSAGE,
                    f"payload must be a JSON object, got {_describe(doc)}",
                )
            )
            return
        msg_ts = doc.get("ts")
        if msg_ts is not None and (not isinstance(msg_ts, int) or isinstance(msg_ts, bool)):
            msg.reject(
                Rejection(
                    RejectReason.INVALID_MESSAGE,
                    f"message 'ts' must be an integer epoch in ms, got {_describe(msg_ts)}",
                )
            )
            return
        seq = doc.get("seq")
        if seq is not None and (
            not isinstance(seq, int) or isinstance(seq, bool) or not _INT64_MIN <= seq <= _INT64_MAX
        ):
            msg.reject(
                Rejection(
                    RejectReason.INVALID_MESSAGE,
                    f"'seq' must be a 64-bit integer, got {_describe(seq)}",
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
                    f"'readings' must be a list, got {_describe(readings)}",
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
                if msg.keeps(RejectReason.FUTURE_TIMESTAMP):
                    msg.rejections.append(
                        Rejection(
                            RejectReason.FUTURE_TIMESTAMP,
                            f"ts {_int_text(when)} is {_int_text(-((now - when) // 1000))} s "
                            f"ahead of the hub's clock (limit {self.limits.max_future_ms // 1000}"
                            f" s){_unit_hint(when, earliest, latest)}",
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
                            f"ts {_int_text(when)} is older than the horizon of "
                            f"{self.limits.max_age_ms // 1000} s"
                            f"{_unit_hint(when, earliest, latest)}",
                            index,
                            tag,
                        )
                    )
                continue
            # tuple.__new__ skips the NamedTuple constructor's Python-level wrapper: hot path.
            accepted.append(_new_tuple(Reading, (enterprise, tag, when, value, quality or "good")))

    def _unknown(self, index: int, tag: str, enterprise: str) -> Rejection:
        owners = self._owners.get(tag)
        if owners:
            return Rejection(
                RejectReason.WRONG_ENTERPRISE,
                f"tag {_quote(tag, MAX_TAG_ECHO_CHARS)} belongs to enterprise {owners[0]!r}, "
                f"not {enterprise!r}",
                index,
                tag,
            )
        return Rejection(
            RejectReason.UNKNOWN_TAG,
            f"tag {_quote(tag, MAX_TAG_ECHO_CHARS)} is not registered for enterprise "
            f"{enterprise!r}",
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
            lambda: f"reading must be an object, got {_describe(raw)}",
        )
    tag = raw.get("tag")
    if not isinstance(tag, str) or tag == "":
        return (
            RejectReason.INVALID_READING,
            lambda: f"'tag' must be a non-empty string, got {_describe(tag)}",
        )
    if not tag.isascii() and not _is_utf8_text(tag):
        # JSON can escape half of a UTF-16 pair (\ud800) alone; no registry holds such a tag
        # and no UTF-8 report can carry it back unescaped.
        return (
            RejectReason.INVALID_READING,
            lambda: f"'tag' {_quote(tag, MAX_TAG_ECHO_CHARS)} contains a lone UTF-16 surrogate",
        )
    if "v" not in raw:
        return RejectReason.INVALID_READING, lambda: "'v' is missing"
    value = raw["v"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return RejectReason.INVALID_READING, lambda: f"'v' must be a number, got {_describe(value)}"
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return (
                RejectReason.NON_FINITE_VALUE,
                lambda: f"'v' {_int_text(value)} is too large for a double",
            )
    ts = raw.get("ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int)):
        return (
            RejectReason.INVALID_TIMESTAMP,
            lambda: f"'ts' must be an integer epoch in ms, got {_describe(ts)}",
        )
    q = raw.get("q")
    if q is not None and q not in QUALITIES:
        return (
            RejectReason.INVALID_QUALITY,
            lambda: f"'q' must be one of good|bad|uncertain, got {_describe(q)}",
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
    if _depth_bound(payload, 2 + len(fast.readings), 3) > MAX_JSON_DEPTH:
        return None  # extra containers that may nest too deep: the slow path measures them
    if _has_long_digit_run(payload):
        return None  # msgspec skips an ignored number unread; json.loads refuses it
    return fast


def _depth_bound(payload: bytes, known: int, known_levels: int) -> int:
    """An upper bound of a JSON text's nesting depth, counted in C.

    ``known`` containers are known to sit within the top ``known_levels`` levels; any deeper
    chain is made of the others, and there are at most as many others as brackets beyond the
    known ones (a bracket inside a string only makes the bound looser).
    """
    return payload.count(b"[") + payload.count(b"{") - known + known_levels


def _nesting_problem(payload: bytes, doc: object) -> str | None:
    """Whether the parsed JSON text ``payload`` nests deeper than ``MAX_JSON_DEPTH``."""
    known, levels = 0, 0
    if isinstance(doc, list):
        known, levels = 1, 1
    elif isinstance(doc, dict):
        known, levels = 1, 1
        readings = doc.get("readings")
        if isinstance(readings, list):
            dicts = sum(1 for r in readings if type(r) is dict)
            known, levels = 2 + dicts, 3 if dicts else 2
    if _depth_bound(payload, known, levels) <= MAX_JSON_DEPTH:
        return None  # the common case: too few other brackets to nest that deep
    # Measured on the text rather than on ``doc``: the parser keeps only the last of duplicate
    # keys, and a dropped value may be the deep one.
    if _nesting_depth(payload) <= MAX_JSON_DEPTH:
        return None
    return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


# A run of more digits than Python converts to an int (4300 by default) is found by a substring
# search once every digit is the same byte: C speed, linear, however many long runs there are.
_DIGITS_AS_ZERO = bytes(b"0"[0] if b"0"[0] <= b <= b"9"[0] else b" "[0] for b in range(256))


def _has_long_digit_run(payload: bytes) -> bool:
    limit = sys.get_int_max_str_digits()
    if limit == 0:
        return False  # no digit limit set: every integer converts
    return b"0" * (limit + 1) in payload.translate(_DIGITS_AS_ZERO)


# Strings go first (they may hold brackets). Only used on text the parser accepted, so every
# string is terminated; possessive loops keep the match linear anyway.
_JSON_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# An opener becomes 2 and a closer 0, so that each byte minus 1 is a step of the depth.
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def _nesting_depth(payload: bytes) -> int:
    """The deepest nesting of a valid JSON text, from its bytes, without recursion."""
    steps = _JSON_STRING.sub(b"", payload).translate(_BRACKET_STEPS, _NOT_BRACKETS)
    return max(accumulate(map(sub, steps, repeat(1))), default=0)


def _json_problem(exc: Exception) -> str:
    """The detail of a JSON parser failure; never longer than a line."""
    if isinstance(exc, json.JSONDecodeError):
        return (
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg.removesuffix(' at')}"
        )
    if isinstance(exc, RecursionError):
        # The parser recurses up to the interpreter's limit (about 1,000 levels), far past ours.
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    if "integer string conversion" in str(exc):
        return f"malformed JSON: an integer has more than {sys.get_int_max_str_digits()} digits"
    return f"malformed JSON ({type(exc).__name__})"


def _utf8_problem(payload: bytes, exc: UnicodeDecodeError) -> str:
    return (
        f"payload is not UTF-8: byte 0x{payload[exc.start]:02x} at offset {exc.start} "
        f"({exc.reason})"
    )


def _is_utf8_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _echo(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text``, with lone surrogates escaped (UTF-8-safe)."""
    if len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    if not _is_utf8_text(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        if len(text) > limit:
            text = text[: limit - 1] + ELLIPSIS
    return text


def _quote(text: str, limit: int = 60) -> str:
    """``repr`` of at most ``limit`` characters (repr escapes control characters, surrogates)."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + ELLIPSIS


_LOG10_2 = math.log10(2)


def _int_text(value: int) -> str:
    """An integer for a detail: whole up to 20 digits, else its leading digits and its length."""
    if -(10**20) < value < 10**20:
        return str(value)
    magnitude = abs(value)
    # Counted from the bit length: str() of a 4,000-digit integer is slow, and refused past the
    # interpreter's digit limit.
    digits = math.floor((magnitude.bit_length() - 1) * _LOG10_2) + 1
    if magnitude >= 10**digits:
        digits += 1
    leading = magnitude // 10 ** (digits - 6)
    return f"{'-' if value < 0 else ''}{leading}{ELLIPSIS}({digits} digits)"


def _describe(value: object) -> str:
    """A short rendering of a decoded JSON value for a detail, in JSON's own words."""
    if isinstance(value, str):
        return _quote(value)
    if value is None or isinstance(value, bool | float):
        return json.dumps(value)
    if isinstance(value, int):
        return _int_text(value)
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return f"an object of {len(value)} key{'' if len(value) == 1 else 's'}"
    return type(value).__name__


_logged_failures: set[tuple[str, str]] = set()


def _log_decoder_bug(where: str, exc: Exception) -> None:
    """Log the traceback of an unforeseen decoder failure once per kind, not once per message."""
    key = (where, type(exc).__name__)
    if key in _logged_failures:
        return
    _logged_failures.add(key)
    log.error(
        "telemetry: %s failed on a payload with %s; the payload was rejected "
        "(later %s failures of %s are not logged)",
        where,
        type(exc).__name__,
        type(exc).__name__,
        where,
        exc_info=exc,
    )
