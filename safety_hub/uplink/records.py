"""What goes up: the records of each kind, their source fields, the shipped field mapping and
the idempotent ``dataId`` (docs/uplink.md, "Records").

A record is built in two steps: the hub's own view of the thing (``*_sources``: a flat dict of
source fields, the vocabulary a mapping may use) and the destination's mapping, which names an
output field for each source field (or a constant). The shipped mapping is the record shape of
one provincial platform in use (TARGET_CODE, EQUIP_CODE, ..., MONITOR_CASCODE, STOP_REMARK).

``dataId`` is deterministic: the same record gets the same id after a restart or a re-send, so
that the platform can drop a duplicate. Base data is identified by its content (a changed tag
is a new record), a reading by its tag and source time, a warning by the alarm journal row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from safety_hub.alarms import Alarm, JournalEntry
from safety_hub.ingest.live import LiveValue
from safety_hub.registry import EnterpriseInfo, HazardSourceInfo, Plant, TagInfo

RecordKind = Literal["enterprise", "hazard_source", "tag", "reading", "warning"]
RECORD_KINDS: tuple[str, ...] = get_args(RecordKind)
BASE_KINDS = ("enterprise", "hazard_source", "tag")

TIERS = {"critical": "red", "high": "orange", "medium": "yellow", "low": "blue"}
"""alarm priority -> the park's warning tier (docs/alarms.md)"""

_COMMON = {
    "park": "park code",
    "enterprise": "enterprise code",
}
_TAG_CHAIN = {
    **_COMMON,
    "hazard_source": "hazard source code ('' outside every hazard source)",
    "unit": "unit code",
    "equipment": "equipment code",
    "tag": "the tag (位号) as registered",
    "point_code": "enterprise/tag: unique in the park",
}
SOURCES: dict[str, dict[str, str]] = {
    "enterprise": {
        **_COMMON,
        "name": "name",
        "name_en": "English name",
        "hazard_sources": "number of hazard sources",
        "longitude": "WGS84 longitude (null when the registry has none)",
        "latitude": "WGS84 latitude",
    },
    "hazard_source": {
        **_COMMON,
        "hazard_source": "hazard source code",
        "name": "name",
        "kind": "storage or production",
        "grade": "GB 18218 grade 1-4 (computed; null when not major)",
        "filed_grade": "grade on file",
        "r_value": "R",
        "s_value": "S",
        "chemicals": "chemical names, comma-separated",
        "cas": "CAS numbers, comma-separated",
        "longitude": "WGS84 longitude",
        "latitude": "WGS84 latitude",
    },
    "tag": {
        **_TAG_CHAIN,
        "name": "tag name",
        "kind": "tag kind (toxic_gas, level, ...)",
        "eu": "engineering unit",
        "range_lo": "range low",
        "range_hi": "range high",
        "ll": "low-low setpoint",
        "l": "low setpoint",
        "h": "high setpoint (l1 of a gas detector)",
        "hh": "high-high setpoint (l2 of a gas detector)",
        "gas": "gas key",
        "cas": "the gas's CAS number",
        "in_use": "1 in service, 0 out of service",
        "stop_reason": "why out of service",
        "stop_by": "who took it out of service",
        "stop_time": "since when (local time text)",
        "longitude": "WGS84 longitude (the tag's, else its hazard source's, else its enterprise's)",
        "latitude": "WGS84 latitude (same fallback)",
    },
    "reading": {
        **_TAG_CHAIN,
        "value": "the latest value",
        "eu": "engineering unit",
        "quality": "good / bad / uncertain",
        "time": "source time (local time text)",
        "ts_ms": "source time, ms since the epoch",
    },
    "warning": {
        **_TAG_CHAIN,
        "alarm_id": "the hub's alarm id",
        "alert": "rule name",
        "tier": "red / orange / yellow / blue",
        "priority": "critical / high / medium / low",
        "event": "the journal action (raise, acknowledge, clear, dispose, ...)",
        "state": "alarm state after the event",
        "active": "1 while the condition is active",
        "value": "value at the event",
        "setpoint": "the setpoint crossed",
        "summary": "alarm text",
        "raised_time": "last annunciation (local time text)",
        "event_time": "time of the event (local time text)",
        "disposal_state": "open / disposed / overdue",
        "disposal_category": "disposal category",
        "disposal_text": "disposal text",
        "disposal_by": "who disposed it",
        "disposal_time": "when (local time text)",
    },
}
"""source fields per record kind: name -> what it holds (docs/uplink.md lists them)"""


@dataclass(frozen=True, slots=True)
class Const:
    """A constant output field in a mapping."""

    value: str | int | float | bool | None


Source = str | Const
FieldMap = Mapping[str, Source]

