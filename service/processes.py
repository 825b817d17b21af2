"""One process supervisor for `make run`, the fault tests and the benchmarks.

It wraps supervisord: the config is generated into a state directory, supervisord runs in
the foreground as a child of this process and is driven over XML-RPC on a unix socket.
What we add on top:

- children die with their parent, however it dies: supervisord gets PR_SET_PDEATHSIG
  (SIGTERM: it then stops its programs) and every program is exec'd through
  `service/pdeathsig.py` with PR_SET_PDEATHSIG(SIGKILL);
- hung programs are restarted: `service/healthcheck.py` runs as supervisord's event
  listener, probes each program's `Health` and restarts it after repeated failures;
- a start refuses to run beside what an earlier run left (supervisord, its programs, or
  whoever holds a port we need) and says how to stop it; `stop_stale` stops it.

The generated config also works by hand: `supervisorctl -c STATE/supervisord.conf status`.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import psutil
from supervisor.xmlrpc import Faults, SupervisorTransport, UnixStreamHTTPConnection

from service import healthcheck, pdeathsig

HERE = Path(__file__).resolve().parent
LISTENER = "healthcheck"
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Health:
    """How to tell a program is alive and answering: an HTTP GET below 500, or a TCP connect."""

    kind: Literal["http", "tcp"]
    target: str  # URL for http, host:port for tcp
    every_s: float = 5
    failures: int = 3  # consecutive failed probes before a restart
    timeout_s: float = 2

    def address(self) -> tuple[str, int]:
        return healthcheck.host_port(self.kind, self.target)


@dataclass(frozen=True)
class Program:
    """One supervised command. supervisord counts whole seconds: start/stop times round up."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None  # full environment for the child (None = inherit)
    cwd: str | None = None
    autorestart: bool = True  # dev run: True; fault tests: False (they kill on purpose)
    health: Health | None = None
    startsecs: float = 1.0  # must stay up this long to count as started
    stopwaitsecs: float = 10.0  # SIGTERM, then SIGKILL after this
    autostart: bool = True  # False: started later with Supervisor.start_program


@dataclass(frozen=True)
class Leftover:
    """A process in the way of a new run."""

    pid: int | None
    cmdline: str
    what: str


class StaleProcesses(RuntimeError):
    """An earlier run's processes still live, or a port we need is taken."""

    def __init__(self, state_dir: Path, leftovers: list[Leftover]) -> None:
        self.leftovers = leftovers
        lines = [
            f"cannot start: processes from an earlier run (state in {state_dir}) are in the way:"
        ]
        for left in leftovers:
            who = f"pid {left.pid}" if left.pid else "an unknown process"
            lines.append(f"  {who}, {left.what}: {left.cmdline}")
        pids = " ".join(str(left.pid) for left in leftovers if left.pid)
        lines.append(
            f"Stop them with `kill {pids}`, or run `make stop`"
            " (it stops what an earlier run in this state directory left)."
        )
        super().__init__("\n".join(lines))


class ProgramFailed(RuntimeError):
    """A program did not reach RUNNING (and healthy); the message ends with its log's tail."""


# --- files in the state directory -------------------------------------------------------


def _conf(state_dir: Path) -> Path:
    return state_dir / "supervisord.conf"


def _pidfile(state_dir: Path) -> Path:
    return state_dir / "supervisord.pid"


def _state_file(state_dir: Path) -> Path:
    """Written by the health-check listener: restarts and pids of every program."""
    return state_dir / "state.json"


