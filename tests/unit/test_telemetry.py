"""Telemetry contract v1: decoding and per-reading validation."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable

import msgspec
import pytest

from safety_hub.ingest.decoder import TelemetryDecoder
from safety_hub.ingest.telemetry import (
    ELLIPSIS,
    MAX_DETAIL_CHARS,
    MAX_JSON_DEPTH,
    MAX_KEPT_REJECTIONS,
    MAX_TAG_ECHO_CHARS,
    DecodedMessage,
    DecodeLimits,
    Rejection,
    RejectReason,
    enterprise_of_status_topic,
    enterprise_of_topic,
    parse_status,
)

NOW = 1_790_000_000_000
TOPIC = "hazard/v1/e1/telemetry"


@pytest.fixture
def decoder() -> TelemetryDecoder:
    known = {("e1", "GT-1101"): 1, ("e1", "PT 1,2=3"): 1, ("e2", "LT-2001"): 1}
    return TelemetryDecoder(known, {"e1", "e2"}, lambda: NOW, DecodeLimits(max_payload_bytes=4096))


@pytest.fixture
def roomy() -> TelemetryDecoder:
    """A decoder with the default 1 MiB payload limit, for the large poison payloads."""
    return TelemetryDecoder({("e1", "GT-1101"): 1}, {"e1"}, lambda: NOW)


def payload(*readings: dict[str, object], **extra: object) -> bytes:
    return json.dumps({"readings": list(readings), **extra}).encode()


def reasons(result: object) -> list[tuple[int | None, str]]:
    return sorted(
        ((r.index, r.reason.value) for r in result.rejections),  # type: ignore[attr-defined]
        key=lambda x: -1 if x[0] is None else x[0],
    )


def test_valid_batch_is_accepted_with_timestamps(decoder: TelemetryDecoder) -> None:
    """Readings take their own ts, else the message ts; quality defaults to good."""
    result = decoder.decode(
        TOPIC,
        payload(
            {"tag": "GT-1101", "v": 12.5, "ts": NOW - 5},
            {"tag": "PT 1,2=3", "v": 3, "q": "bad"},
            ts=NOW - 10,
            seq=7,
        ),
    )
    assert result.rejections == []
    assert result.seq == 7
    assert [(r.tag, r.ts_ms, r.value, r.quality) for r in result.readings] == [
        ("GT-1101", NOW - 5, 12.5, "good"),
        ("PT 1,2=3", NOW - 10, 3.0, "bad"),
    ]


def test_the_critical_topic_takes_the_same_payload(decoder: TelemetryDecoder) -> None:
    """Contract v1.1: ``.../critical`` (and its sub-topics) is decoded as telemetry is, for the
    enterprise it names; an unregistered enterprise there is rejected as on telemetry."""
    body = payload({"tag": "GT-1101", "v": 0.7, "ts": NOW - 5}, seq=3)
    for topic in ("hazard/v1/e1/critical", "hazard/v1/e1/critical/unit-3"):
        result = decoder.decode(topic, body)
        assert result.rejections == [] and result.enterprise == "e1" and result.seq == 3
        assert [(r.tag, r.value) for r in result.readings] == [("GT-1101", 0.7)]
    assert reasons(decoder.decode("hazard/v1/nobody/critical", body)) == [
        (None, "unknown_enterprise")
    ]


def test_reading_without_any_ts_gets_hub_time(decoder: TelemetryDecoder) -> None:
    """With no ts at all the hub's receive time is the event time."""
    result = decoder.decode(TOPIC, payload({"tag": "GT-1101", "v": 1}))
    assert result.readings[0].ts_ms == NOW


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        ({"tag": "NOPE", "v": 1}, "unknown_tag"),
        ({"tag": "LT-2001", "v": 1}, "wrong_enterprise"),
        ({"tag": "GT-1101", "v": "12"}, "invalid_reading"),
        ({"tag": "GT-1101", "v": True}, "invalid_reading"),
        ({"tag": "GT-1101"}, "invalid_reading"),
        ({"v": 1}, "invalid_reading"),
        ({"tag": "GT-1101", "v": 1, "q": "excellent"}, "invalid_quality"),
        ({"tag": "GT-1101", "v": 1, "ts": "yesterday"}, "invalid_timestamp"),
        ({"tag": "GT-1101", "v": 1, "ts": NOW + 8 * 86_400_000}, "future_timestamp"),
        ({"tag": "GT-1101", "v": 1, "ts": NOW - 8 * 86_400_000}, "too_old"),
        ({"tag": "GT-1101", "v": 1, "ts": NOW // 1000}, "too_old"),
    ],
)
def test_each_bad_reading_is_rejected_and_the_rest_goes_through(
    decoder: TelemetryDecoder, reading: dict[str, object], reason: str
) -> None:
    """One bad reading is rejected with its reason and index; its neighbours are accepted."""
    good = {"tag": "GT-1101", "v": 1.0, "ts": NOW - 1}
    result = decoder.decode(TOPIC, payload(good, reading, good))
    assert reasons(result) == [(1, reason)]
    assert len(result.readings) == 2
    assert result.total == 3


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_values_are_rejected_per_reading(
    decoder: TelemetryDecoder, literal: str
) -> None:
    """NaN, Infinity and overflowing numbers cost only their own reading."""
    raw = (
        '{"readings": [{"tag": "GT-1101", "v": 1, "ts": '
        + str(NOW - 1)
        + '}, {"tag": "GT-1101", "v": '
        + literal
        + "}]}"
    ).encode()
    result = decoder.decode(TOPIC, raw)
    assert reasons(result) == [(1, "non_finite_value")]
    assert len(result.readings) == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2]", "invalid_message"),
        (b'{"readings": 5}', "invalid_message"),
        (b'{"readings": [], "ts": "now"}', "invalid_message"),
        (b'{"readings": [], "seq": 1.5}', "invalid_message"),
        (b"{}", "invalid_message"),
    ],
)
def test_bad_messages_are_rejected_whole(
    decoder: TelemetryDecoder, raw: bytes, reason: str
) -> None:
    """A message that cannot be read at all gets one message-level rejection."""
    result = decoder.decode(TOPIC, raw)
    assert reasons(result) == [(None, reason)]
    assert result.readings == []


