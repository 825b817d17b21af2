"""Domain and engine errors mapped to HTTP once, here, for every route."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import (
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from documents.store import StoreUnavailable
from landflow.messages import Refusal

log = logging.getLogger("landflow.api")
T = TypeVar("T")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        fields: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.fields = status, error, message, fields
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    return ApiError(404, "NotFound", f"{what} not found")


def unavailable(part: str) -> ApiError:
    # An action that timed out may still be applied once the worker is back (Temporal
    # keeps the update), so the honest advice is the same key, not "nothing happened".
    return ApiError(
        503,
        "Unavailable",
        f"{part} did not answer in time; retry later. An action sent meanwhile may still "
        "be applied: retry it with the same Idempotency-Key, which applies it at most once "
        "and returns its outcome",
    )


async def within(call: Awaitable[T], seconds: float, part: str = "the workflow engine") -> T:
    """Answer 503 after `seconds` even while the Temporal client keeps retrying an
    unreachable server (its own retries run past `rpc_timeout`)."""
    try:
        return await asyncio.wait_for(call, seconds)
    except TimeoutError:
        raise unavailable(part) from None


# Why the workflow gate refused an action (landflow.messages.Refusal), as HTTP.
GATE_STATUS: dict[str, int] = {
    Refusal.bad_signature: 403,
    Refusal.unknown_action: 404,
    Refusal.wrong_role: 403,
    Refusal.wrong_district: 403,
    Refusal.wrong_party: 403,
    Refusal.parcel_closed: 409,
    Refusal.wrong_stage: 409,
    Refusal.stale_visit: 409,
    Refusal.idempotency_conflict: 409,
    Refusal.already_applied: 200,
    Refusal.invalid_body: 422,
    Refusal.too_large: 413,
    Refusal.history_budget: 413,
}
RETRY_AFTER_S = 1  # what a 429 asks the client to wait


def from_gate(error: ApplicationError) -> ApiError:
    """A refusal by workflows.gate (in the update validator, or run here on a closed parcel)."""
    fields = error.details[0] if error.details else None
    return ApiError(GATE_STATUS[error.type or ""], error.type or "", error.message, fields)


def from_update_failure(exc: WorkflowUpdateFailedError) -> ApiError:
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.type in GATE_STATUS:
        return from_gate(cause)
    log.error("an accepted action failed in the workflow: %s", cause or exc)
    return ApiError(500, "ActionFailed", "the action failed in the workflow; it is logged")


def busy(what: str) -> ApiError:
    """Backpressure: Temporal admits 10 updates in flight per workflow (RESOURCE_EXHAUSTED)."""
    return ApiError(
        429,
        "Busy",
        f"{what} is busy with other actions; retry after {RETRY_AFTER_S}s (with the same "
        "Idempotency-Key, which applies an action at most once)",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def from_temporal(exc: Exception, what: str) -> ApiError:
    if isinstance(exc, WorkflowUpdateFailedError):
        return from_update_failure(exc)
    if isinstance(exc, WorkflowQueryFailedError):
        # The worker could not answer from the parcel's history (a replay that fails, a
        # worker on other code): an outage of this parcel for ops, not the caller's fault.
        log.error("query failed for %s: %s", what, exc)
        return ApiError(
            503,
            "Unavailable",
            f"the workflow worker could not read {what} from its history; ops are alerted "
            "in the worker's log. Retry later",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        return unavailable("the workflow engine or its worker")
    if isinstance(exc, RPCError):
        if exc.status == RPCStatusCode.NOT_FOUND:
            return not_found(what)
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.FAILED_PRECONDITION):
            # a query no worker took, or "no poller seen for task queue recently"
            return unavailable("the workflow engine or its worker")
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.CANCELLED):
            return unavailable("the workflow engine")
        if exc.status == RPCStatusCode.RESOURCE_EXHAUSTED:
            return busy(what)
    raise exc


def _body(exc: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": exc.error, "detail": exc.message}
    if exc.fields:
        body["fields"] = exc.fields
    return body


def body_problem(exc: BaseException) -> str:
    """Why a request body could not be read as JSON, in words a client can act on."""
    if isinstance(exc, UnicodeDecodeError):
        return "the body is not valid UTF-8"
    if isinstance(exc, RecursionError):
        return "the JSON body is nested too deeply"
    return f"the body is not valid JSON: {exc}"


def _field(loc: tuple[Any, ...]) -> str:
    """`("body", "polluter", "name")` -> `polluter.name`; `("query", "stage")` -> `stage`."""
    parts = [str(p) for p in loc]
    if len(parts) == 2 and parts[0] == "header":  # as the client writes it: If-Match
        return "-".join(word.capitalize() for word in parts[1].replace("_", "-").split("-"))
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        return ".".join(parts[1:]) or parts[0]
    return ".".join(parts) or "body"


def from_validation(exc: RequestValidationError) -> ApiError:
    fields = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            reason = f"the body is not valid JSON: {err.get('ctx', {}).get('error', '')}"
            fields.append({"field": "body", "reason": reason.rstrip(": ")})
        else:
            fields.append({"field": _field(tuple(err.get("loc", ()))), "reason": err["msg"]})
    in_body = all(str(next(iter(e.get("loc", ())), "body")) == "body" for e in exc.errors())
    listed = "; ".join(f"{f['field']}: {f['reason']}" for f in fields[:5])
    return ApiError(
        422, "InvalidBody" if in_body else "InvalidRequest", f"invalid request: {listed}", fields
    )


def from_http(exc: HTTPException) -> ApiError:
    """Starlette/FastAPI's own errors (unknown path, wrong method, unreadable body)."""
    if exc.status_code == 400:
        # FastAPI could not parse the JSON body (invalid UTF-8, nesting too deep), or
        # Starlette a multipart one (it raises its 400 without a cause).
        if exc.__cause__ is not None:
            reason = body_problem(exc.__cause__)
        else:
            reason = f"the body cannot be read: {exc.detail}"
        return ApiError(422, "InvalidBody", reason, [{"field": "body", "reason": reason}])
    phrase = HTTPStatus(exc.status_code).phrase
    return ApiError(exc.status_code, phrase.title().replace(" ", ""), str(exc.detail))


