"""The worker: the parcel workflow and its activities, with their dependencies built once."""

from __future__ import annotations

import asyncio
import logging

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.deadlines import DeadlineActivities
from activities.registry import RegistryActivities
from activities.rules import RulesActivities
from landflow import registry
from landflow.policy import load_policy
from landflow.settings import Settings
from landflow.temporal import connect
from rules import gb_standards
from rules.engine import RulesEngine
from workflows.parcel import ParcelWorkflow

log = logging.getLogger("landflow.worker")


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
        workflows=[ParcelWorkflow],
        activities=[
            RulesActivities(rules, engine).decide,
            lists.sync_registry,
            lists.change_lists,
            deadlines.load_policy,
            deadlines.notify_deadline,
        ],
    )


async def run_worker(settings: Settings) -> None:
    client = await connect(settings)
    async with httpx.AsyncClient() as http:
        worker = build_worker(client, settings, http)
        log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
        await worker.run()


if __name__ == "__main__":
    asyncio.run(run_worker(Settings()))
