"""The FastAPI application; its lifespan owns the hub (pipeline and connections)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from safety_hub import __version__
from safety_hub.api.auth import Authenticator, RateLimiter
from safety_hub.api.events import LiveEvents
from safety_hub.api.routes import alarms, health, plant, stream, system, tags, users
from safety_hub.console import STATIC_DIR
from safety_hub.hub import Hub

PING_INTERVAL_S = 15.0


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
    events = LiveEvents(hub)

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
    app.state.hub = hub
    app.state.auth = auth
    app.state.limiter = RateLimiter(settings.action_rate_per_min, settings.action_burst)
    app.state.events = events
    app.state.ping_interval_s = ping_interval_s
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
    app.include_router(health.router)
    app.include_router(users.router)
    app.include_router(plant.router)
    app.include_router(tags.router)
    app.include_router(system.router)
    app.include_router(alarms.router)
    app.include_router(stream.router)

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
