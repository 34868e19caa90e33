"""Notifications: what the hub planned, sent, retried, gave up or cancelled (docs/api.md,
"Notifications"). Any role reads; an enterprise user sees only its enterprise's. Contact points
show as their scheme and host (``mailto://example.org/***``), never whole."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from safety_hub.api.deps import (
    AUTH_RESPONSES,
    NotificationLogDep,
    PrincipalDep,
    scoped_enterprise,
)

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"], responses=AUTH_RESPONSES)

Status = Literal["pending", "sent", "failed", "cancelled"]


class NotificationOut(BaseModel):
    notification_id: str = Field(description="stable across retries and restarts")
    alarm_id: int
    annunciation: int = Field(description="which annunciation of the alarm (its count)")
    enterprise: str | None
    policy: str
    step: str = Field(description='"0", "1", "0.r2" (a repeat), "clear", "d0" (overdue)')
    kind: str = Field(description="alarm, escalation, repeat, clear or overdue")
    person_id: str
    person_name: str
    channel: str
    contact: str = Field(description="the contact point redacted: scheme and host only")
    due_ms: int
    next_ms: int = Field(description="when it is (or was) tried next")
    status: Status
    attempts: int
    last_error: str | None = Field(description="the last failure, or why it was cancelled")
    created_ms: int
    done_ms: int | None
    message_id: str | None = Field(description="the message it went out in (a summary's id)")


class NotificationsOut(BaseModel):
    enabled: bool = Field(description="false when SAFETY_HUB_NOTIFY=off")
    notifications: list[NotificationOut]


@router.get("", summary="Notifications, newest first", response_model=NotificationsOut)
def list_notifications(
    log: NotificationLogDep,
    principal: PrincipalDep,
    alarm_id: Annotated[int | None, Query(ge=0, description="only this alarm's")] = None,
    status: Annotated[Status | None, Query(description="only those in this state")] = None,
    enterprise: Annotated[
        str | None, Query(max_length=200, description="only this enterprise's")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> NotificationsOut:
    if log is None:
        return NotificationsOut(enabled=False, notifications=[])
    rows = log.recent(
        alarm_id=alarm_id,
        status=status,
        enterprise=scoped_enterprise(principal, enterprise),
        limit=limit,
    )
    return NotificationsOut(
        enabled=True, notifications=[NotificationOut.model_validate(r) for r in rows]
    )
