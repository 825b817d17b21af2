"""The processes a benchmark measures, started fresh under `service.processes.Supervisor`.

A benchmark gets its own Temporal dev server (a SQLite file, as `make run` keeps it, or
in memory), project workers and APIs as real subprocesses (`landflow worker`,
`landflow api`, so their RSS and CPU are their own), and the bare worker in another
subprocess when it compares against one. Project and bare run on the same server in the
same run. Every program is supervised without automatic restarts: a benchmark that kills
a worker means it, and one that dies on its own fails the benchmark with its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import psutil
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from bench.fixtures import BIN, LOCAL_POSTGRES, fresh_postgres_database, write_tokens
from service.processes import Program, Supervisor
from workflows import visibility

ROOT = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
LANDFLOW = [sys.executable, "-m", "service.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Layout:
    """What a benchmark starts: how many workers and APIs, a bare worker, which server."""

    workers: int = 1
    apis: int = 1
    bare: bool = False
    # The dev server's store: "file" (a SQLite file, as `make run` keeps it), "wal" (the
    # same file in WAL mode with synchronous=NORMAL: safe against a killed server, half the
    # server's CPU per event), "memory". Default: BENCH_SERVER, else "file".
    server: str = ""
    # The registry: a SQLAlchemy URL; "" takes BENCH_REGISTRY: "sqlite" (default, a file in
    # the stack's directory, as `make run`) or "postgres" (a throwaway database on the local
    # server, as tests/conftest.py makes them)
    database_url: str = ""
    # extra LANDFLOW_* settings (lower-case names); "{tmp}" in a value is the stack's directory
    settings: dict[str, str] = field(default_factory=dict)
    server_flags: tuple[str, ...] = ()  # extra `temporal server start-dev` flags


def worker_name(n: int) -> str:
    return f"worker-{n}"


def api_name(n: int) -> str:
    return f"api-{n}"


@dataclass
class Stack:
    tmp: Path
    layout: Layout
    supervisor: Supervisor
    address: str
    env: dict[str, str]
    task_queue: str
    bare_queue: str
    api_ports: dict[str, int]
    client: Client = field(init=False)
    _pids: dict[str, int] = field(default_factory=dict)
    _log_marks: dict[str, int] = field(default_factory=dict)

    # --- programs --------------------------------------------------------------

    @property
    def workers(self) -> list[str]:
        return [worker_name(n) for n in range(1, self.layout.workers + 1)]

    @property
    def apis(self) -> list[str]:
        return [api_name(n) for n in range(1, self.layout.apis + 1)]

    def url(self, api: str = "api-1") -> str:
        return f"http://127.0.0.1:{self.api_ports[api]}"

    def pid(self, name: str) -> int:
        if name not in self._pids:
            pid = self.supervisor.pid(name)
            if pid is None:
                raise RuntimeError(f"{name} is not running")
            self._pids[name] = pid
        return self._pids[name]

    def process(self, name: str) -> psutil.Process:
        return psutil.Process(self.pid(name))

    def rss_mib(self, name: str) -> float:
        """Resident memory of the program and its children (the dev server forks none)."""
        proc = self.process(name)
        total = 0
        for each in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += each.memory_info().rss
        return total / 2**20

    def cpu_s(self, name: str) -> float:
        """User + system CPU seconds the program has used so far."""
        times = self.process(name).cpu_times()
        return float(times.user + times.system)

    def check(self, *names: str) -> None:
        """Raise with the log's tail if one of these programs is no longer running."""
        for name in names or tuple(self._pids):
            try:
                alive = self.process(name).status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                alive = False
            if not alive:
                tail = self.supervisor.log_tail(name)
                raise RuntimeError(f"{name} is not running any more:\n{tail}")

    def _mark_log(self, name: str) -> None:
        path = self.supervisor.log_path(name)
        self._log_marks[name] = path.stat().st_size if path.exists() else 0

    def _log_since_start(self, name: str) -> str:
        path = self.supervisor.log_path(name)
        if not path.exists():
            return ""
        with path.open("rb") as log:
            log.seek(self._log_marks.get(name, 0))
            return log.read().decode("utf-8", "replace")

    async def start(self, name: str, timeout: float = 90) -> float:
        """Start a worker, API or the bare worker; return once it serves (seconds taken)."""
        started = time.perf_counter()
        self._pids.pop(name, None)
        self._mark_log(name)
        self.supervisor.start_program(name)
        deadline = time.monotonic() + timeout
        while True:
            await asyncio.sleep(0.1)
            if self.supervisor.pid(name) is None:  # exited (supervisord reports pid 0)
                raise RuntimeError(f"{name} exited at start:\n{self.supervisor.log_tail(name)}")
            if await self._serves(name):
                return time.perf_counter() - started
            if time.monotonic() > deadline:
                tail = self.supervisor.log_tail(name)
                raise RuntimeError(f"{name} did not come up within {timeout:.0f} s:\n{tail}")

    async def _serves(self, name: str) -> bool:
        if name in self.api_ports:
            async with httpx.AsyncClient(timeout=5) as http:
                with contextlib.suppress(httpx.HTTPError):
                    return (await http.get(f"{self.url(name)}/readyz")).status_code == 200
            return False
        if name == "bare":
            return "bare worker polling" in self._log_since_start(name)
        return "worker polling" in self._log_since_start(name)

    def stop(self, name: str) -> None:
        """SIGTERM (a graceful shutdown), SIGKILL after the program's stop time."""
        self.supervisor.stop_program(name)
        self._pids.pop(name, None)

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash: no shutdown, the server learns nothing."""
        self.supervisor.signal(name, signal.SIGKILL)
        self._pids.pop(name, None)

    async def start_all(self) -> None:
        """Every worker, API and the bare worker of the layout, in parallel."""
        names = [*self.workers, *self.apis, *(["bare"] if self.layout.bare else [])]
        await asyncio.gather(*(self.start(name) for name in names))

    def logs(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {name} ---\n{self.supervisor.log_tail(name, chars)}"
            for name in self.supervisor.programs
        )


SERVER_MODES = ("file", "wal", "memory")


def server_mode(layout: Layout) -> str:
    mode = layout.server or os.environ.get("BENCH_SERVER", "file")
    if mode not in SERVER_MODES:
        raise ValueError(f"BENCH_SERVER={mode!r}: one of {', '.join(SERVER_MODES)}")
    return mode


def _server_argv(tmp: Path, port: int, layout: Layout) -> list[str]:
    argv = [str(BIN / "temporal"), "server", "start-dev", "--ip", "127.0.0.1"]
    argv += ["--port", str(port), "--headless", "--log-level", "error"]
    mode = server_mode(layout)
    if mode != "memory":
        argv += ["--db-filename", str(tmp / "temporal.db")]
    if mode == "wal":
        argv += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    for flag in visibility.cli_flags():
        argv += ["--search-attribute", flag]
    return [*argv, *layout.server_flags]


def _environment(tmp: Path, address: str, queue: str, layout: Layout) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANDFLOW_")}
    env.update(
        LANDFLOW_TEMPORAL_ADDRESS=address,
        LANDFLOW_DATA_DIR=str(tmp),
        LANDFLOW_DATABASE_URL=layout.database_url or f"sqlite:///{tmp / 'registry.db'}",
        LANDFLOW_TOKENS_FILE=str(write_tokens(tmp / "tokens.json")),
        LANDFLOW_TASK_QUEUE=queue,
        LANDFLOW_ACTION_TIMEOUT_S="20",
        PYTHONFAULTHANDLER="1",  # a native crash in a child leaves its stack in the log
        PYTHONUNBUFFERED="1",
    )
    env.update({f"LANDFLOW_{k.upper()}": v.format(tmp=tmp) for k, v in layout.settings.items()})
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return env


def _programs(
    tmp: Path, port: int, layout: Layout, env: dict[str, str], api_ports: dict[str, int]
) -> list[Program]:
    queue = env["LANDFLOW_TASK_QUEUE"]

    def on_demand(name: str, argv: list[str]) -> Program:
        """Started when the benchmark says, never restarted: a death fails the benchmark."""
        return Program(
            name, argv, env=env, cwd=str(ROOT), autorestart=False, autostart=False, stopwaitsecs=15
        )

    programs = [
        Program("temporal", _server_argv(tmp, port, layout), env=env, autorestart=False),
        *(on_demand(worker_name(n), [*LANDFLOW, "worker"]) for n in range(1, layout.workers + 1)),
        *(on_demand(name, [*LANDFLOW, "api", "--port", str(p)]) for name, p in api_ports.items()),
    ]
    if layout.bare:
        bare = [sys.executable, "-m", "bench.bare", f"127.0.0.1:{port}", f"{queue}-bare"]
        programs.append(on_demand("bare", bare))
    return programs


async def connect(address: str, supervisor: Supervisor, timeout: float = 60) -> Client:
    """A client once the dev server's frontend answers."""
    deadline = time.monotonic() + timeout
    while True:
        if supervisor.pid("temporal") is None:
            raise RuntimeError(f"the dev server exited:\n{supervisor.log_tail('temporal')}")
        with contextlib.suppress(RuntimeError, RPCError):
            client = await Client.connect(address, data_converter=pydantic_data_converter)
            await client.workflow_service.get_system_info(GetSystemInfoRequest())
            return client
        if time.monotonic() > deadline:
            raise RuntimeError(f"the dev server at {address} did not answer in {timeout:.0f} s")
        await asyncio.sleep(0.2)


