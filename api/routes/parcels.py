"""Parcels: register one, read one, list them, act on one, restart an abnormal one."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Query, Request, status
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from sqlmodel import Session
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import actions, admission
from api.deps import Caller, PolicyDep, SessionDep, SettingsDep, StoreDep, TemporalDep, require
from api.errors import ApiError, from_gate, from_temporal, within
from api.pacing import Pacing
from api.schemas import (
    ParcelOut,
    ParcelPage,
    ParcelStarted,
    ParcelSummary,
    RunOut,
    RunsOut,
    error_responses,
)
from documents.store import DocumentStore
from landflow.bodies import ACTION_BODIES
from landflow.facts import PARCEL_ID_PATTERN, ParcelFacts
from landflow.messages import (
    PARCEL_WORKFLOW,
    STARTED_UPDATE,
    STATE_QUERY,
    ActionOutcome,
    ActionRequest,
    Actor,
    ParcelStart,
    Refusal,
    Restart,
    StartedView,
    workflow_id,
)
from landflow.policy import Policy
from landflow.settings import Settings
from landflow.signing import KeyRing
from landflow.state import ParcelState, RunStatus
from landflow.vocabulary import Action, Role, Stage
from registry import queries
from workflows import visibility
from workflows.gate import admit

router = APIRouter(prefix="/parcels", tags=["parcels"])
T = TypeVar("T")

ERRORS = error_responses(401, 403, 404, 409, 422, 429, 503)
ParcelId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=PARCEL_ID_PATTERN, description="the parcel code"),
]
# Temporal's answer to an update the run accepted but closed before completing.
ENDED_WITH_THE_UPDATE = "AcceptedUpdateCompletedWorkflow"
CLOSED: dict[int, RunStatus] = {
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED: "terminated",
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED: "failed",
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT: "timed_out",
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED: "canceled",
}


def _abnormal(description: WorkflowExecutionDescription) -> RunStatus | None:
    return CLOSED.get(int(description.raw_description.workflow_execution_info.status))


async def _describe(
    client: Client, parcel_id: str, timeout: float
) -> WorkflowExecutionDescription | None:
    """The latest run of the parcel's workflow id, or None if it never existed."""
    handle = client.get_workflow_handle(workflow_id(parcel_id))
    try:
        return await within(handle.describe(rpc_timeout=timedelta(seconds=timeout)), timeout)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise from_temporal(exc, f"parcel {parcel_id}") from exc


async def _start(
    client: Client,
    settings: SettingsDep,
    facts: ParcelFacts,
    restart: Restart | None,
    reuse: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
) -> ParcelStarted:
    """Start the run and wait for its first step. WorkflowAlreadyStartedError: the id
    runs, or (REJECT_DUPLICATE) it ran before."""
    wid, timeout = workflow_id(facts.parcel_id), settings.action_timeout_s
    answer_by = asyncio.get_running_loop().time() + timeout
    try:
        start = client.start_workflow(
            PARCEL_WORKFLOW,
            ParcelStart.register(facts.submitted(), restart),
            id=wid,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=reuse,
            search_attributes=visibility.initial_search_attributes(facts),
            static_summary=visibility.static_summary(facts),
            rpc_timeout=timedelta(seconds=timeout),
        )
        handle = await within(start, timeout)
    except RPCError as exc:
        raise from_temporal(exc, f"parcel {facts.parcel_id}") from exc
    started = ParcelStarted(
        parcel_id=facts.parcel_id,
        workflow_id=wid,
        run_id=handle.first_execution_run_id or handle.result_run_id,
        stage=Stage.intake,
        waiting_on=[],
        deadline=None,
        next_actions=[],
    )
    try:
        left = max(0.1, answer_by - asyncio.get_running_loop().time())
        view = await asyncio.wait_for(
            handle.execute_update(
                STARTED_UPDATE, result_type=StartedView, rpc_timeout=timedelta(seconds=left)
            ),
            left,
        )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError):
        return started  # started and durable; no worker has picked it up yet
    return started.model_copy(
        update={
            "run_id": view.run_id,
            "stage": view.stage,
            "waiting_on": view.waiting_on,
            "deadline": view.deadline,
            "next_actions": view.next_actions,
        }
    )


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ParcelStarted, responses=ERRORS
)
async def start_parcel(
    facts: ParcelFacts,
    _caller: Annotated[Actor, Depends(require(Role.reserve_agency))],
    client: TemporalDep,
    settings: SettingsDep,
) -> ParcelStarted:
    """The reserve agency registers a parcel; its workflow starts at intake. An id whose
    earlier registration was released may be registered again (a new run); one whose
    registration ended abnormally needs `POST /parcels/{id}/restart`."""
    try:  # a new id, the common case, starts without asking the server about it first
        return await _start(client, settings, facts, None, WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError:
        pass
    previous = await _describe(client, facts.parcel_id, settings.action_timeout_s)
    abnormal = _abnormal(previous) if previous else None
    if abnormal:
        raise ApiError(
            409,
            "PreviousRunAbnormal",
            f"parcel {facts.parcel_id}'s last registration ended {abnormal}: restart it "
            f"explicitly with POST /parcels/{facts.parcel_id}/restart (the reason is recorded)",
        )
    try:  # the last registration was released (or is still running: refused below)
        return await _start(client, settings, facts, None)
    except WorkflowAlreadyStartedError:
        raise _already_started(facts.parcel_id) from None


def _already_started(parcel_id: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyStarted",
        f"parcel {parcel_id} already runs as workflow {workflow_id(parcel_id)}",
    )


class RestartBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="why the parcel starts again")
    facts: ParcelFacts


