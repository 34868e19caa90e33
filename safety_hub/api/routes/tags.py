"""Plant tags: the registry, the latest value and the history of each tag."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from safety_hub.api.auth import Principal
from safety_hub.api.deps import (
    AUTH_RESPONSES,
    ClockDep,
    HistoryStoreDep,
    LiveTableDep,
    PlantDep,
    PrincipalDep,
    check_enterprise,
    clip,
    error,
    scoped_enterprise,
)
from safety_hub.errors import SafetyHubError
from safety_hub.registry import Plant, TagInfo

router = APIRouter(prefix="/api/v1/tags", tags=["tags"], responses=AUTH_RESPONSES)

MAX_MS = 2**53 - 1  # the largest integer a JavaScript client holds exactly
_EPOCH_MS = re.compile(r"^-?[0-9]+$")

GAS_KINDS = frozenset({"combustible_gas", "toxic_gas", "oxygen", "open_path_gas"})


class Range(BaseModel):
    lo: float
    hi: float


class OutOfService(BaseModel):
    reason: str
    by: str
    since: str


class TagOut(BaseModel):
    enterprise: str
    tag: str = Field(description="位号, unique within the enterprise")
    name: str | None
    park: str
    hazard_source: str | None
    unit: str | None
    equipment: str | None
    kind: str
    eu: str = Field(description="engineering unit of the values")
    range: Range
    gas: str | None
    setpoints: dict[str, float] = Field(
        description="keys l1/l2 (level-1/level-2) for gas tags, ll/l/h/hh for process tags"
    )
    interval_s: float = Field(description="expected publishing interval")
    zone: str | None
    in_service: bool
    out_of_service: OutOfService | None
    x_m: float | None
    y_m: float | None


class LatestOut(BaseModel):
    enterprise: str
    tag: str
    has_value: bool
    ts: int | None = Field(None, description="event time, epoch ms")
    value: float | None = None
    quality: str | None = None
    received_ts: int | None = Field(None, description="when the hub received it, epoch ms")
    age_s: float | None = Field(None, description="hub time minus event time")


class HistoryPointOut(BaseModel):
    ts: int
    value: float | None
    quality: str | None = None
    min: float | None = None
    max: float | None = None
    count: int | None = None


class HistoryOut(BaseModel):
    enterprise: str
    tag: str
    eu: str
    start: int
    end: int
    every_s: int | None
    points: list[HistoryPointOut]


def tag_out(info: TagInfo) -> TagOut:
    oos = info.out_of_service
    return TagOut(
        enterprise=info.enterprise,
        tag=info.tag,
        name=getattr(info, "name", None) or None,
        park=info.park,
        hazard_source=info.hazard_source or None,
        unit=info.unit or None,
        equipment=info.equipment or None,
        kind=info.kind,
        eu=info.eu,
        range=Range(lo=info.range_lo, hi=info.range_hi),
        gas=info.gas,
        setpoints=dict(info.setpoints),
        interval_s=info.interval_s,
        zone=info.zone,
        in_service=info.in_service,
        out_of_service=(
            OutOfService(reason=oos.reason, by=oos.by, since=str(oos.since)) if oos else None
        ),
        x_m=info.x_m,
        y_m=info.y_m,
    )


def _find(plant: Plant, principal: Principal, enterprise: str, tag: str) -> TagInfo:
    check_enterprise(principal, enterprise)
    info = plant.tags.get((enterprise, tag))
    if info is None:
        if enterprise not in plant.enterprises:
            raise HTTPException(
                404, f"enterprise {clip(enterprise)!r} is not in the plant registry"
            )
        raise HTTPException(
            404, f"tag {clip(tag)!r} is not registered for enterprise {enterprise!r}"
        )
    return info


def parse_time(value: str, name: str) -> int:
    """Epoch milliseconds, or an ISO-8601 time with an offset."""
    text = value.strip()
    value = clip(value)  # only for the messages below
    if _EPOCH_MS.match(text):
        if len(text) > 20 or not -MAX_MS <= int(text) <= MAX_MS:
            raise HTTPException(422, f"{name}={value!r}: epoch milliseconds out of range")
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(
            422, f"{name}={value!r}: expected epoch milliseconds or an ISO-8601 time"
        ) from None
    if when.tzinfo is None:
        raise HTTPException(422, f"{name}={value!r}: an ISO-8601 time needs an offset, e.g. +08:00")
    try:
        return int(when.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):
        raise HTTPException(422, f"{name}={value!r}: time out of range") from None


@router.get("", response_model=list[TagOut], summary="Every registry tag")
def list_tags(
    plant: PlantDep,
    principal: PrincipalDep,
    enterprise: str | None = None,
    hazard_source: str | None = None,
    kind: str | None = None,
) -> list[TagOut]:
    enterprise = scoped_enterprise(principal, enterprise)
    out = []
    for info in plant.tags.values():
        if enterprise is not None and info.enterprise != enterprise:
            continue
        if hazard_source is not None and info.hazard_source != hazard_source:
            continue
        if kind is not None and info.kind != kind:
            continue
        out.append(tag_out(info))
    return out


@router.get(
    "/{enterprise}/{tag}/latest",
    response_model=LatestOut,
    summary="The latest reading of a tag (by event time)",
    responses={404: error("unknown enterprise or tag")},
)
def latest(
    plant: PlantDep,
    live: LiveTableDep,
    clock: ClockDep,
    principal: PrincipalDep,
    enterprise: str,
    tag: str,
) -> LatestOut:
    _find(plant, principal, enterprise, tag)
    value = live.latest(enterprise, tag)
    if value is None:
        return LatestOut(enterprise=enterprise, tag=tag, has_value=False)
    return LatestOut(
        enterprise=enterprise,
        tag=tag,
        has_value=True,
        ts=value.ts_ms,
        value=value.value,
        quality=value.quality,
        received_ts=value.received_ms,
        age_s=(clock.now_ms() - value.ts_ms) / 1000,
    )


@router.get(
    "/{enterprise}/{tag}/history",
    response_model=HistoryOut,
    summary="Stored readings of a tag; raw, or aggregated per `every` seconds",
    responses={
        404: error("unknown enterprise or tag"),
        503: error("storage down"),
    },
)
def history(
    plant: PlantDep,
    store: HistoryStoreDep,
    clock: ClockDep,
    principal: PrincipalDep,
    enterprise: str,
    tag: str,
    start: Annotated[
        str | None, Query(description="epoch ms or ISO-8601; default end - 1 h")
    ] = None,
    end: Annotated[str | None, Query(description="epoch ms or ISO-8601; default now")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    every: Annotated[int | None, Query(ge=1, le=86_400 * 31, description="bucket, s")] = None,
) -> HistoryOut:
    info = _find(plant, principal, enterprise, tag)
    end_ms = parse_time(end, "end") if end is not None else clock.now_ms() + 1
    start_ms = parse_time(start, "start") if start is not None else end_ms - 3_600_000
    if start_ms >= end_ms:
        raise HTTPException(422, f"start ({start_ms}) must be before end ({end_ms})")
    try:
        points = store.history(enterprise, tag, start_ms, end_ms, limit=limit, every_s=every)
    except (SafetyHubError, OSError) as exc:
        raise HTTPException(503, f"history store unavailable: {exc}") from None
    except Exception as exc:
        # A store's client library raises its own errors too (httpx's ConnectError is no
        # OSError): the store is down for this request, which is a 503, not a 500.
        raise HTTPException(
            503, f"history store unavailable: {type(exc).__name__}: {exc}"
        ) from None
    return HistoryOut(
        enterprise=enterprise,
        tag=tag,
        eu=info.eu,
        start=start_ms,
        end=end_ms,
        every_s=every,
        points=[
            HistoryPointOut(
                ts=p.ts_ms, value=p.value, quality=p.quality, min=p.min, max=p.max, count=p.count
            )
            for p in points
        ],
    )
