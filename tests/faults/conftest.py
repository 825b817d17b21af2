"""A stack per fault test: its own dev server and worker processes (so they can be
killed), and the API in-process on a client of that server."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest_asyncio
import yaml
from temporalio.client import Client

from landflow.settings import PACKAGE_DIR, Settings
from tests.conftest import api_client, make_settings
from tests.faults.procs import DevServer, WorkerProcess


@dataclass
class Stack:
    settings: Settings
    server: DevServer
    worker: WorkerProcess
    client: Client
    api: httpx.AsyncClient

    async def restart_server(self, sig: signal.Signals) -> None:
        """Stop the dev server with `sig` and start it again on the same database file."""
        self.server.stop(sig)
        self.server.start()
        await self.server.connect()

    def logs(self) -> str:
        return f"{self.server.tail()}\n{self.worker.tail()}"


def fast_policy(tmp: Path, days: float, remind_days_before: float) -> Path:
    """A copy of the packaged policy with every deadline shrunk to seconds of real time."""
    policy = yaml.safe_load((PACKAGE_DIR / "policy.yaml").read_text(encoding="utf-8"))
    for step in policy["steps"].values():
        step.update(days=days, remind_days_before=remind_days_before)
    path = tmp / "policy.yaml"
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    return path


MakeStack = Callable[..., Awaitable[Stack]]


@pytest_asyncio.fixture
async def make_stack(tmp_path: Path) -> AsyncIterator[MakeStack]:
    """`await make_stack(action_timeout_s=..., policy_file=...)`: server up, worker polling."""
    stacks: list[Stack] = []

    async def make(action_timeout_s: float = 15, policy_file: Path | None = None) -> Stack:
        server = DevServer(tmp_path)
        server.start()
        try:
            client = await server.connect()
            settings = make_settings(
                tmp_path,
                temporal_address=server.address,
                policy_file=policy_file or PACKAGE_DIR / "policy.yaml",
            ).model_copy(update={"action_timeout_s": action_timeout_s})
            worker = WorkerProcess(settings)
            stack = Stack(settings, server, worker, client, api_client(settings, client))
            stacks.append(stack)
            worker.start()
            await worker.polling()
        except BaseException:
            server.stop()
            raise
        return stack

    yield make
    for stack in stacks:
        await stack.api.aclose()
        stack.worker.stop()
        stack.server.stop()
        print(stack.logs())  # shown by pytest when the test failed
