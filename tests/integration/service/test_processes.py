"""service.processes with tiny real programs: a /healthz HTTP server and a sleeper.

Every test checks that what it started is gone afterwards: no pid it saw lives and no
process has the test's tmp path on its command line. Waits poll a condition against a
deadline and fail saying what never happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from service.processes import (
    Health,
    Program,
    ProgramFailed,
    StaleProcesses,
    Supervisor,
    stop_stale,
)

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[3]

WEB = """\
import http.server, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

print("web listening", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

SLEEPER = """\
import os, time
print("sleeping", os.environ.get("MARK"), os.getcwd(), flush=True)
time.sleep(3600)
"""

LAUNCHER = """\
import json, sys
from pathlib import Path
from service.processes import Supervisor, run_foreground
from tests.integration.service.test_processes import demo_programs

tmp, port = Path(sys.argv[1]), int(sys.argv[2])
supervisor = Supervisor(demo_programs(tmp, port), tmp / "state")

def ready():
    pids = {name: supervisor.pid(name) for name in supervisor.programs}
    pids["supervisord"] = supervisor.supervisord_pid
    (tmp / "ready.json").write_text(json.dumps(pids))

sys.exit(run_foreground(supervisor, ready))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def eventually(probe: Callable[[], T], what: str, timeout: float = 10) -> T:
    """Poll until `probe` returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {result!r})")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def with_path(path: Path) -> list[psutil.Process]:
    """Live processes whose command line mentions `path`."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(path) in arg for arg in proc.info["cmdline"] or []) and alive(proc.pid):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def assert_all_gone(tmp: Path, pids: list[int], timeout: float = 10) -> None:
    def gone() -> bool:
        return not [pid for pid in pids if alive(pid)] and not with_path(tmp)

    left = lambda: [(p.pid, p.cmdline()) for p in with_path(tmp)]  # noqa: E731
    eventually(gone, f"every process gone (left: pids {pids}, by path {left()})", timeout)


def demo_programs(tmp: Path, port: int) -> list[Program]:
    """The web server (health-checked every second) and the sleeper; used by the launcher."""
    (tmp / "web.py").write_text(WEB)
    (tmp / "sleeper.py").write_text(SLEEPER)
    url = f"http://127.0.0.1:{port}/healthz"
    health = Health("http", url, every_s=1, failures=2, timeout_s=0.5)
    return [
        Program(
            "web", [sys.executable, str(tmp / "web.py"), str(port)], health=health, stopwaitsecs=1
        ),
        Program("sleeper", [sys.executable, str(tmp / "sleeper.py")], stopwaitsecs=1),
    ]


def all_pids(supervisor: Supervisor) -> list[int]:
    """supervisord and everything under it (the programs and the health-check listener)."""
    pid = supervisor.supervisord_pid
    assert pid is not None
    return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]


@pytest.fixture(autouse=True)
def reaper(tmp_path: Path) -> Iterator[None]:
    """Safety net: whatever a failing test left behind is killed, so it cannot spoil others."""
    yield
    for proc in with_path(tmp_path):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)


def test_start_stop_leaves_no_process(tmp_path: Path) -> None:
    programs = demo_programs(tmp_path, free_port())
    sleeper = programs[1]
    env = {"PATH": os.environ["PATH"], "MARK": "from-env-file"}
    programs[1] = Program(sleeper.name, sleeper.argv, env=env, cwd=str(tmp_path), stopwaitsecs=1)
    supervisor = Supervisor(programs, tmp_path / "state")
    with supervisor:
        for name in ("web", "sleeper"):
            supervisor.wait_running(name, timeout=15)
        supervisord = psutil.Process(supervisor.supervisord_pid)
        assert supervisord.ppid() == os.getpid(), "supervisord is a child of this process"
        assert os.getsid(supervisord.pid) != os.getsid(0), "supervisord has its own session"
        conf = (tmp_path / "state" / "supervisord.conf").read_text()
        for line in (
            "nodaemon=true",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
        ):
            assert line in conf
        pids = all_pids(supervisor)
        assert len(pids) == 4, f"supervisord, listener, web, sleeper: {pids}"
        eventually(lambda: "from-env-file" in supervisor.log_tail("sleeper"), "sleeper's log")
        assert str(tmp_path) in supervisor.log_tail("sleeper"), "cwd is applied"
        assert supervisor.rss_mib("web") > 1
    supervisor.stop()  # idempotent
    assert_all_gone(tmp_path, pids)


def test_killed_child_is_restarted_and_counted(tmp_path: Path) -> None:
    with Supervisor(demo_programs(tmp_path, free_port()), tmp_path / "state") as supervisor:
        supervisor.wait_running("sleeper", timeout=15)
        before = supervisor.pid("sleeper")
        assert supervisor.restarts("sleeper") == 0
        supervisor.signal("sleeper", signal.SIGKILL)
        eventually(lambda: supervisor.restarts("sleeper") == 1, "restarts('sleeper') becomes 1")
        supervisor.wait_running("sleeper", timeout=15)
        assert supervisor.pid("sleeper") != before
        log = supervisor.log_tail("sleeper")
        assert log.count("sleeping") == 2, f"the log is appended across restarts:\n{log}"
        assert "restarted by supervisord after EXITED" in log
        pids = all_pids(supervisor)
    assert_all_gone(tmp_path, pids)


def test_stopped_child_is_restarted_by_health_check(tmp_path: Path) -> None:
    with Supervisor(demo_programs(tmp_path, free_port()), tmp_path / "state") as supervisor:
        supervisor.wait_running("web", timeout=15)
        before = supervisor.pid("web")
        supervisor.signal("web", signal.SIGSTOP)
        eventually(lambda: supervisor.restarts("web") == 1, "health check restarts web", 15)
        eventually(lambda: supervisor.pid("web") not in (None, before), "web has a new pid", 10)
        supervisor.wait_running("web", timeout=15)
        assert not alive(before), "the hung process was killed"
        assert "health check failed 2 times" in supervisor.log_tail("web")
        pids = all_pids(supervisor)
    assert_all_gone(tmp_path, pids)


def test_programs_die_with_a_killed_supervisord(tmp_path: Path) -> None:
    supervisor = Supervisor(demo_programs(tmp_path, free_port()), tmp_path / "state")
    with supervisor:
        for name in ("web", "sleeper"):
            supervisor.wait_running(name, timeout=15)
        pids = all_pids(supervisor)
        os.kill(pids[0], signal.SIGKILL)
        children = pids[1:]
        eventually(lambda: not any(alive(pid) for pid in children), "pdeathsig kills children", 5)
    assert_all_gone(tmp_path, pids)


def test_wait_running_fails_with_the_log_tail(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "print('boom: bad config'); raise SystemExit(3)"]
    boom = Program("boom", argv, autorestart=False, startsecs=0, stopwaitsecs=1)
    with Supervisor([boom], tmp_path / "state") as supervisor:
        eventually(lambda: supervisor.pid("boom") is None, "boom exits")
        with pytest.raises(ProgramFailed, match="boom is EXITED") as raised:
            supervisor.wait_running("boom", timeout=5)
        assert "boom: bad config" in str(raised.value), "the message ends with the log's tail"
        assert supervisor.restarts("boom") == 0, "no autorestart, so no restart"
        pids = all_pids(supervisor)
    assert_all_gone(tmp_path, pids)


def launch(tmp: Path) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    """A `landflow dev`-like process running run_foreground, in its own session like a shell job."""
    (tmp / "launcher.py").write_text(LAUNCHER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with (tmp / "launcher.out").open("wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, str(tmp / "launcher.py"), str(tmp), str(free_port())],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ready() -> dict[str, int] | None:
        if launcher.poll() is not None:
            raise AssertionError(f"the launcher exited:\n{(tmp / 'launcher.out').read_text()}")
        path = tmp / "ready.json"
        return json.loads(path.read_text()) if path.exists() else None

    return launcher, eventually(ready, "the launcher's programs run", 30)


def test_sighup_to_the_launcher_stops_everything(tmp_path: Path) -> None:
    launcher, pids = launch(tmp_path)
    out_file = tmp_path / "launcher.out"
    os.kill(pids["sleeper"], signal.SIGKILL)
    eventually(lambda: "sleeper was restarted (1 so far)" in out_file.read_text(), "restart shown")
    os.killpg(launcher.pid, signal.SIGHUP)  # what closing the terminal does to a shell job
    try:
        code = launcher.wait(20)
    except subprocess.TimeoutExpired:
        raise AssertionError("the launcher did not exit within 20s of SIGHUP") from None
    out = out_file.read_text()
    assert code == 0, out
    assert "SIGHUP: stopping everything" in out
    log = (tmp_path / "state" / "supervisord.log").read_text()
    assert "SIGHUP" not in log, f"supervisord saw the terminal's SIGHUP (it would reload):\n{log}"
    assert "received SIGTERM indicating exit request" in log
    assert_all_gone(tmp_path, list(pids.values()))


def test_sigkill_of_the_launcher_stops_everything(tmp_path: Path) -> None:
    launcher, pids = launch(tmp_path)
    launcher.kill()
    launcher.wait(5)
    assert_all_gone(tmp_path, list(pids.values()), timeout=15)


def stopped_once_recorded(supervisord: int, tmp: Path) -> dict[str, int] | None:
    """SIGSTOP supervisord; if state.json does not list every process under it, SIGCONT
    and None (try again). Else the pids of supervisord and of what runs under it."""
    os.kill(supervisord, signal.SIGSTOP)
    under = {c.pid: c.name() for c in psutil.Process(supervisord).children(recursive=True)}
    path = tmp / "state" / "state.json"
    state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    records = [state.get("listener", {}), *state.get("programs", {}).values()]
    if not set(under) <= {record.get("pid") for record in records}:
        os.kill(supervisord, signal.SIGCONT)
        return None
    return {"supervisord": supervisord, **{f"{name} {pid}": pid for pid, name in under.items()}}


def test_start_names_an_earlier_runs_leftovers_and_stop_stale_stops_them(tmp_path: Path) -> None:
    launcher, pids = launch(tmp_path)
    # Stopped (so its PDEATHSIG SIGTERM stays pending) once the health-check listener has
    # recorded every process under it: on a loaded machine it may not have yet, or a
    # failed probe may just have restarted web.
    pids = eventually(
        lambda: stopped_once_recorded(pids["supervisord"], tmp_path),
        "state.json lists every process under supervisord",
        30,
    )
    assert len(pids) == 4, f"supervisord, web, sleeper and the listener: {pids}"
    launcher.kill()
    launcher.wait(5)
    eventually(lambda: all(map(alive, pids.values())), "the leftovers live")
    again = Supervisor(demo_programs(tmp_path, free_port()), tmp_path / "state")
    with pytest.raises(StaleProcesses) as raised:
        again.start()
    message = str(raised.value)
    for name, pid in pids.items():
        assert f"pid {pid}" in message, f"{name} ({pid}) is named in:\n{message}"
    assert "supervisord of an earlier run" in message and "program 'web'" in message
    assert "kill " in message and "make stop" in message
    stopped = stop_stale(tmp_path / "state")
    assert set(pids.values()) <= set(stopped), (pids, stopped)
    assert_all_gone(tmp_path, list(pids.values()))
    assert stop_stale(tmp_path / "state") == []


def test_start_names_who_holds_a_needed_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        supervisor = Supervisor(demo_programs(tmp_path, port), tmp_path / "state")
        with pytest.raises(StaleProcesses) as raised:
            supervisor.start()
        message = str(raised.value)
        assert f"pid {os.getpid()}" in message and f"127.0.0.1:{port}" in message, message
        extra = Supervisor([], tmp_path / "state2", ports=[port])
        with pytest.raises(StaleProcesses, match=f"127.0.0.1:{port}"):
            extra.start()
    assert not supervisor.running() and not with_path(tmp_path)
