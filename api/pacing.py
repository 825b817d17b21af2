"""Actions on one parcel go to the engine a few at a time; past a short queue, 429.

A parcel's steps follow one another: only a joint review takes two answers at once. Fifty
clients answering one parcel together made the Temporal server abort updates over and
over (each new one raced the workflow task of the others: "workflow update was
aborted"), so some waited out the whole action timeout for a 503. Here each API process
lets `in_flight` actions of a parcel reach the engine at once, queues `queued` more, and
answers the rest 429 `Busy` with Retry-After at once. Temporal's own limit (10 updates in
flight per workflow, across every API replica) still maps to 429 as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from api.errors import busy

IN_FLIGHT = 2  # the two bureaus of a joint review
QUEUED = 8


@dataclass
class _Lane:
    gate: asyncio.Semaphore
    users: int = 0  # in flight and queued


@dataclass
class Pacing:
    in_flight: int = IN_FLIGHT
    queued: int = QUEUED
    _lanes: dict[str, _Lane] = field(default_factory=dict)

    @asynccontextmanager
    async def turn(self, workflow_id: str, wait_s: float) -> AsyncIterator[None]:
        """This parcel's turn, waited for at most `wait_s`; 429 when the queue is full or
        the turn does not come in time."""
        lane = self._lanes.get(workflow_id)
        if lane is None:
            lane = self._lanes[workflow_id] = _Lane(asyncio.Semaphore(self.in_flight))
        parcel = f"parcel {workflow_id.removeprefix('parcel-')}"
        if lane.users >= self.in_flight + self.queued:
            raise busy(parcel)
        lane.users += 1
        try:
            if lane.gate.locked():
                try:
                    await asyncio.wait_for(lane.gate.acquire(), wait_s)
                except TimeoutError:
                    raise busy(parcel) from None
            else:  # free: taken at once, without wait_for's task and timer
                await lane.gate.acquire()
            try:
                yield
            finally:
                lane.gate.release()
        finally:
            lane.users -= 1
            if lane.users == 0:
                del self._lanes[workflow_id]  # no lane kept for an idle parcel