def test_oversized_payload_is_rejected(decoder: TelemetryDecoder) -> None:
    """Payloads over the configured limit are refused before parsing."""
    big = payload(*({"tag": "GT-1101", "v": i} for i in range(400)))
    assert len(big) > 4096
    assert reasons(decoder.decode(TOPIC, big)) == [(None, "payload_too_large")]


def test_unknown_enterprise_and_bad_topic(decoder: TelemetryDecoder) -> None:
    """Topics of unregistered enterprises, or not in the contract, are rejected."""
    ok = payload({"tag": "GT-1101", "v": 1})
    assert reasons(decoder.decode("hazard/v1/nobody/telemetry", ok)) == [
        (None, "unknown_enterprise")
    ]
    assert reasons(decoder.decode("hazard/v2/e1/telemetry", ok)) == [(None, "bad_topic")]


def test_topic_parsing() -> None:
    """Sub-topics under telemetry and critical are allowed; status topics are recognised."""
    assert enterprise_of_topic("hazard/v1/e1/telemetry") == "e1"
    assert enterprise_of_topic("hazard/v1/e1/telemetry/unit-3") == "e1"
    assert enterprise_of_topic("hazard/v1/e1/critical") == "e1"
    assert enterprise_of_topic("hazard/v1/e1/critical/unit-3") == "e1"
    assert enterprise_of_topic("hazard/v1//critical") is None
    assert enterprise_of_topic("hazard/v1/e1/criticality") is None
    assert enterprise_of_topic("hazard/v1/e1/status") is None
    assert enterprise_of_status_topic("hazard/v1/e1/status") == "e1"
    assert parse_status(b'{"state":"offline"}') == (False, "offline")
    assert parse_status(b"online") == (True, "online")


# Poison payloads: whatever arrives, decode() returns, and says why it took nothing.

GOOD = {"tag": "GT-1101", "v": 1.0, "ts": NOW - 1}


