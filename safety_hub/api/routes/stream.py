"""Server-sent events: alarm transitions and live values as they happen (docs/api.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from safety_hub.api.deps import (
    AUTH_RESPONSES,
    ClockDep,
    LiveEventsDep,
    PingIntervalDep,
    PlantDep,
    StreamPrincipalDep,
    clip,
    error,
    scoped_enterprise,
)
from safety_hub.api.events import CLOSE, sse_frame

router = APIRouter(prefix="/api/v1", tags=["stream"], responses=AUTH_RESPONSES)

RETRY_MS = 3000  # what EventSource waits before reconnecting
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["alarm", "value", "ping", "overflow"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "alarm: the alarm event (docs/alarms.md); value: enterprise, tag, "
            "ts, value, quality; ping: ts; overflow: reason (the stream ends)",
        },
        "retry": {"type": "integer", "minimum": 0},
    },
}


@router.get(
    "/stream",
    response_class=StreamingResponse,
    summary="Server-sent events: `alarm` transitions, `value`s (≤ 1 per tag per s), `ping`s",
    responses={
        200: {
            "description": "an endless text/event-stream; each event as below, `data` JSON",
            "content": {"text/event-stream": {"schema": EVENT_SCHEMA}},
        },
        404: error("unknown enterprise"),
        503: error("too many open streams, or the hub is shutting down"),
    },
)
async def stream(
    plant: PlantDep,
    clock: ClockDep,
    events: LiveEventsDep,
    ping_s: PingIntervalDep,
    principal: StreamPrincipalDep,
    alarms: Annotated[bool, Query(description="send `alarm` events")] = True,
    values: Annotated[bool, Query(description="send `value` events")] = False,
    enterprise: Annotated[str | None, Query(description="only this enterprise")] = None,
) -> StreamingResponse:
    scope = scoped_enterprise(principal, enterprise)
    if scope is not None and scope not in plant.enterprises:
        raise HTTPException(404, f"enterprise {clip(scope)!r} is not in the plant registry")
    sub = events.subscribe(enterprise=scope, alarms=alarms, values=values)
    if sub is None:
        raise HTTPException(503, "too many open event streams, or the hub is shutting down")

    async def frames() -> AsyncIterator[str]:
        try:
            # First the reconnection delay and a ping: the client knows it is subscribed.
            yield f"retry: {RETRY_MS}\n" + sse_frame("ping", {"ts": clock.now_ms()})
            while True:
                try:
                    frame = await asyncio.wait_for(sub.queue.get(), timeout=ping_s)
                except TimeoutError:
                    frame = sse_frame("ping", {"ts": clock.now_ms()})
                if frame is CLOSE:
                    return
                yield frame
        finally:
            events.unsubscribe(sub)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
