"""Alarms: the list, one alarm, operator actions, the journal, KPIs and flood episodes.

Every action names the operator (``user``) and may carry a comment; it is journalled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from safety_hub.alarms import Alarm, AlarmNotFound, IllegalTransition, InvalidAction
from safety_hub.api.deps import HubDep

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])


class AlarmOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    key: str
    alert: str
    enterprise: str
    hazard_source: str
    tag: str | None
    zone: str | None
    priority: str = Field(
        description="critical | high | medium | low (after the hazard-grade rule)"
    )
    alarm_class: str
    level: int | None
    state: str = Field(description="ISA-18.2 state, see docs/alarms.md")
    active: bool = Field(description="the condition is present")
    acknowledged: bool
    latched: bool
    raised_ms: int | None
    first_raised_ms: int | None
    acknowledged_ms: int | None
    acknowledged_by: str | None
    cleared_ms: int | None
    value: float | None
    setpoint: float | None
    on_delay_s: float
    summary: str
    summary_en: str
    count: int


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=100, description="the operator")
    comment: str | None = Field(None, max_length=2000)


class ShelveIn(ActionIn):
    reason: str = Field(min_length=1, max_length=500)
    until_ms: int | None = Field(None, description="epoch ms; or give duration_s")
    duration_s: int | None = Field(None, ge=1)


class OutOfServiceIn(ActionIn):
    reason: str = Field(min_length=1, max_length=500)


def _out(alarm: Alarm) -> AlarmOut:
    return AlarmOut.model_validate(alarm.as_json())


def _act(action: Callable[[], Alarm]) -> AlarmOut:
    try:
        return _out(action())
    except AlarmNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except IllegalTransition as exc:
        raise HTTPException(409, str(exc)) from None
    except InvalidAction as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("", response_model=list[AlarmOut], summary="The alarm list (first-outs pinned first)")
def list_alarms(
    hub: HubDep,
    state: str | None = None,
    priority: str | None = None,
    enterprise: str | None = None,
    hazard_source: str | None = None,
    include_normal: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AlarmOut]:
    try:
        alarms = hub.alarms.service.list(
            state=state,
            priority=priority,
            enterprise=enterprise,
            hazard_source=hazard_source,
            include_normal=include_normal,
            limit=limit,
            offset=offset,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return [_out(a) for a in alarms]


@router.get("/kpis", summary="ISA-18.2 KPIs over a window (default: the last 24 h)")
def kpis(
    hub: HubDep,
    window_s: Annotated[int, Query(ge=60, le=366 * 86_400)] = 86_400,
    operator_position: str | None = None,
) -> dict[str, Any]:
    return hub.alarms.service.kpis(
        operator_position=operator_position, window_ms=window_s * 1000
    ).as_json()


@router.get("/floods", summary="Flood episodes (> 10 alarms in 10 min until < 5)")
def floods(hub: HubDep, operator_position: str | None = None) -> list[dict[str, Any]]:
    return [f.as_json() for f in hub.alarms.service.floods(operator_position)]


@router.get("/journal", summary="The alarm journal: every transition with who, when and why")
def journal(
    hub: HubDep,
    since_ms: int | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    return [e.as_json() for e in hub.alarms.service.journal(since_ms=since_ms, limit=limit)]


@router.get("/{alarm_id}", response_model=AlarmOut, responses={404: {}})
def get_alarm(hub: HubDep, alarm_id: int) -> AlarmOut:
    return _act(lambda: hub.alarms.service.get(alarm_id))


@router.get("/{alarm_id}/journal", responses={404: {}})
def alarm_journal(hub: HubDep, alarm_id: int) -> list[dict[str, Any]]:
    _act(lambda: hub.alarms.service.get(alarm_id))
    return [e.as_json() for e in hub.alarms.service.journal(alarm_id=alarm_id)]


_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such alarm"},
    409: {"description": "not allowed in the alarm's state"},
    422: {"description": "bad input"},
}


@router.post("/{alarm_id}/acknowledge", response_model=AlarmOut, responses=_ACTION_RESPONSES)
def acknowledge(hub: HubDep, alarm_id: int, body: ActionIn) -> AlarmOut:
    return _act(lambda: hub.alarms.service.acknowledge(alarm_id, body.user, body.comment))


@router.post("/{alarm_id}/reset", response_model=AlarmOut, responses=_ACTION_RESPONSES)
def reset(hub: HubDep, alarm_id: int, body: ActionIn) -> AlarmOut:
    return _act(lambda: hub.alarms.service.reset(alarm_id, body.user, body.comment))


@router.post("/{alarm_id}/shelve", response_model=AlarmOut, responses=_ACTION_RESPONSES)
def shelve(hub: HubDep, alarm_id: int, body: ShelveIn) -> AlarmOut:
    if (body.until_ms is None) == (body.duration_s is None):
        raise HTTPException(422, "give exactly one of until_ms and duration_s")
    until = body.until_ms
    if until is None:
        assert body.duration_s is not None
        until = hub.clock.now_ms() + body.duration_s * 1000
    return _act(
        lambda: hub.alarms.service.shelve(alarm_id, body.user, body.reason, until, body.comment)
    )


@router.post("/{alarm_id}/unshelve", response_model=AlarmOut, responses=_ACTION_RESPONSES)
def unshelve(hub: HubDep, alarm_id: int, body: ActionIn) -> AlarmOut:
    return _act(lambda: hub.alarms.service.unshelve(alarm_id, body.user, body.comment))


@router.post("/{alarm_id}/out-of-service", response_model=AlarmOut, responses=_ACTION_RESPONSES)
def out_of_service(hub: HubDep, alarm_id: int, body: OutOfServiceIn) -> AlarmOut:
    return _act(
        lambda: hub.alarms.service.remove_from_service(
            alarm_id, body.user, body.reason, body.comment
        )
    )


@router.post("/{alarm_id}/return-to-service", response_model=AlarmOut, responses=_ACTION_RESPONSES)
def return_to_service(hub: HubDep, alarm_id: int, body: ActionIn) -> AlarmOut:
    return _act(lambda: hub.alarms.service.return_to_service(alarm_id, body.user, body.comment))
