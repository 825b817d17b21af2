"""Domain and engine errors mapped to HTTP once, here, for every route."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, message: str, fields: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.fields = status, error, message, fields


def not_found(what: str) -> ApiError:
    return ApiError(404, "NotFound", f"{what} not found")


def unavailable(part: str) -> ApiError:
    return ApiError(
        503,
        "Unavailable",
        f"{part} is not reachable right now; nothing was "
        "applied, retry later (with the same Idempotency-Key)",
    )


# ApplicationError types raised by the workflow gate, and their HTTP status.
GATE_STATUS = {
    "WrongRole": 403,
    "WrongDistrict": 403,
    "WrongStage": 409,
    "InvalidBody": 422,
    "UnknownAction": 404,
}


def from_update_failure(exc: WorkflowUpdateFailedError) -> ApiError:
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.type in GATE_STATUS:
        fields = cause.details[0] if cause.details else None
        return ApiError(GATE_STATUS[cause.type], cause.type, cause.message, fields)
    return ApiError(500, "ActionFailed", str(cause or exc))


def from_temporal(exc: Exception, what: str) -> ApiError:
    if isinstance(exc, WorkflowUpdateFailedError):
        return from_update_failure(exc)
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        return unavailable("the workflow worker")
    if isinstance(exc, RPCError):
        if exc.status == RPCStatusCode.NOT_FOUND:
            return not_found(what)
        if exc.status in (
            RPCStatusCode.DEADLINE_EXCEEDED,
            RPCStatusCode.UNAVAILABLE,
            RPCStatusCode.CANCELLED,
        ):
            return unavailable("the workflow engine")
    raise exc


def _body(exc: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": exc.error, "detail": exc.message}
    if exc.fields:
        body["fields"] = exc.fields
    return body


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(_body(exc), status_code=exc.status, headers=headers)
