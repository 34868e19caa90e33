"""System status: connections, spool, storage, system alarms, gateways."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from safety_hub.api.deps import AUTH_RESPONSES, HubDep, PrincipalDep

router = APIRouter(prefix="/api/v1/system", tags=["system"], responses=AUTH_RESPONSES)


class SpoolOut(BaseModel):
    batches: int
    readings: int
    bytes: int
    oldest_ts: int | None
    age_s: float
    dead_letters: int
    full: bool


class SystemAlarmOut(BaseModel):
    name: str
    active: bool
    since: int
    message: str


class GatewayOut(BaseModel):
    enterprise: str
    online: bool | None
    status_since: int | None
    detail: str | None
    last_reading_received: int | None


class DeadLetterOut(BaseModel):
    id: int
    batch_id: int
    created_ms: int
    failed_ms: int
    error: str
    readings: int


class SystemOut(BaseModel):
    park: str
    mqtt_url: str | None
    mqtt_connected: bool
    storage: str
    storage_ok: bool
    storage_error: str | None
    spool: SpoolOut
    messages_processed: int
    system_alarms: list[SystemAlarmOut]
    gateways: list[GatewayOut]
    dead_letters: list[DeadLetterOut] = Field(
        description="the latest dead-lettered batches; empty for an enterprise user"
    )


@router.get(
    "",
    response_model=SystemOut,
    summary="The hub's own state; an enterprise user sees only its own gateway",
)
def system(hub: HubDep, principal: PrincipalDep) -> SystemOut:
    depth = hub.spool.depth()
    now = hub.clock.now_ms()
    gateways = hub.live.gateways()
    seen = hub.live.last_seen()
    source = hub.source
    return SystemOut(
        park=hub.plant.park_code,
        mqtt_url=hub.mqtt_url,
        mqtt_connected=bool(source is not None and source.connected),
        storage=hub.storage.description,
        storage_ok=hub.sink_worker.last_error is None,
        storage_error=hub.sink_worker.last_error,
        spool=SpoolOut(
            batches=depth.batches,
            readings=depth.readings,
            bytes=depth.bytes,
            oldest_ts=depth.oldest_ms,
            age_s=0.0 if depth.oldest_ms is None else max(0.0, (now - depth.oldest_ms) / 1000),
            dead_letters=depth.dead_letters,
            full=not hub.spool.has_room(),
        ),
        messages_processed=hub.ingest.processed_messages,
        system_alarms=[
            SystemAlarmOut(name=a.name, active=a.active, since=a.since_ms, message=a.message)
            for a in hub.system_alarms.all()
        ],
        gateways=[
            GatewayOut(
                enterprise=code,
                online=gateways[code].online if code in gateways else None,
                status_since=gateways[code].since_ms if code in gateways else None,
                detail=gateways[code].detail if code in gateways else None,
                last_reading_received=seen.get(code),
            )
            for code in sorted(hub.plant.enterprises)
            if principal.sees(code)
        ],
        dead_letters=[]
        if principal.enterprise is not None
        else [DeadLetterOut.model_validate(d) for d in hub.spool.dead_letters(20)],
    )
