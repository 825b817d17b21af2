"""The worker: the parcel workflow and its activities, with their dependencies built once."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from activities.deadlines import DeadlineActivities
from activities.registry import RegistryActivities
from activities.report import ReportActivities
from activities.rules import RulesActivities
from landflow import registry
from landflow.policy import load_policy
from landflow.settings import Settings
from landflow.temporal import connect, prometheus_runtime
from rules import gb_standards
from rules.engine import RulesEngine
from workflows.parcel import ParcelWorkflow
from workflows.report import ReportWorkflow

log = logging.getLogger("landflow.worker")
# Test-only fault hook (tests/faults): every activity sleeps this long after doing its
# work and before reporting back, so a test can SIGKILL the worker mid-activity.
TEST_ACTIVITY_DELAY_ENV = "LANDFLOW_TEST_ACTIVITY_DELAY_S"


class _SlowActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, delay_s: float) -> None:
        super().__init__(next)
        self.delay_s = delay_s

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await super().execute_activity(input)
        await asyncio.sleep(self.delay_s)
        return result


class SlowActivities(Interceptor):
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _SlowActivity(next, self.delay_s)


def _test_interceptors() -> list[Interceptor]:
    delay = float(os.environ.get(TEST_ACTIVITY_DELAY_ENV) or 0)
    if delay > 0:
        log.warning("test hook: every activity is delayed by %.1fs", delay)
        return [SlowActivities(delay)]
    return []


def build_worker(
    client: Client,
    settings: Settings,
    http: httpx.AsyncClient | None = None,
    task_queue: str | None = None,
) -> Worker:
    """Everything the workflow needs, checked at start-up: a bad rules or policy file stops here."""
    gb_standards.preload()
    load_policy(settings.policy_file)
    engine = registry.make_engine(settings.database_url)
    registry.create_schema(engine)
    rules = RulesEngine(settings.rules_dir)
    deadlines = DeadlineActivities(settings.policy_file, engine, settings.webhook_url, http)
    lists = RegistryActivities(engine)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[ParcelWorkflow, ReportWorkflow],
        activities=[
            RulesActivities(rules, engine).decide,
            lists.sync_registry,
            lists.change_lists,
            deadlines.load_policy,
            deadlines.notify_deadline,
            ReportActivities(engine).build_report,
        ],
        interceptors=_test_interceptors(),
    )


async def run_worker(settings: Settings) -> None:
    runtime = None
    if settings.worker_metrics_port:
        runtime = prometheus_runtime(settings.worker_metrics_host, settings.worker_metrics_port)
        where = f"{settings.worker_metrics_host}:{settings.worker_metrics_port}"
        log.info("worker metrics at http://%s/metrics", where)
    client = await connect(settings, runtime)
    async with httpx.AsyncClient() as http:
        worker = build_worker(client, settings, http)
        log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
        await run_until_signalled(worker)


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


if __name__ == "__main__":
    asyncio.run(run_worker(Settings()))
