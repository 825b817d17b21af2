"""A worker that does an activity's work, then holds its result: the fault tests kill it
there, after the side effect and before Temporal records the result, so the retried
activity repeats the write.

`python -m tests.e2e.faults.slow_worker --delay 120 --slow registry.project
--slow rules.decide:investigation_report` reads its settings from LANDFLOW_* like
`landflow worker`. A `--slow` names an activity type, optionally with the rule point a
`rules.decide` call is for. The interceptor lives here, not in the product's worker.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Collection
from typing import Any

import httpx
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

log = logging.getLogger("landflow.slow_worker")


class SlowActivities(Interceptor):
    """Hold the result of the activities named in `slow` for `delay_s` seconds."""

    def __init__(self, delay_s: float, slow: Collection[str]) -> None:
        self.delay_s = delay_s
        self.slow = set(slow)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Hold(next, self)

    def holds(self, activity_type: str, args: Any) -> bool:
        point = getattr(args[0], "point", None) if args else None
        return activity_type in self.slow or f"{activity_type}:{point}" in self.slow


class _Hold(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, owner: SlowActivities) -> None:
        super().__init__(next)
        self.owner = owner

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await super().execute_activity(input)  # the work is done, rows written
        info = activity.info()
        if self.owner.holds(info.activity_type, input.args):
            log.info("holding %s of %s", info.activity_type, info.workflow_id)
            await asyncio.sleep(self.owner.delay_s)
        return result


async def main(delay_s: float, slow: list[str]) -> None:
    from landflow.settings import get_settings
    from service.logs import setup_logging
    from service.worker import build_worker, run_until_signalled
    from workflows.client import connect

    setup_logging()
    settings = get_settings()
    client = await connect(settings)
    async with httpx.AsyncClient() as http:
        worker = build_worker(client, settings, http, interceptors=[SlowActivities(delay_s, slow)])
        log.info("slow worker polling %s, holding %s", settings.task_queue, sorted(slow))
        await run_until_signalled(worker)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=120.0)
    parser.add_argument("--slow", action="append", default=[])
    args = parser.parse_args()
    asyncio.run(main(args.delay, args.slow))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no interpreter finalisation: see service/cli.py (sdk-python#300)
