"""The FastAPI application; its lifespan owns the hub (pipeline and connections)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from safety_hub import __version__
from safety_hub.api.routes import alarms, health, system, tags
from safety_hub.hub import Hub


def create_app(hub: Hub, *, manage_hub: bool = True) -> FastAPI:
    """An app serving ``hub``; with ``manage_hub`` the app starts and stops it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_hub and not hub.started:
            hub.start()
        try:
            yield
        finally:
            if manage_hub:
                hub.stop()

    app = FastAPI(
        title="safety-hub",
        version=__version__,
        summary="Hazardous-chemicals safety monitoring hub: telemetry, live values, history",
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.include_router(health.router)
    app.include_router(tags.router)
    app.include_router(system.router)
    app.include_router(alarms.router)
    return app
