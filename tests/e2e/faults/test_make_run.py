"""`make run` (`python -m service.cli dev`) as a terminal runs it: its own session, its own
data dir and free ports. A killed worker or a hung API is restarted and the restart
shown; closing the terminal (SIGHUP) or SIGKILL of the run stops every child; a second
run beside a leftover of the first refuses, naming it; `make stop` ends the leftover; a
later run finds the same demo parcel.

The tests share one data dir and run in file order (each later run finds the earlier
runs' demo parcel). The run itself is started with Popen, as a shell starts a job: it is
the supervisor under test, not a program of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from landflow.vocabulary import Role
from service import demo
from tests.e2e.faults.conftest import REPO, eventually, free_port

pytestmark = pytest.mark.faults

DEMO = demo.PARCEL["parcel_id"]
PROGRAMS = ("temporal", "worker", "api")


def mentions(proc: psutil.Process, data: Path) -> bool:
    """Its command line or its environment names the data dir (a worker's or the API's
    command line does not: they find it in LANDFLOW_DATA_DIR)."""
    try:
        if any(str(data) in arg for arg in proc.cmdline()):
            return True
        return str(data) in proc.environ().get("LANDFLOW_DATA_DIR", "")
    except psutil.Error:
        return False


def with_data(data: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            mine = proc.pid != os.getpid() and proc.status() != psutil.STATUS_ZOMBIE
            if mine and mentions(proc, data):
                found.append(proc)
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class DevRun:
    """`landflow dev` runs, one after another, on one data dir and one set of ports."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.data = tmp, tmp / "data"
        self.api_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LANDFLOW_")}
        self.env.update(
            LANDFLOW_DATA_DIR=str(self.data),
            LANDFLOW_API_PORT=str(self.api_port),
            LANDFLOW_TEMPORAL_PORT=str(free_port()),
            LANDFLOW_UI_PORT=str(free_port()),
            PYTHONFAULTHANDLER="1",
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.seen: set[int] = set()  # every pid of ours, for the safety net

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def out(self) -> Path:
        return self.tmp / f"run-{self.runs}.out"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "service.cli", *args]

    def start(self) -> subprocess.Popen[bytes]:
        self.runs += 1
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command("dev"),
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a shell job: the terminal's signals reach its group
            )
        self.seen.add(self.proc.pid)
        return self.proc

    def output(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    async def up(self) -> str:
        """Wait for the banner (every program runs, the demo is walked); return the output."""

        async def banner() -> bool:
            assert self.proc is not None and self.proc.poll() is None, (
                f"make run exited\n{self.output()}"
            )
            return "  Schedules :" in self.output()

        await eventually(banner, "make run prints its banner", 180, 0.5, self.output)
        self.seen |= set(self.pids().values())
        return self.output()

    def pids(self) -> dict[str, int]:
        """supervisord's and each program's pid as the run recorded them (0: not running)."""
        state = self.data / "supervisor"
        recorded = json.loads((state / "state.json").read_text(encoding="utf-8"))
        programs = recorded.get("programs", {})
        pids = {name: int(programs.get(name, {}).get("pid", 0)) for name in PROGRAMS}
        pids["listener"] = int(recorded["listener"]["pid"])
        pids["supervisord"] = int((state / "supervisord.pid").read_text().strip())
        return pids

    def token(self, role: str) -> str:
        tokens = json.loads((self.data / "dev-tokens.json").read_text(encoding="utf-8"))
        return next(t for t, entry in tokens.items() if entry["role"] == role)

    async def shown(self, text: str, timeout: float) -> None:
        async def there() -> bool:
            return text in self.output()

        await eventually(there, f"make run shows {text!r}", timeout, 0.5, self.output)

    async def all_gone(self, pids: list[int], timeout: float = 30) -> None:
        async def gone() -> bool:
            return not [p for p in pids if alive(p)] and not with_data(self.data)

        def left() -> str:
            return f"{[(p.pid, p.cmdline()) for p in with_data(self.data)]}\n{self.output()}"

        await eventually(gone, f"every process of the run gone (pids {pids})", timeout, 0.2, left)

    def reap(self) -> None:
        """Safety net: whatever a failed test left is killed by its id."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for proc in with_data(self.data) + [p for p in map(_process, self.seen) if p]:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(sig)


def _process(pid: int) -> psutil.Process | None:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid) if alive(pid) else None
    return None


@pytest.fixture(scope="module")
def devrun(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    run = DevRun(tmp_path_factory.mktemp("makerun"))
    yield run
    run.reap()


async def demo_parcel(base: str, token: str) -> dict[str, Any]:
    """The demo parcel, once the API answers and a worker answers its query."""

    async def read() -> dict[str, Any] | None:
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                response = await http.get(
                    f"/parcels/{DEMO}", headers={"Authorization": f"Bearer {token}"}
                )
        except httpx.TransportError:  # the API is restarting
            return None
        assert response.status_code in (200, 503), response.text
        return response.json() if response.status_code == 200 else None

    return await eventually(read, f"GET /parcels/{DEMO} answers", 60, 0.5)


FIRST_DEMO: dict[str, Any] = {}


async def test_make_run_restarts_what_dies_and_a_hangup_stops_everything(devrun: DevRun):
    devrun.start()
    banner = await devrun.up()
    assert f"Workbench : {devrun.base}/ui/inbox" in banner
    assert f"parcel {DEMO} started (waiting on the joint filing review)" in banner
    links = [line for line in banner.splitlines() if f"{devrun.base}/ui/login?token=" in line]
    assert {line.split()[0] for line in links} == {role.value for role in Role}, links
    before = await demo_parcel(devrun.base, devrun.token("auditor"))
    assert (before["stage"], sorted(before["waiting_on"])) == (
        "filing",
        ["city_epb", "planning_land"],
    )
    FIRST_DEMO.update(before)

    worker = devrun.pids()["worker"]
    os.kill(worker, signal.SIGKILL)
    await devrun.shown("worker was restarted (1 so far)", 30)
    assert await demo_parcel(devrun.base, devrun.token("auditor")) == before
    assert devrun.pids()["worker"] != worker

    api = devrun.pids()["api"]
    os.kill(api, signal.SIGSTOP)  # hung: the port is open, nothing answers
    await devrun.shown("api was restarted (1 so far)", 45)

    async def replaced() -> bool:
        return not alive(api) and devrun.pids()["api"] not in (api, 0)

    await eventually(replaced, "the hung API is killed and replaced", 30, 0.2, devrun.output)
    assert await demo_parcel(devrun.base, devrun.token("auditor")) == before
    assert "health check failed" in (devrun.data / "supervisor" / "api.log").read_text()

    pids = list(devrun.pids().values())
    assert devrun.proc is not None
    os.killpg(devrun.proc.pid, signal.SIGHUP)  # what closing the terminal does to its job
    assert devrun.proc.wait(60) == 0, devrun.output()
    assert "SIGHUP: stopping everything" in devrun.output()
    await devrun.all_gone(pids)


async def test_a_leftover_is_named_and_make_stop_ends_it(devrun: DevRun):
    devrun.start()
    await devrun.up()
    pids = devrun.pids()
    os.kill(pids["supervisord"], signal.SIGSTOP)  # its parent-death SIGTERM stays pending
    assert devrun.proc is not None
    devrun.proc.kill()
    devrun.proc.wait(10)
    leftovers = [pids[name] for name in PROGRAMS]
    assert all(alive(pid) for pid in leftovers), "the programs outlive the killed run"

    second = subprocess.run(
        devrun.command("dev"), env=devrun.env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    message = second.stdout + second.stderr
    assert second.returncode != 0, message
    for name, pid in pids.items():
        if name != "listener":
            assert f"pid {pid}" in message, f"{name} (pid {pid}) is named in:\n{message}"
    assert "make stop" in message, message

    stop = subprocess.run(
        devrun.command("stop"), env=devrun.env, cwd=REPO, capture_output=True, text=True, timeout=90
    )
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "stopped" in stop.stdout and str(pids["supervisord"]) in stop.stdout, stop.stdout
    await devrun.all_gone(list(pids.values()))


async def test_a_later_run_finds_the_demo_and_sigkill_leaves_nothing(devrun: DevRun):
    devrun.start()
    banner = await devrun.up()
    assert f"parcel {DEMO} already running" in banner
    again = await demo_parcel(devrun.base, devrun.token("auditor"))
    assert not FIRST_DEMO or again == FIRST_DEMO, "the same parcel, same tokens"
    pids = list(devrun.pids().values())
    assert devrun.proc is not None
    devrun.proc.kill()  # no handler runs: the parent-death signals must do it
    devrun.proc.wait(10)
    await devrun.all_gone(pids)


async def test_a_corrupt_registry_is_named_with_its_fix_within_seconds(tmp_path: Path):
    """A registry.db that is not a database: the run says which file and what to do, and
    exits at once, starting nothing (not after a minute of the API crash-looping)."""
    run = DevRun(tmp_path)
    registry = run.data / "registry.db"
    run.data.mkdir()
    registry.write_bytes(b"not a SQLite database, a truncated copy\n" * 200)
    try:
        began = time.monotonic()
        proc = run.start()
        try:
            code = await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"make run still runs after 20 s:\n{run.output()}")
        message = run.output()
        assert code != 0, message
        assert str(registry) in message and f"mv {registry} {registry}.corrupt" in message
        assert "landflow registry rebuild" in message, message
        assert "Traceback" not in message, message
        assert not with_data(run.data), "it started nothing"
        print(f"refused in {time.monotonic() - began:.1f} s: {message}")
    finally:
        run.reap()
