"""The processes a benchmark measures, each started fresh on loopback ports.

A benchmark gets its own Temporal dev server (in-memory SQLite), the project worker
and API as real subprocesses (`landflow worker`, `landflow api` under uvicorn, so their
RSS and CPU are their own), and the bare worker in another subprocess. Project and bare
run on the same server in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from landflow import visibility
from tests.helpers import write_tokens

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proc:
    """A child process whose output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_mib(self) -> float:
        """Resident memory of the process and its children (the dev server forks none today)."""
        proc = psutil.Process(self.pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 2**20

    def check(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


@dataclass
class Stack:
    tmp: Path
    address: str
    server: Proc
    client: Client
    task_queue: str
    bare_queue: str
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)
    worker: Proc | None = None
    api_url: str = ""

    def start_worker(self) -> Proc:
        self.worker = self._spawn("worker", [sys.executable, "-m", "landflow.cli", "worker"])
        return self.worker

    def start_bare_worker(self) -> Proc:
        argv = [sys.executable, "-m", "bench.bare", self.address, self.bare_queue]
        return self._spawn("bare-worker", argv)

    async def start_api(self) -> str:
        port = free_port()
        argv = [sys.executable, "-m", "landflow.cli", "api", "--port", str(port)]
        proc = self._spawn("api", argv)
        self.api_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=self.api_url) as http:
            for _ in range(300):
                proc.check()
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        return self.api_url
                await asyncio.sleep(0.1)
        raise RuntimeError("the API did not answer /healthz within 30 s")

    def _spawn(self, name: str, argv: list[str]) -> Proc:
        proc = Proc(name, argv, self.tmp, self.env)
        self.procs.append(proc)
        return proc


async def _connect(address: str, server: Proc) -> Client:
    for _ in range(300):
        server.check()
        try:
            return await Client.connect(address, data_converter=pydantic_data_converter)
        except RuntimeError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the dev server at {address} did not answer within 30 s")


def _server_argv(port: int) -> list[str]:
    argv = [str(BIN / "temporal"), "server", "start-dev", "--ip", "127.0.0.1"]
    argv += ["--port", str(port), "--headless", "--log-level", "error"]
    for flag in visibility.cli_flags():
        argv += ["--search-attribute", flag]
    return argv


@contextlib.asynccontextmanager
async def stack(**settings: str) -> AsyncIterator[Stack]:
    """A dev server and the environment for landflow processes; extra LANDFLOW_* settings."""
    with tempfile.TemporaryDirectory(prefix="landflow-bench-") as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        address = f"127.0.0.1:{port}"
        server = Proc("temporal", _server_argv(port), tmp, dict(os.environ))
        procs = [server]
        try:
            client = await _connect(address, server)
            queue = f"landflow-bench-{uuid.uuid4().hex[:6]}"
            env = {
                **os.environ,
                "LANDFLOW_TEMPORAL_ADDRESS": address,
                "LANDFLOW_DATA_DIR": str(tmp),
                "LANDFLOW_DATABASE_URL": f"sqlite:///{tmp / 'registry.db'}",
                "LANDFLOW_TOKENS_FILE": str(write_tokens(tmp / "tokens.json")),
                "LANDFLOW_TASK_QUEUE": queue,
                "LANDFLOW_ACTION_TIMEOUT_S": "20",
                **{f"LANDFLOW_{k.upper()}": v for k, v in settings.items()},
            }
            env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
            env["PYTHONFAULTHANDLER"] = "1"  # a native crash in a child leaves its stack
            bench = Stack(tmp, address, server, client, queue, f"{queue}-bare", env, procs)
            yield bench
        except BaseException:
            for proc in procs:  # the processes' own words, before the directory goes
                tail = proc.log.read_text(errors="replace")[-3000:]
                print(f"--- {proc.name} log (tail) ---\n{tail}", file=sys.stderr)
            raise
        finally:
            for proc in reversed(procs):
                proc.stop()


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.start


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
