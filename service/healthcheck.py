"""Health checks and restart counting, as supervisord's `[eventlistener:healthcheck]`.

An event listener keeps working while the Python process that started supervisord only
waits or is busy, and supervisord restarts it if it dies. supervisord's TICK events come
every 5 s at best, so the listener keeps its own clock: between events it waits in
select() until the next probe is due. It subscribes to PROCESS_STATE events to know which
programs are RUNNING (only those are probed), to count restarts (supervisord keeps no
count) and to record each program's pid for stale detection, all in state.json.

Run by path (`python healthcheck.py CONFIG.json`), so it imports nothing from this repo.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import sys
import time
import xmlrpc.client
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from supervisor import childutils


def host_port(kind: str, target: str) -> tuple[str, int]:
    """The (host, port) a probe connects to: `host:port` for tcp, a URL for http."""
    if kind == "tcp":
        host, _, port = target.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)
    parts = urlsplit(target)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def probe(kind: str, target: str, timeout: float) -> str | None:
    """None when the target answers, else why not. HTTP needs a status below 500."""
    try:
        if kind == "tcp":
            with socket.create_connection(host_port(kind, target), timeout=timeout):
                return None
        return _probe_http(target, timeout)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _probe_http(url: str, timeout: float) -> str | None:
    parts = urlsplit(url)
    host, port = host_port("http", url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(host, port, timeout=timeout)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        status = conn.getresponse().status
    finally:
        conn.close()
    return None if status < 500 else f"HTTP {status}"


def identity(pid: int) -> dict[str, Any]:
    """What stale detection needs to recognise this very process later (pid reuse aside)."""
    try:
        proc = psutil.Process(pid)
        return {"pid": pid, "create_time": proc.create_time(), "cmdline": proc.cmdline()}
    except psutil.Error:
        return {"pid": pid, "create_time": None, "cmdline": []}


def write_json(path: Path, data: Any) -> None:
    """Replace atomically, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class Watched:
    """One supervised program as the listener sees it."""

    name: str
    autorestart: bool
    log: Path
    health: dict[str, Any] | None
    running: bool = False
    failures: int = 0
    due: float = 0.0
    restarts: int = 0
    process: dict[str, Any] = field(default_factory=dict)


class Checker:
    """Turns PROCESS_STATE events and probe results into restarts and state.json."""

    def __init__(self, config: dict[str, Any], rpc: Any) -> None:
        self.rpc = rpc
        self.state_path = Path(config["state"])
        self.watched = {
            name: Watched(name, spec["autorestart"], Path(spec["log"]), spec["health"])
            for name, spec in config["programs"].items()
        }
        self._load_counts()

    def _load_counts(self) -> None:
        """Keep the counts when supervisord restarted this listener (the file is per run)."""
        with suppress(OSError, ValueError, KeyError):
            saved = json.loads(self.state_path.read_text(encoding="utf-8"))["programs"]
            for name, entry in saved.items():
                if name in self.watched:
                    self.watched[name].restarts = int(entry["restarts"])

    def save(self) -> None:
        programs = {w.name: {"restarts": w.restarts, **w.process} for w in self.watched.values()}
        write_json(self.state_path, {"listener": identity(os.getpid()), "programs": programs})

    def note(self, watched: Watched, message: str) -> None:
        """Say it on stderr and in the program's own log, next to what it printed last."""
        line = f"[supervision {time.strftime('%Y-%m-%d %H:%M:%S')}] {watched.name}: {message}\n"
        sys.stderr.write(line)
        sys.stderr.flush()
        with suppress(OSError), watched.log.open("a", encoding="utf-8") as log:
            log.write(line)

    def on_event(self, eventname: str, data: dict[str, str]) -> None:
        watched = self.watched.get(data.get("processname", ""))
        if watched is None or not eventname.startswith("PROCESS_STATE_"):
            return
        state = eventname.removeprefix("PROCESS_STATE_")
        watched.running, watched.failures = state == "RUNNING", 0
        came_from = data.get("from_state")
        if state == "STARTING" and (
            came_from == "BACKOFF" or (came_from == "EXITED" and watched.autorestart)
        ):
            watched.restarts += 1
            self.note(watched, f"restarted by supervisord after {came_from}")
        if state == "RUNNING":
            watched.process = identity(int(data["pid"]))
            watched.due = time.monotonic() + float((watched.health or {}).get("every_s", 0))
        elif state in ("EXITED", "STOPPED", "FATAL"):
            watched.process = {}
        self.save()

    def seconds_to_next_probe(self) -> float | None:
        dues = [w.due for w in self.watched.values() if w.health and w.running]
        return max(0.0, min(dues) - time.monotonic()) if dues else None

    def probe_due(self) -> None:
        for watched in self.watched.values():
            health = watched.health
            if not (health and watched.running and watched.due <= time.monotonic()):
                continue
            why = probe(health["kind"], health["target"], float(health["timeout_s"]))
            watched.due = time.monotonic() + float(health["every_s"])
            watched.failures = 0 if why is None else watched.failures + 1
            if why is not None:
                sys.stderr.write(f"{watched.name}: probe {watched.failures} failed: {why}\n")
            if watched.failures >= int(health["failures"]):
                self.restart(watched, why or "")

    def restart(self, watched: Watched, why: str) -> None:
        """Stop and start through supervisord; a SIGSTOPped program gets SIGCONT first so it
        can handle SIGTERM, and supervisord's stopwaitsecs SIGKILL ends one that still hangs."""
        self.note(watched, f"health check failed {watched.failures} times ({why}); restarting")
        watched.running, watched.failures = False, 0
        watched.restarts += 1
        self.save()
        name = watched.name
        with suppress(xmlrpc.client.Fault):
            self.rpc.signalProcess(name, "CONT")
        with suppress(xmlrpc.client.Fault):
            self.rpc.stopProcess(name, True)
        with suppress(xmlrpc.client.Fault):
            self.rpc.startProcess(name, False)


def _headers(line: str) -> dict[str, str]:
    return dict(token.split(":", 1) for token in line.split())


def serve(checker: Checker, stdin: Any = None, stdout: Any = None) -> int:
    """The event-listener protocol, with probes run whenever select() times out."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout
    childutils.listener.ready(stdout)
    while True:
        readable, _, _ = select.select([stdin], [], [], checker.seconds_to_next_probe())
        if readable:
            line = stdin.readline()
            if not line:
                return 0  # supervisord is gone
            headers = _headers(line.decode())
            payload = stdin.read(int(headers["len"])).decode()
            checker.on_event(headers["eventname"], _headers(payload.split("\n", 1)[0]))
            childutils.listener.ok(stdout)
            childutils.listener.ready(stdout)
        checker.probe_due()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    config = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    checker = Checker(config, childutils.getRPCInterface(os.environ).supervisor)
    checker.save()
    return serve(checker)


if __name__ == "__main__":
    sys.exit(main())