DEFAULT_MAPPING: dict[str, dict[str, Source]] = {
    "enterprise": {
        "ENTERPRISE_CODE": "enterprise",
        "ENTERPRISE_NAME": "name",
        "PARK_CODE": "park",
        "LONGITUDE": "longitude",
        "LATITUDE": "latitude",
    },
    "hazard_source": {
        "HAZARD_CODE": "hazard_source",
        "HAZARD_NAME": "name",
        "ENTERPRISE_CODE": "enterprise",
        "HAZARD_TYPE": "kind",
        "HAZARD_GRADE": "grade",
        "R_VALUE": "r_value",
        "CHEMICALS": "chemicals",
        "LONGITUDE": "longitude",
        "LATITUDE": "latitude",
    },
    "tag": {
        "TARGET_CODE": "point_code",
        "ENTERPRISE_CODE": "enterprise",
        "HAZARD_CODE": "hazard_source",
        "EQUIP_CODE": "equipment",
        "EQUIP_TYPE": "kind",
        "GATEWAY_CODE": "enterprise",
        "BIT_NO": "tag",
        "TARGET_NAME": "name",
        "UNIT": "eu",
        "LOW_VALUE": "range_lo",
        "TOP_VALUE": "range_hi",
        "LOW_VALUE_01": "ll",
        "LOW_VALUE_02": "l",
        "TOP_VALUE_01": "h",
        "TOP_VALUE_02": "hh",
        "MONITOR_TYPE": "kind",
        "MONITOR_CASCODE": "cas",
        "IS_USE": "in_use",
        "IS_ACTIVE": Const(1),
        "STOP_REMARK": "stop_reason",
        "STOP_PSN": "stop_by",
        "STOP_TIME": "stop_time",
        "LONGITUDE": "longitude",
        "LATITUDE": "latitude",
    },
    "reading": {
        "TARGET_CODE": "point_code",
        "ENTERPRISE_CODE": "enterprise",
        "HAZARD_CODE": "hazard_source",
        "BIT_NO": "tag",
        "VALUE": "value",
        "UNIT": "eu",
        "QUALITY": "quality",
        "COLLECT_TIME": "time",
    },
    "warning": {
        "ALARM_ID": "alarm_id",
        "TARGET_CODE": "point_code",
        "ENTERPRISE_CODE": "enterprise",
        "HAZARD_CODE": "hazard_source",
        "BIT_NO": "tag",
        "ALARM_TYPE": "alert",
        "ALARM_LEVEL": "tier",
        "ALARM_EVENT": "event",
        "ALARM_STATE": "state",
        "ALARM_VALUE": "value",
        "THRESHOLD": "setpoint",
        "ALARM_DESC": "summary",
        "ALARM_TIME": "raised_time",
        "EVENT_TIME": "event_time",
        "DISPOSAL_STATE": "disposal_state",
        "DISPOSAL_TYPE": "disposal_category",
        "DISPOSAL_REMARK": "disposal_text",
        "DISPOSAL_PSN": "disposal_by",
        "DISPOSAL_TIME": "disposal_time",
    },
}
"""the shipped mapping: output field -> source field (or constant), per kind"""


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record for one destination: its kind, its ``dataId``, what orders it (``key``: the
    tag for readings and warnings, else the kind and code) and the mapped fields."""

    kind: str
    data_id: str
    key: str
    data: dict[str, Any]

    def body(self) -> str:
        return json.dumps(
            {"kind": self.kind, "key": self.key, "data": self.data},
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_body(cls, data_id: str, body: str) -> OutRecord:
        parsed = json.loads(body)
        return cls(str(parsed["kind"]), data_id, str(parsed["key"]), dict(parsed["data"]))


def data_id(*parts: object) -> str:
    """32 hex digits of SHA-256 over the parts: the same parts give the same id anywhere."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def apply(mapping: FieldMap, sources: Mapping[str, Any]) -> dict[str, Any]:
    return {
        out: (src.value if isinstance(src, Const) else sources.get(src))
        for out, src in mapping.items()
    }


class TimeText:
    """Formats times as the platform expects: ``YYYY-MM-DD HH:MM:SS`` in one time zone."""

    def __init__(self, time_zone: str) -> None:
        self.zone = ZoneInfo(time_zone)

    def text(self, ms: int | None) -> str | None:
        if ms is None:
            return None
        moment = datetime.fromtimestamp(ms / 1000, UTC).astimezone(self.zone)
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def of(self, moment: datetime | None) -> str | None:
        return (
            None if moment is None else moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")
        )


def enterprise_sources(plant: Plant, ent: EnterpriseInfo) -> dict[str, Any]:
    return {
        "park": plant.park_code,
        "enterprise": ent.code,
        "name": ent.name,
        "name_en": ent.name_en,
        "hazard_sources": len(ent.hazard_sources),
        "longitude": ent.longitude,
        "latitude": ent.latitude,
    }


def hazard_source_sources(plant: Plant, hs: HazardSourceInfo) -> dict[str, Any]:
    return {
        "park": plant.park_code,
        "enterprise": hs.enterprise,
        "hazard_source": hs.code,
        "name": hs.name,
        "kind": hs.kind,
        "grade": hs.computed_grade,
        "filed_grade": hs.filed_grade,
        "r_value": round(hs.R, 3),
        "s_value": round(hs.S, 3),
        "chemicals": ",".join(c.name for c in hs.chemicals),
        "cas": ",".join(c.cas for c in hs.chemicals if c.cas),
        "longitude": hs.longitude,
        "latitude": hs.latitude,
    }


