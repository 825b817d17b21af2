"""`make run`: the embedded default, supervised.

Starts the Temporal dev server (persistent SQLite under LANDFLOW_DATA_DIR, search
attributes registered), a worker and the API, restarts any of them that dies (and
logs it), starts a demo parcel once, prints where to look, and stops everything it
started on Ctrl-C. A second run finds the same parcels.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from landflow import visibility
from landflow.schedules import ensure_schedules_for_dev
from landflow.settings import Settings

log = logging.getLogger("landflow.run")
BIN = Path(sys.executable).parent
DEMO_PARCEL = {
    "parcel_id": "DEMO-JH-001",
    "name": "原北京焦化厂",
    "district": "朝阳区",
    "area_m2": 1_400_000,
    "current_use": "industrial",
    "industry": "coking",
    "enterprise_closed": True,
    "right_status": "recovered",
    "planned_use": "residential",
    "polluter": {"name": "北京焦化厂", "status": "exists", "is_former_right_holder": True},
}
DEV_ROLES = [
    ("reserve_agency", None),
    ("land_user", None),
    ("district_government", "朝阳区"),
    ("district_epb", "朝阳区"),
    ("city_epb", None),
    ("planning_land", None),
    ("responsible_party", None),
    ("third_party_evaluator", None),
    ("auditor", None),
    ("ops", None),
    ("public", None),
]


def dev_tokens(path: Path) -> dict[str, dict[str, str]]:
    """Write a token per role once; later runs reuse the same file."""
    if not path.exists():
        tokens = {}
        for role, district in DEV_ROLES:
            entry = {"role": role} | ({"district": district} if district else {})
            tokens[f"dev-{role}-{secrets.token_urlsafe(12)}"] = entry
        path.write_text(json.dumps(tokens, ensure_ascii=False, indent=2), encoding="utf-8")
        path.chmod(0o600)
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_file: Path
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)
    restart_at: float | None = None

    def start(self) -> None:
        out = self.log_file.open("ab")
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started_at = time.monotonic()

    def check(self) -> None:
        """Restart a process that died; one that keeps dying right after start waits longer
        each time. The wait is scheduled rather than slept, so Ctrl-C is never held up."""
        if self.process is None or self.process.poll() is None:
            return
        now = time.monotonic()
        if self.restart_at is None:
            self.restarts += 1
            delay = min(30, 2 ** min(self.restarts, 5)) if now - self.started_at < 5 else 0
            self.restart_at = now + delay
            log.warning(
                "%s exited with code %s; restarting (restart %d, in %ds, log %s)",
                self.name,
                self.process.returncode,
                self.restarts,
                delay,
                self.log_file,
            )
        if now >= self.restart_at:
            self.restart_at = None
            self.start()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def start_demo(settings: Settings, token: str) -> str:
    base = f"http://127.0.0.1:{settings.api_port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    response = httpx.post(
        f"{base}/parcels",
        json=DEMO_PARCEL,
        timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code == 201:
        return "started"
    if response.status_code == 409:
        return "already running"
    return f"not started ({response.status_code}: {response.text})"


def children(settings: Settings, env: dict[str, str]) -> list[Child]:
    data = settings.data_dir
    server = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(data / "temporal.db"),
        "--ip",
        "127.0.0.1",
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(settings.ui_port),
        "--namespace",
        settings.namespace,
        "--log-level",
        "warn",
    ]
    for flag in visibility.cli_flags():
        server += ["--search-attribute", flag]
    landflow = [sys.executable, "-m", "landflow.cli"]
    return [
        Child("temporal", server, env, data / "temporal.log"),
        Child("worker", [*landflow, "worker"], env, data / "worker.log"),
        Child("api", [*landflow, "api", "--port", str(settings.api_port)], env, data / "api.log"),
    ]


def main(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s landflow-run %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["LANDFLOW_DATA_DIR"] = str(settings.data_dir)
    tokens_file = settings.tokens_file or settings.data_dir / "dev-tokens.json"
    tokens = (
        dev_tokens(tokens_file)
        if settings.tokens_file is None
        else json.loads(tokens_file.read_text(encoding="utf-8"))
    )
    env["LANDFLOW_TOKENS_FILE"] = str(tokens_file)

    procs = children(settings, env)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        procs[0].start()
        wait_for_port(settings.temporal_port)
        for child in procs[1:]:
            child.start()
        wait_for_port(settings.api_port)
        reserve = next(t for t, e in tokens.items() if e["role"] == "reserve_agency")
        demo = start_demo(settings, reserve)
        reports = ensure_schedules_for_dev(settings)
        ui = f"http://127.0.0.1:{settings.ui_port}/namespaces/{settings.namespace}/workflows"
        parcel_id = DEMO_PARCEL["parcel_id"]
        demo_query = quote(f'ParcelId="{parcel_id}"')
        demo_link = f"{ui}?query={demo_query}"
        print(
            f"""
landflow is running (Ctrl-C stops everything).
  API docs : http://127.0.0.1:{settings.api_port}/docs
  Web UI   : {ui}
  Demo     : parcel {DEMO_PARCEL["parcel_id"]} {demo}: {demo_link}
  Data     : {settings.data_dir}/ (temporal.db, registry.db, *.log)
  Reports  : {reports} (GET /reports/<year>/<district>)
  Tokens   : {tokens_file}""",
            flush=True,
        )
        for token, entry in tokens.items():
            print(f"    {entry['role']:<22} {entry.get('district', ''):<6} {token}", flush=True)
        while not stopping:
            for child in procs:
                child.check()
            time.sleep(1)
    finally:
        for child in reversed(procs):
            child.stop()
        print("landflow stopped.", flush=True)