def whole(result: DecodedMessage) -> tuple[str, str]:
    """The single message-level rejection of a result (asserting that it is the only outcome)."""
    assert result.readings == [], result
    assert len(result.rejections) == 1 and result.rejections[0].index is None, result
    return result.rejections[0].reason.value, result.rejections[0].detail


def nested(depth: int) -> bytes:
    """A JSON array nested ``depth`` levels deep."""
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
@pytest.mark.parametrize(
    ("where", "levels"),
    [
        pytest.param(lambda deep: b'{"x":' + deep + b',"readings":[]}', 1, id="ignored-field"),
        pytest.param(lambda deep: b'{"readings":' + deep + b"}", 1, id="readings"),
        pytest.param(lambda deep: b'{"readings":[' + deep + b"]}", 2, id="in-a-reading"),
        pytest.param(
            lambda deep: b'{"readings":[{"tag":"GT-1101","v":1,"x":' + deep + b"}]}",
            3,
            id="ignored-field-of-a-reading",
        ),
        pytest.param(lambda deep: deep, 0, id="top-level"),
    ],
)
def test_deep_nesting_is_malformed_json_naming_the_limit(
    roomy: TelemetryDecoder, where: Callable[[bytes], bytes], levels: int, depth: int
) -> None:
    """JSON nested past MAX_JSON_DEPTH, anywhere in the payload, rejects the whole message."""
    raw = where(nested(depth - levels))
    assert whole(roomy.decode(TOPIC, raw)) == (
        "malformed_json",
        f"JSON nested deeper than {MAX_JSON_DEPTH} levels",
    )


def test_deep_nesting_at_the_limit_is_accepted(decoder: TelemetryDecoder) -> None:
    """An ignored field nested exactly MAX_JSON_DEPTH levels deep costs nothing."""
    raw = (
        b'{"x":' + nested(MAX_JSON_DEPTH - 1) + b',"readings":[' + json.dumps(GOOD).encode() + b"]}"
    )
    result = decoder.decode(TOPIC, raw)
    assert result.rejections == []
    assert [r.tag for r in result.readings] == ["GT-1101"]


def test_deep_nesting_behind_a_duplicate_key_is_still_found(decoder: TelemetryDecoder) -> None:
    """A parser keeps only the last duplicate key; the depth check reads the whole text."""
    raw = b'{"x":' + nested(500) + b',"x":1,"readings":[{"tag":"GT-1101","v":1}]}'
    assert whole(decoder.decode(TOPIC, raw))[0] == "malformed_json"


def test_many_extra_containers_that_stay_shallow_are_accepted(roomy: TelemetryDecoder) -> None:
    """Unknown object fields on every reading are ignored, however many brackets they add."""
    reading = {"tag": "GT-1101", "v": 1.5, "meta": {"unit": "ppm", "range": [0, 100]}}
    raw = json.dumps({"gw": {"fw": [1, 2]}, "readings": [reading] * 200}).encode()
    result = roomy.decode(TOPIC, raw)
    assert result.rejections == []
    assert len(result.readings) == 200


UTF8_MESSAGES = [
    # within the exact schema (the fast path decodes every string of it)...
    json.dumps(
        {"ts": NOW - 10, "seq": 5, "readings": [GOOD, {"tag": "气体-1", "v": 2, "q": "bad"}]},
        ensure_ascii=False,
    ).encode(),
    # ...and with an unknown field, whose strings msgspec skips unread
    json.dumps(
        {"ts": NOW - 10, "readings": [GOOD, {"tag": "气体-1", "v": 2}], "note": "液氯"},
        ensure_ascii=False,
    ).encode(),
]


