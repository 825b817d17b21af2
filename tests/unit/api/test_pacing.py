"""A parcel's actions reach the engine a few at a time; past the queue, 429 at once; and
Temporal's own limit (RESOURCE_EXHAUSTED) is 429 too."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError, from_temporal
from api.pacing import Pacing


async def test_in_flight_then_queued_then_busy():
    pacing = Pacing(in_flight=2, queued=1)
    release = asyncio.Event()
    inside = 0
    most = 0

    async def act() -> str:
        nonlocal inside, most
        try:
            async with pacing.turn("parcel-P1", 5):
                inside += 1
                most = max(most, inside)
                await release.wait()
                inside -= 1
                return "done"
        except ApiError as error:
            return f"{error.status} {error.error} {error.headers['Retry-After']}"

    tasks = [asyncio.create_task(act()) for _ in range(5)]
    await asyncio.sleep(0.05)
    release.set()
    answers = await asyncio.gather(*tasks)
    assert sorted(answers) == ["429 Busy 1", "429 Busy 1", "done", "done", "done"]
    assert most == 2
    assert not pacing._lanes, "no lane kept for an idle parcel"


async def test_other_parcels_have_their_own_lane():
    pacing = Pacing(in_flight=1, queued=0)
    async with pacing.turn("parcel-A", 1), pacing.turn("parcel-B", 1):
        with pytest.raises(ApiError) as refused:
            async with pacing.turn("parcel-A", 1):
                pass
    assert refused.value.status == 429


async def test_a_turn_that_does_not_come_in_time_is_busy():
    pacing = Pacing(in_flight=1, queued=5)
    async with pacing.turn("parcel-A", 1):
        with pytest.raises(ApiError) as refused:
            async with pacing.turn("parcel-A", 0.05):
                pass
    assert refused.value.status == 429


def test_temporals_own_limit_is_busy_with_retry_after():
    exhausted = RPCError("too many outstanding updates", RPCStatusCode.RESOURCE_EXHAUSTED, b"")
    error = from_temporal(exhausted, "parcel P1")
    assert (error.status, error.error) == (429, "Busy") and error.headers["Retry-After"]