def _respond(exc: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = {**exc.headers, **(headers or {})}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(_body(exc), status_code=exc.status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _respond(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _respond(from_validation(exc))

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        return _respond(from_http(exc), dict(exc.headers) if exc.headers else None)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        # Nothing was recorded (the store writes before the registry does). The cause names
        # server paths: for the log, not the client.
        log.error("document store unavailable: %s", exc)
        detail = "the document store is unavailable; nothing was stored, retry later"
        return _respond(ApiError(503, "Unavailable", detail, headers={"Retry-After": "5"}))

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(_request: Request, exc: PoolTimeout) -> JSONResponse:
        return _respond(registry_busy(exc))

    app.add_middleware(ContainErrors)


def registry_busy(exc: PoolTimeout) -> ApiError:
    """Every registry connection stayed in use for the pool's whole timeout: load, not a
    fault of the request, so 503 with Retry-After as for any part that did not answer."""
    log.error("registry connection pool exhausted: %s", exc)
    detail = (
        "the registry had no free connection (too many requests at once); retry later, an "
        "action with the same Idempotency-Key, which applies it at most once"
    )
    return ApiError(503, "Unavailable", detail, headers={"Retry-After": str(RETRY_AFTER_S)})


class ContainErrors:
    """An unexpected error becomes a 500 ErrorOut here, inside the app, so the server
    keeps the connection (Starlette's outermost handler answers too, but then re-raises,
    and uvicorn resets a keep-alive connection). Logged without headers or body: they may
    carry tokens and personal data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            log.error(
                "unexpected %s on %s %s",
                type(exc).__name__,
                scope["method"],
                scope["path"],
                exc_info=exc,
            )
            if started:
                raise
            error = ApiError(500, "Internal", "an unexpected error occurred; it is logged")
            await _respond(error)(scope, receive, send)


# --- the same errors, declared in the OpenAPI document --------------------------------

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "ErrorOut",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "a stable word: WrongRole, WrongStage, ..."},
        "detail": {"type": "string"},
        "fields": {
            "type": "array",
            "items": {"type": "object"},
            "description": "one entry per bad field: {field, reason}",
        },
    },
}

_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}


def _statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """The error answers an operation can give, read from what it takes."""
    codes: set[int] = set()
    if operation.get("security"):  # a caller: who may be unknown (401), out of role
        codes |= {401, 403, 503}  # (403), or need Temporal while it is down (503)
    if method in ("post", "put", "patch"):
        codes |= {413, 415, 422}
    places = {p.get("in") for p in operation.get("parameters", [])}
    if "path" in places:
        codes.add(404)
    if places or "requestBody" in operation:
        codes.add(422)
    return codes


def _declare(schema: dict[str, Any]) -> None:
    for path in schema.get("paths", {}).values():
        for method, operation in path.items():
            answers = operation.setdefault("responses", {})
            declared = {int(c) for c in answers if c.isdigit() and int(c) >= 400}
            for code in sorted(declared | _statuses(method, operation)):
                described = answers.get(str(code), {}).get("description")
                answers[str(code)] = {
                    "description": described or HTTPStatus(code).phrase,
                    "content": _ERROR_CONTENT,
                }


def document(app: FastAPI, extra_schemas: dict[str, Any] | None = None) -> None:
    """Declare, for every operation, every error answer it can give, as ErrorOut.

    Routes declare their domain errors (409, ...) themselves; the common ones are added
    here from what each operation takes. FastAPI's own 422 model is replaced, since the
    handlers above answer every error as ErrorOut.
    """

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["ErrorOut"] = ERROR_SCHEMA
            components.update(extra_schemas or {})
            _declare(schema)
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
