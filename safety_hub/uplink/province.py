"""Province mode (docs/province.md): what a provincial hub keeps of the records its park hubs
send over the MQTT bridge: parks, then enterprises, then hazard sources, with the worst open
warning tier at each level and the latest readings.

Pure: :func:`parse_record` checks one message, :class:`ProvinceView` applies checked records
within the configured bounds; the runtime de-duplicates by ``dataId`` (``ProvinceStore``) and
owns the clock and the threads. A warning is open while its alarm is not back to normal and
not disposed (the latest record of that alarm decides).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from safety_hub.uplink.records import RECORD_KINDS

TIER_RANK = {"red": 4, "orange": 3, "yellow": 2, "blue": 1}
"""worst first; a tier not listed ranks 0"""
_DATA_ID = re.compile(r"[0-9a-f]{8,64}")
_MAX_CODE = 200
_MAX_FIELDS = 64
_NEEDS: dict[str, tuple[str, ...]] = {
    "enterprise": ("enterprise",),
    "hazard_source": ("enterprise", "hazard_source"),
    "tag": ("enterprise", "tag", "point_code"),
    "reading": ("enterprise", "tag", "point_code"),
    "warning": ("enterprise", "point_code", "alarm_id", "tier", "state"),
}
"""per kind, the source fields a record must carry (strings, or the alarm id)"""


class Refused(ValueError):
    """A record the province does not take: ``reason`` is the counter's label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Limits:
    max_parks: int = 100
    max_enterprises: int = 500
    """per park"""
    max_hazard_sources: int = 2000
    """per park"""
    max_tags: int = 20_000
    """per park: point codes of tag and reading records"""
    max_open_warnings: int = 10_000
    """per park"""
    max_payload_bytes: int = 65_536


@dataclass(frozen=True, slots=True)
class InRecord:
    park: str
    data_id: str
    kind: str
    key: str
    data: dict[str, Any]

    @property
    def entity(self) -> str:
        """What the record is about: the latest record of an entity wins."""
        if self.kind == "enterprise":
            return str(self.data["enterprise"])
        if self.kind == "hazard_source":
            return str(self.data["hazard_source"])
        if self.kind == "warning":
            return str(self.data["alarm_id"])
        return str(self.data["point_code"])


def parse_record(topic_park: str, payload: bytes, limits: Limits) -> InRecord:
    """One bridge message (docs/mqtt-contract.md, "Federation records"); raises Refused."""
    if len(payload) > limits.max_payload_bytes:
        raise Refused("oversized", f"{len(payload)} bytes, at most {limits.max_payload_bytes}")
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused("malformed", f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Refused("malformed", "not a JSON object")
    park, ident, kind, data = (body.get(k) for k in ("park", "dataId", "kind", "data"))
    if not 0 < len(topic_park) <= _MAX_CODE or not topic_park.isprintable() or "\\" in topic_park:
        raise Refused(
            "malformed", "the topic's park level must be 1-200 printable characters, no backslash"
        )
    if park != topic_park:
        raise Refused("malformed", f"park {park!r} is not the topic's {topic_park!r}")
    if not isinstance(ident, str) or not _DATA_ID.fullmatch(ident):
        raise Refused("malformed", "dataId must be 8-64 lower-case hex digits")
    if kind not in RECORD_KINDS:
        raise Refused("unknown_kind", f"kind {kind!r}")
    if not isinstance(data, dict) or len(data) > _MAX_FIELDS:
        raise Refused("malformed", f"data must be an object of at most {_MAX_FIELDS} fields")
    for name in _NEEDS[kind]:
        value = data.get(name)
        if name == "alarm_id" and isinstance(value, int) and not isinstance(value, bool):
            continue
        if not isinstance(value, str) or not value or len(value) > _MAX_CODE:
            raise Refused("malformed", f"{kind} record without a usable {name!r}")
    return InRecord(park, ident, str(kind), str(body.get("key", ""))[:_MAX_CODE], data)


def is_open(warning: Mapping[str, Any]) -> bool:
    return warning.get("state") != "normal" and warning.get("disposal_state") != "disposed"


def worst(warnings: Iterable[Mapping[str, Any]]) -> str | None:
    best: str | None = None
    for w in warnings:
        tier = str(w.get("tier"))
        if best is None or TIER_RANK.get(tier, 0) > TIER_RANK.get(best, 0):
            best = tier
    return best


@dataclass
class Park:
    code: str
    enterprises: dict[str, dict[str, Any]] = field(default_factory=dict)
    hazard_sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)
    readings: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """open warnings by alarm id"""
    points: set[str] = field(default_factory=set)
    """point codes of its tag and reading records (bounded together)"""
    last_ms: int = 0
    records: int = 0

    def open_warnings(
        self, enterprise: str | None = None, hazard_source: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            w
            for w in self.warnings.values()
            if (enterprise is None or w.get("enterprise") == enterprise)
            and (hazard_source is None or w.get("hazard_source") == hazard_source)
        ]

    def point_codes(self) -> set[str]:
        return self.points


