"""The park for the plan: enterprises, their hazard sources with a position and alarm colour.

A hazard source's position is the mean of its tags' registry coordinates (metres, x east, y
north). A source none of whose tags has coordinates gets a stable place on a layout grid east
of everything else (docs/api.md), and ``position`` says which of the two it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from safety_hub.alarms import Alarm
from safety_hub.alarms.model import DISPLAYED_STATES
from safety_hub.api.deps import (
    AUTH_RESPONSES,
    AlarmServiceDep,
    LiveTableDep,
    PlantDep,
    PrincipalDep,
)
from safety_hub.api.routes.alarms import Tier, waits_for_ack, worst_tier
from safety_hub.registry import Plant

router = APIRouter(prefix="/api/v1/plant", tags=["plant"], responses=AUTH_RESPONSES)

GRID_STEP_M = 100.0  # spacing of the layout grid for sources without coordinates


class HazardSourceOut(BaseModel):
    id: str = Field(description="the hazard source's code")
    name: str
    name_en: str
    kind: str
    grade: int | None = Field(description="GB 18218 grade 1 (highest) to 4; null if not major")
    is_major: bool
    x: float = Field(description="metres east")
    y: float = Field(description="metres north")
    position: Literal["registry", "layout"] = Field(
        description="registry: the mean of its tags' coordinates; layout: a grid place"
    )
    worst_tier: Tier | None = Field(description="the colour of its highest-priority alarm shown")
    active_alarms: int = Field(description="its alarms in the alarm list")
    unacknowledged: int = Field(description="of those, waiting for acknowledgement")


class EnterpriseOut(BaseModel):
    id: str
    name: str
    name_en: str
    online: bool | None = Field(description="gateway status (last will); null: never heard")
    worst_tier: Tier | None
    active_alarms: int = Field(description="its alarms in the alarm list, with or without source")
    unacknowledged: int
    hazard_sources: list[HazardSourceOut]


class PlantOut(BaseModel):
    code: str
    name: str
    name_en: str
    enterprises: list[EnterpriseOut]


@dataclass(frozen=True, slots=True)
class _Place:
    x: float
    y: float
    source: Literal["registry", "layout"]


def layout(plant: Plant) -> dict[str, _Place]:
    """Every hazard source's place: its tags' mean coordinates, else a grid cell (stable: by
    enterprise and code, east of the rightmost known place, rows going south)."""
    sums: dict[str, list[float]] = {}
    for info in plant.tags.values():
        if info.hazard_source and info.x_m is not None and info.y_m is not None:
            acc = sums.setdefault(info.hazard_source, [0.0, 0.0, 0.0])
            acc[0] += info.x_m
            acc[1] += info.y_m
            acc[2] += 1
    places = {
        code: _Place(round(sx / n, 2), round(sy / n, 2), "registry")
        for code, (sx, sy, n) in sums.items()
        if code in plant.hazard_sources
    }
    missing = sorted(
        (hs.enterprise, code) for code, hs in plant.hazard_sources.items() if code not in places
    )
    if missing:
        x0 = max((p.x for p in places.values()), default=-GRID_STEP_M) + GRID_STEP_M
        y0 = max((p.y for p in places.values()), default=0.0)
        cols = math.ceil(math.sqrt(len(missing)))
        for i, (_, code) in enumerate(missing):
            row, col = divmod(i, cols)
            places[code] = _Place(x0 + col * GRID_STEP_M, y0 - row * GRID_STEP_M, "layout")
    return places


def _shown(alarms: Iterable[Alarm]) -> list[Alarm]:
    return [a for a in alarms if a.state in DISPLAYED_STATES]


@router.get("", response_model=PlantOut, summary="Enterprises and hazard sources for the plan")
def plant(
    plant: PlantDep, live: LiveTableDep, service: AlarmServiceDep, principal: PrincipalDep
) -> PlantOut:
    places = layout(plant)
    gateways = live.gateways()
    alarms = _shown(service.list(limit=10**9, enterprise=principal.enterprise))
    by_source: dict[str, list[Alarm]] = {}
    by_enterprise: dict[str, list[Alarm]] = {}
    for a in alarms:
        by_enterprise.setdefault(a.enterprise, []).append(a)
        if a.hazard_source:
            by_source.setdefault(a.hazard_source, []).append(a)
    enterprises = []
    for code in sorted(plant.enterprises):
        if not principal.sees(code):
            continue
        ent = plant.enterprises[code]
        sources = []
        for hs_code in sorted(ent.hazard_sources):
            hs = plant.hazard_sources[hs_code]
            place = places[hs_code]
            mine = by_source.get(hs_code, [])
            sources.append(
                HazardSourceOut(
                    id=hs_code,
                    name=hs.name,
                    name_en=hs.name_en,
                    kind=hs.kind,
                    grade=hs.computed_grade,
                    is_major=hs.is_major,
                    x=place.x,
                    y=place.y,
                    position=place.source,
                    worst_tier=worst_tier(mine),
                    active_alarms=len(mine),
                    unacknowledged=sum(1 for a in mine if waits_for_ack(a)),
                )
            )
        mine = by_enterprise.get(code, [])
        gateway = gateways.get(code)
        enterprises.append(
            EnterpriseOut(
                id=code,
                name=ent.name,
                name_en=ent.name_en,
                online=None if gateway is None else gateway.online,
                worst_tier=worst_tier(mine),
                active_alarms=len(mine),
                unacknowledged=sum(1 for a in mine if waits_for_ack(a)),
                hazard_sources=sources,
            )
        )
    return PlantOut(
        code=plant.park_code,
        name=plant.park_name,
        name_en=plant.park_name_en,
        enterprises=enterprises,
    )
