"""The closed loop (预警处置闭环): dispose of a warning, and list the disposal records.

``POST /api/v1/alarms/{id}/dispose`` needs an operator or admin (rate limited like the other
actions); an enterprise user disposes only its enterprise's warnings (another's is a 404).
``GET /api/v1/disposals`` needs any role; an enterprise user sees its enterprise's only.
See docs/api.md, "Disposal".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from safety_hub.alarms import AlarmNotFound, IllegalTransition, InvalidAction
from safety_hub.alarms.disposal import MAX_TEXT
from safety_hub.api.deps import (
    AUTH_RESPONSES,
    AlarmServiceDep,
    OperatorDep,
    PrincipalDep,
    decimal_alarm_id,
    error,
    scoped_enterprise,
)
from safety_hub.api.disposal_models import Category, DisposalOut
from safety_hub.api.routes.alarms import MAX_MS, TIERS, AlarmOut, Tier, alarm_out, first_outs

router = APIRouter(tags=["disposals"], responses=AUTH_RESPONSES)

_DISPOSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: error("the body is not JSON"),
    403: error("a viewer: disposal needs an operator or admin"),
    404: error("no such alarm (or not in the user's enterprise)"),
    409: error("no disposal applies: a blue warning, never annunciated, or already disposed"),
    413: error("the body is larger than SAFETY_HUB_API_MAX_BODY_BYTES"),
    422: error("bad category or text (1 to 2000 characters)"),
    429: {
        **error("too many actions by this user"),
        "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
    },
}


class DisposeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: Category = Field(json_schema_extra={"maxLength": 16})  # the longest name
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="what was found and done")


class DisposalRecordOut(DisposalOut):
    alarm_id: int
    key: str
    alert: str
    enterprise: str
    hazard_source: str
    tag: str | None
    zone: str | None
    priority: str
    tier: Tier
    time_to_dispose_ms: int = Field(description="from the annunciation to the disposal")


@router.post(
    "/api/v1/alarms/{alarm_id}/dispose",
    response_model=AlarmOut,
    dependencies=[Depends(decimal_alarm_id)],
    summary="Record how a warning (tier yellow or above) was dealt with, once per episode",
    responses=_DISPOSE_RESPONSES,
)
def dispose(
    service: AlarmServiceDep, user: OperatorDep, alarm_id: int, body: DisposeIn
) -> AlarmOut:
    try:
        alarm = service.get(alarm_id)
        if not user.sees(alarm.enterprise):
            raise AlarmNotFound(alarm_id)
        after = service.dispose(alarm_id, user.user, body.category, body.text)
    except AlarmNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except IllegalTransition as exc:
        raise HTTPException(409, str(exc)) from None
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None
    return alarm_out(after, first_outs(service, [after]), service)


@router.get(
    "/api/v1/disposals",
    response_model=list[DisposalRecordOut],
    summary="Disposal records, oldest first, filtered by enterprise, category and time",
)
def disposals(
    service: AlarmServiceDep,
    principal: PrincipalDep,
    enterprise: str | None = None,
    category: Category | None = None,
    since: Annotated[int | None, Query(ge=0, le=MAX_MS, description="epoch ms")] = None,
    until: Annotated[int | None, Query(ge=0, le=MAX_MS, description="epoch ms")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[DisposalRecordOut]:
    wanted = scoped_enterprise(principal, enterprise)
    out = [
        DisposalRecordOut(
            **record.as_json(),
            alarm_id=alarm.id,
            key=alarm.key,
            alert=alarm.alert,
            enterprise=alarm.enterprise,
            hazard_source=alarm.hazard_source,
            tag=alarm.tag,
            zone=alarm.zone,
            priority=alarm.priority.value,
            tier=TIERS[alarm.priority],
            time_to_dispose_ms=record.at_ms - record.raised_ms,
        )
        for alarm, record in service.disposals(since, until)
        if (wanted is None or alarm.enterprise == wanted)
        and (category is None or record.category == category)
    ]
    return out[:limit]
