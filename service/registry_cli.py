"""`landflow registry rebuild | verify`: the registry against the engine."""

from __future__ import annotations

import asyncio

import typer
from temporalio.common import WorkflowIDConflictPolicy

from documents import open_store
from landflow.messages import REBUILD_WORKFLOW, REBUILD_WORKFLOW_ID, RebuildRequest, RebuildSummary
from landflow.settings import Settings
from registry.engine import make_engine
from registry.migrate import upgrade
from registry.rebuild import reconcile
from workflows.client import connect


async def rebuild(settings: Settings, wait: bool) -> int:
    client = await asyncio.wait_for(connect(settings), settings.action_timeout_s)
    handle = await client.start_workflow(
        REBUILD_WORKFLOW,
        RebuildRequest(write=True, reason="landflow registry rebuild"),
        id=REBUILD_WORKFLOW_ID,
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=RebuildSummary,
    )
    typer.echo(f"rebuild running as workflow {REBUILD_WORKFLOW_ID} (a worker does the writing)")
    if not wait:
        return 0
    summary = await handle.result()
    typer.echo(
        f"rebuilt {summary.registrations} registrations of {summary.parcels} parcels; "
        f"{summary.differences} rows differed before, {summary.unknown_runs} unknown runs removed"
    )
    return 0


async def verify(settings: Settings) -> int:
    """Read-only, in this process: works while the worker is down."""
    client = await asyncio.wait_for(connect(settings), settings.action_timeout_s)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    store = open_store(
        settings.documents_location, endpoint_url=settings.documents_endpoint or None
    )
    report = await reconcile(client, engine, store, write=False)
    for line in report.differences:
        typer.echo(line)
    for run in report.unknown_runs:
        typer.echo(f"registry rows of run {run}, which the engine does not know")
    count = len(report.differences) + len(report.unknown_runs)
    typer.echo(
        f"{count} differences ({report.registrations} registrations of {report.parcels} parcels)"
    )
    return 1 if count else 0
