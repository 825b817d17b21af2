"""Parcels: start one, read one, list them, and act on one."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, status
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.deps import Caller, SessionDep, SettingsDep, TemporalDep, require
from api.errors import ApiError, from_temporal
from api.schemas import ErrorOut, ParcelOut, ParcelPage, ParcelStarted, ParcelSummary
from landflow import registry, visibility
from landflow.contracts import Action, ActionRequest, Actor, ParcelFacts, ParcelState, Role, Stage
from landflow.temporal import workflow_id

router = APIRouter(prefix="/parcels", tags=["parcels"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422, 503)
}


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ParcelStarted, responses=ERRORS
)
async def start_parcel(
    facts: ParcelFacts,
    caller: Annotated[Actor, Depends(require(Role.reserve_agency))],
    client: TemporalDep,
    settings: SettingsDep,
) -> ParcelStarted:
    """The reserve agency registers a parcel; its workflow starts at intake."""
    wid = workflow_id(facts.parcel_id)
    try:
        handle = await client.start_workflow(
            "ParcelWorkflow",
            facts.submitted(),
            id=wid,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=visibility.initial_search_attributes(facts),
            static_summary=visibility.static_summary(facts),
            rpc_timeout=timedelta(seconds=settings.action_timeout_s),
        )
    except WorkflowAlreadyStartedError:
        raise ApiError(
            409, "AlreadyStarted", f"parcel {facts.parcel_id} already runs as workflow {wid}"
        ) from None
    except RPCError as exc:
        raise from_temporal(exc, f"parcel {facts.parcel_id}") from exc
    try:
        state = await handle.execute_update(
            "started",
            result_type=ParcelState,
            rpc_timeout=timedelta(seconds=settings.action_timeout_s),
        )
    except (WorkflowUpdateRPCTimeoutOrCancelledError, RPCError):
        # Started and durable; no worker has picked it up yet.
        return ParcelStarted(
            parcel_id=facts.parcel_id,
            workflow_id=wid,
            stage=Stage.intake,
            waiting_on=None,
            deadline=None,
            next_actions=[],
        )
    return ParcelStarted(
        parcel_id=facts.parcel_id,
        workflow_id=wid,
        stage=state.stage,
        waiting_on=state.waiting_on,
        deadline=state.deadline,
        next_actions=state.next_actions,
    )


@router.get("", response_model=ParcelPage, responses=ERRORS)
def list_parcels(
    _caller: Caller,
    session: SessionDep,
    stage: Stage | None = None,
    district: Annotated[str | None, Query(max_length=50)] = None,
    waiting_on: Role | None = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ParcelPage:
    rows = registry.list_parcels(
        session,
        stage=stage,
        district=district,
        waiting_on=waiting_on,
        overdue=overdue,
        limit=limit,
        offset=offset,
    )
    return ParcelPage(parcels=[ParcelSummary.of(r) for r in rows], count=len(rows))


PARCEL_ID = Annotated[str, Query(min_length=1, max_length=64)]


async def current_state(client: TemporalDep, settings: SettingsDep, parcel_id: str) -> ParcelState:
    if len(parcel_id) > 64:
        raise ApiError(404, "NotFound", f"parcel {parcel_id[:64]}... not found")
    handle = client.get_workflow_handle(workflow_id(parcel_id))
    try:
        return await handle.query(
            "current",
            result_type=ParcelState,
            rpc_timeout=timedelta(seconds=settings.action_timeout_s),
        )
    except RPCError as exc:
        raise from_temporal(exc, f"parcel {parcel_id}") from exc


@router.get("/{parcel_id}", response_model=ParcelOut, responses=ERRORS)
async def get_parcel(
    _caller: Caller,
    state: Annotated[ParcelState, Depends(current_state)],
) -> ParcelOut:
    """Where the parcel stands, what it waits for, and every decision with its citation."""
    return ParcelOut.of(state)


async def _body(request: Request) -> tuple[Any, str | None]:
    """The JSON body, or why it is not one (judged after authorisation, in the gate)."""
    raw = await request.body()
    if not raw:
        return {}, None
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "the body is not valid UTF-8"
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, f"the body is not valid JSON: {exc}"
    if not isinstance(payload, dict):
        return None, "the body must be a JSON object"
    return payload, None


@router.post(
    "/{parcel_id}/actions/{action}",
    response_model=ParcelOut,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}
    },
)
async def act(
    parcel_id: str,
    action: Action,
    request: Request,
    caller: Caller,
    client: TemporalDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ParcelOut:
    """Perform one step as the caller's role; the body is the action's JSON object.

    Checked in this order: role and district (403), stage (409), body (422). A retried
    request with the same Idempotency-Key is applied once and answered the same way.
    """
    payload, body_error = await _body(request)
    handle = client.get_workflow_handle(workflow_id(parcel_id))
    try:
        state = await handle.execute_update(
            action.value,
            ActionRequest(actor=caller, payload=payload or {}, body_error=body_error),
            id=f"{action.value}:{idempotency_key}" if idempotency_key else None,
            result_type=ParcelState,
            rpc_timeout=timedelta(seconds=settings.action_timeout_s),
        )
    except (WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError) as exc:
        raise from_temporal(exc, f"parcel {parcel_id}") from exc
    return ParcelOut.of(state)
