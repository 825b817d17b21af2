"""The FastAPI application, built by `create_app(settings)` (no import-time singletons)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors, metrics, web
from api.auth import TokenStore
from api.pacing import Pacing
from api.routes import audit, documents, health, lists, ops, parcels, reports, tasks
from api.routes import rules as rule_routes
from api.web.routes import install as install_workbench
from documents import open_store
from landflow import signing, vocabulary
from landflow.settings import Settings, get_settings
from registry.engine import make_engine
from registry.migrate import upgrade
from rules import gb_standards
from rules.engine import RulesEngine
from rules.policy_file import load_policy

JSON_TYPES = ("application/json", "application/merge-patch+json")
UPLOAD_PATH_SUFFIX = "/documents"  # multipart uploads (POST /parcels/{id}/documents)
FORM_TYPES = web.FORM_TYPES  # the workbench's form posts under /ui/ (urlencoded or multipart)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        # SIGHUP re-reads the tokens file at once (it is also watched); not in tests,
        # where the app runs off the main thread.
        with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, app.state.tokens.reload)
        yield
        app.state.engine.dispose()

    app = FastAPI(
        title="landflow",
        version="0.2.0",
        summary="Approving land-use change on possibly contaminated land, one parcel "
        "workflow at a time (Soil Pollution Prevention Law, Beijing soil work plan).",
        lifespan=lifespan,
    )
    vocabulary.add_districts(settings.extra_districts)
    gb_standards.preload()
    app.state.settings = settings
    app.state.tokens = TokenStore.from_file(settings.tokens_file, settings.tokens_reload_s)
    app.state.ring = signing.KeyRing.from_secrets(settings.actor_key, settings.actor_keys_previous)
    app.state.engine = make_engine(settings.database_url)
    upgrade(app.state.engine)
    app.state.rules = RulesEngine(settings.rules_dir)
    app.state.policy = load_policy(settings.policy_file)
    app.state.store = open_store(
        settings.documents_location, endpoint_url=settings.documents_endpoint or None
    )
    app.state.temporal = None
    app.state.temporal_lock = asyncio.Lock()
    app.state.pacing = Pacing()

    app.add_middleware(RequestGuard, settings=settings)

    errors.install(app)
    metrics.install(app)
    for module in (health, ops, parcels, tasks, lists, rule_routes, audit, reports, documents):
        app.include_router(module.router)
    install_workbench(app)
    errors.document(app, extra_schemas=parcels.action_schemas())
    return app


class RequestGuard:
    """Refuse oversized headers and bodies, and bodies of the wrong type, before anything
    parses them. Plain ASGI (not `@app.middleware`, whose task group and streaming cost
    about a millisecond of every request): the body read here is handed on as it came."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal, body = self._refuse_headers(scope), None
        if refusal is None and scope["method"] in ("POST", "PUT", "PATCH"):
            request = Request(scope, receive)
            path = request.url.path
            upload = path.endswith(UPLOAD_PATH_SUFFIX)
            form = path.startswith(web.PREFIX)
            limit = self.settings.max_body_bytes
            if upload:
                limit = self.settings.max_document_bytes + 65_536
            if form:
                limit = web.form_limit(self.settings.max_document_bytes)
            refusal = await _read_bounded(request, limit, upload, form)
            body = request._body if refusal is None else None
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive if body is None else _replay(body, receive), send)

    def _refuse_headers(self, scope: Scope) -> JSONResponse | None:
        header_bytes = sum(len(k) + len(v) for k, v in scope["headers"])
        if header_bytes <= self.settings.max_header_bytes:
            return None
        return _refuse(
            431,
            "HeadersTooLarge",
            f"the request headers are {header_bytes} bytes; "
            f"at most {self.settings.max_header_bytes}",
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, as one message; then what the client sends (a disconnect)."""
    pending = [body]

    async def replayed() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return await receive()

    return replayed


def _refuse(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status)


async def _read_bounded(
    request: Request, limit: int, upload: bool, form: bool = False
) -> JSONResponse | None:
    """Read the body, stopping as soon as it passes `limit` bytes (a chunked upload may
    not say its length); keep it for the route. Returns the refusal, if any."""
    too_large = _refuse(413, "TooLarge", f"the body exceeds {limit} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return too_large
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if upload and kind != "multipart/form-data":
        return _refuse(415, "UnsupportedMediaType", "upload a document as multipart/form-data")
    if form and kind not in FORM_TYPES:
        return _refuse(415, "UnsupportedMediaType", "post a workbench form as a browser does")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return too_large
        chunks.append(chunk)
    request._body = b"".join(chunks)  # what Request.body() caches; routes read it from there
    if size and not upload and not form and kind not in JSON_TYPES:
        return _refuse(415, "UnsupportedMediaType", "send the body as application/json")
    return None
