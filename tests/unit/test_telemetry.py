"""Telemetry contract v1: decoding and per-reading validation."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_hub.telemetry import (
    DecodeLimits,
    RejectReason,
    TelemetryDecoder,
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
        ({"tag": "GT-1101", "v": 1, "ts": NOW + 301_000}, "future_timestamp"),
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
    """Sub-topics under telemetry are allowed; status topics are recognised."""
    assert enterprise_of_topic("hazard/v1/e1/telemetry") == "e1"
    assert enterprise_of_topic("hazard/v1/e1/telemetry/unit-3") == "e1"
    assert enterprise_of_topic("hazard/v1/e1/status") is None
    assert enterprise_of_status_topic("hazard/v1/e1/status") == "e1"
    assert parse_status(b'{"state":"offline"}') == (False, "offline")
    assert parse_status(b"online") == (True, "online")


@settings(max_examples=400, deadline=None)
@given(raw=st.binary(max_size=600))
def test_fuzz_arbitrary_bytes_never_crash(raw: bytes) -> None:
    """Arbitrary bytes never raise, and every rejection names a reason and a detail."""
    decoder = TelemetryDecoder({("e1", "GT-1101"): 1}, {"e1"}, lambda: NOW)
    result = decoder.decode(TOPIC, raw)
    assert result.readings or result.rejections or result.total == 0
    for rejection in result.rejections:
        assert isinstance(rejection.reason, RejectReason)
        assert rejection.detail


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=10,
)
readings_strategy = st.lists(
    st.fixed_dictionaries(
        {"tag": st.sampled_from(["GT-1101", "X", 5]), "v": json_values | st.floats()},
        optional={
            "ts": st.integers(NOW - 10**10, NOW + 10**9) | json_values,
            "q": st.sampled_from(["good", "bad", "meh"]),
        },
    )
    | json_values,
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(readings=readings_strategy)
def test_fuzz_structured_every_reading_is_accounted_for(readings: list[object]) -> None:
    """For any list of readings, accepted + rejected == total, and each rejection has an index."""
    decoder = TelemetryDecoder({("e1", "GT-1101"): 1}, {"e1"}, lambda: NOW)
    raw = json.dumps({"readings": readings}).encode()
    result = decoder.decode(TOPIC, raw)
    assert result.total == len(readings)
    assert len(result.readings) + len(result.rejections) == len(readings)
    assert sorted(r.index for r in result.rejections) == sorted(  # type: ignore[type-var]
        {r.index for r in result.rejections}
    )
    assert all(r.index is not None and r.detail for r in result.rejections)
