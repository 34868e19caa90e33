"""FastAPI dependencies: the parts of the hub a route uses, the caller (bearer token), role
checks, scope, rate limit.

No route holds the whole hub: :mod:`safety_hub.api.app`, which wires it, puts the parts the
routes use in a :class:`HubParts` (with a read-only :class:`HubStatus` for the health and
system views), and each route asks for exactly the parts it needs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.utils import is_body_allowed_for_status_code
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from safety_hub.alarms import AlarmService
from safety_hub.api.auth import Authenticator, Principal, RateLimiter, Role, retry_after_header
from safety_hub.api.events import LiveEvents
from safety_hub.clock import Clock
from safety_hub.ingest.live import LiveTable
from safety_hub.ingest.spool import SpoolDepth
from safety_hub.people import PeopleDirectory
from safety_hub.ports import HistoryStore
from safety_hub.registry import Plant
from safety_hub.runtime.ha import HaStatus
from safety_hub.system_alarms import SystemAlarms

_bearer = HTTPBearer(
    auto_error=False,
    description="`Authorization: Bearer <token>`; tokens from SAFETY_HUB_ADMIN_TOKEN, the "
    "users file, or the local-mode token the hub prints",
)
_query_token = APIKeyQuery(
    name="access_token",
    auto_error=False,
    description="the bearer token as a query parameter, for EventSource (stream only)",
)


class ErrorOut(BaseModel):
    """Every error answer: ``detail`` is a sentence naming the problem, or (for input that
    does not fit the declared types) FastAPI's list of ``{loc, msg, type}`` items."""

    detail: str | list[dict[str, Any]] = Field(description="what is wrong")


def error(description: str) -> dict[str, Any]:
    return {"description": description, "model": ErrorOut}


# An error quotes at most this much of what the client sent: a 20 MB comment must not come back
# whole in the 422 (the caller has it; the answer only needs to show which value it was).
ECHO_MAX_CHARS = 200
# FastAPI's messages are short; a message built from a validator's text gets more room.
MESSAGE_MAX_CHARS = 500
DETAIL_MAX_CHARS = 2000


def clip(text: str, limit: int = ECHO_MAX_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _bounded(value: Any) -> Any:
    """``value`` ready for JSON, at most about ECHO_MAX_CHARS long once encoded: a string
    is clipped, a long list or object becomes its clipped JSON text."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        # str() of an integer past 4300 digits raises; 640 bits are about 190 digits.
        return value if value.bit_length() <= 640 else f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, bytes | bytearray):
        return clip(bytes(value[: ECHO_MAX_CHARS * 4]).decode("utf-8", "replace"))
    encoded = jsonable_encoder(value)
    try:
        text = json.dumps(encoded, ensure_ascii=False)
    except (TypeError, ValueError):  # an integer too large to write, somewhere inside
        return f"<{type(value).__name__}>"
    return encoded if len(text) <= ECHO_MAX_CHARS else clip(text)


def bounded_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's ``{type, loc, msg, input, ctx}`` items with every part that echoes the
    request (the input, a key in ``loc``, the message) cut to a bounded slice."""
    out = []
    for item in errors:
        bounded: dict[str, Any] = {}
        for key, value in item.items():
            if key == "loc":
                bounded[key] = [clip(p) if isinstance(p, str) else _bounded(p) for p in value]
            elif key == "msg":
                bounded[key] = clip(str(value), MESSAGE_MAX_CHARS)
            elif key in ("type", "url"):
                bounded[key] = str(value)
            else:
                bounded[key] = _bounded(value)
        out.append(bounded)
    return out


_DECIMAL = re.compile(r"-?[0-9]+")  # a negative id is well-formed, and no alarm (404)


def decimal_alarm_id(request: Request) -> None:
    """A route dependency: the ``alarm_id`` in the path is a decimal integer and nothing else.
    Pydantic alone reads "1\x0b", " 1", "+1" (and other scripts' digits) as alarm 1, and the
    route would act on it; such an id is a 422 naming the parameter, as "abc" is."""
    raw = request.path_params.get("alarm_id")
    if raw is not None and not _DECIMAL.fullmatch(str(raw)):
        raise RequestValidationError(
            [
                {
                    "type": "int_parsing",
                    "loc": ("path", "alarm_id"),
                    "msg": "Input should be an alarm id in decimal digits",
                    "input": str(raw),
                }
            ]
        )


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """422 with FastAPI's documented shape, but never more than a slice of the input."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": bounded_errors(exc.errors())}, status_code=422)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an HTTPException, with a sentence cut to DETAIL_MAX_CHARS: a route
    that quotes a parameter should clip it itself; this is the backstop."""
    assert isinstance(exc, StarletteHTTPException)
    headers = getattr(exc, "headers", None)
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=headers)
    detail = exc.detail
    if isinstance(detail, str):
        detail = clip(detail, DETAIL_MAX_CHARS)
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error("no token, or a token nobody has"),
    403: error("the role or the enterprise scope does not allow it"),
    422: error("bad input: a parameter or body field, or an unknown query parameter, named"),
}