@pytest.mark.parametrize("valid", UTF8_MESSAGES, ids=["exact-schema", "unknown-field"])
@pytest.mark.parametrize("bad", [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe6\xb0"])
def test_invalid_utf8_at_every_position_is_malformed_json(
    decoder: TelemetryDecoder, valid: bytes, bad: bytes
) -> None:
    """A byte sequence that is not UTF-8, put at any position, rejects the message and names it."""
    assert len(valid) < 4096
    checked = 0
    for position in range(len(valid) + 1):
        for raw in (
            valid[:position] + bad + valid[position:],  # inserted
            valid[:position] + bad + valid[position + len(bad) :],  # overwritten
        ):
            if is_utf8(raw):
                continue  # a cut-off sequence written over the same bytes: valid again
            reason, detail = whole(decoder.decode(TOPIC, raw))
            assert reason == "malformed_json", (position, raw)
            assert detail.startswith("payload is not UTF-8: byte 0x"), (position, detail)
            checked += 1
    assert checked >= 2 * len(valid) - 4


def is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_gbk_tag_is_malformed_json_naming_the_byte(decoder: TelemetryDecoder) -> None:
    """A GBK-encoded tag name (as some gateways send) says which byte is not UTF-8, and where."""
    raw = b'{"readings":[{"tag":"GT-\xb9\xfe","v":1}]}'
    assert whole(decoder.decode(TOPIC, raw)) == (
        "malformed_json",
        "payload is not UTF-8: byte 0xb9 at offset 24 (invalid start byte)",
    )


def test_invalid_utf8_in_an_ignored_field_is_malformed_json(decoder: TelemetryDecoder) -> None:
    """The contract says UTF-8 JSON: a bad byte in a field the hub ignores still rejects."""
    raw = b'{"junk":"\xff\xfe","readings":[{"tag":"GT-1101","v":1}]}'
    assert whole(decoder.decode(TOPIC, raw))[0] == "malformed_json"


def test_utf16_payload_is_malformed_json(decoder: TelemetryDecoder) -> None:
    """UTF-16 JSON is not guessed at: the contract is UTF-8."""
    raw = json.dumps({"readings": [GOOD]}).encode("utf-16")
    assert whole(decoder.decode(TOPIC, raw))[0] == "malformed_json"


def test_lone_surrogate_tag_costs_its_reading_and_reports_encode(
    decoder: TelemetryDecoder,
) -> None:
    """A tag escaped as a lone surrogate is invalid_reading; the report stays encodable UTF-8."""
    raw = (
        b'{"x":"\\udc00","readings":[{"tag":"GT-\\ud800","v":1},'
        b'{"tag":"GT-1101","v":1,"q":"\\udfff"},' + json.dumps(GOOD).encode() + b"]}"
    )
    result = decoder.decode(TOPIC, raw)
    assert reasons(result) == [(0, "invalid_reading"), (1, "invalid_quality")]
    assert [r.tag for r in result.readings] == ["GT-1101"]
    assert result.rejections[0].tag == "GT-\\ud800"
    assert "lone UTF-16 surrogate" in result.rejections[0].detail
    msgspec.json.encode([r.as_json() for r in result.rejections])  # what the pipeline publishes


HUGE = "9" * 4000
TOO_MANY_DIGITS = "1" + "0" * sys.get_int_max_str_digits()


def fill(template: str, number: object) -> str:
    """The JSON text ``template`` with its ``@`` replaced by ``number`` written out."""
    return template.replace("@", str(number))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (fill('{"readings":[{"tag":"GT-1101","v":@}]}', HUGE), [(0, "non_finite_value")]),
        (fill('{"readings":[{"tag":"GT-1101","v":-@}]}', HUGE), [(0, "non_finite_value")]),
        ('{"readings":[{"tag":"GT-1101","v":1e400}]}', [(0, "non_finite_value")]),
        ('{"readings":[{"tag":"GT-1101","v":-1e400}]}', [(0, "non_finite_value")]),
        (fill('{"readings":[{"tag":"GT-1101","v":1,"ts":@}]}', HUGE), [(0, "future_timestamp")]),
        (fill('{"readings":[{"tag":"GT-1101","v":1,"ts":-@}]}', HUGE), [(0, "too_old")]),
        ('{"readings":[{"tag":"GT-1101","v":1,"ts":1e400}]}', [(0, "invalid_timestamp")]),
        (fill('{"ts":@,"readings":[{"tag":"GT-1101","v":1}]}', HUGE), [(0, "future_timestamp")]),
        (fill('{"seq":@,"readings":[]}', HUGE), [(None, "invalid_message")]),
        (fill('{"seq":@,"readings":[]}', 2**63), [(None, "invalid_message")]),
        (fill('{"seq":@,"readings":[]}', -(2**63 + 1)), [(None, "invalid_message")]),
        ('{"seq":1e400,"readings":[]}', [(None, "invalid_message")]),
        (
            fill('{"readings":[{"tag":"GT-1101","v":1,"x":@}]}', TOO_MANY_DIGITS),
            [(None, "malformed_json")],
        ),
    ],
    ids=lambda value: value[:48] if isinstance(value, str) else None,
)
def test_huge_numbers_are_rejected_with_bounded_details(
    roomy: TelemetryDecoder, raw: str, expected: list[tuple[int | None, str]]
) -> None:
    """Huge integers and floats get their reasons, and no detail prints a huge number whole."""
    result = roomy.decode(TOPIC, raw.encode())
    assert reasons(result) == expected
    assert result.readings == []
    for rejection in result.rejections:
        assert len(rejection.detail) <= MAX_DETAIL_CHARS
        assert "9" * 30 not in rejection.detail