def _socket(state_dir: Path) -> Path:
    """A unix socket path must stay under ~108 bytes; deep state dirs get one in /tmp."""
    path = state_dir / "supervisor.sock"
    if len(str(path)) < 100:
        return path
    digest = hashlib.sha1(str(state_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"landflow-supervisor-{digest}.sock"


def _read_state(state_dir: Path) -> dict[str, Any]:
    try:
        return json.loads(_state_file(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# --- processes --------------------------------------------------------------------------


def _process(pid: int | None, create_time: float | None = None) -> psutil.Process | None:
    """The live (not zombie) process with this pid, and this start time when given."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.05:
            return None
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc
    except psutil.Error:
        return None


def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _cmdline(proc: psutil.Process) -> str:
    try:
        return shlex.join(proc.cmdline()) or proc.name()
    except psutil.Error:
        return "?"


def _wait_gone(procs: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Poll until every process is gone; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive:
        alive = [proc for proc in alive if not _gone(proc)]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return alive


def _signal_group(proc: psutil.Process, sig: int) -> None:
    """Signal the process's group when it leads one (every supervised program does)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)


def _group_members(pgids: set[int], since: float) -> list[psutil.Process]:
    """Processes still in these groups (a program's own children), started after `since`."""
    found = []
    for proc in psutil.process_iter(["create_time"]):
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(proc.pid) in pgids and (proc.info["create_time"] or 0) >= since - 1:
                found.append(proc)
    return found


def _kill(procs: list[psutil.Process], grace: float) -> None:
    """SIGTERM (and SIGCONT, for stopped ones), then SIGKILL what is left after `grace`."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
        _signal_group(proc, signal.SIGCONT)
    for proc in _wait_gone(procs, grace):
        _signal_group(proc, signal.SIGKILL)
    left = _wait_gone(procs, 5)
    if left:
        raise RuntimeError(f"could not kill {[(p.pid, _cmdline(p)) for p in left]}")


# --- stale detection --------------------------------------------------------------------


def _earlier_supervisords(state_dir: Path) -> list[psutil.Process]:
    """supervisord from its pidfile, or any process running this state dir's config."""
    conf = str(_conf(state_dir))
    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(OSError, ValueError):
        proc = _process(int(_pidfile(state_dir).read_text().strip()))
        if proc is not None and conf in _cmdline(proc):
            found[proc.pid] = proc
    for proc in psutil.process_iter(["cmdline"]):
        if conf in (proc.info["cmdline"] or []) and _process(proc.pid) is not None:
            found.setdefault(proc.pid, proc)
    return list(found.values())


def _recorded_children(state_dir: Path) -> list[tuple[str, psutil.Process]]:
    """Programs (and the listener) recorded by an earlier run that are still that process."""
    state = _read_state(state_dir)
    records = [(f"program {name!r}", rec) for name, rec in state.get("programs", {}).items()]
    records.append(("its health-check listener", state.get("listener", {})))
    found = []
    for what, rec in records:
        proc = _process(rec.get("pid"), rec.get("create_time"))
        if proc is not None and rec.get("create_time") is not None:
            found.append((what, proc))
    return found


def _stale(state_dir: Path) -> list[tuple[Leftover, psutil.Process]]:
    found = [
        (Leftover(proc.pid, _cmdline(proc), "supervisord of an earlier run"), proc)
        for proc in _earlier_supervisords(state_dir)
    ]
    for what, proc in _recorded_children(state_dir):
        if all(proc.pid != left.pid for left, _ in found):
            found.append((Leftover(proc.pid, _cmdline(proc), f"{what} of an earlier run"), proc))
    return found


def _port_owner(host: str, port: int) -> Leftover | None:
    """Who listens on host:port, if someone does (a bind that fails says so)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return None
        except OSError:
            pass
    what = f"listens on {host}:{port}, a port this run needs"
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections("inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                proc = _process(conn.pid)
                if proc is not None:
                    return Leftover(proc.pid, _cmdline(proc), what)
    return Leftover(None, "(owner not visible to this user)", what)


def stop_stale(state_dir: Path) -> list[int]:
    """Stop what an earlier run in `state_dir` left running; return the pids it stopped.

    supervisord gets SIGTERM first so it stops its programs the usual way; whatever is left
    (or was recorded without a live supervisord) gets SIGTERM, then SIGKILL.
    """
    state_dir = Path(state_dir).resolve()
    stale = _stale(state_dir)
    supervisords = [proc for left, proc in stale if left.what.startswith("supervisord")]
    for proc in supervisords:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
            proc.send_signal(signal.SIGCONT)
    _wait_gone(supervisords, 30)
    _kill([proc for _, proc in stale if not _gone(proc)], grace=10)
    return [left.pid for left, _ in stale if left.pid]


# --- the supervisord config -------------------------------------------------------------


def _ini(value: str) -> str:
    """Escape a value for supervisord's config; refuse what its parser would cut short."""
    if "\n" in value or re.search(r"\s[;#]", value):
        raise ValueError(f"{value!r} cannot go into a supervisord config (newline or ' ;'/' #')")
    return value.replace("%", "%%")


def _shim(state_dir: Path, argv: list[str], env_file: Path | None = None) -> str:
    """The command line that runs `argv` through the pdeathsig exec shim."""
    shim = [
        sys.executable,
        str(HERE / "pdeathsig.py"),
        "--parent-pidfile",
        str(_pidfile(state_dir)),
    ]
    if env_file is not None:
        shim += ["--env-file", str(env_file)]
    return _ini(shlex.join([*shim, "--", *argv]))


def _program_section(state_dir: Path, program: Program, env_file: Path | None) -> list[str]:
    lines = [
        f"[program:{program.name}]",
        f"command={_shim(state_dir, program.argv, env_file)}",
        f"autostart={str(program.autostart).lower()}",
        f"autorestart={str(program.autorestart).lower()}",
        f"startsecs={math.ceil(program.startsecs)}",
        f"startretries={1000 if program.autorestart else 3}",
        f"stopwaitsecs={max(1, math.ceil(program.stopwaitsecs))}",
        "stopasgroup=true",
        "killasgroup=true",
        f"stdout_logfile={_ini(str(state_dir / f'{program.name}.log'))}",
        "stdout_logfile_maxbytes=20MB",
        "stdout_logfile_backups=3",
        "redirect_stderr=true",
    ]
    if program.cwd:
        lines.append(f"directory={_ini(program.cwd)}")
    return [*lines, ""]


def _listener_section(state_dir: Path) -> list[str]:
    argv = [sys.executable, str(HERE / "healthcheck.py"), str(state_dir / "healthcheck.json")]
    return [
        f"[eventlistener:{LISTENER}]",
        f"command={_shim(state_dir, argv)}",
        "events=PROCESS_STATE",
        "buffer_size=1000",
        "priority=1",
        "autorestart=true",
        "startretries=1000",
        "stopwaitsecs=2",
        "stopasgroup=true",
        "killasgroup=true",
        "stdout_logfile=NONE",
        f"stderr_logfile={_ini(str(state_dir / f'{LISTENER}.log'))}",
        "stderr_logfile_maxbytes=5MB",
        "",
    ]


def _config(state_dir: Path, programs: list[Program], env_files: dict[str, Path]) -> str:
    sock = _ini(str(_socket(state_dir)))
    lines = [
        "; generated by service.processes: edits are overwritten at the next start",
        "[unix_http_server]",
        f"file={sock}",
        "chmod=0700",
        "",
        "[supervisord]",
        "nodaemon=true",
        "silent=true",
        f"pidfile={_ini(str(_pidfile(state_dir)))}",
        f"logfile={_ini(str(state_dir / 'supervisord.log'))}",
        "logfile_maxbytes=10MB",
        "logfile_backups=2",
        f"childlogdir={_ini(str(state_dir))}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{sock}",
        "",
        *_listener_section(state_dir),
    ]
    for program in programs:
        lines += _program_section(state_dir, program, env_files.get(program.name))
    return "\n".join(lines)


def _listener_config(state_dir: Path, programs: list[Program]) -> dict[str, Any]:
    return {
        "state": str(_state_file(state_dir)),
        "programs": {
            p.name: {
                "autorestart": p.autorestart,
                "log": str(state_dir / f"{p.name}.log"),
                "health": asdict(p.health) if p.health else None,
            }
            for p in programs
        },
    }


def _validate(programs: list[Program]) -> None:
    names = [p.name for p in programs]
    if len(set(names)) != len(names):
        raise ValueError(f"program names repeat: {names}")
    for program in programs:
        if not NAME_RE.match(program.name) or program.name == LISTENER:
            raise ValueError(f"bad program name {program.name!r} ({LISTENER!r} is reserved)")
        if not program.argv:
            raise ValueError(f"program {program.name!r} has an empty argv")


# --- XML-RPC ----------------------------------------------------------------------------


class _TimeoutTransport(SupervisorTransport):
    """SupervisorTransport with a socket timeout, so a hung supervisord cannot hang us."""

    def __init__(self, sock: Path, timeout: float) -> None:
        super().__init__(serverurl=f"unix://{sock}")

        def connect() -> UnixStreamHTTPConnection:
            conn = _UnixConnection("localhost", timeout=timeout)
            conn.socketfile = str(sock)
            return conn

        self._get_connection = connect


class _UnixConnection(UnixStreamHTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self.timeout)


# --- the supervisor ---------------------------------------------------------------------


class Supervisor:
    """supervisord and its programs, started and stopped as one (also a context manager).

    Create and start it from the main thread: the kernel's parent-death signal follows the
    thread that spawned supervisord, so a worker thread ending would stop everything.
    """

    def __init__(
        self, programs: list[Program], state_dir: Path, ports: list[int] | None = None
    ) -> None:
        _validate(programs)
        self.programs = {program.name: program for program in programs}
        self.state_dir = Path(state_dir).resolve()
        self.ports = list(ports or [])
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def supervisord_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        """Whether supervisord (started by this object) still runs."""
        return self._proc is not None and self._proc.poll() is None

    # -- start and stop

    def start(self) -> None:
        """Start supervisord, which starts every autostart program; return once it answers."""
        if self._proc is not None:
            return
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("start the Supervisor from the main thread (see its docstring)")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        leftovers = [left for left, _ in _stale(self.state_dir)]
        named = {left.pid for left in leftovers}
        leftovers += [left for left in self._taken_ports() if left.pid not in named]
        if leftovers:
            raise StaleProcesses(self.state_dir, leftovers)
        self._write_files()
        self._started_at = time.time()
        self._proc = self._spawn()
        atexit.register(self.stop)
        try:
            self._wait_answering(timeout=30)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every program (their process groups), then supervisord. Safe to call again."""
        proc = self._proc
        if proc is None:
            return
        try:
            children = self._children()
            if proc.poll() is None:
                with contextlib.suppress(OSError, xmlrpc.client.Error):
                    self._rpc(5).signalAllProcesses("CONT")  # stopped ones can then exit
                proc.terminate()
                os.kill(proc.pid, signal.SIGCONT)  # in case supervisord itself was stopped
                try:
                    proc.wait(self._stop_budget())
                except subprocess.TimeoutExpired:
                    proc.kill()
            proc.wait(10)
            pgids = {child.pid for child in children}
            leftovers = children + _group_members(pgids, self._started_at)
            _kill([child for child in leftovers if not _gone(child)], grace=2)
        finally:
            self._proc = None
            atexit.unregister(self.stop)

    def _spawn(self) -> subprocess.Popen[bytes]:
        """supervisord in its own session, so a terminal's SIGHUP or Ctrl-C reaches only us
        (supervisord would take SIGHUP as "reload"), with SIGTERM when we die."""
        parent = os.getpid()
        argv = [
            sys.executable,
            "-m",
            "supervisor.supervisord",
            "-n",
            "-c",
            str(_conf(self.state_dir)),
        ]
        with (self.state_dir / "supervisord.out").open("ab") as out:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: pdeathsig.die_with_parent(signal.SIGTERM, parent),
            )

    def _write_files(self) -> None:
        env_files = {}
        for program in self.programs.values():
            if program.env is not None:
                path = self.state_dir / f"{program.name}.env.json"
                path.touch(mode=0o600)
                path.chmod(0o600)
                path.write_text(json.dumps(program.env), encoding="utf-8")
                env_files[program.name] = path
        _state_file(self.state_dir).unlink(missing_ok=True)  # its pids are all dead by now
        healthcheck.write_json(
            self.state_dir / "healthcheck.json",
            _listener_config(self.state_dir, list(self.programs.values())),
        )
        conf = _config(self.state_dir, list(self.programs.values()), env_files)
        _conf(self.state_dir).write_text(conf, encoding="utf-8")

    def _wait_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_supervisord()
            with contextlib.suppress(OSError, xmlrpc.client.Error):
                if self._rpc(2).getState()["statename"] == "RUNNING":
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"supervisord did not answer within {timeout:.0f}s")
            time.sleep(0.05)

    def _check_supervisord(self) -> None:
        if self._proc is None:
            raise RuntimeError("the Supervisor is not started")
        code = self._proc.poll()
        if code is not None:
            out = self._tail(self.state_dir / "supervisord.out", 2000)
            log = self._tail(self.state_dir / "supervisord.log", 2000)
            raise RuntimeError(f"supervisord exited with {code}\n{out}\n{log}")

    def _stop_budget(self) -> float:
        """supervisord stops programs one after another: their stop times add up."""
        return sum(max(1, math.ceil(p.stopwaitsecs)) for p in self.programs.values()) + 15

    def _children(self) -> list[psutil.Process]:
        """Every live process supervisord started, by what it says and what was recorded."""
        found: dict[int, psutil.Process] = {}
        if self.running():
            with contextlib.suppress(OSError, xmlrpc.client.Error):
                for info in self._rpc(5).getAllProcessInfo():
                    proc = _process(info["pid"])
                    if proc is not None:
                        found[proc.pid] = proc
        for _, proc in _recorded_children(self.state_dir):
            found.setdefault(proc.pid, proc)
        return list(found.values())

    def _taken_ports(self) -> list[Leftover]:
        wanted = {p.health.address() for p in self.programs.values() if p.health}
        wanted |= {("127.0.0.1", port) for port in self.ports}
        owners = (_port_owner(host, port) for host, port in sorted(wanted))
        return [owner for owner in owners if owner is not None]

    # -- one program

    def _rpc(self, timeout: float = 30) -> Any:
        transport = _TimeoutTransport(_socket(self.state_dir), timeout)
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def _program(self, name: str) -> Program:
        try:
            return self.programs[name]
        except KeyError:
            raise KeyError(f"no program {name!r}; there are {sorted(self.programs)}") from None

    def _info(self, name: str) -> dict[str, Any]:
        self._program(name)
        self._check_supervisord()
        info: dict[str, Any] = self._rpc().getProcessInfo(name)
        return info

    def wait_running(self, name: str, timeout: float = 60) -> None:
        """Wait until `name` is RUNNING and, if it has a health check, answers it."""
        program = self._program(name)
        deadline = time.monotonic() + timeout
        while True:
            info = self._info(name)
            state = info["statename"]
            if state == "RUNNING" and self._healthy(program):
                return
            if state == "FATAL" or (state in ("EXITED", "STOPPED") and not program.autorestart):
                raise ProgramFailed(self._failure(name, f"is {state} ({info['description']})"))
            if time.monotonic() > deadline:
                why = f"is not RUNNING and healthy within {timeout:.0f}s (state {state})"
                raise ProgramFailed(self._failure(name, why))
            time.sleep(0.1)

    def _healthy(self, program: Program) -> bool:
        health = program.health
        return (
            health is None
            or healthcheck.probe(health.kind, health.target, health.timeout_s) is None
        )

    def _failure(self, name: str, why: str) -> str:
        return f"{name} {why}\n--- tail of {self.log_path(name)} ---\n{self.log_tail(name)}"

    def pid(self, name: str) -> int | None:
        return int(self._info(name)["pid"]) or None

    def signal(self, name: str, sig: int) -> None:
        """Send `sig` to the program's process itself (not its group), e.g. SIGKILL/SIGSTOP."""
        pid = self.pid(name)
        if pid is None:
            raise ProgramFailed(f"{name} is not running")
        os.kill(pid, sig)

    def start_program(self, name: str) -> None:
        """Start it (returns once spawned: use wait_running); no-op when already running."""
        self._program(name)
        try:
            self._rpc().startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != Faults.ALREADY_STARTED:
                why = f"did not start: {fault.faultString}"
                raise ProgramFailed(self._failure(name, why)) from fault

    def stop_program(self, name: str) -> None:
        """Stop its process group (SIGTERM, SIGKILL after stopwaitsecs); no-op when stopped."""
        program = self._program(name)
        rpc = self._rpc(max(1, math.ceil(program.stopwaitsecs)) + 30)
        with contextlib.suppress(xmlrpc.client.Fault):
            rpc.signalProcess(name, "CONT")
        try:
            rpc.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != Faults.NOT_RUNNING:
                raise

    def restarts(self, name: str) -> int:
        """Restarts by supervision (after a crash, a failed start or a failed health check)."""
        self._program(name)
        entry = _read_state(self.state_dir).get("programs", {}).get(name, {})
        return int(entry.get("restarts", 0))

    def log_path(self, name: str) -> Path:
        self._program(name)
        return self.state_dir / f"{name}.log"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        return self._tail(self.log_path(name), chars)

    @staticmethod
    def _tail(path: Path, chars: int) -> str:
        try:
            with path.open("rb") as handle:
                handle.seek(max(0, path.stat().st_size - 4 * chars))
                return handle.read().decode("utf-8", "replace")[-chars:]
        except OSError:
            return f"({path} is missing)"

    def rss_mib(self, name: str) -> float:
        """Resident memory of the program and its children, in MiB."""
        proc = _process(self.pid(name))
        if proc is None:
            raise ProgramFailed(f"{name} is not running")
        total = 0
        for each in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += each.memory_info().rss
        return total / 2**20


# --- `landflow dev` -----------------------------------------------------------------------


class _Stop(BaseException):
    """Raised from a signal handler to leave whatever run_foreground is waiting in."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """SIGINT, SIGTERM and SIGHUP all mean "stop everything"; a second one is ignored."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.received: int | None = None
        self.interruptible = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, _frame: object) -> None:
        if self.received is None:
            self.received = signum
            if self.interruptible:
                raise _Stop(signum)

    def allow_interrupt(self) -> None:
        """From now on a signal interrupts at once (one that came earlier does so now)."""
        self.interruptible = True
        if self.received is not None:
            raise _Stop(self.received)


def run_foreground(
    supervisor: Supervisor,
    on_ready: Callable[[], None] | None = None,
    out: TextIO | None = None,
    poll_s: float = 0.5,
) -> int:
    """Run until SIGINT, SIGTERM or SIGHUP, then stop everything; for `landflow dev`.

    Waits for every autostart program, calls `on_ready`, then reports restarts as they
    happen. Returns 0 after a signal, 1 when supervisord died on its own.
    """
    out = out or sys.stdout
    with _Signals() as signals:
        try:
            supervisor.start()  # not interrupted half-way: stop() below must see its pid
            signals.allow_interrupt()
            for program in supervisor.programs.values():
                if program.autostart:
                    supervisor.wait_running(program.name)
            if on_ready is not None:
                on_ready()
            return _watch(supervisor, out, poll_s)
        except _Stop as stop:
            print(f"{signal.Signals(stop.signum).name}: stopping everything", file=out, flush=True)
            return 0
        finally:
            signals.interruptible = False
            supervisor.stop()


def _watch(supervisor: Supervisor, out: TextIO, poll_s: float) -> int:
    """Block while supervisord runs, printing each restart of a program."""
    seen = {name: supervisor.restarts(name) for name in supervisor.programs}
    while supervisor.running():
        for name, before in seen.items():
            now = supervisor.restarts(name)
            if now > before:
                log = supervisor.log_path(name)
                print(f"{name} was restarted ({now} so far); see {log}", file=out, flush=True)
                seen[name] = now
        time.sleep(poll_s)
    print("supervisord exited on its own; see its log in the state dir", file=out, flush=True)
    return 1
