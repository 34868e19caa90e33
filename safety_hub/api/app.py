"""The FastAPI application; its lifespan owns the hub (pipeline and connections).

This module and the CLI are the only ones that know the whole :class:`Hub`: the app hands the
routes (through :mod:`safety_hub.api.deps`) the parts they use, and the event fan-out the
alarm service, the ingest worker and the live table.

Around the routes, two plain ASGI middlewares (not ``BaseHTTPMiddleware``, which would buffer
and break the event stream): a request-body limit and the security headers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from safety_hub import __version__
from safety_hub.api.auth import Authenticator, RateLimiter
from safety_hub.api.deps import (
    HubParts,
    NotActiveError,
    http_error_handler,
    not_active_handler,
    require_active_node,
    validation_error_handler,
)
from safety_hub.api.events import LiveEvents
from safety_hub.api.routes import (
    alarms,
    disposals,
    health,
    notifications,
    people,
    plant,
    province,
    stream,
    system,
    tags,
    users,
)
from safety_hub.console import STATIC_DIR
from safety_hub.errors import StateDatabaseError
from safety_hub.ingest.spool import SpoolDepth
from safety_hub.runtime.ha import HaStatus
from safety_hub.runtime.hub import Hub

PING_INTERVAL_S = 15.0

# The console is one origin's own scripts, styles and images (no inline script or style, no
# data: URIs, no web fonts); its fetch and EventSource calls go to the same origin. Nobody may
# frame it: an operator's click on "acknowledge" must be the operator's.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# FastAPI's /docs and /redoc pages load their viewer from a CDN with an inline script: they
# keep only the framing rule.
DOCS_CONTENT_SECURITY_POLICY = "frame-ancestors 'none'"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """Adds the security headers to every HTTP answer (a route's own value wins)."""

    def __init__(self, app: ASGIApp, docs_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = (
            DOCS_CONTENT_SECURITY_POLICY
            if scope["path"] in self.docs_paths
            else CONTENT_SECURITY_POLICY
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", policy)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLarge(Exception):
    """Raised into the app from ``receive`` when a streamed body passes the limit."""


class BodyLimit:
    """413 for a request body larger than ``max_bytes``: at once when Content-Length says so,
    or as soon as a body without one (chunked) passes the limit, counting as it arrives, so
    the hub never holds more than the limit of any request."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, f"{declared} bytes")
            return
        received = 0
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a body it could not read: the 413 goes instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if started:
                raise
        if over and not started:
            await self._refuse(send, f"more than {self.max_bytes} bytes")

    async def _refuse(self, send: Send, size: str) -> None:
        body = json.dumps(
            {
                "detail": f"request body too large: {size}; the limit is {self.max_bytes} "
                "bytes (SAFETY_HUB_API_MAX_BODY_BYTES)"
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is not read: the connection cannot carry another
                    # request.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            if not (text.isascii() and text.isdigit()):
                return None  # the server refuses a malformed one; the counting still holds
            return int(text) if len(text) <= 18 else 10**18  # past any limit either way
    return None


class HubStatusView:
    """:class:`~safety_hub.api.deps.HubStatus` read from the hub's public attributes on every
    call: the source and the broker URL only exist once the hub has started."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    @property
    def mqtt_url(self) -> str | None:
        return self._hub.mqtt_url

    @property
    def mqtt_connected(self) -> bool:
        source = self._hub.source
        return bool(source is not None and source.connected)

    @property
    def storage(self) -> str:
        return self._hub.storage.description

    @property
    def storage_error(self) -> str | None:
        return self._hub.sink_worker.last_error

    @property
    def messages_processed(self) -> int:
        return self._hub.ingest.processed_messages

    def problems(self) -> list[str]:
        return self._hub.problems()

    def spool_depth(self) -> SpoolDepth:
        return self._hub.spool.depth()

    def spool_has_room(self) -> bool:
        return self._hub.spool.has_room()

    def dead_letters(self, limit: int) -> list[dict[str, object]]:
        return self._hub.spool.dead_letters(limit)

    def broker_round_trip(self) -> dict[str, object] | None:
        probe = self._hub.broker_probe
        return None if probe is None else probe.as_dict()

    def refresh_gauges(self) -> None:
        self._hub.sink_worker.update_gauges()

    def ha(self) -> HaStatus | None:
        return None if self._hub.ha is None else self._hub.ha.status()


async def state_database_handler(request: Request, exc: Exception) -> Response:
    """503 naming the state database's problem, not a 500: the hub's PostgreSQL is away (or
    was restarted); the request may be retried, and the store reconnects by itself."""
    detail = str(exc) if isinstance(exc, StateDatabaseError) else "state database unreachable"
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "2"})


def hub_parts(hub: Hub) -> HubParts:
    """The parts of ``hub`` the routes may use."""
    return HubParts(
        alarm_service=hub.alarms.service,
        clock=hub.clock,
        plant=hub.plant,
        live=hub.live,
        history=hub.storage.history,
        system_alarms=hub.system_alarms,
        metrics_registry=hub.metrics.registry,
        status=HubStatusView(hub),
        notifications=hub.notifications,
        people=hub.people,
        uplink=hub.uplink,
        province=hub.province,
    )


def _include_routers(app: FastAPI) -> None:
    app.include_router(health.router)
    app.include_router(users.router)
    app.include_router(plant.router)
    app.include_router(people.router)
    app.include_router(tags.router)
    app.include_router(system.router)
    app.include_router(province.router)
    # The routers with actions: on the standby node of a redundant pair they answer 409/503
    # naming the active node (reads pass); every other router only reads.
    acting = [Depends(require_active_node)]
    app.include_router(alarms.router, dependencies=acting)
    app.include_router(disposals.router, dependencies=acting)
    app.include_router(stream.router)
    app.include_router(notifications.router)


def create_app(
    hub: Hub,
    *,
    manage_hub: bool = True,
    auth: Authenticator | None = None,
    ping_interval_s: float = PING_INTERVAL_S,
) -> FastAPI:
    """An app serving ``hub``; with ``manage_hub`` the app starts and stops it.

    ``auth`` defaults to what the hub's settings ask for (:meth:`Authenticator.from_settings`,
    which refuses a hub outside local mode without credentials).
    """
    settings = hub.settings
    if auth is None:
        auth = Authenticator.from_settings(settings, hub.plant.enterprises)
    events = LiveEvents(alarm_service=hub.alarms.service, readings=hub.ingest, live=hub.live)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_hub and not hub.started:
            hub.start()
        try:
            yield
        finally:
            events.close()
            if manage_hub:
                hub.stop()

    app = FastAPI(
        title="safety-hub",
        version=__version__,
        summary="Hazardous-chemicals safety monitoring hub: telemetry, live values, history, "
        "alarms and the operator console",
        description="Every `/api/v1` route needs `Authorization: Bearer <token>` (docs/api.md).",
        lifespan=lifespan,
    )
    app.state.hub_parts = hub_parts(hub)
    app.state.auth = auth
    app.state.limiter = RateLimiter(settings.action_rate_per_min, settings.action_burst)
    app.state.events = events
    app.state.ping_interval_s = ping_interval_s
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(NotActiveError, not_active_handler)
    app.add_exception_handler(StateDatabaseError, state_database_handler)
    # Middlewares added later wrap the earlier ones: the 413 gets the CORS and security headers.
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    origins = settings.cors_origin_list
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["X-Total-Count", "Retry-After"],
            max_age=600,
        )
    docs = (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(SecurityHeaders, docs_paths=[p for p in docs if p])
    _include_routers(app)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/")

    # The console's static files (safety_hub/console/static, package data); html=True serves
    # index.html for /console/.
    app.mount(
        "/console",
        StaticFiles(directory=STATIC_DIR, html=True, check_dir=False),
        name="console",
    )
    return app
