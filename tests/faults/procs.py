"""Processes the fault tests start, and kill: a Temporal dev server and worker subprocesses.

Each runs in its own session so a signal reaches it alone; every one is killed by its id
when the test ends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from landflow import visibility
from landflow.settings import Settings
from tests.conftest import binary

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 60, every: float = 0.3
) -> T:
    """Poll until `probe` returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(every)


class Process:
    """One subprocess with its output in a log file, started and killed on demand."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.popen: subprocess.Popen | None = None
        self.log_offset = 0

    def start(self, **extra_env: str) -> None:
        assert not self.running, f"{self.name} is already running"
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                env={**self.env, **extra_env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGKILL, timeout: float = 15) -> None:
        if not self.running:
            return
        assert self.popen is not None
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)

    def output(self) -> str:
        """What this run (since the last start) wrote."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as out:
            out.seek(self.log_offset)
            return out.read().decode("utf-8", "replace")

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} ({self.log}) ---\n{self.output()[-chars:]}"


class DevServer(Process):
    """`temporal server start-dev` on a persistent SQLite file, as `make run` starts it."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        argv = [
            binary("temporal"),
            "server",
            "start-dev",
            "--db-filename",
            str(tmp / "temporal.db"),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--headless",
            "--log-level",
            "error",
        ]
        for flag in visibility.cli_flags():
            argv += ["--search-attribute", flag]
        super().__init__("temporal", argv, dict(os.environ), tmp / "temporal.log")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def connect(self, timeout: float = 60) -> Client:
        """A client once the frontend answers (the server may be just (re)starting)."""

        async def attempt() -> Client | None:
            if not self.running:
                raise AssertionError(f"the dev server died\n{self.tail()}")
            try:
                client = await Client.connect(self.address, data_converter=pydantic_data_converter)
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
            except (RuntimeError, RPCError):
                return None
            return client

        return await eventually(attempt, "the dev server answers", timeout)


def worker_env(settings: Settings) -> dict[str, str]:
    """The LANDFLOW_* environment a `landflow worker` process reads its settings from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANDFLOW_")}
    env.update(
        LANDFLOW_TEMPORAL_ADDRESS=settings.temporal_address,
        LANDFLOW_DATABASE_URL=settings.database_url,
        LANDFLOW_TASK_QUEUE=settings.task_queue,
        LANDFLOW_TOKENS_FILE=str(settings.tokens_file),
        LANDFLOW_POLICY_FILE=str(settings.policy_file),
        LANDFLOW_DATA_DIR=str(settings.data_dir),
        PYTHONFAULTHANDLER="1",  # a native crash leaves its Python stack in the log
    )
    return env


class WorkerProcess(Process):
    def __init__(self, settings: Settings) -> None:
        argv = [sys.executable, "-m", "landflow.cli", "worker"]
        super().__init__("worker", argv, worker_env(settings), settings.data_dir / "worker.log")

    async def polling(self, timeout: float = 60) -> None:
        """Wait for the worker's start-up line (it logs it right before polling)."""

        async def ready() -> bool:
            if not self.running:
                raise AssertionError(f"the worker died\n{self.tail()}")
            return "worker polling" in self.output()

        await eventually(ready, "the worker polls", timeout, every=0.2)