class HubStatus(Protocol):
    """What ``/readyz``, ``/metrics`` and ``/api/v1/system`` read of the running hub, read
    afresh on every call (the broker connection only exists once the hub has started)."""

    @property
    def mqtt_url(self) -> str | None: ...

    @property
    def mqtt_connected(self) -> bool: ...

    @property
    def storage(self) -> str:
        """The storage's description, e.g. ``embedded SQLite store <path>``."""
        ...

    @property
    def storage_error(self) -> str | None:
        """The sink's last write error; None while writes succeed."""
        ...

    @property
    def messages_processed(self) -> int: ...

    def problems(self) -> list[str]:
        """Why the hub is not making progress; empty when it is."""
        ...

    def spool_depth(self) -> SpoolDepth: ...

    def spool_has_room(self) -> bool: ...

    def dead_letters(self, limit: int) -> list[dict[str, object]]:
        """The latest ``limit`` dead-lettered batches, newest first."""
        ...

    def broker_round_trip(self) -> dict[str, object] | None:
        """The latest broker round trip measurement (runtime/broker_probe.py); None before
        the first or without an MQTT broker."""
        ...

    def refresh_gauges(self) -> None:
        """Bring the spool gauges up to date before a metrics scrape."""
        ...

    def ha(self) -> HaStatus | None:
        """This node's role in a redundant pair; None when the hub runs alone."""
        ...


