"""What an action costs the API before the engine: one read of the registry, in one
worker thread (bench/PROFILE.md: each hop is a task, a thread handoff and a wake-up of
the event loop, in every action)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session

from api.routes import parcels
from tests.helpers import act, clean_facts, start


async def test_an_action_reads_the_registry_once_before_the_engine(
    api: Any, pid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await start(api, clean_facts(pid))
    reads: list[str] = []
    read_then_release = parcels.read_then_release

    async def counted(session: Session, read: Callable[[], Any]) -> Any:
        reads.append(getattr(read, "func", read).__name__)
        return await read_then_release(session, read)

    monkeypatch.setattr(parcels, "read_then_release", counted)
    outcome = await act(api, pid, "release", {"notes": "商业用地维持原用途"}, "planning_land")
    assert outcome["status"] == "released"
    assert len(reads) == 1, reads