@router.post(
    "/{parcel_id}/restart",
    status_code=status.HTTP_201_CREATED,
    response_model=ParcelStarted,
    responses=ERRORS,
)
async def restart_parcel(
    parcel_id: ParcelId,
    body: RestartBody,
    caller: Annotated[Actor, Depends(require(Role.reserve_agency))],
    client: TemporalDep,
    settings: SettingsDep,
) -> ParcelStarted:
    """Register again an id whose last registration was terminated, failed or timed out;
    the new run records who restarted it, why, and which run it replaces (the trail shows it)."""
    if body.facts.parcel_id != parcel_id:
        reason = f"the facts are for {body.facts.parcel_id}, not {parcel_id}"
        raise ApiError(422, "InvalidBody", reason, [{"field": "facts.parcel_id", "reason": reason}])
    previous = await _describe(client, parcel_id, settings.action_timeout_s)
    abnormal = _abnormal(previous) if previous else None
    if previous is None or abnormal is None:
        state = "never registered" if previous is None else "not ended abnormally"
        raise ApiError(
            409,
            "NothingToRestart",
            f"parcel {parcel_id} is {state}: register it with POST /parcels",
        )
    restart = Restart(
        previous_run_id=previous.run_id,
        previous_status=abnormal,
        reason=body.reason,
        by=f"{caller.role.value}:{caller.subject}",
    )
    try:
        return await _start(client, settings, body.facts, restart)
    except WorkflowAlreadyStartedError:  # restarted meanwhile by another request
        raise _already_started(parcel_id) from None


