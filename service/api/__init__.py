"""The hwnas HTTP API (FastAPI). ``create_app`` builds it over an open installation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from service.api.errors import install_error_handlers
from service.api.routers import devices, query, searches, supernets
from service.db import schema_status
from service.runtime import Runtime

__all__ = ["create_app"]


def create_app(rt: Runtime) -> FastAPI:
    """The API over ``rt``; the caller owns ``rt`` and closes it after the app stops."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(
        title="hwnas",
        version="0.1.0",
        description="Hardware-aware neural architecture search service.",
        lifespan=lifespan,
    )
    app.state.runtime = rt
    from service.orchestration.device_latency import check_budget

    app.state.latency_check = check_budget
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        status = schema_status(rt.engine)
        return {"status": "ok" if status.state == "current" else "degraded", "schema": status.state}

    for module in (devices, supernets, searches, query):
        app.include_router(module.router)
    return app
