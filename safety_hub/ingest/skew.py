"""Readings from a gateway whose clock is far ahead of the hub's (clock skew).

The decoder accepts a reading stamped more than ``max_future_ms`` ahead of the hub's clock (but
within the horizon) and counts it as *skewed* (``DecodedMessage.skewed``). Such a reading is not
lost, and its wrong time must not put it where nobody looks:

- the rule engine gets it with its sent timestamp: the clock-skew rule names the wrong clock, and
  the engine evaluates a far-ahead reading on the tag's own timeline at about the hub's receive
  time (``rules/engine.py``, readings from the future);
- storage and the live table get it at the hub's receive time (``deskew``), minus its lead over
  the newest skewed reading of its message, so that the readings of one message keep their order
  and spacing; storage keeps the sent timestamp beside it as the integer field ``source_ts`` and
  the string field ``ts_quality="skewed"`` (``encode_skewed_lines``; docs/storage.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from safety_hub.ingest.telemetry import Reading

TS_QUALITY_SKEWED = "skewed"


def deskew(
    readings: Sequence[Reading], skewed_after: int, received_ms: int
) -> tuple[list[Reading], dict[int, int]]:
    """The readings with every one stamped after ``skewed_after`` moved back to the receive
    time (the newest of them exactly to it), and the sent timestamps of those, by position."""
    newest = max(r[2] for r in readings if r[2] > skewed_after)
    shift = newest - received_ms
    out: list[Reading] = []
    sources: dict[int, int] = {}
    for i, reading in enumerate(readings):
        ts = reading[2]
        if ts > skewed_after:
            sources[i] = ts
            reading = reading._replace(ts_ms=ts - shift)
        out.append(reading)
    return out, sources


def encode_skewed_lines(
    readings: Sequence[Reading], sources: Mapping[int, int], prefixes: Mapping[tuple[str, str], str]
) -> str:
    """Line protocol of readings of which those at ``sources`` positions were deskewed: those
    carry ``source_ts`` (the sent ms timestamp) and ``ts_quality``."""
    lines: list[str] = []
    for i, (enterprise, tag, ts_ms, value, quality) in enumerate(readings):
        fields = f'value={value!r},quality="{quality}"'
        source = sources.get(i)
        if source is not None:
            fields += f',source_ts={source}i,ts_quality="{TS_QUALITY_SKEWED}"'
        lines.append(f"{prefixes[(enterprise, tag)]}{fields} {ts_ms}")
    return "\n".join(lines)