def test_huge_timestamp_detail_names_its_length(decoder: TelemetryDecoder) -> None:
    """A 4,000-digit ts is shown by its leading digits and its length."""
    raw = fill('{"readings":[{"tag":"GT-1101","v":1,"ts":@}]}', HUGE)
    (rejection,) = decoder.decode(TOPIC, raw.encode()).rejections
    assert rejection.detail.startswith(f"ts 999999{ELLIPSIS}(4000 digits) is 999999{ELLIPSIS}(3997")


def test_integer_past_the_interpreter_digit_limit_names_the_limit(
    roomy: TelemetryDecoder,
) -> None:
    """More digits than Python converts is malformed_json, and the detail says so."""
    raw = fill('{"readings":[{"tag":"GT-1101","v":1,"ts":@}]}', TOO_MANY_DIGITS)
    assert whole(roomy.decode(TOPIC, raw.encode())) == (
        "malformed_json",
        f"malformed JSON: an integer has more than {sys.get_int_max_str_digits()} digits",
    )


def test_seq_at_the_64_bit_limit_is_kept(decoder: TelemetryDecoder) -> None:
    """The largest 64-bit seq is accepted and echoed."""
    result = decoder.decode(TOPIC, payload(GOOD, seq=2**63 - 1))
    assert result.rejections == [] and result.seq == 2**63 - 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            fill('{"readings":[{"tag":"GT-1101","v":NaN,"ts":@}]}', (NOW - 1)),
            [(0, "non_finite_value")],
        ),
        ('{"readings":[{"tag":"GT-1101","v":1,"ts":NaN}]}', [(0, "invalid_timestamp")]),
        ('{"readings":[{"tag":"GT-1101","v":1,"ts":-Infinity}]}', [(0, "invalid_timestamp")]),
        ('{"ts":Infinity,"readings":[{"tag":"GT-1101","v":1}]}', [(None, "invalid_message")]),
        ('{"seq":NaN,"readings":[]}', [(None, "invalid_message")]),
        ('{"x":NaN,"readings":[{"tag":"GT-1101","v":1}]}', []),
    ],
)
def test_nan_and_infinity_anywhere(
    decoder: TelemetryDecoder, raw: str, expected: list[tuple[int | None, str]]
) -> None:
    """NaN and Infinity cost the reading or message they sit in; in an ignored field, nothing."""
    assert reasons(decoder.decode(TOPIC, raw.encode())) == expected


