"""Auditors: a parcel's event history, replay against today's code, and the decision trail.

All three read Temporal's event history, never the registry: the registry is a
convenience copy that anyone with database access could edit.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from temporalio.service import RPCError

from api.deps import get_temporal, require
from api.errors import ApiError, from_temporal
from api.schemas import error_responses
from audit import render
from audit import replay as audit_replay
from audit import trail as audit_trail
from landflow.messages import Actor, workflow_id
from landflow.vocabulary import Role
from workflows import history as audit_history

router = APIRouter(prefix="/parcels", tags=["audit"])

ERRORS = error_responses(401, 403, 404, 422, 503)
Auditor = Annotated[Actor, Depends(require(Role.auditor))]
AuditorOrOps = Annotated[Actor, Depends(require(Role.auditor, Role.ops))]


async def parcel_history(request: Request, parcel_id: str) -> audit_history.ParcelHistory:
    """Every run of parcel-<id> from the server; 404 for an unknown or malformed id."""
    if not audit_history.is_parcel_id(parcel_id):
        raise ApiError(404, "NotFound", f"parcel {parcel_id[:64]} not found")
    client = await get_temporal(request)
    try:
        return await audit_history.fetch_history(client, parcel_id)
    except RPCError as exc:
        raise from_temporal(exc, f"parcel {parcel_id}") from exc


@router.get(
    "/{parcel_id}/history",
    responses={**ERRORS, 200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def history(request: Request, parcel_id: str, _caller: AuditorOrOps) -> Response:
    """The full event history, as `temporal workflow show --output json` prints it, all runs.

    The body is the canonical JSON whose SHA-256 a trail shows (`sha256sum` it)."""
    found = await parcel_history(request, parcel_id)
    return Response(
        found.canonical(),
        media_type="application/json",
        headers={"X-History-SHA256": found.sha256()},
    )


@router.post(
    "/{parcel_id}/replay",
    response_model=audit_replay.ReplayVerdict,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def replay(request: Request, parcel_id: str, _caller: Auditor) -> audit_replay.ReplayVerdict:
    """Replay the parcel's history against the workflow code this API runs.

    Without a body the server's history is replayed; with an exported history as the
    body (`{"events": [...]}`), that file is checked instead, so an auditor can verify
    the copy they hold."""
    raw = await request.body()
    if raw:
        found = _uploaded(raw, parcel_id)
    else:
        found = await parcel_history(request, parcel_id)
    return await audit_replay.replay(found, workflow_id(parcel_id))


def _uploaded(raw: bytes, parcel_id: str) -> audit_history.ParcelHistory:
    try:
        found = audit_history.ParcelHistory.from_json(raw)
        owner = found.workflow_id()
    except audit_history.HistoryFormatError as exc:
        raise ApiError(
            422, "InvalidBody", str(exc), [{"field": "body", "reason": str(exc)}]
        ) from None
    if owner != workflow_id(parcel_id):
        reason = f"this history belongs to {owner}, not {workflow_id(parcel_id)}"
        raise ApiError(422, "InvalidBody", reason, [{"field": "body", "reason": reason}])
    return found


@router.get(
    "/{parcel_id}/trail",
    response_model=audit_trail.Trail,
    responses={**ERRORS, 200: {"content": {"text/html": {}}}},
)
async def trail(request: Request, parcel_id: str, _caller: Auditor) -> Any:
    """The decision trail built from the history alone: JSON, or a printable page when the
    client prefers text/html (a browser does)."""
    built = audit_trail.build_trail(
        await parcel_history(request, parcel_id), workflow_id(parcel_id)
    )
    if prefers_html(request.headers.get("accept", "")):
        return HTMLResponse(templates().get_template("trail.html").render(trail=built))
    return built


def _quality(accept: str, media_type: str) -> float:
    """The q-value the Accept header gives `media_type` (exact, then type/*, then */*)."""
    kind = media_type.split("/")[0]
    best: dict[str, float] = {}
    for part in accept.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best[name.lower()] = max(q, best.get(name.lower(), 0.0))
    for candidate in (media_type, f"{kind}/*", "*/*"):
        if candidate in best:
            return best[candidate]
    return 0.0


def prefers_html(accept: str) -> bool:
    """JSON unless text/html is asked for more strongly than application/json."""
    html = _quality(accept, "text/html")
    return html > 0 and html > _quality(accept, "application/json")


@cache
def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("api", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = render.format_when
    env.filters["compact"] = render.compact_json
    return env
