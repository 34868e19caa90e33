"""Province mode (docs/province.md, docs/api.md): the parks a provincial hub hears from, then
a park's enterprises and hazard sources with the worst open warning tier, its open warnings
and its latest readings. 404 with the reason when the hub is not in province mode; a user
scoped to one enterprise sees none of it (403)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from safety_hub.api.auth import Principal
from safety_hub.api.deps import AUTH_RESPONSES, PrincipalDep, ProvinceDep, ProvinceViewer, error

router = APIRouter(
    prefix="/api/v1/province",
    tags=["province"],
    responses={
        **AUTH_RESPONSES,
        403: error("an enterprise user: the province view is for the whole hub"),
        404: error("province mode is off, or the park never sent a record"),
    },
)


class ParkOut(BaseModel):
    park: str
    worst_tier: str | None
    """red / orange / yellow / blue of the worst open warning; null: none open"""
    open_warnings: int
    enterprises: int
    hazard_sources: int
    tags: int
    last_record: int | None
    """when the last record of the park arrived, ms since the epoch"""
    link: str
    """up / stale (no record for SAFETY_HUB_PROVINCE_LINK_STALE_S) / never"""


class ParksOut(BaseModel):
    connected: bool
    parks: list[ParkOut]


class HazardSourceOut(BaseModel):
    hazard_source: str
    name: str | None
    grade: int | None
    worst_tier: str | None
    open_warnings: int


class EnterpriseOut(BaseModel):
    enterprise: str
    name: str | None
    worst_tier: str | None
    open_warnings: int
    hazard_sources: list[HazardSourceOut]


class ParkDetailOut(ParkOut):
    enterprise_list: list[EnterpriseOut]
    warnings: list[dict[str, Any]]
    """the open warnings, worst tier first: the source fields of their latest record"""


class ReadingsOut(BaseModel):
    park: str
    readings: list[dict[str, Any]]


def _viewer(province: ProvinceViewer | None, principal: Principal) -> ProvinceViewer:
    if province is None:
        raise HTTPException(404, "province mode is off (SAFETY_HUB_PROVINCE)")
    if principal.enterprise is not None:
        raise HTTPException(403, "the province view is for users of the whole hub")
    return province


@router.get("/parks", response_model=ParksOut, summary="The parks, worst tier and link state")
def parks(province: ProvinceDep, principal: PrincipalDep) -> ParksOut:
    viewer = _viewer(province, principal)
    return ParksOut(
        connected=bool(viewer.counters()["connected"]),
        parks=[ParkOut(**p) for p in viewer.parks()],
    )


@router.get(
    "/parks/{park}",
    response_model=ParkDetailOut,
    summary="A park's enterprises and hazard sources with their worst tier, its open warnings",
)
def park(park: str, province: ProvinceDep, principal: PrincipalDep) -> ParkDetailOut:
    found = _viewer(province, principal).park(park)
    if found is None:
        raise HTTPException(404, f"no park {park[:100]!r} has sent records")
    return ParkDetailOut(**found)


@router.get(
    "/parks/{park}/readings", response_model=ReadingsOut, summary="A park's latest readings"
)
def readings(
    park: str,
    province: ProvinceDep,
    principal: PrincipalDep,
    enterprise: str | None = Query(None, max_length=200),
) -> ReadingsOut:
    found = _viewer(province, principal).readings(park, enterprise)
    if found is None:
        raise HTTPException(404, f"no park {park[:100]!r} has sent records")
    return ReadingsOut(park=park, readings=found)