@pytest.mark.parametrize(
    ("ts", "reason", "hint"),
    [
        (-1, "too_old", ""),
        (0, "too_old", ""),
        (True, "invalid_timestamp", "got true"),
        (NOW - 0.5, "invalid_timestamp", "got 1789999999999.5"),
        (float(NOW), "invalid_timestamp", "got 1790000000000.0"),
        ("1790000000000", "invalid_timestamp", "got '1790000000000'"),
        ([NOW], "invalid_timestamp", "got a list of 1 item"),
        ({"ms": NOW}, "invalid_timestamp", "got an object of 1 key"),
        (NOW // 1000, "too_old", "(looks like seconds, not milliseconds)"),
        (NOW * 1000, "future_timestamp", "(looks like microseconds, not milliseconds)"),
        (NOW * 1_000_000, "future_timestamp", "(looks like nanoseconds, not milliseconds)"),
        (-(2**63), "too_old", ""),
        (2**64, "future_timestamp", ""),
    ],
)
def test_odd_reading_timestamps(
    decoder: TelemetryDecoder, ts: object, reason: str, hint: str
) -> None:
    """Odd timestamps cost only their reading, with a reason and, where it helps, a hint."""
    result = decoder.decode(TOPIC, payload({"tag": "GT-1101", "v": 1, "ts": ts}, GOOD))
    assert reasons(result) == [(0, reason)]
    assert hint in result.rejections[0].detail
    assert len(result.readings) == 1


@pytest.mark.parametrize("ts", [True, 1.5, "now", None, [], -(2**70)])
def test_odd_message_timestamps(decoder: TelemetryDecoder, ts: object) -> None:
    """A message ts that is not an integer rejects the message; a huge one, each reading."""
    result = decoder.decode(TOPIC, payload({"tag": "GT-1101", "v": 1}, ts=ts))
    if ts is None:
        assert result.rejections == []
    elif isinstance(ts, int) and not isinstance(ts, bool):
        assert reasons(result) == [(0, "too_old")]
    else:
        assert reasons(result) == [(None, "invalid_message")]


@pytest.mark.parametrize("raw", [b"", b" ", b"\r\n\t "])
def test_empty_payload_is_malformed_json(decoder: TelemetryDecoder, raw: bytes) -> None:
    """An empty message (as clearing a retained message sends) says so."""
    assert whole(decoder.decode(TOPIC, raw)) == ("malformed_json", "payload is empty")


def test_every_truncation_of_a_valid_payload_is_malformed_json(decoder: TelemetryDecoder) -> None:
    """A message cut short anywhere is one malformed_json rejection, never a crash or a partial."""
    raw = payload(GOOD, {"tag": "GT-1101", "v": -2.5e-3, "q": "bad"}, ts=NOW - 10, seq=3)
    for length in range(len(raw)):
        assert whole(decoder.decode(TOPIC, raw[:length]))[0] == "malformed_json", raw[:length]


def test_huge_array_is_bounded_by_the_payload_limit(decoder: TelemetryDecoder) -> None:
    """A readings array is taken up to max_payload_bytes and refused whole past it."""
    one = json.dumps(GOOD, separators=(",", ":")).encode()
    fits = (4096 - len(b'{"readings":[]}')) // (len(one) + 1)
    raw = b'{"readings":[' + b",".join([one] * fits) + b"]}"
    assert len(raw) <= 4096
    result = decoder.decode(TOPIC, raw)
    assert result.rejections == [] and len(result.readings) == fits
    over = b'{"readings":[' + b",".join([one] * (fits + 1)) + b"]}"
    assert whole(decoder.decode(TOPIC, over))[0] == "payload_too_large"


def test_half_a_million_bad_readings_cost_counters_not_objects(
    roomy: TelemetryDecoder,
) -> None:
    """1 MiB of bare zeros (524,000 bad readings) keeps 100 rejections and counts the rest."""
    raw = b'{"readings":[' + b",".join([b"0"] * 524_000) + b"]}"
    result = roomy.decode(TOPIC, raw)
    assert result.total == result.rejected == 524_000
    assert result.rejected_by_reason == {RejectReason.INVALID_READING: 524_000}
    assert [r.index for r in result.rejections] == list(range(MAX_KEPT_REJECTIONS))


def test_one_mebibyte_of_bad_readings_echoes_a_bounded_amount_per_reading(
    roomy: TelemetryDecoder,
) -> None:
    """A 1 MiB message of long unknown tags yields tag and detail of at most the echo limits each."""
    decoder = roomy
    readings = [{"tag": f"{i:06d}" + "X" * 2000, "v": 1} for i in range(495)]
    readings += [{"tag": "GT-1101", "v": "x" * 2000}] * 10 + [
        {"tag": "GT-1101", "v": 1, "q": "x" * 2000}
    ] * 10
    raw = json.dumps({"readings": readings}).encode()
    assert 1_000_000 < len(raw) <= 1_048_576
    result = decoder.decode(TOPIC, raw)
    assert result.rejected == result.total == 515
    assert len(result.rejections) == MAX_KEPT_REJECTIONS  # the rest only counted
    assert result.rejected_by_reason == {
        RejectReason.UNKNOWN_TAG: 495,
        RejectReason.INVALID_READING: 10,
        RejectReason.INVALID_QUALITY: 10,
    }
    for rejection in result.rejections:
        assert len(rejection.detail) <= MAX_DETAIL_CHARS
        assert rejection.tag is not None and len(rejection.tag) <= MAX_TAG_ECHO_CHARS
    first = next(r for r in result.rejections if r.index == 0)
    assert first.tag == "000000" + "X" * (MAX_TAG_ECHO_CHARS - 7) + ELLIPSIS
    report = msgspec.json.encode([r.as_json() for r in result.rejections])
    assert len(report) < 515 * 400


def test_bad_topic_and_unknown_enterprise_details_are_bounded(decoder: TelemetryDecoder) -> None:
    """A 64 KiB topic is not echoed whole."""
    ok = payload(GOOD)
    for topic in ("x" * 65_535, "hazard/v1/" + "e" * 65_000 + "/telemetry"):
        (rejection,) = decoder.decode(topic, ok).rejections
        assert rejection.reason in (RejectReason.BAD_TOPIC, RejectReason.UNKNOWN_ENTERPRISE)
        assert len(rejection.detail) <= MAX_DETAIL_CHARS


def test_rejection_bounds_whatever_builds_it() -> None:
    """A Rejection clips detail and tag itself and escapes lone surrogates, so no path can echo more."""
    rejection = Rejection(
        RejectReason.UNKNOWN_TAG, "d" * 10_000 + "\ud800", 0, "\ud800" + "t" * 10_000
    )
    assert len(rejection.detail) == MAX_DETAIL_CHARS and rejection.detail.endswith(ELLIPSIS)
    assert len(rejection.tag or "") == MAX_TAG_ECHO_CHARS and rejection.tag.startswith("\\ud800")  # type: ignore[union-attr]
    short = Rejection(RejectReason.UNKNOWN_TAG, "tag 'GT-1' is not registered", 0, "GT-1")
    assert (short.detail, short.tag) == ("tag 'GT-1' is not registered", "GT-1")


def test_a_decoder_bug_is_a_rejection_not_an_exception(caplog: pytest.LogCaptureFixture) -> None:
    """An exception inside decode() is reported as malformed_json naming its type, and logged."""

    class DecoderBugForTest(Exception):
        """Raised by nothing but this test's clock, so its first occurrence is logged here."""

    def broken_clock() -> int:
        raise DecoderBugForTest("a bug of our own")

    decoder = TelemetryDecoder({("e1", "GT-1101"): 1}, {"e1"}, broken_clock)
    with caplog.at_level(logging.ERROR, logger="safety_hub.telemetry"):
        result = decoder.decode(TOPIC, payload(GOOD))
        again = decoder.decode(TOPIC, payload(GOOD))
    assert result.enterprise == "e1"
    assert whole(result) == (
        "malformed_json",
        "the hub failed to decode this payload (DecoderBugForTest); nothing of it was accepted",
    )
    assert whole(again) == whole(result)
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is DecoderBugForTest]
    assert len(logged) == 1  # the traceback once, not once per message


