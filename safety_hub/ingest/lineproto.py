"""InfluxDB line protocol for the ``reading`` measurement: encoding, escaping and parsing.

Schema (documented in docs/storage.md):

    reading,enterprise=<e>,equipment=<q>,hazard_source=<h>,kind=<k>,park=<p>,tag=<t>,unit=<u>
        value=<float>,quality="good|bad|uncertain" <epoch ms>

Tag keys are written in sorted order (what InfluxDB prefers); empty tag values are left out
because InfluxDB rejects them. Escaping follows the line protocol reference: in tag keys and
values ``,`` ``=`` and space take a backslash; in string field values ``"`` and ``\\``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

from safety_hub.ingest.telemetry import QUALITIES, Reading

READING_MEASUREMENT = "reading"

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_MEAS_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})


def escape_tag(text: str) -> str:
    """Escape a tag key or tag value."""
    return text.translate(_TAG_ESCAPES)


def escape_measurement(text: str) -> str:
    return text.translate(_MEAS_ESCAPES)


def escape_string_field(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def series_prefix(measurement: str, tags: dict[str, str]) -> str:
    """``measurement,k=v,...`` followed by a space, ready to take the field set."""
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value == "":
            continue
        parts.append(f"{escape_tag(key)}={escape_tag(value)}")
    return ",".join(parts) + " "


def format_float(value: float) -> str:
    """A float field value; ``repr`` round-trips exactly and line protocol accepts it."""
    return repr(float(value))


@dataclass(frozen=True, slots=True)
class ParsedLine:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, float | int | str | bool]
    timestamp: int | None


def _split_unescaped(text: str, sep: str, *, quotes: bool = False) -> list[str]:
    """Split on ``sep`` outside backslash escapes (and, if ``quotes``, outside "...")."""
    out: list[str] = []
    buf: list[str] = []
    i = 0
    in_quotes = False
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            buf.append(ch)
            buf.append(text[i + 1])
            i += 2
            continue
        if quotes and ch == '"':
            in_quotes = not in_quotes
        elif ch == sep and not in_quotes:
            out.append("".join(buf))
            buf = []
            i += 1
            continue
        buf.append(ch)
        i += 1
    out.append("".join(buf))
    return out


def _split_first_unescaped_space(text: str) -> tuple[str, str, str]:
    i = 0
    n = len(text)
    while i < n:
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == " ":
            return text[:i], " ", text[i + 1 :]
        i += 1
    return text, "", ""


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in ', ="\\':
            out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _parse_field_value(raw: str) -> float | int | str | bool:
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return _unescape(raw[1:-1])
    if raw.endswith("i"):
        return int(raw[:-1])
    if raw in ("t", "T", "true", "True", "TRUE"):
        return True
    if raw in ("f", "F", "false", "False", "FALSE"):
        return False
    return float(raw)


def _plain(line: str) -> bool:
    """True when splitting ``line`` on its separators needs no escape or quote handling: no
    backslash, balanced quotes, and no space, comma or equals sign inside a quoted string."""
    if "\\" in line:
        return False
    if '"' not in line:
        return True
    parts = line.split('"')
    if len(parts) % 2 == 0:
        return False
    return not any(" " in q or "," in q or "=" in q for q in parts[1::2])


def parse_line(line: str) -> ParsedLine:
    """Parse one line of line protocol (the subset this hub writes, plus the common forms)."""
    return _parse_plain(line) if _plain(line) else _parse_escaped(line)


def _parse_escaped(line: str) -> ParsedLine:
    # The series part has no quoting (a '"' there is an ordinary character); the field part does.
    series_part, _, rest = _split_first_unescaped_space(line)
    sections = [series_part, *(s for s in _split_unescaped(rest, " ", quotes=True) if s != "")]
    if len(sections) not in (2, 3):
        raise ValueError(f"line protocol: expected 2 or 3 sections, got {len(sections)}: {line!r}")
    series = _split_unescaped(sections[0], ",")
    measurement = _unescape(series[0])
    tags: dict[str, str] = {}
    for item in series[1:]:
        kv = _split_unescaped(item, "=")
        if len(kv) != 2 or kv[1] == "":
            raise ValueError(f"line protocol: bad tag {item!r}")
        tags[_unescape(kv[0])] = _unescape(kv[1])
    fields: dict[str, float | int | str | bool] = {}
    for item in _split_unescaped(sections[1], ",", quotes=True):
        kv = _split_unescaped(item, "=", quotes=True)
        if len(kv) != 2:
            raise ValueError(f"line protocol: bad field {item!r}")
        fields[_unescape(kv[0])] = _parse_field_value(kv[1])
    timestamp = int(sections[2]) if len(sections) == 3 else None
    return ParsedLine(measurement, tags, fields, timestamp)


def _parse_plain(line: str) -> ParsedLine:
    """``parse_line`` for a line that ``_plain`` accepted: the same result and the same errors,
    with str.split instead of the character-by-character scanner (the sink's hot path)."""
    series_part, _, rest = line.partition(" ")
    sections = [series_part, *(s for s in rest.split(" ") if s != "")]
    if len(sections) not in (2, 3):
        raise ValueError(f"line protocol: expected 2 or 3 sections, got {len(sections)}: {line!r}")
    series = sections[0].split(",")
    tags: dict[str, str] = {}
    for item in series[1:]:
        kv = item.split("=")
        if len(kv) != 2 or kv[1] == "":
            raise ValueError(f"line protocol: bad tag {item!r}")
        tags[kv[0]] = kv[1]
    fields: dict[str, float | int | str | bool] = {}
    for item in sections[1].split(","):
        kv = item.split("=")
        if len(kv) != 2:
            raise ValueError(f"line protocol: bad field {item!r}")
        fields[kv[0]] = _parse_field_value(kv[1])
    timestamp = int(sections[2]) if len(sections) == 3 else None
    return ParsedLine(series[0], tags, fields, timestamp)


class TagChain(Protocol):
    """What the pipeline needs of a registry tag: its identifier chain."""

    @property
    def park(self) -> str: ...

    @property
    def enterprise(self) -> str: ...

    @property
    def hazard_source(self) -> str: ...

    @property
    def unit(self) -> str: ...

    @property
    def equipment(self) -> str: ...

    @property
    def tag(self) -> str: ...

    @property
    def kind(self) -> str: ...


def build_prefixes(tags: Mapping[tuple[str, str], TagChain]) -> dict[tuple[str, str], str]:
    """Line-protocol series prefix of every tag, computed once so per-reading work is small."""
    out: dict[tuple[str, str], str] = {}
    for key, info in tags.items():
        out[key] = series_prefix(
            READING_MEASUREMENT,
            {
                "park": info.park,
                "enterprise": info.enterprise,
                "hazard_source": info.hazard_source,
                "unit": info.unit,
                "equipment": info.equipment,
                "tag": info.tag,
                "kind": info.kind,
            },
        )
    return out


_QUALITY_FIELDS = {q: f',quality="{q}" ' for q in QUALITIES}
"""the quality field of a reading line and the space before its timestamp, per quality"""


def encode_lines(readings: Iterable[Reading], prefixes: Mapping[tuple[str, str], str]) -> str:
    # The decoder hands over floats already, so repr() is the exact, round-tripping form.
    quality_field = _QUALITY_FIELDS
    return "\n".join(
        [
            f"{prefixes[(enterprise, tag)]}value={value!r}{quality_field[quality]}{ts_ms}"
            for enterprise, tag, ts_ms, value, quality in readings
        ]
    )


_json_numbers = msgspec.json.Encoder().encode


def _number_texts(numbers: list[float] | list[int]) -> list[str]:
    """Each number's text as JSON writes it: the shortest form that reads back as the same
    double (``1e16`` where ``repr`` says ``1e+16``; line protocol takes both), formatted in C
    for the whole list at once, which is about three times faster than ``repr`` per value."""
    return _json_numbers(numbers).decode()[1:-1].split(",")


class LineEncoder:
    """The ``reading`` lines of one message's readings, built a message at a time.

    The series prefixes (with ``value=`` appended) are kept per enterprise and looked up by tag,
    so a reading costs no key tuple; the values and timestamps of a message are formatted in one
    C call each, and the pieces joined without a format string per line. The same points as
    :func:`encode_lines` (values in their shortest round-tripping form)."""

    def __init__(self, prefixes: Mapping[tuple[str, str], str]) -> None:
        self.prefixes = prefixes
        self._by_enterprise: dict[str, dict[str, str]] = {}
        for (enterprise, tag), prefix in prefixes.items():
            self._by_enterprise.setdefault(enterprise, {})[tag] = prefix + "value="

    def encode(self, enterprise: str, readings: Sequence[Reading]) -> str:
        """The lines of ``readings``, all of them of ``enterprise`` (as a decoded message's
        are: the decoder accepts only the tags registered for the topic's enterprise)."""
        if not readings:
            return ""
        own = self._by_enterprise[enterprise]
        quality = _QUALITY_FIELDS
        return "\n".join(
            map(
                "".join,
                zip(
                    [own[r[1]] for r in readings],
                    _number_texts([r[3] for r in readings]),
                    [quality[r[4]] for r in readings],
                    _number_texts([r[2] for r in readings]),
                    strict=True,
                ),
            )
        )
