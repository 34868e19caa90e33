"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from safety_hub.api.deps import HubStatusDep, MetricsRegistryDep, reject_unknown_query

router = APIRouter(tags=["health"], dependencies=[Depends(reject_unknown_query)])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    role: str | None = Field(
        None,
        description="active or standby in a redundant pair (a standby is never ready: a load "
        "balancer sends actions to the active node only); null for a hub that runs alone",
    )
    mqtt_connected: bool
    spool_has_room: bool
    storage_ok: bool
    problems: list[str]


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Ready to ingest: connected to the broker, the spool takes readings and ingest makes "
    "progress, and (in a redundant pair) this node is the active one (503 otherwise, with the "
    "reasons)",
    responses={503: {"model": Readiness, "description": "not ready: see problems"}},
)
def readyz(status: HubStatusDep, response: Response) -> Readiness:
    connected = status.mqtt_connected
    room = status.spool_has_room()
    storage_ok = status.storage_error is None
    ingest_problems = status.problems()
    problems = []
    if not connected:
        problems.append(f"not connected to the MQTT broker {status.mqtt_url}")
    if not room and not ingest_problems:
        problems.append("spool full: ingest is held back")
    problems.extend(ingest_problems)
    if not storage_ok:
        problems.append(f"storage unavailable (readings are spooled): {status.storage_error}")
    ready = connected and room and not ingest_problems
    if not ready:
        response.status_code = 503
    ha = status.ha()
    return Readiness(
        ready=ready,
        role=None if ha is None else ha.role,
        mqtt_connected=connected,
        spool_has_room=room,
        storage_ok=storage_ok,
        problems=problems,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(status: HubStatusDep, registry: MetricsRegistryDep) -> Response:
    status.refresh_gauges()
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
