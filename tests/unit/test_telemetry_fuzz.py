"""Property tests of the telemetry decoder: whatever the bytes, decode() returns and keeps its word.

Hypothesis generates arbitrary bytes, JSON-ish documents and valid messages that it then breaks
(byte flips, truncation, invalid UTF-8, deep nesting, huge numbers). Example counts are bounded
so that the file runs in seconds; tests/fuzz/ holds the long coverage-guided run.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safety_hub.ingest.decoder import TelemetryDecoder
from safety_hub.ingest.telemetry import MAX_JSON_DEPTH, DecodeLimits, RejectReason, parse_status
from tests.fuzz.invariants import check_decoded, check_status

NOW = 1_790_000_000_000
TOPIC = "hazard/v1/e1/telemetry"
KNOWN = {("e1", "GT-1101"): 1, ("e1", "GT-1102"): 1, ("e1", "气体-1103"): 1, ("e2", "LT-2001"): 1}
LIMITS = DecodeLimits(max_payload_bytes=65_536)
DECODER = TelemetryDecoder(KNOWN, {"e1", "e2"}, lambda: NOW, LIMITS)
WINDOW = st.integers(NOW - LIMITS.max_age_ms, NOW + LIMITS.max_future_ms)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_checked(raw: bytes) -> Any:
    """Decode ``raw`` on the e1 topic; the invariants must hold whatever it holds."""
    result = DECODER.decode(TOPIC, raw)
    check_decoded(result, KNOWN, LIMITS, NOW)
    check_status(*parse_status(raw))
    return result


@settings(FUZZ, max_examples=1_000)
@given(raw=st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    """Arbitrary bytes never raise from decode() or parse_status(), and the invariants hold."""
    decode_checked(raw)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**18, max_value=10**400)
    | st.floats()
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)
readings_strategy = st.lists(
    st.fixed_dictionaries(
        {"tag": st.sampled_from(["GT-1101", "LT-2001", "X", "", 5]), "v": json_values},
        optional={
            "ts": st.integers(NOW - 10**10, NOW + 10**9) | json_values,
            "q": st.sampled_from(["good", "bad", "uncertain", "meh", None]),
            "unit": json_values,
        },
    )
    | json_values,
    max_size=8,
)


@FUZZ
@given(
    readings=readings_strategy,
    extra=st.dictionaries(st.sampled_from(["ts", "seq", "gw"]), json_values),
)
def test_any_readings_list_accounts_for_every_reading(
    readings: list[object], extra: dict[str, object]
) -> None:
    """For any readings list, every reading is accepted or rejected once, or the message is."""
    result = decode_checked(json.dumps({"readings": readings, **extra}).encode())
    if not any(r.index is None for r in result.rejections):
        assert result.total == len(readings)


qualities = st.sampled_from(["good", "bad", "uncertain"])
good_readings = st.lists(
    st.fixed_dictionaries(
        {
            "tag": st.sampled_from(["GT-1101", "GT-1102", "气体-1103"]),
            "v": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**15), 10**15),
        },
        optional={"ts": WINDOW, "q": qualities, "unit": st.text(max_size=4)},
    ),
    min_size=1,
    max_size=12,
)


@st.composite
def valid_messages(draw: st.DrawFn) -> tuple[bytes, list[dict[str, Any]]]:
    """A message the contract accepts whole, sometimes with unknown fields, and its readings."""
    readings = draw(good_readings)
    body: dict[str, Any] = {"readings": readings}
    if draw(st.booleans()):
        body["ts"] = draw(WINDOW)
    if draw(st.booleans()):
        body["seq"] = draw(st.integers(-(2**63), 2**63 - 1))
    if draw(st.booleans()):
        body["gw"] = draw(json_values)
    raw = json.dumps(body, ensure_ascii=draw(st.booleans())).encode()
    return raw, readings


@FUZZ
@given(message=valid_messages())
def test_valid_messages_are_accepted_whole(message: tuple[bytes, list[dict[str, Any]]]) -> None:
    """A message within the contract is accepted reading for reading, unknown fields ignored."""
    raw, readings = message
    result = decode_checked(raw)
    assert result.rejections == []
    assert [(r.tag, r.value, r.quality) for r in result.readings] == [
        (r["tag"], float(r["v"]), r.get("q", "good")) for r in readings
    ]


@FUZZ
@given(message=valid_messages(), bad=readings_strategy)
def test_bad_readings_never_change_the_verdict_on_good_ones(
    message: tuple[bytes, list[dict[str, Any]]], bad: list[object]
) -> None:
    """Adding readings (bad or not) after good ones: the good ones come out as they did alone.

    The added readings often send the message to the slow path, so this also holds the two
    paths to the same verdicts.
    """
    raw, readings = message
    alone = decode_checked(raw)
    doc = json.loads(raw)
    doc["readings"] = readings + bad
    mixed = decode_checked(json.dumps(doc).encode())
    assert all(r.index is not None for r in mixed.rejections)  # readings never reject it whole
    assert mixed.readings[: len(alone.readings)] == alone.readings


INVALID_UTF8 = [b"\xff", b"\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe6\xb0", b"\xf4\x90\x80\x80"]


@st.composite
def broken_messages(draw: st.DrawFn) -> bytes:
    """A valid message broken by one mutation: flips, cuts, bad UTF-8, nesting, huge numbers."""
    raw, _ = draw(valid_messages())
    data = bytearray(raw)
    position = draw(st.integers(0, len(data)))
    mutation = draw(
        st.sampled_from(
            ["flip", "truncate", "insert_utf8", "overwrite_utf8", "nest", "number", "duplicate"]
        )
    )
    if mutation == "flip" and position < len(data):
        data[position] ^= 1 << draw(st.integers(0, 7))
    elif mutation == "truncate":
        del data[position:]
    elif mutation == "insert_utf8":
        data[position:position] = draw(st.sampled_from(INVALID_UTF8))
    elif mutation == "overwrite_utf8":
        bad = draw(st.sampled_from(INVALID_UTF8))
        data[position : position + len(bad)] = bad
    elif mutation == "nest":
        depth = draw(st.integers(1, 3 * MAX_JSON_DEPTH) | st.just(2_000))
        data[position:position] = b"[" * depth + b"]" * depth
    elif mutation == "number":
        digits = draw(st.integers(1, 5_000))
        data[position:position] = draw(st.sampled_from([b"", b"-"])) + b"9" * digits
    else:
        end = draw(st.integers(position, len(data)))
        data[position:position] = data[position:end]
    return bytes(data)


@FUZZ
@given(raw=broken_messages())
def test_broken_valid_messages_never_raise(raw: bytes) -> None:
    """A valid message broken anywhere never raises, and the invariants hold."""
    decode_checked(raw)


@st.composite
def deeply_nested(draw: st.DrawFn) -> tuple[bytes, int]:
    """A message with a nested list in an ignored field or a reading, and its whole depth."""
    depth = draw(st.integers(1, 2 * MAX_JSON_DEPTH) | st.integers(2 * MAX_JSON_DEPTH, 3_000))
    inner = b"[" * depth + b"]" * depth
    where = draw(st.sampled_from(["message", "reading-field", "reading"]))
    if where == "message":
        return b'{"gw":' + inner + b',"readings":[{"tag":"GT-1101","v":1}]}', depth + 1
    if where == "reading-field":
        return b'{"readings":[{"tag":"GT-1101","v":1,"x":' + inner + b"}]}", depth + 3
    return b'{"readings":[{"tag":"GT-1101","v":1},' + inner + b"]}", depth + 2


@FUZZ
@given(message=deeply_nested())
def test_nesting_verdict_depends_on_depth_alone(message: tuple[bytes, int]) -> None:
    """Up to MAX_JSON_DEPTH levels the message is read; past it, one malformed_json rejection."""
    raw, depth = message
    result = decode_checked(raw)
    too_deep = [r for r in result.rejections if r.reason is RejectReason.MALFORMED_JSON]
    assert bool(too_deep) == (depth > MAX_JSON_DEPTH)


@FUZZ
@given(doc=json_values, raw=st.binary(max_size=256))
def test_status_payloads_never_raise(doc: object, raw: bytes) -> None:
    """parse_status() returns (bool, short detail) for any JSON document or any bytes."""
    check_status(*parse_status(json.dumps({"state": doc}).encode()))
    check_status(*parse_status(raw))
