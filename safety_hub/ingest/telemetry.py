"""MQTT telemetry contract v1: topics, reason codes, what a decoded message gives, and gateway
status.

Topics ``hazard/v1/{enterprise}/telemetry`` and, for the readings of gas detectors and
safety-instrumented systems, ``hazard/v1/{enterprise}/critical`` (the same payload; the hub
reads it on sessions of their own, so that process data never queues in front of it); sub-topics
allowed under both.
Payload ``{"ts": <epoch ms, optional>, "seq": <int, optional>,
           "readings": [{"tag": "GT-1101", "v": 12.5, "ts": <optional>,
                         "q": "good|bad|uncertain" (optional)}]}``

The payload decoder is :mod:`safety_hub.ingest.decoder` (``TelemetryDecoder``, behind the
``Decoder`` port the ingest worker is typed against).

Whatever an outsider sends, ``decode`` and ``parse_status`` return; they never raise. A payload
the parsers cannot take (not UTF-8 anywhere, nested deeper than ``MAX_JSON_DEPTH``, an integer
with more digits than Python converts, truncated) is one ``malformed_json`` rejection, and
everything a rejection echoes back is bounded (``MAX_TAG_ECHO_CHARS``, ``MAX_DETAIL_CHARS``): the
helpers at the end of this module (``echo``, ``quote``, ``describe``, ``nesting_problem``, ...)
do that for the status parser here and for the decoder.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import accumulate, repeat
from operator import sub
from typing import Any, NamedTuple

log = logging.getLogger("safety_hub.telemetry")

TOPIC_ROOT = "hazard"
CONTRACT_VERSION = "v1"
TELEMETRY = "telemetry"
CRITICAL = "critical"
"""the topic level of safety-critical readings (gas detectors, SIS): contract v1, revision 1.1"""
TELEMETRY_KINDS = (TELEMETRY, CRITICAL)
TELEMETRY_SUBSCRIPTION = "hazard/v1/+/telemetry/#"
CRITICAL_SUBSCRIPTION = "hazard/v1/+/critical/#"
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
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def telemetry_subscription(enterprise: str) -> str:
    """The topic filter of one enterprise's telemetry (its sub-topics included)."""
    return f"{TOPIC_ROOT}/{CONTRACT_VERSION}/{enterprise}/telemetry/#"


def telemetry_topic(enterprise: str) -> str:
    return f"{TOPIC_ROOT}/{CONTRACT_VERSION}/{enterprise}/telemetry"


def critical_subscription(enterprise: str) -> str:
    """The topic filter of one enterprise's safety-critical readings (sub-topics included)."""
    return f"{TOPIC_ROOT}/{CONTRACT_VERSION}/{enterprise}/{CRITICAL}/#"


def critical_topic(enterprise: str) -> str:
    return f"{TOPIC_ROOT}/{CONTRACT_VERSION}/{enterprise}/{CRITICAL}"


def is_critical_topic(topic: str) -> bool:
    """True for ``hazard/v1/<enterprise>/critical`` and its sub-topics."""
    parts = topic.split("/", 4)
    return (
        len(parts) >= 4
        and parts[3] == CRITICAL
        and parts[0] == TOPIC_ROOT
        and parts[1] == CONTRACT_VERSION
        and parts[2] != ""
    )


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
    SKEWED_TIMESTAMP = "skewed_timestamp"
    """not a rejection: the reading was accepted with its timestamp flagged (``skewed``)"""


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
            object.__setattr__(self, "detail", echo(detail, MAX_DETAIL_CHARS))
        tag = self.tag
        if tag is not None and (len(tag) > MAX_TAG_ECHO_CHARS or not tag.isascii()):
            object.__setattr__(self, "tag", echo(tag, MAX_TAG_ECHO_CHARS))

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
    skewed: int = 0
    """accepted readings stamped further ahead of the hub's clock than ``skewed_after``: a
    gateway clock that is wrong, not a reading to lose (docs/mqtt-contract.md, clock skew)"""
    skewed_after: int = 0
    """the hub time beyond which an accepted reading is skewed (set with the first one)"""
    skew_notes: list[Rejection] = field(default_factory=list)
    """the first ``MAX_KEPT_REJECTIONS`` skewed readings, reported to the sender as warnings"""

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