def test_a_decoder_bug_midway_accepts_nothing() -> None:
    """A failure after some readings were accepted still leaves no reading in the result."""

    class ExplodingRegistry(dict[tuple[str, str], object]):
        """A registry whose lookups fail: a stand-in for a bug in _check_all. (The fast path
        accepts plainly acceptable readings from per-enterprise tag sets made at construction,
        so only the per-reading checks after the first unknown tag look the registry up.)"""

        def __contains__(self, key: object) -> bool:
            raise KeyError(key)

    decoder = TelemetryDecoder(ExplodingRegistry({("e1", "GT-1101"): 1}), {"e1"}, lambda: NOW)
    unknown = {**GOOD, "tag": "XX-9999"}
    result = decoder.decode(TOPIC, payload(GOOD, GOOD, unknown))
    assert whole(result)[0] == "malformed_json"
    assert "KeyError" in whole(result)[1]


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"state":' + nested(1_000) + b"}", f"JSON nested deeper than {MAX_JSON_DEPTH} levels"),
        (b'{"x":' + nested(MAX_JSON_DEPTH) + b',"state":"online"}', "nested deeper"),
        (b'{"state":"\xb9\xfe"}', "not UTF-8: byte 0xb9 at offset 10"),
        (b"onl\xffine", "not UTF-8"),
        (fill('{"state":@}', TOO_MANY_DIGITS).encode(), "more than"),
        (fill('{"state":@}', HUGE).encode(), f"'state' is 999999{ELLIPSIS}(4000 digits)"),
        (b'{"state":[1]}', "'state' is a list of 1 item"),
        (b'{"state":', "malformed JSON at line 1, column 10"),
    ],
)
def test_unreadable_status_is_offline_with_a_short_detail(raw: bytes, detail: str) -> None:
    """A status payload that cannot be read is (False, a short reason), never an exception."""
    online, said = parse_status(raw)
    assert online is False
    assert said.startswith("unreadable status payload: ")
    assert detail in said
    assert len(said) <= MAX_DETAIL_CHARS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"state":"ONLINE","fw":{"v":[1,2]}}', (True, "online")),
        (b'{"state":true}', (True, "true")),
        (b'{"state":1}', (True, "1")),
        (b'{"state":null}', (False, "empty status (retained status cleared)")),
        (b"", (False, "empty status (retained status cleared)")),
        (b'{"state":"\\ud800"}', (False, "\\ud800")),
        (b"x" * 100_000, (False, "x" * 79 + ELLIPSIS)),
    ],
)
def test_status_words_and_bounded_echo(raw: bytes, expected: tuple[bool, str]) -> None:
    """Readable status payloads keep their meaning; long or unencodable states are clipped/escaped."""
    assert parse_status(raw) == expected


