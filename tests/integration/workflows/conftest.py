"""The parcel workflow on the time-skipping test server, with its activities replaced by
same-named test activities (the samples-python habit): no database, no document store;
the rules are the real tables (pure), so decisions are real."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.fixtures import time_skipping_server
from landflow import signing
from landflow.documents import CitedDocument, SamplesRef
from landflow.messages import (
    CHANGE_LIST,
    DECIDE,
    LOAD_POLICY,
    NOTIFY,
    PARCEL_WORKFLOW,
    PROJECT,
    ActionOutcome,
    ActionRequest,
    Actor,
    DecideRequest,
    DecideResult,
    ListChange,
    Notice,
    ParcelProjection,
    ParcelStart,
    PolicyRequest,
    canonical_json,
    sha256_json,
    workflow_id,
)
from landflow.policy import Policy
from landflow.settings import PACKAGE_DIR
from landflow.state import ParcelState
from rules.engine import RulesEngine
from rules.policy_file import load_policy
from rules.sequence import decide_point
from workflows.parcel import ParcelWorkflow

RING = signing.KeyRing.from_secrets("test-actor-key-of-enough-bytes")


def process_ring() -> signing.KeyRing:
    """The ring the validators of this process verify with: it is process-global, so a
    stack's worker started earlier in the process (tests/e2e) keeps its own key, and the
    harness signs with it rather than replacing it under that worker's feet."""
    try:
        return signing.installed()
    except signing.BadSignature:
        signing.install(RING)
        return RING


@dataclass
class Recorded:
    """What the stand-in activities were asked to do, in order."""

    points: list[tuple[str, list[str]]] = field(default_factory=list)  # (point, rules)
    projections: list[ParcelProjection] = field(default_factory=list)
    lists: list[ListChange] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class StandIns:
    def __init__(self, policy: Policy, recorded: Recorded) -> None:
        self.policy, self.recorded, self.rules = policy, recorded, RulesEngine()

    @activity.defn(name=LOAD_POLICY.name)
    async def load_policy(self, _request: PolicyRequest) -> Policy:
        return self.policy

    @activity.defn(name=DECIDE.name)
    async def decide(self, request: DecideRequest) -> DecideResult:
        context = dict(request.context)
        if request.samples is not None:
            context["samples"] = self.recorded.samples[request.samples.sha256]
        made = decide_point(
            self.rules, request.point, request.facts, decided=request.decided, context=context
        )
        self.recorded.points.append((request.point.value, [d.rule for d in made]))
        return DecideResult(
            decisions=[
                d.model_copy(update={"id": f"{request.run_id}/{d.rule}/{uuid.uuid4().hex[:6]}"})
                for d in made
            ]
        )

    @activity.defn(name=PROJECT.name)
    async def project(self, projection: ParcelProjection) -> None:
        self.recorded.projections.append(projection)

    @activity.defn(name=CHANGE_LIST.name)
    async def change_list(self, change: ListChange) -> None:
        self.recorded.lists.append(change)

    @activity.defn(name=NOTIFY.name)
    async def notify(self, notice: Notice) -> None:
        self.recorded.notices.append(notice)


@dataclass
class Harness:
    env: WorkflowEnvironment
    recorded: Recorded
    task_queue: str
    started: list[WorkflowHandle] = field(default_factory=list)

    @property
    def client(self) -> Client:
        return self.env.client

    async def start(self, facts: dict[str, Any]) -> WorkflowHandle:
        handle = await self.client.start_workflow(
            PARCEL_WORKFLOW,
            ParcelStart.register(facts),
            id=workflow_id(facts["parcel_id"]),
            task_queue=self.task_queue,
            # the Java test server times a run out after ten years unless told otherwise
            # (a real server never does: a parcel may run for decades)
            execution_timeout=timedelta(days=365 * 60),
            run_timeout=timedelta(days=365 * 60),
        )
        await handle.execute_update("started")
        self.started.append(handle)
        return handle

    def samples(self, samples: list[dict[str, Any]]) -> SamplesRef:
        digest = sha256_json(samples)
        self.recorded.samples[digest] = json.loads(canonical_json(samples))
        return SamplesRef(sha256=digest, count=len(samples))

    async def act(
        self,
        handle: WorkflowHandle,
        action: str,
        actor: dict[str, Any],
        body: dict[str, Any] | None = None,
        *,
        samples: SamplesRef | None = None,
        documents: list[str] = (),  # type: ignore[assignment]
    ) -> ActionOutcome:
        cited = [
            CitedDocument(document_id="doc_" + f"{i:024x}", kind=kind, sha256=f"{i:064x}")
            for i, kind in enumerate(documents, 1)
        ]
        now = await self.env.get_current_time()
        request = ActionRequest(
            actor=Actor(**actor),
            body=body or {},
            samples=samples,
            documents=cited,
            size=len(canonical_json(body or {})),
            issued_at=now if now.tzinfo else now.replace(tzinfo=UTC),
        )
        signed = signing.sign(process_ring(), handle.id, action, request)
        # No time passes while a clerk's action is answered.
        with self.env.auto_time_skipping_disabled():
            return await handle.execute_update(action, signed, result_type=ActionOutcome)

    async def state(self, handle: WorkflowHandle) -> ParcelState:
        return await handle.query("state", result_type=ParcelState)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await time_skipping_server()
    yield env
    await env.shutdown()


@asynccontextmanager
async def running(env: WorkflowEnvironment, policy: Policy) -> AsyncIterator[Harness]:
    """A worker with the stand-in activities on a fresh task queue."""
    process_ring()
    recorded = Recorded()
    stand_ins = StandIns(policy, recorded)
    task_queue = f"wf-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ParcelWorkflow],
        activities=[
            stand_ins.load_policy,
            stand_ins.decide,
            stand_ins.project,
            stand_ins.change_list,
            stand_ins.notify,
        ],
    ):
        harness = Harness(env, recorded, task_queue)
        yield harness
        # Left running with no worker, their timers would hold the shared server's time
        # skipping (a later test's sleep waits for their workflow tasks forever).
        for handle in harness.started:
            with contextlib.suppress(RPCError):
                await handle.terminate("test over")


POLICY = load_policy(PACKAGE_DIR / "policy.yaml")


@pytest_asyncio.fixture(loop_scope="session")
async def harness(time_skipping: WorkflowEnvironment) -> AsyncIterator[Harness]:
    async with running(time_skipping, POLICY) as found:
        yield found


def now_utc() -> datetime:
    return datetime.now(UTC)
