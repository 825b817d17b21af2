"""Readiness and metrics for ops (liveness is /healthz in health.py).

`/readyz` answers 200 only when both the database and Temporal answer within a few
seconds, else 503 naming each failing part; `/metrics` is Prometheus text.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.service import RPCError

from api.deps import get_temporal
from api.errors import ApiError
from registry import queries

router = APIRouter(tags=["ops"])
log = logging.getLogger("landflow.ready")
READY_TIMEOUT_S = 3.0


PARTS = ("database", "registry", "temporal")


@router.get("/readyz", responses={503: {"description": "a part is not reachable"}})
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database and Temporal answer and the registry is not known to be
    behind the engine (a rebuild due or running)."""
    database, temporal = await asyncio.gather(
        database_problem(request.app.state.engine), temporal_problem(request)
    )
    registry = (
        None if database else await asyncio.to_thread(registry_problem, request.app.state.engine)
    )
    found = (("database", database), ("registry", registry), ("temporal", temporal))
    problems = {part: p for part, p in found if p}
    checks = {part: problems.get(part, "ok") for part in PARTS}
    if not problems:
        return JSONResponse({"status": "ready", "checks": checks})
    detail = "; ".join(f"{part}: {problem}" for part, problem in problems.items())
    log.warning("not ready: %s", detail)
    body = {
        "status": "unavailable",
        "error": "NotReady",
        "detail": f"not ready: {detail}",
        "failing": list(problems),
        "checks": checks,
    }
    return JSONResponse(body, 503)


async def database_problem(engine: Engine) -> str | None:
    def select_one() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(asyncio.to_thread(select_one), READY_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {READY_TIMEOUT_S:g}s"
    except SQLAlchemyError as exc:
        log.warning("database check failed: %s", exc)
        return f"unreachable ({type(exc).__name__})"
    return None


def registry_problem(engine: Engine) -> str | None:
    """The registry's own record of being behind (migration 0003, the worker's start-up
    check, `landflow registry rebuild`)."""
    with Session(engine) as session:
        status = queries.status(session, key="rebuild")
    if status is None or status.value == "done":
        return None
    detail = status.detail or "no detail"
    return f"behind the engine: rebuild {status.value} ({detail}); see `landflow registry rebuild`"


async def temporal_problem(request: Request) -> str | None:
    try:
        client = await asyncio.wait_for(get_temporal(request), READY_TIMEOUT_S)
        await client.workflow_service.get_system_info(
            GetSystemInfoRequest(), timeout=timedelta(seconds=READY_TIMEOUT_S)
        )
    except TimeoutError:
        return f"no answer within {READY_TIMEOUT_S:g}s"
    except (ApiError, RPCError, RuntimeError) as exc:
        log.warning("temporal check failed: %s", exc)
        return f"unreachable at {request.app.state.settings.temporal_address}"
    return None


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text; a plain function, so the registry query runs in the thread pool."""
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)
