"""The worker: the parcel workflows and their activities, with dependencies built once."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Sequence

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.runtime import Runtime
from temporalio.worker import Interceptor, Worker

from activities.legacy import LegacyActivities
from activities.notices import NoticeActivities
from activities.rebuild import RebuildActivities
from activities.registry import RegistryActivities
from activities.report import ReportActivities
from activities.rules import RulesActivities
from documents import open_store
from landflow import signing, vocabulary
from landflow.messages import (
    PARCEL_WORKFLOWS,
    REBUILD_WORKFLOW,
    REBUILD_WORKFLOW_ID,
    STAGE_SA,
    RebuildRequest,
)
from landflow.settings import Settings
from landflow.vocabulary import Stage
from registry import queries, writes
from registry.engine import make_engine
from registry.migrate import upgrade
from rules import gb_standards
from rules.engine import RulesEngine
from rules.policy_file import load_policy
from workflows import bytecode
from workflows.client import connect, prometheus_runtime
from workflows.legacy.parcel import ParcelWorkflow as LegacyParcelWorkflow
from workflows.parcel import ParcelWorkflow
from workflows.rebuild import RegistryRebuildWorkflow
from workflows.report import ReportWorkflow

log = logging.getLogger("landflow.worker")
ENGINE_WAIT_S = 120.0  # how long a starting worker waits for the Temporal server


def prepare_process(settings: Settings) -> None:
    """What every process that runs workflow code or signs actions sets once."""
    vocabulary.add_districts(settings.extra_districts)
    signing.install(signing.KeyRing.from_secrets(settings.actor_key, settings.actor_keys_previous))
    gb_standards.preload()


def build_worker(
    client: Client,
    settings: Settings,
    http: httpx.AsyncClient | None = None,
    task_queue: str | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """Everything the workflows need, checked at start-up: a bad rules or policy file, or
    an unusable registry, stops here with a message naming it."""
    prepare_process(settings)
    bytecode.compile_modules()
    load_policy(settings.policy_file)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    rules = RulesEngine(settings.rules_dir)
    store = open_store(
        settings.documents_location, endpoint_url=settings.documents_endpoint or None
    )
    notices = NoticeActivities(settings.policy_file, engine, settings.webhook_url, http)
    registry = RegistryActivities(engine)
    legacy = LegacyActivities(rules, engine)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[ParcelWorkflow, LegacyParcelWorkflow, ReportWorkflow, RegistryRebuildWorkflow],
        activities=[
            RulesActivities(rules, engine, store).decide,
            registry.project,
            registry.change_list,
            notices.load_policy,
            notices.notify,
            ReportActivities(engine).build_report,
            legacy.load_policy,
            legacy.decide,
            legacy.sync_registry,
            legacy.change_lists,
            legacy.notify_deadline,
            RebuildActivities(client, engine, store).rebuild,
        ],
        interceptors=list(interceptors),
    )


async def registry_behind(client: Client, engine: Engine) -> str | None:
    """Why the registry is known to be behind the engine, or None: a rebuild is due (a
    migration said so), or it holds fewer registrations than visibility (a deleted or
    restored database)."""
    with Session(engine) as session:
        status = queries.status(session, key="rebuild")
        stored = queries.count_runs(session)
    if status is not None and status.value in ("due", "running"):
        return f"rebuild {status.value}: {status.detail}"
    # Only parcels past intake count: one still at intake (a start in flight as the
    # worker restarts, a parcel registered while it was down) is projected by its own
    # first activity once a worker polls; that is not a registry behind.
    types = ", ".join(f'"{t}"' for t in PARCEL_WORKFLOWS)
    query = (
        f'WorkflowType IN ({types}) AND ExecutionStatus != "ContinuedAsNew" '
        f'AND {STAGE_SA.name} != "{Stage.intake.value}"'
    )
    engine_count = (await client.count_workflows(query)).count
    if engine_count > stored:
        return f"the registry holds {stored} registrations, the engine {engine_count}"
    return None


async def ensure_registry_current(client: Client, engine: Engine, task_queue: str) -> None:
    """At start-up: a registry behind the engine is marked so (`/readyz` says not ready)
    and rebuilt by the rebuild workflow (one at a time)."""
    reason = await registry_behind(client, engine)
    if reason is None:
        return
    log.warning("registry behind the engine (%s): rebuilding", reason)
    with Session(engine) as session:
        writes.set_status(session, key="rebuild", value="due", detail=reason)
    await client.start_workflow(
        REBUILD_WORKFLOW,
        RebuildRequest(write=True, reason=reason),
        id=REBUILD_WORKFLOW_ID,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def run_worker(settings: Settings) -> None:
    runtime = None
    if settings.worker_metrics_port:
        runtime = prometheus_runtime(settings.worker_metrics_host, settings.worker_metrics_port)
        where = f"{settings.worker_metrics_host}:{settings.worker_metrics_port}"
        log.info("worker metrics at http://%s/metrics", where)
    client = await connect_when_up(settings, runtime)
    async with httpx.AsyncClient() as http:
        worker = build_worker(client, settings, http)
        log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
        engine = make_engine(settings.database_url)
        await ensure_registry_current(client, engine, settings.task_queue)
        await run_until_signalled(worker)


async def connect_when_up(
    settings: Settings, runtime: Runtime | None = None, within_s: float = ENGINE_WAIT_S
) -> Client:
    """Connect, waiting for a server that is not up yet: `make run` and compose start the
    engine and the worker together, and a worker that gave up at once was restarted by
    its supervisor (and reported as a crash). Past `within_s`, the last error."""
    deadline = time.monotonic() + within_s
    pause = 0.25
    while True:
        try:
            return await connect(settings, runtime)
        except RuntimeError as exc:  # the SDK's "Failed client connect: ..."
            if time.monotonic() + pause > deadline:
                raise
            log.info("waiting for Temporal at %s: %s", settings.temporal_address, exc)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 2.0)


async def run_until_signalled(worker: Worker) -> None:
    """SIGTERM or SIGINT shuts the worker down gracefully: the server learns it left, so
    its workflows' next tasks go to another worker at once instead of waiting out the
    sticky queue (5 s each)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.create_task(worker.run())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([running, stopping], return_when=asyncio.FIRST_COMPLETED)
    if not running.done():
        log.info("worker shutting down")
        await worker.shutdown()
    stopping.cancel()
    await running
