"""Line protocol encoding, escaping and parsing."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from safety_hub.ingest import lineproto
from safety_hub.ingest.lineproto import (
    ParsedLine,
    escape_string_field,
    format_float,
    parse_line,
    series_prefix,
)
from safety_hub.ingest.telemetry import Reading

tag_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\\"),
    min_size=1,
    max_size=20,
).filter(lambda s: s.strip() == s and s != "")


def test_escapes_spaces_commas_equals_in_tags() -> None:
    """Tag values with spaces, commas and equals signs are escaped with backslashes."""
    prefix = series_prefix("reading", {"tag": "GT 11,01=A", "enterprise": "化工一厂"})
    assert prefix == r"reading,enterprise=化工一厂,tag=GT\ 11\,01\=A "


def test_empty_tag_values_are_left_out() -> None:
    """InfluxDB refuses empty tag values, so they are not written at all."""
    assert series_prefix("reading", {"a": "", "b": "x"}) == "reading,b=x "


def test_float_format_round_trips() -> None:
    """Floats are written so that they parse back to the same value."""
    for value in (12.5, 1e-05, 3.0, -0.0, 1.7976931348623157e308):
        assert float(format_float(value)) == value


@given(
    tags=st.dictionaries(tag_text, tag_text, min_size=1, max_size=5),
    value=st.floats(allow_nan=False, allow_infinity=False),
    quality=tag_text,
)
def test_round_trip_of_any_tags(tags: dict[str, str], value: float, quality: str) -> None:
    """Whatever text a tag holds, the written line parses back to the same tags and fields."""
    line = (
        series_prefix("reading", tags)
        + f'value={format_float(value)},quality="{escape_string_field(quality)}" 1700000000000'
    )
    parsed = parse_line(line)
    assert parsed.measurement == "reading"
    assert parsed.tags == tags
    assert parsed.fields == {"value": value, "quality": quality}
    assert parsed.timestamp == 1700000000000


def _parse_or_error(parse: Callable[[str], ParsedLine], line: str) -> ParsedLine | str:
    try:
        return parse(line)
    except ValueError as exc:
        return f"ValueError: {exc}"


_tokens = st.sampled_from(
    [
        "m",
        "t",
        "k",
        "=",
        "=",
        ",",
        " ",
        '"',
        "1",
        "1.5",
        "-2",
        "7i",
        "true",
        '"a"',
        '"a b"',
        '"x,y"',
    ]
)
_token_lines = st.lists(_tokens, max_size=14).map("".join)
_key = st.sampled_from(["t", "k", "value", "q", 'a"', "m"])
_val = st.sampled_from(
    ["1", "1.5", "-2", "7i", "true", "x", '"a"', '"a b"', '"x,y"', '"q=1"', '"', "", "1 2"]
)
_structured_lines = st.builds(
    lambda m, tags, fields, ts: (
        m
        + "".join(f",{k}={v}" for k, v in tags)
        + " "
        + ",".join(f"{k}={v}" for k, v in fields)
        + ts
    ),
    st.sampled_from(["m", "reading", 'm"']),
    st.lists(st.tuples(_key, _val), max_size=3),
    st.lists(st.tuples(_key, _val), min_size=1, max_size=3),
    st.sampled_from(["", " 1700000000000", " x", "  5"]),
)


@settings(max_examples=1500)
@given(st.one_of(_token_lines, _structured_lines))
def test_plain_fast_path_agrees_with_the_escape_aware_parser(line: str) -> None:
    # Any line the fast path takes must parse (or fail) exactly as the full parser does.
    if lineproto._plain(line):
        assert _parse_or_error(lineproto._parse_plain, line) == _parse_or_error(
            lineproto._parse_escaped, line
        )


def test_fast_path_is_taken_for_the_hubs_own_lines_and_not_for_escapes() -> None:
    plain = 'reading,enterprise=e1,tag=GT-1 value=0.5,quality="good" 1700000000000'
    assert lineproto._plain(plain)
    assert parse_line(plain).fields == {"value": 0.5, "quality": "good"}
    assert not lineproto._plain(r"reading,tag=GT\ 1 value=1 1")
    assert not lineproto._plain('reading,tag=a value=1,note="x, y" 1')
    assert parse_line('reading,tag=a value=1,note="x, y" 1').fields["note"] == "x, y"


@given(
    readings=st.lists(
        st.tuples(
            st.sampled_from(["GT-1101", r"T 2,x=y", "消防泵"]),
            st.integers(-(2**62), 2**62),
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from(lineproto.QUALITIES),
        ),
        max_size=30,
    )
)
def test_line_encoder_writes_the_points_of_encode_lines(
    readings: list[tuple[str, int, float, str]],
) -> None:
    """The per-message encoder (values formatted by msgspec) gives the same points as
    encode_lines (values by repr): same series, same value to the bit, same timestamps."""
    prefixes = {
        ("e1", tag): series_prefix("reading", {"enterprise": "e1", "tag": tag})
        for tag in ("GT-1101", r"T 2,x=y", "消防泵")
    }
    batch = [Reading("e1", tag, ts, value, q) for tag, ts, value, q in readings]
    fast = lineproto.LineEncoder(prefixes).encode("e1", batch)
    plain = lineproto.encode_lines(batch, prefixes)
    if not batch:
        assert fast == plain == ""
        return
    fast_lines, plain_lines = fast.split("\n"), plain.split("\n")
    assert len(fast_lines) == len(plain_lines) == len(batch)
    for mine, theirs, reading in zip(fast_lines, plain_lines, batch, strict=True):
        got, want = parse_line(mine), parse_line(theirs)
        assert got == want
        assert got.fields["value"] == reading.value
        assert str(got.fields["value"]) == str(reading.value)  # -0.0 stays -0.0
