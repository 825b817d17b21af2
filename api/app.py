"""The FastAPI application, built by `create_app(settings)` (no import-time singletons)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from api import errors
from api.auth import TokenStore
from api.routes import audit, health, lists, ops, parcels, reports, tasks
from api.routes import rules as rule_routes
from landflow import metrics, registry
from landflow.settings import Settings, get_settings
from rules import gb_standards
from rules.engine import RulesEngine

JSON_TYPES = ("application/json", "application/merge-patch+json")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.engine.dispose()

    app = FastAPI(
        title="landflow",
        version="0.1.0",
        summary="Approving land-use change on possibly contaminated land, one parcel "
        "workflow at a time (Beijing soil work plan, Soil Pollution Prevention Law).",
        lifespan=lifespan,
    )
    gb_standards.preload()
    app.state.settings = settings
    app.state.tokens = TokenStore.from_file(settings.tokens_file)
    app.state.engine = registry.make_engine(settings.database_url)
    registry.create_schema(app.state.engine)
    app.state.rules = RulesEngine(settings.rules_dir)
    app.state.temporal = None
    app.state.temporal_lock = asyncio.Lock()

    @app.middleware("http")
    async def guard_body(request: Request, call_next):
        """Refuse oversized and non-JSON bodies before anything parses them."""
        if request.method in ("POST", "PUT", "PATCH"):
            refusal = await _read_bounded(request, settings.max_body_bytes)
            if refusal is not None:
                return refusal
        response: Response = await call_next(request)
        return response

    errors.install(app)
    metrics.install(app)
    for module in (health, ops, parcels, tasks, lists, rule_routes, audit, reports):
        app.include_router(module.router)
    errors.document(app)
    return app


def _refuse(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status)


async def _read_bounded(request: Request, limit: int) -> JSONResponse | None:
    """Read the body, stopping as soon as it passes `limit` bytes (a chunked upload may
    not say its length); keep it for the route. Returns the refusal, if any."""
    too_large = _refuse(413, "TooLarge", f"the body exceeds {limit} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return too_large
        chunks.append(chunk)
    request._body = b"".join(chunks)  # what Request.body() caches; routes read it from there
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if size and kind not in JSON_TYPES:
        return _refuse(415, "UnsupportedMediaType", "send the body as application/json")
    return None