def _chain(tag: TagInfo) -> dict[str, Any]:
    return {
        "park": tag.park,
        "enterprise": tag.enterprise,
        "hazard_source": tag.hazard_source,
        "unit": tag.unit,
        "equipment": tag.equipment,
        "tag": tag.tag,
        "point_code": f"{tag.enterprise}/{tag.tag}",
    }


def _position(plant: Plant, tag: TagInfo) -> tuple[float | None, float | None]:
    if tag.longitude is not None:
        return tag.longitude, tag.latitude
    hs = plant.hazard_sources.get(tag.hazard_source)
    if hs is not None and hs.longitude is not None:
        return hs.longitude, hs.latitude
    ent = plant.enterprises.get(tag.enterprise)
    return (ent.longitude, ent.latitude) if ent is not None else (None, None)


def tag_sources(plant: Plant, tag: TagInfo, clock: TimeText) -> dict[str, Any]:
    sp = tag.setpoints
    gas = plant.gases.get(tag.gas) if tag.gas else None
    oos = tag.out_of_service
    longitude, latitude = _position(plant, tag)
    return {
        **_chain(tag),
        "name": tag.name,
        "kind": tag.kind,
        "eu": tag.eu,
        "range_lo": tag.range_lo,
        "range_hi": tag.range_hi,
        "ll": sp.get("ll"),
        "l": sp.get("l"),
        "h": sp.get("h", sp.get("l1")),
        "hh": sp.get("hh", sp.get("l2")),
        "gas": tag.gas,
        "cas": gas.cas if gas is not None else None,
        "in_use": 1 if tag.in_service else 0,
        "stop_reason": oos.reason if oos else None,
        "stop_by": oos.by if oos else None,
        "stop_time": clock.of(oos.since) if oos else None,
        "longitude": longitude,
        "latitude": latitude,
    }


def reading_sources(tag: TagInfo, value: LiveValue, clock: TimeText) -> dict[str, Any]:
    return {
        **_chain(tag),
        "value": value.value,
        "eu": tag.eu,
        "quality": value.quality,
        "time": clock.text(value.ts_ms),
        "ts_ms": value.ts_ms,
    }


def disposal_state(alarm: Alarm) -> str:
    if alarm.disposal is not None:
        return "disposed"
    return "overdue" if alarm.disposal_overdue_ms is not None else "open"


def warning_sources(
    plant: Plant, entry: JournalEntry, alarm: Alarm, clock: TimeText
) -> dict[str, Any]:
    tag = plant.tags.get((alarm.enterprise, alarm.tag)) if alarm.tag else None
    chain = (
        _chain(tag)
        if tag is not None
        else {
            "park": plant.park_code,
            "enterprise": alarm.enterprise,
            "hazard_source": alarm.hazard_source,
            "unit": "",
            "equipment": "",
            "tag": alarm.tag or "",
            "point_code": f"{alarm.enterprise}/{alarm.tag or alarm.key}",
        }
    )
    priority = str(entry.priority or alarm.priority)
    disposal = alarm.disposal
    return {
        **chain,
        "alarm_id": alarm.id,
        "alert": alarm.alert,
        "tier": TIERS.get(priority, priority),
        "priority": priority,
        "event": str(entry.action),
        "state": str(entry.to_state or alarm.state),
        "active": 1 if alarm.active else 0,
        "value": entry.value if entry.value is not None else alarm.value,
        "setpoint": alarm.setpoint,
        "summary": alarm.summary,
        "raised_time": clock.text(entry.raised_ms or alarm.raised_ms),
        "event_time": clock.text(entry.ts_ms),
        "disposal_state": disposal_state(alarm),
        "disposal_category": disposal.category if disposal else None,
        "disposal_text": disposal.text if disposal else None,
        "disposal_by": disposal.by if disposal else None,
        "disposal_time": clock.text(disposal.at_ms) if disposal else None,
    }


def base_record(
    park: str, kind: str, key: str, mapping: FieldMap, src: Mapping[str, Any]
) -> OutRecord:
    data = apply(mapping, src)
    content = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return OutRecord(kind, data_id(park, kind, key, content), f"{kind}:{key}", data)


def reading_record(park: str, tag: TagInfo, mapping: FieldMap, src: Mapping[str, Any]) -> OutRecord:
    key = f"{tag.enterprise}/{tag.tag}"
    return OutRecord(
        "reading", data_id(park, "reading", key, src["ts_ms"]), key, apply(mapping, src)
    )


def warning_record(
    park: str, entry: JournalEntry, alarm: Alarm, mapping: FieldMap, src: Mapping[str, Any]
) -> OutRecord:
    key = str(src["point_code"])
    ident = data_id(park, "warning", alarm.id, entry.id, entry.ts_ms)
    return OutRecord("warning", ident, key, apply(mapping, src))
