"""The baseline: a workflow of the parcel's shape with no logic, and its worker.

`segments[0]` no-op activities (and `local[0]` local ones) run before the first wait
(what `started` waits for); each later segment runs after one `act` update, which
returns when its segment is done, as a parcel action returns once the parcel has moved
on. Each wait also holds as many durable timers as the parcel's step held there (its
deadline: the law's, so the shape's), cancelled when the update arrives; each segment
upserts a search attribute as often as the parcel did there (what ops filter on in the
Web UI: an engine command and a visibility write, the engine's work like a timer's).
No rules, registry, queries or HTTP: what is left is Temporal and the SDK.

Run the worker with `python -m bench.bare ADDRESS TASK_QUEUE`.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from landflow.messages import STAGE_SA

WORKFLOW = "BareParcelWorkflow"
STAGE = SearchAttributeKey.for_keyword(STAGE_SA.name)  # registered on every bench server


class BareShape(BaseModel):
    segments: list[int]  # activities per segment
    local: list[int] = []  # local activities per segment (a parcel's, should it use them)
    timers: list[int] = []  # durable timers held while waiting after each segment
    upserts: list[int] = []  # search-attribute upserts in each segment


@activity.defn(name="bare_step")
async def bare_step(step: int) -> int:
    return step


@workflow.defn(name=WORKFLOW)
class BareWorkflow:
    @workflow.init
    def __init__(self, shape: BareShape) -> None:
        self._accepted = 0  # updates taken
        self._done = 0  # segments finished

    @workflow.run
    async def run(self, shape: BareShape) -> int:
        local = shape.local or [0] * len(shape.segments)
        timers = shape.timers or [0] * len(shape.segments)
        upserts = shape.upserts or [0] * len(shape.segments)
        for index, count in enumerate(shape.segments):
            if index and timers[index - 1]:
                await self._wait_with_timers(index, timers[index - 1])
            await self._segment(index, count, local[index], upserts[index])
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._done

    async def _wait_with_timers(self, index: int, count: int) -> None:
        """A step's deadline timers, started and then cancelled by the update."""
        held = [asyncio.ensure_future(workflow.sleep(timedelta(days=30))) for _ in range(count)]
        await workflow.wait_condition(lambda: self._accepted >= index)
        for timer in held:
            timer.cancel()

    async def _segment(self, index: int, count: int, local: int = 0, upserts: int = 0) -> None:
        if index:
            await workflow.wait_condition(lambda: self._accepted >= index)
        for n in range(upserts):  # as a parcel's sync: before the segment's activities
            workflow.upsert_search_attributes([STAGE.value_set(f"segment-{index}-{n}")])
        for _ in range(count):
            await workflow.execute_activity(
                "bare_step", index, start_to_close_timeout=timedelta(seconds=30)
            )
        for _ in range(local):
            await workflow.execute_local_activity(
                "bare_step", index, start_to_close_timeout=timedelta(seconds=30)
            )
        self._done = index + 1

    @workflow.update
    async def started(self) -> int:
        await workflow.wait_condition(lambda: self._done >= 1)
        return self._done

    @workflow.update
    async def act(self, body: dict[str, Any]) -> int:
        self._accepted += 1
        ticket = self._accepted
        await workflow.wait_condition(lambda: self._done > ticket)
        return ticket


async def run_worker(address: str, task_queue: str) -> None:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    worker = Worker(client, task_queue=task_queue, workflows=[BareWorkflow], activities=[bare_step])
    print("bare worker polling", task_queue, flush=True)  # what bench.stack waits for
    await worker.run()


if __name__ == "__main__":
    asyncio.run(run_worker(sys.argv[1], sys.argv[2]))
