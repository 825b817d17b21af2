"""`make run` (`landflow dev`) supervises its processes: a killed worker or API is
restarted and the restart logged; Ctrl-C stops every child; a second run finds the
same demo parcel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.procs import Process, eventually, free_port

pytestmark = pytest.mark.faults

DEMO = "DEMO-JH-001"
CHILDREN = {  # name -> what its command line contains
    "temporal": "server start-dev",
    "worker": "landflow.cli worker",
    "api": "landflow.cli api",
}


def children_of(pid: int) -> dict[str, int]:
    """The runner's children by role, read from `ps`."""
    listing = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    found = {}
    for line in listing.splitlines():
        child, _, args = line.strip().partition(" ")
        for name, marker in CHILDREN.items():
            if marker in args:
                found[name] = int(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


class DevRun(Process):
    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "data"
        self.api_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LANDFLOW_")}
        env.update(
            LANDFLOW_DATA_DIR=str(self.data),
            LANDFLOW_API_PORT=str(self.api_port),
            LANDFLOW_TEMPORAL_PORT=str(free_port()),
            LANDFLOW_UI_PORT=str(free_port()),
        )
        argv = [sys.executable, "-m", "landflow.cli", "dev"]
        super().__init__("make run", argv, env, tmp / "run.log")
        self.seen: set[int] = set()  # every child pid, to clean up by id

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def token(self, role: str) -> str:
        tokens = json.loads((self.data / "dev-tokens.json").read_text(encoding="utf-8"))
        return next(t for t, entry in tokens.items() if entry["role"] == role)

    def children(self) -> dict[str, int]:
        assert self.popen is not None
        found = children_of(self.popen.pid)
        self.seen |= set(found.values())
        return found

    async def up(self) -> None:
        async def ready() -> bool:
            assert self.running, f"make run exited\n{self.tail()}"
            return "landflow is running" in self.output() and len(self.children()) == 3

        await eventually(ready, "make run is up", 120, 0.5)

    async def logged(self, text: str) -> None:
        async def seen() -> bool:
            return text in self.output()

        await eventually(seen, f"make run logs {text!r}", 60)

    def kill_leftovers(self) -> None:
        self.stop(signal.SIGKILL)
        for pid in self.seen:
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)  # each child leads its own session


@pytest.fixture
def devrun(tmp_path: Path) -> Iterator[DevRun]:
    run = DevRun(tmp_path)
    yield run
    run.kill_leftovers()
    print(run.tail(6000))  # shown by pytest when the test failed


async def demo_parcel(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """The demo parcel once it waits on its first step (the query needs a worker)."""

    async def waiting() -> dict[str, Any] | None:
        try:
            response = await http.get(
                f"/parcels/{DEMO}", headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.TransportError:  # the API is restarting
            return None
        if response.status_code == 200 and response.json()["waiting_on"]:
            return response.json()
        assert response.status_code in (200, 503), response.text
        return None

    return await eventually(waiting, f"GET /parcels/{DEMO} answers", 60, 0.5)


async def test_make_run_restarts_what_dies_and_stops_everything(devrun: DevRun):
    devrun.start()
    await devrun.up()
    assert f"parcel {DEMO} started" in devrun.output()
    auditor = devrun.token("auditor")
    async with httpx.AsyncClient(base_url=devrun.base, timeout=15) as http:
        before = await demo_parcel(http, auditor)
        assert (before["stage"], before["waiting_on"]) == ("closure_screening", "district_epb")

        for name in ("worker", "api"):
            victim = devrun.children()[name]
            os.kill(victim, signal.SIGKILL)
            await devrun.logged(f"{name} exited with code -9; restarting (restart 1")
            await eventually(
                lambda victim=victim, name=name: _replaced(devrun, name, victim),
                f"a new {name} process",
            )
            assert await demo_parcel(http, auditor) == before

    last = devrun.children()
    assert devrun.popen is not None
    devrun.popen.send_signal(signal.SIGINT)  # Ctrl-C
    assert devrun.popen.wait(60) == 0
    assert "landflow stopped." in devrun.output()
    assert [name for name, pid in last.items() if alive(pid)] == []

    # A second run finds the same parcel, with the same tokens.
    devrun.start()
    await devrun.up()
    assert f"parcel {DEMO} already running" in devrun.output()
    async with httpx.AsyncClient(base_url=devrun.base, timeout=15) as http:
        assert await demo_parcel(http, auditor) == before
    last = devrun.children()
    devrun.popen.send_signal(signal.SIGINT)
    assert devrun.popen.wait(60) == 0
    assert [name for name, pid in last.items() if alive(pid)] == []


async def _replaced(devrun: DevRun, name: str, old: int) -> bool:
    return devrun.children().get(name, old) != old