class NotificationLog(Protocol):
    """The notifications the hub planned and sent (``GET /api/v1/notifications``)."""

    def recent(
        self,
        *,
        alarm_id: int | None = None,
        status: str | None = None,
        enterprise: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first; contact URLs redacted."""
        ...


class UplinkStatus(Protocol):
    """The provincial uplink's destinations (docs/uplink.md), for ``/api/v1/system``."""

    def states(self) -> list[dict[str, Any]]:
        """Per destination: name, transport, connected, backlog, oldest_age_s, sent,
        failed_attempts, rejected, dropped, down_since, last_success, last_error."""
        ...


class ProvinceViewer(Protocol):
    """Province mode's view of its parks (docs/province.md)."""

    def parks(self) -> list[dict[str, Any]]: ...

    def park(self, code: str) -> dict[str, Any] | None: ...

    def readings(self, code: str, enterprise: str | None = None) -> list[dict[str, Any]] | None: ...

    def counters(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class HubParts:
    """The parts of the running hub the routes use; ``app.state.hub_parts``."""

    alarm_service: AlarmService
    clock: Clock
    plant: Plant
    live: LiveTable
    history: HistoryStore
    system_alarms: SystemAlarms
    metrics_registry: CollectorRegistry
    status: HubStatus
    people: PeopleDirectory
    notifications: NotificationLog | None = None
    """None when notifications are off (SAFETY_HUB_NOTIFY=off)"""
    uplink: UplinkStatus | None = None
    """None without an uplink (SAFETY_HUB_UPLINK unset)"""
    province: ProvinceViewer | None = None
    """None unless SAFETY_HUB_PROVINCE=on"""


def get_hub_parts(request: Request) -> HubParts:
    parts: HubParts = request.app.state.hub_parts
    return parts


def get_alarm_service(request: Request) -> AlarmService:
    return get_hub_parts(request).alarm_service


def get_clock(request: Request) -> Clock:
    return get_hub_parts(request).clock


def get_plant(request: Request) -> Plant:
    return get_hub_parts(request).plant


def get_people(request: Request) -> PeopleDirectory:
    return get_hub_parts(request).people


def get_live_table(request: Request) -> LiveTable:
    return get_hub_parts(request).live


def get_history_store(request: Request) -> HistoryStore:
    return get_hub_parts(request).history


def get_system_alarms(request: Request) -> SystemAlarms:
    return get_hub_parts(request).system_alarms


def get_metrics_registry(request: Request) -> CollectorRegistry:
    return get_hub_parts(request).metrics_registry


def get_uplink_status(request: Request) -> UplinkStatus | None:
    return get_hub_parts(request).uplink


def get_province(request: Request) -> ProvinceViewer | None:
    return get_hub_parts(request).province


def get_hub_status(request: Request) -> HubStatus:
    return get_hub_parts(request).status


def get_notification_log(request: Request) -> NotificationLog | None:
    return get_hub_parts(request).notifications


def get_live_events(request: Request) -> LiveEvents:
    events: LiveEvents = request.app.state.events
    return events


def get_ping_interval_s(request: Request) -> float:
    """Seconds between ``ping`` events on a quiet event stream."""
    interval: float = request.app.state.ping_interval_s
    return interval


def get_authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


AlarmServiceDep = Annotated[AlarmService, Depends(get_alarm_service)]
ClockDep = Annotated[Clock, Depends(get_clock)]
PlantDep = Annotated[Plant, Depends(get_plant)]
PeopleDep = Annotated[PeopleDirectory, Depends(get_people)]
LiveTableDep = Annotated[LiveTable, Depends(get_live_table)]
HistoryStoreDep = Annotated[HistoryStore, Depends(get_history_store)]
SystemAlarmsDep = Annotated[SystemAlarms, Depends(get_system_alarms)]
MetricsRegistryDep = Annotated[CollectorRegistry, Depends(get_metrics_registry)]
HubStatusDep = Annotated[HubStatus, Depends(get_hub_status)]
ProvinceDep = Annotated[ProvinceViewer | None, Depends(get_province)]
UplinkStatusDep = Annotated[UplinkStatus | None, Depends(get_uplink_status)]
NotificationLogDep = Annotated[NotificationLog | None, Depends(get_notification_log)]
LiveEventsDep = Annotated[LiveEvents, Depends(get_live_events)]
PingIntervalDep = Annotated[float, Depends(get_ping_interval_s)]
AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]


def _authenticate(request: Request, token: str | None) -> Principal:
    auth = get_authenticator(request)
    if not token:
        raise HTTPException(
            401,
            "authentication required: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = auth.authenticate(token)
    if principal is None:
        raise HTTPException(
            401,
            "invalid token: no user has this token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    request.state.principal = principal
    return principal


def _query_names(app: Any) -> dict[tuple[str, str], frozenset[str]]:
    """(path, METHOD) -> the query parameters the OpenAPI document declares for it (with the
    security schemes that travel in the query)."""
    cached: dict[tuple[str, str], frozenset[str]] | None = getattr(app.state, "query_names", None)
    if cached is not None:
        return cached
    doc = app.openapi()
    schemes = doc.get("components", {}).get("securitySchemes", {})
    in_query = {k: v["name"] for k, v in schemes.items() if v.get("in") == "query"}
    out = {}
    for path, operations in doc.get("paths", {}).items():
        for method, op in operations.items():
            names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
            for requirement in op.get("security", []):
                names.update(in_query[k] for k in requirement if k in in_query)
            out[(path, method.upper())] = frozenset(names)
    app.state.query_names = out
    return out


def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the route does not take: a typo (``?enterprize=``) must not
    silently widen an answer."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    path = getattr(route, "path_format", None)
    method = "GET" if request.method == "HEAD" else request.method
    allowed = _query_names(request.app).get((path, method)) if path else None
    if allowed is None:
        return
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "none"
        named = ", ".join(repr(clip(name)) for name in unknown[:10])
        if len(unknown) > 10:
            named += f" and {len(unknown) - 10} more"
        raise HTTPException(
            422, f"unknown query parameter(s) {named}; {method} {path} takes: {takes}"
        )


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    principal = _authenticate(request, credentials.credentials if credentials else None)
    reject_unknown_query(request)
    return principal


def get_stream_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    access_token: Annotated[str | None, Depends(_query_token)],
) -> Principal:
    token = credentials.credentials if credentials else access_token
    principal = _authenticate(request, token)
    reject_unknown_query(request)
    return principal


def require_operator(
    request: Request, principal: Annotated[Principal, Depends(get_principal)]
) -> Principal:
    """An operator or admin, within the action rate limit (429 with Retry-After past it)."""
    if not principal.can(Role.OPERATOR):
        raise HTTPException(
            403, f"user {principal.user!r} is a {principal.role.value}: actions need an operator"
        )
    limiter: RateLimiter = request.app.state.limiter
    wait = limiter.take(principal.user)
    if wait > 0:
        raise HTTPException(
            429,
            f"too many actions by {principal.user!r}: at most {limiter.burst:g} at once and "
            f"{limiter.per_s * 60:g} a minute; retry in {wait:.1f} s",
            headers={"Retry-After": retry_after_header(wait)},
        )
    return principal


def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.can(Role.ADMIN):
        raise HTTPException(
            403, f"user {principal.user!r} is a {principal.role.value}: needs admin"
        )
    return principal


def require_park_wide(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if principal.enterprise is not None:
        raise HTTPException(
            403,
            f"user {principal.user!r} is scoped to enterprise {principal.enterprise!r}: "
            "this view covers the whole park",
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
StreamPrincipalDep = Annotated[Principal, Depends(get_stream_principal)]
OperatorDep = Annotated[Principal, Depends(require_operator)]
AdminDep = Annotated[Principal, Depends(require_admin)]
ParkWideDep = Annotated[Principal, Depends(require_park_wide)]


def scoped_enterprise(principal: Principal, enterprise: str | None) -> str | None:
    """The enterprise filter a request may use: its own for a scoped user (403 for another)."""
    if principal.enterprise is None:
        return enterprise
    if enterprise is not None and enterprise != principal.enterprise:
        raise HTTPException(
            403,
            f"user {principal.user!r} is scoped to enterprise {principal.enterprise!r}, "
            f"not {clip(enterprise)!r}",
        )
    return principal.enterprise


def check_enterprise(principal: Principal, enterprise: str) -> None:
    """403 when the path names an enterprise the user may not see."""
    scoped_enterprise(principal, enterprise)


class NotActiveError(Exception):
    """An action sent to the standby node of a redundant pair (409), or while no node is
    active (503); the answer names the active node and its API (docs/api.md, "Redundant pair")."""

    def __init__(self, status: HaStatus) -> None:
        self.status = status
        if status.active_node is None:
            self.status_code = 503
            detail = (
                f"node {status.node_id} is standby and no node of the pair is active now; "
                "retry once one has taken over"
            )
        else:
            self.status_code = 409
            where = status.active_api_url or "its API (no SAFETY_HUB_API_PUBLIC_URL set)"
            detail = (
                f"node {status.node_id} is standby: actions go to the active node "
                f"{status.active_node} at {where}"
            )
        super().__init__(detail)
        self.detail = detail


def require_active_node(
    request: Request, principal: Annotated[Principal, Depends(get_principal)]
) -> None:
    """For the routers that change state: only the active node of a redundant pair acts (reads
    pass). Authentication comes first, so an unknown caller learns nothing of the pair."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    status = get_hub_status(request).ha()
    if status is None or status.token is not None:
        return
    raise NotActiveError(status)


async def not_active_handler(request: Request, exc: Exception) -> Response:
    """409/503 with the active node's name and API URL, and a ``Location`` on it when known."""
    assert isinstance(exc, NotActiveError)
    status = exc.status
    headers: dict[str, str] = {}
    if exc.status_code == 409 and status.active_api_url:
        target = status.active_api_url.rstrip("/") + request.url.path
        if request.url.query:
            target += "?" + request.url.query
        headers["Location"] = target
    else:
        headers["Retry-After"] = "2"
    return JSONResponse(
        {
            "detail": exc.detail,
            "node_id": status.node_id,
            "role": status.role,
            "active_node": status.active_node,
            "active_api_url": status.active_api_url,
        },
        status_code=exc.status_code,
        headers=headers,
    )
