"""Fixtures of the security tests: the registry the worker writes, parcels parked at steps."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment

from landflow import registry
from landflow.contracts import Step
from landflow.settings import Settings
from tests.security.drive import Witness, drive, first_visit


@pytest.fixture(scope="session")
def registry_engine(settings: Settings) -> Iterator[Engine]:
    engine = registry.make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def witness(temporal: WorkflowEnvironment, registry_engine: Engine) -> Witness:
    return Witness(temporal.client, registry_engine)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def parked(api: httpx.AsyncClient) -> dict[Step, str]:
    """One parcel waiting at each step (its first visit on the ROUTE), for tests that only
    send requests the API must refuse: they stay where they are, so tests share them."""
    stamp = uuid.uuid4().hex[:6]
    pids = {step: f"P{stamp}-{step.value}" for step in Step}
    for step, pid in pids.items():
        await drive(api, pid, first_visit(step))
    return pids
