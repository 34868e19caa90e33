"""Decoder choice by measurement: readings/s decoded and validated, per library.

Baseline: the standard library's json plus hand validation. Every candidate does the same
work: parse a 100-reading message and check each reading's shape and types.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from typing import Literal

import msgspec
import orjson
from pydantic import BaseModel, ConfigDict

from safety_hub.ingest.decoder import TelemetryDecoder

NOW = 1_790_000_000_000
PAYLOAD = json.dumps(
    {
        "ts": NOW,
        "seq": 1,
        "readings": [
            {"tag": f"GT-{1100 + i}", "v": 12.5 + i, "ts": NOW + i, "q": "good"} for i in range(100)
        ],
    }
).encode()


def check(items: list[dict[str, object]]) -> int:
    n = 0
    for r in items:
        v = r["v"]
        if isinstance(r["tag"], str) and isinstance(v, int | float) and math.isfinite(v):
            n += 1
    return n


def stdlib_json(payload: bytes) -> int:
    return check(json.loads(payload)["readings"])


def orjson_decode(payload: bytes) -> int:
    return check(orjson.loads(payload)["readings"])


class PReading(BaseModel):
    model_config = ConfigDict(extra="ignore")
    tag: str
    v: float
    ts: int | None = None
    q: Literal["good", "bad", "uncertain"] | None = None


class PMessage(BaseModel):
    readings: list[PReading]
    ts: int | None = None
    seq: int | None = None


def pydantic_decode(payload: bytes) -> int:
    return len(PMessage.model_validate_json(payload).readings)


class MReading(msgspec.Struct):
    tag: str
    v: float
    ts: int | None = None
    q: Literal["good", "bad", "uncertain"] | None = None


class MMessage(msgspec.Struct):
    readings: list[MReading]
    ts: int | None = None
    seq: int | None = None


_mdec = msgspec.json.Decoder(MMessage)


def msgspec_decode(payload: bytes) -> int:
    return sum(1 for r in _mdec.decode(payload).readings if math.isfinite(r.v))


# The hub's own decoder on the same payload: msgspec plus the registry, quality and time checks
# and the guards against hostile payloads, so that the cost of those is visible beside msgspec.
_hub = TelemetryDecoder({("e1", f"GT-{1100 + i}"): None for i in range(100)}, {"e1"}, lambda: NOW)


def hub_decode(payload: bytes) -> int:
    return len(_hub.decode("hazard/v1/e1/telemetry", payload).readings)


def rate(fn: Callable[[bytes], int], seconds: float) -> float:
    n = 0
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            count += fn(PAYLOAD)
        n += 50
    return count / (time.perf_counter() - start)


def run(seconds: float = 1.0) -> dict[str, float]:
    candidates = {
        "json (baseline)": stdlib_json,
        "orjson": orjson_decode,
        "pydantic v2": pydantic_decode,
        "msgspec": msgspec_decode,
        "hub decoder": hub_decode,
    }
    results = {name: rate(fn, seconds) for name, fn in candidates.items()}
    base = results["json (baseline)"]
    print("decode + validate, 100 readings per message")
    for name, value in results.items():
        print(f"  {name:<16} {value:>12,.0f} readings/s   x{value / base:5.2f}")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.decode", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="time per decoder, s (default 1)"
    )
    run(parser.parse_args(argv).seconds)


if __name__ == "__main__":
    main()
