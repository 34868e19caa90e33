"""Line protocol encoding, escaping and parsing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from safety_hub.lineproto import (
    escape_string_field,
    format_float,
    parse_line,
    series_prefix,
)

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