@pytest.mark.parametrize(
    ("reading", "detail"),
    [
        ({"tag": "NOPE", "v": 1}, "tag 'NOPE' is not registered for enterprise 'e1'"),
        ({"tag": "LT-2001", "v": 1}, "tag 'LT-2001' belongs to enterprise 'e2', not 'e1'"),
        (
            {"tag": "GT-1101", "v": 1, "ts": NOW + 604_800_001},
            f"ts {NOW + 604_800_001} is 604801 s ahead of the hub's clock (limit 604800 s, "
            "the horizon)",
        ),
        (
            {"tag": "GT-1101", "v": 1, "ts": NOW // 1000},
            f"ts {NOW // 1000} is older than the horizon of 604800 s "
            "(looks like seconds, not milliseconds)",
        ),
        ({"tag": "GT-1101", "v": 1, "q": "ok"}, "'q' must be one of good|bad|uncertain, got 'ok'"),
        ({"tag": "GT-1101", "v": 1, "ts": 1.5}, "'ts' must be an integer epoch in ms, got 1.5"),
        ({"tag": "GT-1101", "v": None}, "'v' must be a number, got null"),
        ({"tag": "GT-1101", "v": float("nan")}, "value nan is not a finite number"),
        ({"tag": ""}, "'tag' must be a non-empty string, got ''"),
    ],
)
def test_rejection_details_read_as_documented(
    decoder: TelemetryDecoder, reading: dict[str, object], detail: str
) -> None:
    """The detail texts that docs/mqtt-contract.md quotes."""
    (rejection,) = decoder.decode(TOPIC, payload(reading)).rejections
    assert rejection.detail == detail