class ProvinceView:
    """The province's view, in memory; thread-safe. ``check`` says whether a record fits the
    bounds (raises Refused), ``apply`` takes it; the store keeps what ``apply`` returns."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.parks: dict[str, Park] = {}
        self.lock = threading.RLock()

    def check(self, record: InRecord) -> None:
        lim = self.limits
        with self.lock:
            park = self.parks.get(record.park)
            if park is None:
                if len(self.parks) >= lim.max_parks:
                    raise Refused("too_many_parks", f"{lim.max_parks} parks already")
                park = Park(record.park)
            table, bound = self._table(park, record)
            if table is None or record.entity in table:
                return
            if record.kind == "warning" and not is_open(record.data):
                return
            if record.kind in ("tag", "reading") and record.entity in park.point_codes():
                return
            if len(table if record.kind not in ("tag", "reading") else park.point_codes()) >= bound:
                raise Refused(f"too_many_{record.kind}s", f"park {record.park}: {bound} already")

    def _table(self, park: Park, record: InRecord) -> tuple[dict[str, dict[str, Any]] | None, int]:
        lim = self.limits
        return {
            "enterprise": (park.enterprises, lim.max_enterprises),
            "hazard_source": (park.hazard_sources, lim.max_hazard_sources),
            "tag": (park.tags, lim.max_tags),
            "reading": (park.readings, lim.max_tags),
            "warning": (park.warnings, lim.max_open_warnings),
        }.get(record.kind, (None, 0))

    def apply(self, record: InRecord, received_ms: int) -> dict[str, Any] | None:
        """Take a checked record; returns the entity's new state to keep (None: forget it,
        a closed warning) -- or the old one when the record is older than what is kept."""
        with self.lock:
            park = self.parks.setdefault(record.park, Park(record.park))
            park.last_ms = max(park.last_ms, received_ms)
            park.records += 1
            table, _ = self._table(park, record)
            assert table is not None
            entity = record.entity
            if record.kind == "reading":
                old = table.get(entity)
                if old is not None and int(old.get("ts_ms") or 0) > int(
                    record.data.get("ts_ms") or 0
                ):
                    return dict(old)
            if record.kind == "warning" and not is_open(record.data):
                table.pop(entity, None)
                return None
            state = dict(record.data)
            table[entity] = state
            if record.kind in ("tag", "reading"):
                park.points.add(entity)
            return state

    def restore(self, park: str, kind: str, data: dict[str, Any], last_ms: int) -> None:
        """A kept entity at start (from the store)."""
        with self.lock:
            p = self.parks.setdefault(park, Park(park))
            p.last_ms = max(p.last_ms, last_ms)
            record = InRecord(park, "", kind, "", data)
            table, _ = self._table(p, record)
            if table is not None:
                table[record.entity] = data
            if kind in ("tag", "reading"):
                p.points.add(record.entity)

    # -- reading the view ----------------------------------------------------------------------
    def summaries(self, now_ms: int, stale_ms: int) -> list[dict[str, Any]]:
        with self.lock:
            return [self._summary(p, now_ms, stale_ms) for _, p in sorted(self.parks.items())]

    def _summary(self, p: Park, now_ms: int, stale_ms: int) -> dict[str, Any]:
        open_w = p.open_warnings()
        return {
            "park": p.code,
            "worst_tier": worst(open_w),
            "open_warnings": len(open_w),
            "enterprises": len(p.enterprises),
            "hazard_sources": len(p.hazard_sources),
            "tags": len(p.point_codes()),
            "last_record": p.last_ms or None,
            "link": "never"
            if not p.last_ms
            else ("up" if now_ms - p.last_ms <= stale_ms else "stale"),
        }

    def park_stats(self, now_ms: int, stale_ms: int) -> list[dict[str, Any]]:
        """Each park's summary plus ``by_tier``: its open warnings per tier."""
        with self.lock:
            out = []
            for _, p in sorted(self.parks.items()):
                tiers = Counter(str(w.get("tier")) for w in p.open_warnings())
                out.append({**self._summary(p, now_ms, stale_ms), "by_tier": dict(tiers)})
            return out

    def park(self, code: str, now_ms: int, stale_ms: int) -> dict[str, Any] | None:
        with self.lock:
            p = self.parks.get(code)
            if p is None:
                return None
            codes = set(p.enterprises) | {
                str(h.get("enterprise")) for h in p.hazard_sources.values()
            }
            codes |= {str(w.get("enterprise")) for w in p.warnings.values()}
            enterprises = []
            for ent in sorted(codes):
                info = p.enterprises.get(ent, {})
                sources = [
                    {
                        "hazard_source": hs_code,
                        "name": hs.get("name"),
                        "grade": hs.get("grade"),
                        "worst_tier": worst(p.open_warnings(ent, hs_code)),
                        "open_warnings": len(p.open_warnings(ent, hs_code)),
                    }
                    for hs_code, hs in sorted(p.hazard_sources.items())
                    if hs.get("enterprise") == ent
                ]
                open_e = p.open_warnings(ent)
                enterprises.append(
                    {
                        "enterprise": ent,
                        "name": info.get("name"),
                        "worst_tier": worst(open_e),
                        "open_warnings": len(open_e),
                        "hazard_sources": sources,
                    }
                )
            warnings = sorted(
                p.warnings.values(), key=lambda w: -TIER_RANK.get(str(w.get("tier")), 0)
            )
            return {
                **self._summary(p, now_ms, stale_ms),
                "enterprise_list": enterprises,
                "warnings": [dict(w) for w in warnings],
            }

    def readings(self, code: str, enterprise: str | None = None) -> list[dict[str, Any]] | None:
        with self.lock:
            p = self.parks.get(code)
            if p is None:
                return None
            return [
                dict(r)
                for _, r in sorted(p.readings.items())
                if enterprise is None or r.get("enterprise") == enterprise
            ]