def registry_kind() -> str:
    kind = os.environ.get("BENCH_REGISTRY", "sqlite")
    if kind not in ("sqlite", "postgres"):
        raise ValueError(f"BENCH_REGISTRY={kind!r}: sqlite or postgres")
    return kind


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL server (or LANDFLOW_TEST_DATABASE_URL's)."""
    with fresh_postgres_database(
        os.environ.get("LANDFLOW_TEST_DATABASE_URL") or LOCAL_POSTGRES
    ) as url:
        yield url


@contextlib.asynccontextmanager
async def stack(layout: Layout | None = None, *, start: bool = True) -> AsyncIterator[Stack]:
    """A dev server under supervision and the programs of `layout`, started (unless told
    otherwise); everything is stopped and the directory removed afterwards."""
    layout = layout or Layout()
    with contextlib.ExitStack() as resources:
        if not layout.database_url and registry_kind() == "postgres":
            layout = replace(layout, database_url=resources.enter_context(postgres_database()))
        async with _stack(layout, start) as bench:
            yield bench


@contextlib.asynccontextmanager
async def _stack(layout: Layout, start: bool) -> AsyncIterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="landflow-bench-") as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        address = f"127.0.0.1:{port}"
        queue = f"landflow-bench-{uuid.uuid4().hex[:6]}"
        env = _environment(tmp, address, queue, layout)
        api_ports = {api_name(n): free_port() for n in range(1, layout.apis + 1)}
        programs = _programs(tmp, port, layout, env, api_ports)
        supervisor = Supervisor(programs, tmp / "supervisor", ports=[port])
        supervisor.start()
        try:
            bench = Stack(tmp, layout, supervisor, address, env, queue, f"{queue}-bare", api_ports)
            bench.client = await connect(address, supervisor)
            bench.pid("temporal")
            if start:
                await bench.start_all()
            yield bench
        except BaseException:
            print(_tails(supervisor), file=sys.stderr)  # the processes' own words
            kept = _keep_logs(tmp)
            print(f"logs kept in {kept}", file=sys.stderr)
            raise
        finally:
            supervisor.stop()


def _keep_logs(tmp: Path) -> Path:
    """Copy the programs' logs out of the directory about to be removed."""
    kept = Path(tempfile.gettempdir()) / "landflow-bench-logs" / tmp.name
    kept.mkdir(parents=True, exist_ok=True)
    for log in (tmp / "supervisor").glob("*.log"):
        shutil.copy(log, kept / log.name)
    return kept


def _tails(supervisor: Supervisor) -> str:
    return "\n".join(
        f"--- {name} log (tail) ---\n{supervisor.log_tail(name, 2000)}"
        for name in supervisor.programs
    )


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


class CpuMeter:
    """CPU seconds each named program used between `start()` and `stop()`."""

    def __init__(self, bench: Stack, names: list[str]) -> None:
        self.bench, self.names = bench, names
        self.used: dict[str, float] = {}
        self._at: dict[str, float] = {}

    def start(self) -> None:
        self._at = {name: self.bench.cpu_s(name) for name in self.names}

    def stop(self) -> dict[str, float]:
        for name in self.names:
            self.used[name] = self.used.get(name, 0.0) + self.bench.cpu_s(name) - self._at[name]
        return self.used
