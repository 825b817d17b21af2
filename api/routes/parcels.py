"""Parcels: start one, read one, list them, and act on one."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, status
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Caller, SessionDep, SettingsDep, TemporalDep, require
from api.errors import ApiError, body_problem, from_gate, from_temporal, within
from api.schemas import ParcelOut, ParcelPage, ParcelStarted, ParcelSummary, error_responses
from landflow import registry, visibility
from landflow.contracts import (
    PARCEL_ID_PATTERN,
    Action,
    ActionRequest,
    Actor,
    ParcelFacts,
    ParcelState,
    Role,
    Stage,
)
from landflow.temporal import workflow_id
from workflows.gate import check_action

router = APIRouter(prefix="/parcels", tags=["parcels"])

ERRORS = error_responses(401, 403, 404, 409, 422, 503)


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
    timeout = settings.action_timeout_s
    answer_by = asyncio.get_running_loop().time() + timeout
    try:
        start = client.start_workflow(
            "ParcelWorkflow",
            facts.submitted(),
            id=wid,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=visibility.initial_search_attributes(facts),
            static_summary=visibility.static_summary(facts),
            rpc_timeout=timedelta(seconds=timeout),
        )
        handle = await within(start, timeout)
    except WorkflowAlreadyStartedError:
        raise ApiError(
            409, "AlreadyStarted", f"parcel {facts.parcel_id} already runs as workflow {wid}"
        ) from None
    except RPCError as exc:
        raise from_temporal(exc, f"parcel {facts.parcel_id}") from exc
    try:
        started = handle.execute_update(
            "started", result_type=ParcelState, rpc_timeout=timedelta(seconds=timeout)
        )
        left = max(0.1, answer_by - asyncio.get_running_loop().time())
        state = await asyncio.wait_for(started, left)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError):
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
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,  # SQLite takes 64 bits
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


ParcelId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=PARCEL_ID_PATTERN, description="the parcel code"),
]
MAX_BODY_DEPTH = 32  # the deepest action body is 3 levels; Temporal's converter stops at ~250


async def current_state(
    client: TemporalDep, settings: SettingsDep, parcel_id: ParcelId
) -> ParcelState:
    handle = client.get_workflow_handle(workflow_id(parcel_id))
    timeout = settings.action_timeout_s
    try:
        query = handle.query(
            "current", result_type=ParcelState, rpc_timeout=timedelta(seconds=timeout)
        )
        return await within(query, timeout, "the workflow engine or its worker")
    except RPCError as exc:
        raise from_temporal(exc, f"parcel {parcel_id}") from exc


@router.get("/{parcel_id}", response_model=ParcelOut, responses=ERRORS)
async def get_parcel(
    _caller: Caller,
    state: Annotated[ParcelState, Depends(current_state)],
) -> ParcelOut:
    """Where the parcel stands, what it waits for, and every decision with its citation."""
    return ParcelOut.of(state)


def _deeper_than(value: Any, limit: int) -> bool:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return True
            pending.extend((child, depth + 1) for child in item)
    return False


async def _body(request: Request) -> tuple[Any, str | None]:
    """The JSON body, or why it is not one (judged after authorisation, in the gate)."""
    raw = await request.body()
    if not raw:
        return {}, None
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, body_problem(exc)
    if not isinstance(payload, dict):
        return None, "the body must be a JSON object"
    if _deeper_than(payload, MAX_BODY_DEPTH):
        return None, f"the JSON body is nested deeper than {MAX_BODY_DEPTH} levels"
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
    parcel_id: ParcelId,
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
    timeout = settings.action_timeout_s
    try:
        update = handle.execute_update(
            action.value,
            ActionRequest(actor=caller, payload=payload or {}, body_error=body_error),
            id=update_id(action, caller, idempotency_key),
            result_type=ParcelState,
            rpc_timeout=timedelta(seconds=timeout),
        )
        state = await within(update, timeout, "the workflow engine or its worker")
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            await _refuse_closed(client, settings, parcel_id, caller, action, payload, body_error)
        raise from_temporal(exc, f"parcel {parcel_id}") from exc
    except (WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise from_temporal(exc, f"parcel {parcel_id}") from exc
    return ParcelOut.of(state)


def update_id(action: Action, caller: Actor, key: str | None) -> str | None:
    """Temporal applies an update id once and answers any repeat with the first outcome,
    without running the validator again. The id names the caller too, so a key replayed
    by someone else is a new request, judged (403) like any other."""
    if not key:
        return None
    who = "\x1f".join((caller.role.value, caller.district or "", caller.subject, key))
    return f"{action.value}:{hashlib.sha256(who.encode()).hexdigest()[:32]}"


async def _refuse_closed(
    client: TemporalDep,
    settings: SettingsDep,
    parcel_id: str,
    caller: Actor,
    action: Action,
    payload: Any,
    body_error: str | None,
) -> None:
    """A released parcel's workflow has completed and takes no updates (Temporal answers
    NOT_FOUND): judge the request by the same gate on its final state, so the caller
    gets 403 or 409 as on a running parcel. A parcel that never existed stays 404."""
    state = await current_state(client, settings, parcel_id)
    try:
        check_action(state, True, caller, action.value, payload or {}, body_error)
    except ApplicationError as refusal:
        raise from_gate(refusal) from None
