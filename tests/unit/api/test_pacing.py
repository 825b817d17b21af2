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


async def test_a_free_turn_is_taken_without_a_timeout_task(monkeypatch: pytest.MonkeyPatch):
    """Every action takes a turn: when the parcel's lane is free, taking it costs no
    `wait_for` (a task and a timer per action, bench/PROFILE.md); a busy lane still waits
    with the timeout."""
    waited: list[float] = []
    wait_for = asyncio.wait_for

    async def counting(awaitable, timeout):  # type: ignore[no-untyped-def]
        waited.append(timeout)
        return await wait_for(awaitable, timeout)

    monkeypatch.setattr(asyncio, "wait_for", counting)
    pacing = Pacing(in_flight=1, queued=1)
    async with pacing.turn("parcel-A", 1):
        assert waited == []
        second = asyncio.create_task(_take(pacing, "parcel-A"))
        await asyncio.sleep(0.01)
        assert waited == [1]
    assert await second == "taken"


async def _take(pacing: Pacing, workflow_id: str) -> str:
    async with pacing.turn(workflow_id, 1):
        return "taken"
