"""What every decoded message must satisfy, shared by the hypothesis tests and the atheris harness."""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec

from safety_hub.ingest.telemetry import (
    MAX_DETAIL_CHARS,
    MAX_TAG_ECHO_CHARS,
    QUALITIES,
    DecodedMessage,
    DecodeLimits,
)


def check_decoded(
    result: DecodedMessage,
    known_tags: Mapping[tuple[str, str], object],
    limits: DecodeLimits,
    now: int,
) -> None:
    """Raise AssertionError naming the broken invariant, if ``result`` breaks one."""
    if any(r.index is None for r in result.rejections):
        assert len(result.rejections) == 1, f"a whole-message rejection among others: {result}"
        assert not result.readings, f"readings accepted from a rejected message: {result}"
    else:
        assert len(result.readings) + len(result.rejections) == result.total, (
            f"accepted + rejected != total: {result}"
        )
        indexes = [r.index for r in result.rejections]
        assert len(set(indexes)) == len(indexes), f"a reading rejected twice: {result}"
        assert all(0 <= i < result.total for i in indexes), f"index out of range: {result}"  # type: ignore[operator]
    earliest, latest = now - limits.max_age_ms, now + limits.max_future_ms
    farthest = now + limits.max_age_ms  # beyond max future, up to here: accepted as skewed
    skewed = sum(1 for r in result.readings if r.ts_ms > latest)
    assert skewed == result.skewed, f"skewed readings miscounted: {result}"
    assert len(result.skew_notes) == min(skewed, 100), f"skew notes: {result}"
    for reading in result.readings:
        assert (reading.enterprise, reading.tag) in known_tags, f"unregistered: {reading}"
        assert type(reading.value) is float and math.isfinite(reading.value), f"value: {reading}"
        assert reading.quality in QUALITIES, f"quality: {reading}"
        assert type(reading.ts_ms) is int, f"ts type: {reading}"
        assert earliest <= reading.ts_ms <= farthest, f"ts outside the window: {reading}"
    for rejection in result.rejections:
        assert 0 < len(rejection.detail) <= MAX_DETAIL_CHARS, f"detail: {rejection}"
        assert rejection.tag is None or len(rejection.tag) <= MAX_TAG_ECHO_CHARS, rejection
    # The pipeline publishes rejections with msgspec, which refuses lone surrogates and more.
    msgspec.json.encode({"seq": result.seq, "rejected": [r.as_json() for r in result.rejections]})
    msgspec.json.encode([r.as_json() for r in result.skew_notes])


def check_status(online: object, detail: object) -> None:
    """What ``parse_status`` returns: a bool and a short detail a UTF-8 log line can carry."""
    assert type(online) is bool, online
    assert isinstance(detail, str) and len(detail) <= MAX_DETAIL_CHARS, detail
    detail.encode("utf-8")
