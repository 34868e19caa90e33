"""System status: connections, spool, storage, system alarms, gateways."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from safety_hub.api.deps import (
    AUTH_RESPONSES,
    ClockDep,
    HubStatus,
    HubStatusDep,
    LiveTableDep,
    PlantDep,
    PrincipalDep,
    SystemAlarmsDep,
    UplinkStatusDep,
)

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


class UplinkOut(BaseModel):
    name: str
    transport: str = Field(description="where it sends (no secrets)")
    connected: bool | None = Field(description="the last attempt succeeded; null: none yet")
    backlog: int = Field(description="records waiting in the queue")
    oldest_age_s: float
    queued: int = Field(description="records queued since the hub started")
    queued_by_kind: dict[str, int] = Field(
        default={},
        description="the same per record kind (enterprise, hazard_source, tag, reading, warning)",
    )
    sent: int
    failed_attempts: int
    rejected: int = Field(description="records the platform refused for good")
    dropped: int = Field(description="records dropped or refused because the queue was full")
    down_since: int | None
    last_success: int | None
    last_error: str | None


class BrokerRoundTripOut(BaseModel):
    measured_at: int = Field(description="when, ms since the epoch")
    samples: int
    round_trip_ms: float = Field(description="median, a QoS 1 publish to its delivery back")
    first_reply_ms: float = Field(description="median of the earlier of PUBACK and delivery")
    second_reply_ms: float = Field(description="median of the later")
    nagle_suspected: bool = Field(
        description="the second reply tens of ms after the first: the broker lacks "
        "set_tcp_nodelay true (docs/deploy.md)"
    )
    advice: str | None


class HaOut(BaseModel):
    enabled: bool = Field(description="false: this hub runs alone (the other fields are null)")
    node_id: str | None
    role: str | None = Field(description="active, standby or stopped")
    active_node: str | None = Field(description="the node holding the lease now; null: none")
    active_api_url: str | None = Field(description="the active node's API base URL")
    since: datetime | None = Field(description="when the active node took the lease")
    token: int | None = Field(description="this node's fencing token while it is active")
    lease_expires: datetime | None = Field(
        description="the lease's expiry as last read (the database's clock)"
    )
    broker_reachable: bool | None = Field(description="this node's probe reaches the broker")
    last_error: str | None = Field(description="the last lease database problem; null: none")


class SystemOut(BaseModel):
    park: str
    mqtt_url: str | None
    mqtt_connected: bool
    broker_round_trip: BrokerRoundTripOut | None = Field(
        description="the latest broker round trip measurement; null before the first, or "
        "when the probe topic safety-hub/probe/# is not delivered back"
    )
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
    uplinks: list[UplinkOut] = Field(
        default=[],
        description="the provincial uplink's destinations (docs/uplink.md); empty without one "
        "and for an enterprise user",
    )
    ha: HaOut = Field(description="this node's role in a redundant pair (docs/deploy.md)")


def _ha_out(status: HubStatus) -> HaOut:
    ha = status.ha()
    if ha is None:
        return HaOut(
            enabled=False,
            node_id=None,
            role=None,
            active_node=None,
            active_api_url=None,
            since=None,
            token=None,
            lease_expires=None,
            broker_reachable=None,
            last_error=None,
        )
    return HaOut.model_validate(ha, from_attributes=True)


@router.get(
    "",
    response_model=SystemOut,
    summary="The hub's own state; an enterprise user sees only its own gateway",
)
def system(
    status: HubStatusDep,
    plant: PlantDep,
    clock: ClockDep,
    live: LiveTableDep,
    system_alarms: SystemAlarmsDep,
    principal: PrincipalDep,
    uplink: UplinkStatusDep,
) -> SystemOut:
    depth = status.spool_depth()
    now = clock.now_ms()
    gateways = live.gateways()
    seen = live.last_seen()
    return SystemOut(
        park=plant.park_code,
        mqtt_url=status.mqtt_url,
        mqtt_connected=status.mqtt_connected,
        broker_round_trip=None
        if (trip := status.broker_round_trip()) is None
        else BrokerRoundTripOut.model_validate(trip),
        storage=status.storage,
        storage_ok=status.storage_error is None,
        storage_error=status.storage_error,
        spool=SpoolOut(
            batches=depth.batches,
            readings=depth.readings,
            bytes=depth.bytes,
            oldest_ts=depth.oldest_ms,
            age_s=0.0 if depth.oldest_ms is None else max(0.0, (now - depth.oldest_ms) / 1000),
            dead_letters=depth.dead_letters,
            full=not status.spool_has_room(),
        ),
        messages_processed=status.messages_processed,
        system_alarms=[
            SystemAlarmOut(name=a.name, active=a.active, since=a.since_ms, message=a.message)
            for a in system_alarms.all()
        ],
        gateways=[
            GatewayOut(
                enterprise=code,
                online=gateways[code].online if code in gateways else None,
                status_since=gateways[code].since_ms if code in gateways else None,
                detail=gateways[code].detail if code in gateways else None,
                last_reading_received=seen.get(code),
            )
            for code in sorted(plant.enterprises)
            if principal.sees(code)
        ],
        dead_letters=[]
        if principal.enterprise is not None
        else [DeadLetterOut.model_validate(d) for d in status.dead_letters(20)],
        uplinks=[]
        if uplink is None or principal.enterprise is not None
        else [UplinkOut.model_validate(u) for u in uplink.states()],
        ha=_ha_out(status),
    )
