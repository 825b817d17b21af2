"""Fixtures of the security tests: the registry the worker writes, parcels parked at
steps, and the API as a real uvicorn server in a subprocess.

The server runs `landflow api` with the session's settings (same Temporal, worker,
registry and tokens; a document directory of its own, which one test breaks). Its event
loop is not the tests': a request that blocks it stalls the server, not the session."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment

from landflow.settings import Settings
from landflow.vocabulary import Step
from registry.engine import make_engine
from tests.e2e.security.drive import Witness, drive

REPO = Path(__file__).resolve().parents[3]
Park = Callable[[Step], Awaitable[tuple[str, int]]]


@pytest.fixture(scope="session")
def registry_engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def witness(temporal: WorkflowEnvironment, registry_engine: Engine) -> Witness:
    return Witness(temporal.client, registry_engine)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def parked(api: httpx.AsyncClient) -> Park:
    """`await parked(step)`: (parcel id, visit) of a parcel waiting at the step's first
    visit on the ROUTE, driven once per session. Only for requests that must be refused:
    the parcel stays where it is, so tests share it."""
    stamp, cache = uuid.uuid4().hex[:6], {}

    async def park(step: Step) -> tuple[str, int]:
        if step not in cache:
            pid = f"S{stamp}-{step.value}"[:64]
            cache[step] = (pid, await drive(api, pid, step))
        return cache[step]

    return park


# --- `landflow api` in a subprocess, with the session's settings ---------------------


@dataclass
class Server:
    url: str
    documents: Path  # its own document directory
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(
    settings: Settings, temporal: WorkflowEnvironment, documents: Path
) -> dict[str, str]:
    return {
        **os.environ,
        "LANDFLOW_TEMPORAL_ADDRESS": temporal.client.service_client.config.target_host,
        "LANDFLOW_NAMESPACE": temporal.client.namespace,
        "LANDFLOW_DATABASE_URL": settings.database_url,
        "LANDFLOW_TOKENS_FILE": str(settings.tokens_file),
        "LANDFLOW_TASK_QUEUE": settings.task_queue,
        "LANDFLOW_DATA_DIR": str(settings.data_dir),
        "LANDFLOW_DOCUMENTS_DIR": str(documents),
        "LANDFLOW_ACTOR_KEY": settings.actor_key,
        "LANDFLOW_ACTION_TIMEOUT_S": str(settings.action_timeout_s),
    }


@asynccontextmanager
async def running_server(
    settings: Settings, temporal: WorkflowEnvironment, tmp: Path
) -> AsyncIterator[Server]:
    """`landflow api` on a free port until the block ends (stopped, or killed after 15 s)."""
    port, log = free_port(), tmp / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "api", "--port", str(port)],
            cwd=REPO,
            env=server_env(settings, temporal, tmp / "documents"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=url) as probe:
            while True:
                assert process.poll() is None, f"the server exited: {log.read_text()[-3000:]}"
                try:
                    if (await probe.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"no answer in 60 s: {log.read_text()[-3000:]}"
                await asyncio.sleep(0.2)
        yield Server(url, tmp / "documents", log)
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def server(
    api: httpx.AsyncClient,  # the session's worker runs: actions through the server apply
    settings: Settings,
    temporal: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Server]:
    async with running_server(settings, temporal, tmp_path_factory.mktemp("server")) as running:
        yield running