def enterprise_of_topic(topic: str) -> str | None:
    """The enterprise of a v1 telemetry topic (``telemetry`` or ``critical``, sub-topics
    included), or None when the topic is not one."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != TOPIC_ROOT or parts[1] != CONTRACT_VERSION:
        return None
    if parts[3] not in TELEMETRY_KINDS or parts[2] == "":
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
        log_decoder_bug("parse_status", exc)
        return False, f"unreadable status payload (the hub failed on it: {type(exc).__name__})"


_STATUS_DETAIL_CHARS = 80


def _parse_status(payload: bytes) -> tuple[bool, str]:
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        return False, f"unreadable status payload: {utf8_problem(payload, exc)}"
    state: object = text
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return False, f"unreadable status payload: {json_problem(exc)}"
        problem = nesting_problem(payload, doc)
        if problem is not None:
            return False, f"unreadable status payload: {problem}"
        state = doc.get("state") if isinstance(doc, dict) else None
        if isinstance(state, bool):
            state = "true" if state else "false"
        elif isinstance(state, int) and INT64_MIN <= state <= INT64_MAX:
            state = str(state)
        elif state is None:
            state = ""
        elif not isinstance(state, str):
            return False, f"unreadable status payload: 'state' is {describe(state)}"
    assert isinstance(state, str)
    state = state.lower()
    if state in ("online", "up", "1", "true"):
        return True, state
    if state == "":
        return False, "empty status (retained status cleared)"
    return False, echo(state, _STATUS_DETAIL_CHARS)


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_payload_bytes: int = 1_048_576
    max_future_ms: int = 300_000  # 5 min
    max_age_ms: int = 7 * 86_400_000  # the horizon


# -- reading the sender's text safely (also used by the decoder) ------------------------


def depth_bound(payload: bytes, known: int, known_levels: int) -> int:
    """An upper bound of a JSON text's nesting depth, counted in C.

    ``known`` containers are known to sit within the top ``known_levels`` levels; any deeper
    chain is made of the others, and there are at most as many others as brackets beyond the
    known ones (a bracket inside a string only makes the bound looser).
    """
    return payload.count(b"[") + payload.count(b"{") - known + known_levels


def nesting_problem(payload: bytes, doc: object) -> str | None:
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
    if depth_bound(payload, known, levels) <= MAX_JSON_DEPTH:
        return None  # the common case: too few other brackets to nest that deep
    # Measured on the text rather than on ``doc``: the parser keeps only the last of duplicate
    # keys, and a dropped value may be the deep one.
    if nesting_depth(payload) <= MAX_JSON_DEPTH:
        return None
    return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


# Strings go first (they may hold brackets). Only used on text the parser accepted, so every
# string is terminated; possessive loops keep the match linear anyway.
_JSON_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# An opener becomes 2 and a closer 0, so that each byte minus 1 is a step of the depth.
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def nesting_depth(payload: bytes) -> int:
    """The deepest nesting of a valid JSON text, from its bytes, without recursion."""
    steps = _JSON_STRING.sub(b"", payload).translate(_BRACKET_STEPS, _NOT_BRACKETS)
    return max(accumulate(map(sub, steps, repeat(1))), default=0)


def json_problem(exc: Exception) -> str:
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


def utf8_problem(payload: bytes, exc: UnicodeDecodeError) -> str:
    return (
        f"payload is not UTF-8: byte 0x{payload[exc.start]:02x} at offset {exc.start} "
        f"({exc.reason})"
    )


def is_utf8_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def echo(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text``, with lone surrogates escaped (UTF-8-safe)."""
    if len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    if not is_utf8_text(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        if len(text) > limit:
            text = text[: limit - 1] + ELLIPSIS
    return text


def quote(text: str, limit: int = 60) -> str:
    """``repr`` of at most ``limit`` characters (repr escapes control characters, surrogates)."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + ELLIPSIS


_LOG10_2 = math.log10(2)


def int_text(value: int) -> str:
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


def describe(value: object) -> str:
    """A short rendering of a decoded JSON value for a detail, in JSON's own words."""
    if isinstance(value, str):
        return quote(value)
    if value is None or isinstance(value, bool | float):
        return json.dumps(value)
    if isinstance(value, int):
        return int_text(value)
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return f"an object of {len(value)} key{'' if len(value) == 1 else 's'}"
    return type(value).__name__


_logged_failures: set[tuple[str, str]] = set()


def log_decoder_bug(where: str, exc: Exception) -> None:
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