@router.get("", response_model=ParcelPage, responses=ERRORS)
def list_parcels(
    _caller: Caller,
    session: SessionDep,
    stage: Stage | None = None,
    district: Annotated[str | None, Query(max_length=50)] = None,
    waiting_on: Role | None = None,
    overdue: bool | None = None,
    status: Annotated[
        str | None, Query(pattern="^(running|released|terminated|failed|timed_out|canceled)$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ParcelPage:
    """Current registrations from the registry, by parcel id, with the total and a cursor."""
    page = paged(
        lambda: queries.list_parcels(
            session,
            stage=stage,
            district=district,
            waiting_on=waiting_on,
            overdue=overdue,
            status=status,
            limit=limit,
            cursor=cursor,
        )
    )
    return ParcelPage(
        parcels=[ParcelSummary.of(r) for r in page.items],
        count=len(page.items),
        total=page.total,
        next_cursor=page.next_cursor,
    )


def paged(fetch: Callable[[], Any]) -> Any:
    """A page of a registry listing; a cursor it cannot read is the client's 422."""
    try:
        return fetch()
    except queries.BadCursor as exc:
        raise ApiError(
            422, "InvalidRequest", str(exc), [{"field": "cursor", "reason": str(exc)}]
        ) from None


async def parcel_state(
    client: Client, settings: SettingsDep, parcel_id: str
) -> tuple[ParcelState, RunStatus]:
    """The parcel as its workflow knows it, and how its run stands (terminated...). The
    description and the query go out together: a click waits for one round trip."""
    timeout = settings.action_timeout_s
    handle = client.get_workflow_handle(workflow_id(parcel_id))
    query = handle.query(
        STATE_QUERY, result_type=ParcelState, rpc_timeout=timedelta(seconds=timeout)
    )
    asked = asyncio.ensure_future(within(query, timeout, "the workflow engine or its worker"))
    asked.add_done_callback(lambda f: f.cancelled() or f.exception())  # never left unread
    try:
        described = await _describe(client, parcel_id, timeout)
    except BaseException:
        asked.cancel()
        raise
    if described is None:
        asked.cancel()
        raise ApiError(404, "NotFound", f"parcel {parcel_id} not found")
    try:
        state = await asked
    except (RPCError, WorkflowQueryFailedError) as exc:
        raise from_temporal(exc, f"parcel {parcel_id}") from exc
    return state, _abnormal(described) or state.status


async def parcel_exists(client: Client, settings: SettingsDep, parcel_id: str) -> None:
    """404 unless the parcel was ever registered (no query: the server alone answers)."""
    if await _describe(client, parcel_id, settings.action_timeout_s) is None:
        raise ApiError(404, "NotFound", f"parcel {parcel_id} not found")


@router.get("/{parcel_id}", response_model=ParcelOut, responses=ERRORS)
async def get_parcel(
    parcel_id: ParcelId, _caller: Caller, client: TemporalDep, settings: SettingsDep
) -> ParcelOut:
    """Where the parcel stands, who may do what now (`next_actions`, each with its `visit`),
    every decision with its citation, every stage visit and action."""
    state, run_status = await parcel_state(client, settings, parcel_id)
    return ParcelOut.of(state, run_status)


@router.get("/{parcel_id}/runs", response_model=RunsOut, responses=ERRORS)
def parcel_runs(parcel_id: ParcelId, _caller: Caller, session: SessionDep) -> RunsOut:
    """Every registration of the id (the registry's view), oldest first."""
    rows = queries.runs_of(session, parcel_id=parcel_id)
    if not rows:
        raise ApiError(404, "NotFound", f"parcel {parcel_id} not found")
    return RunsOut(
        parcel_id=parcel_id,
        runs=[
            RunOut.model_validate({**ParcelSummary.of(r).model_dump(), "current": r.current})
            for r in rows
        ],
    )


def visit_header(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip().strip('"')
    text = text.removeprefix("visit-")
    if not text.isdigit() or int(text) < 1:
        reason = 'If-Match names the step visit the action answers, e.g. If-Match: "3"'
        raise ApiError(422, "InvalidRequest", reason, [{"field": "If-Match", "reason": reason}])
    return int(text)


async def read_then_release(session: Session, read: Callable[[], T]) -> T:
    """`read()` in a worker thread, then the session's connection back to the pool, before
    the caller awaits the engine: requests holding connections while they wait on Temporal
    starved the pool under load (50 sample reports at once, 500s after its 30 s timeout);
    checked out on the event loop, they would stall every other request with them."""

    def then_close() -> T:
        try:
            return read()
        finally:
            session.close()  # the session stays usable: a later read checks out anew

    return await asyncio.to_thread(then_close)


async def act(
    *,
    parcel_id: str,
    action: Action,
    raw: bytes,
    caller: Actor,
    client: Client,
    settings: Settings,
    session: Session,
    store: DocumentStore,
    policy: Policy,
    ring: KeyRing,
    pacing: Pacing,
    idempotency_key: str | None,
    visit: int | None,
) -> ActionOutcome:
    """One action: prepared and signed here, judged and applied by the workflow. The API
    route and the workbench's forms both come through here; the parcel's turn bounds how
    many of its actions reach the engine at once (`api.pacing`)."""
    timeout = settings.action_timeout_s
    wid = workflow_id(parcel_id)
    async with pacing.turn(wid, timeout):
        carries_samples = action in actions.SAMPLE_ACTIONS or action == Action.evaluation
        prepare = partial(
            actions.request_for,
            parcel_id=parcel_id,
            action=action,
            raw=raw,
            caller=caller,
            key=idempotency_key,
            visit=visit,
            session=session,
            store=store,
            policy=policy,
        )

        def admitted_and_prepared() -> ActionRequest | None:
            """The registry's word and the request, in one thread hop; None when the
            workflow's gate must judge first."""
            legacy, owed = admission.before_the_engine(
                session, parcel_id, caller, action, visit, carries_samples
            )
            if not legacy and carries_samples and not owed:
                return None
            return prepare(lift=not legacy)

        prepared = await read_then_release(session, admitted_and_prepared)
        if prepared is None:
            # Samples are stored before the workflow sees them: refuse out-of-role or
            # out-of-step callers first, so nothing of theirs is stored. The refusal is the
            # workflow's own gate on its state, never the registry's word.
            state, run_status = await parcel_state(client, settings, parcel_id)
            retry = actions.idempotency_digest(caller, idempotency_key) in state.keys
            if not retry:  # a retry of an applied action gets its first outcome, as any other
                admit_or_refuse(
                    state.model_copy(update={"status": run_status}), caller, action, visit
                )
            prepared = await read_then_release(session, partial(prepare, lift=True))
        signed = actions.sign(ring, wid, action, prepared)
        handle = client.get_workflow_handle(wid)
        # One id for this request, so an update sent again after an abort applies once.
        update_id = actions.update_id(action, signed) or f"{action.value}:{uuid.uuid4().hex}"
        try:
            update = _update_until_answered(handle, action, signed, update_id, timeout)
            return await within(update, timeout, "the workflow engine or its worker")
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == Refusal.already_applied:
                return await _already_applied(client, settings, parcel_id, action, cause)
            if isinstance(cause, ApplicationError) and cause.type == ENDED_WITH_THE_UPDATE:
                await _ended_while_settling(client, settings, parcel_id)
            raise from_temporal(exc, f"parcel {parcel_id}") from exc
        except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
            raise from_temporal(exc, f"parcel {parcel_id}") from exc
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                await _refuse_closed(client, settings, parcel_id, caller, action, visit)
            raise from_temporal(exc, f"parcel {parcel_id}") from exc


async def _update_until_answered(
    handle: WorkflowHandle[Any, Any],
    action: Action,
    signed: ActionRequest,
    update_id: str,
    timeout: float,
) -> ActionOutcome:
    """The update, sent again while the server aborts it as retryable (UNAVAILABLE: its
    update registry was cleared, e.g. when many updates of one parcel race its workflow
    task, or the run continues as new): the abort means not applied, and the same id
    cannot apply twice. The caller bounds the whole by the action timeout."""
    pause = 0.05
    while True:
        try:
            return await handle.execute_update(
                action.value,
                signed,
                id=update_id,
                result_type=ActionOutcome,
                rpc_timeout=timedelta(seconds=timeout),
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.UNAVAILABLE:
                raise
        await asyncio.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 1.0)


def admit_or_refuse(state: ParcelState, caller: Actor, action: Action, visit: int | None) -> None:
    """The workflow's own gate, run here on its state: the refusal as the API answers it."""
    try:
        admit(state, caller, action.value, visit)
    except ApplicationError as refusal:
        raise from_gate(refusal) from None


async def _refuse_closed(
    client: Client,
    settings: SettingsDep,
    parcel_id: str,
    caller: Actor,
    action: Action,
    visit: int | None,
) -> None:
    """A closed workflow takes no updates: judge the request by the same gate on its final
    state, so the caller gets 403 or 409 as on a running parcel (404 if it never existed)."""
    state, run_status = await parcel_state(client, settings, parcel_id)
    admit_or_refuse(state.model_copy(update={"status": run_status}), caller, action, visit)


async def _ended_while_settling(client: Client, settings: SettingsDep, parcel_id: str) -> None:
    """The run was terminated, failed or timed out after it accepted the action and before
    the action settled: 409 with that reason, as for any action on a closed parcel."""
    described = await _describe(client, parcel_id, settings.action_timeout_s)
    abnormal = _abnormal(described) if described else None
    if abnormal:
        raise ApiError(
            409,
            Refusal.parcel_closed.value,
            f"parcel {parcel_id}'s run ended {abnormal} while this action was being settled; "
            "the action is in that run's history (see the trail), but the parcel no longer "
            f"runs: restart it with POST /parcels/{parcel_id}/restart",
        )


async def _already_applied(
    client: Client, settings: SettingsDep, parcel_id: str, action: Action, cause: ApplicationError
) -> ActionOutcome:
    """A retry whose first application was in an earlier run (continue-as-new): the same
    answer as a retry in the same run, built from the parcel as it stands."""
    seq = int((cause.details[0] or [{}])[0].get("seq", 0)) if cause.details else 0
    state, run_status = await parcel_state(client, settings, parcel_id)
    entry = next((a for a in state.actions if a.seq == seq), None)
    blocking = state.blocking()
    return ActionOutcome(
        parcel_id=parcel_id,
        action=action,
        seq=seq,
        visit=entry.visit if entry else 0,
        stage=state.stage,
        step=blocking.step if blocking else None,
        waiting_on=state.waiting_on(),
        deadline=blocking.deadline if blocking else None,
        status=run_status,
    )


def _action_route(action: Action) -> Callable[..., Awaitable[ActionOutcome]]:
    async def route(
        parcel_id: ParcelId,
        request: Request,
        caller: Caller,
        client: TemporalDep,
        settings: SettingsDep,
        session: SessionDep,
        store: StoreDep,
        policy: PolicyDep,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
        if_match: Annotated[str | None, Header(max_length=40)] = None,
    ) -> ActionOutcome:
        return await act(
            parcel_id=parcel_id,
            action=action,
            raw=await request.body(),
            caller=caller,
            client=client,
            settings=settings,
            session=session,
            store=store,
            policy=policy,
            ring=request.app.state.ring,
            pacing=request.app.state.pacing,
            idempotency_key=idempotency_key,
            visit=visit_header(if_match),
        )

    route.__name__ = f"act_{action.value}"
    return route


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


def _declare_actions() -> None:
    """One operation per action, each with its body's schema, so a generated client gets
    types; the body itself is parsed by api/actions.py (after the caller is authorised)."""
    for action in Action:
        model = ACTION_BODIES[action]
        router.add_api_route(
            f"/{{parcel_id}}/actions/{action.value}",
            _action_route(action),
            methods=["POST"],
            response_model=ActionOutcome,
            responses=error_responses(401, 403, 404, 409, 413, 415, 422, 429, 503),
            summary=f"{action.value}: {_first_line(model.__doc__) or model.__name__}",
            description=(
                "Checked in this order: role, district and party (403), the parcel and the "
                "step visit (409), the body (413, 422). `Idempotency-Key` applies a retry "
                'once; `If-Match: "<visit>"` (or `visit` in the body) refuses a late or '
                "early answer to another visit of the step (409)."
            ),
            operation_id=f"act_{action.value}",
            openapi_extra={
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                        }
                    },
                }
            },
        )


def action_schemas() -> dict[str, Any]:
    """The action bodies' JSON schemas, for the OpenAPI document's components."""
    models: list[tuple[type[BaseModel], Literal["validation"]]] = [
        (m, "validation") for m in dict.fromkeys(ACTION_BODIES.values())
    ]
    _, schema = models_json_schema(models, ref_template="#/components/schemas/{model}")
    return schema.get("$defs", {})


_declare_actions()
