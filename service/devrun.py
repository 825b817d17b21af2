"""`make run`: the embedded default, supervised by supervisord (service/processes.py).

Starts the Temporal dev server (persistent SQLite under LANDFLOW_DATA_DIR, search
attributes registered), a worker and the API; supervisord restarts any that dies or
stops answering its health check. Children die with `make run` whatever ends it
(Ctrl-C, closing the terminal, SIGTERM, even SIGKILL: parent-death signals); a
leftover of an earlier run is named at start (`make stop` ends it). Then it starts the
demo parcel once, ensures the schedules, and prints the URLs, the dev tokens and a
sign-in link per role.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from landflow.settings import Settings
from landflow.vocabulary import DISTRICT_ROLES, PARTY_ROLES, Role, districts
from registry.engine import RegistryUnavailable, check_usable, make_engine
from service import demo
from service.processes import (
    Health,
    Program,
    ProgramFailed,
    StaleProcesses,
    Supervisor,
    run_foreground,
    stop_stale,
)
from service.schedules import ensure_schedules_for_dev
from workflows import visibility

log = logging.getLogger("landflow.run")
BIN = Path(sys.executable).parent


def dev_tokens(path: Path) -> dict[str, dict[str, str]]:
    """A token per role, per district for district roles and per demo party for party
    roles, written once; later runs reuse the file."""
    if not path.exists():
        tokens: dict[str, dict[str, str]] = {}
        for role in Role:
            for entry in _entries(role):
                tokens[f"dev-{role.value}-{secrets.token_urlsafe(12)}"] = entry
        path.write_text(json.dumps(tokens, ensure_ascii=False, indent=2), encoding="utf-8")
        path.chmod(0o600)
    return json.loads(path.read_text(encoding="utf-8"))


def _entries(role: Role) -> list[dict[str, str]]:
    if role in DISTRICT_ROLES:
        return [{"role": role.value, "district": d} for d in districts()]
    if role in PARTY_ROLES:
        return [
            {"role": role.value, "party": party["id"], "party_name": party["name"]}
            for party in demo.PARTIES.get(role, [])
        ]
    return [{"role": role.value}]


def programs(settings: Settings, env: dict[str, str]) -> list[Program]:
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
    landflow = [sys.executable, "-m", "service.cli"]
    api_port = settings.api_port
    return [
        Program(
            "temporal",
            server,
            env=env,
            health=Health("tcp", f"127.0.0.1:{settings.temporal_port}", every_s=5, failures=6),
            startsecs=2,
        ),
        Program("worker", [*landflow, "worker"], env=env, startsecs=3),
        Program(
            "api",
            [*landflow, "api", "--port", str(api_port)],
            env=env,
            health=Health("http", f"http://127.0.0.1:{api_port}/healthz", every_s=5, failures=3),
            startsecs=2,
        ),
    ]


def state_dir(settings: Settings) -> Path:
    return settings.data_dir / "supervisor"


def stop_leftovers(settings: Settings) -> list[int]:
    return stop_stale(state_dir(settings))


def _environment(settings: Settings, tokens_file: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LANDFLOW_DATA_DIR"] = str(settings.data_dir.resolve())
    env["LANDFLOW_TOKENS_FILE"] = str(tokens_file.resolve())
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _banner(
    settings: Settings, tokens_file: Path, tokens: dict[str, dict[str, str]], demo_state: str
) -> str:
    api = f"http://127.0.0.1:{settings.api_port}"
    ui = f"{settings.ui_url}/namespaces/{settings.namespace}/workflows"
    pid = demo.PARCEL["parcel_id"]
    query = quote(f'ParcelId="{pid}"')
    data = settings.data_dir
    lines = [
        "",
        "landflow is running (Ctrl-C stops everything; `make stop` ends a leftover run).",
        f"  Workbench : {api}/ui/inbox   (public register: {api}/ui/register)",
        f"  API docs  : {api}/docs",
        f"  Web UI    : {ui}",
        f"  Demo      : parcel {pid} {demo_state}: {api}/ui/parcels/{pid}",
        f"              in the Temporal Web UI: {ui}?query={query}",
        f"  Data      : {data}/ (temporal.db, registry.db, documents/, supervisor/*.log)",
        "  Commands  : source .venv/bin/activate && "
        f"export TEMPORAL_ADDRESS={settings.temporal_address}",
        f"  Tokens    : {tokens_file}; sign-in links:",
    ]
    for token, entry in tokens.items():
        if entry.get("district") not in (None, demo.PARCEL["district"]):
            continue  # every district has its tokens in the file; the demo's are shown
        scope = entry.get("district") or entry.get("party_name") or ""
        lines.append(f"    {entry['role']:<22} {scope:<14} {api}/ui/login?token={token}")
    return "\n".join(lines)


def main(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s landflow-run %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tokens_file = settings.tokens_file or settings.data_dir / "dev-tokens.json"
    tokens = (
        dev_tokens(tokens_file)
        if settings.tokens_file is None
        else json.loads(tokens_file.read_text("utf-8"))
    )
    try:  # before anything starts: the API would crash-loop on it for a minute
        _check_registry(settings)
    except RegistryUnavailable as exc:
        print(f"make run cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    env = _environment(settings, tokens_file)
    supervisor = Supervisor(
        programs(settings, env),
        state_dir(settings),
        ports=[settings.temporal_port, settings.ui_port, settings.api_port],
    )
    try:
        supervisor.start()
    except StaleProcesses as exc:
        print(str(exc), file=sys.stderr)
        return 3

    def ready() -> None:
        supervisor.wait_running("temporal", timeout=90)
        supervisor.wait_running("api", timeout=90)
        supervisor.wait_running("worker", timeout=90)
        demo_state = _start_demo(settings, tokens)
        schedules = ensure_schedules_for_dev(settings)
        print(_banner(settings, tokens_file, tokens, demo_state), flush=True)
        print(f"  Schedules : {schedules}", flush=True)

    try:
        return run_foreground(supervisor, on_ready=ready)
    except ProgramFailed as exc:  # everything it started is stopped by now
        print(_failed(exc), file=sys.stderr, flush=True)
        return 1


def _check_registry(settings: Settings) -> None:
    """RegistryUnavailable, naming the file and the fix, if the registry cannot be read."""
    engine = make_engine(settings.database_url)
    try:
        check_usable(engine)
    finally:
        engine.dispose()


def _failed(exc: ProgramFailed) -> str:
    """A program that would not run, in a paragraph, then the tail of its log."""
    what, _, tail = str(exc).partition("\n")
    return (
        f"make run stopped: {what}. Everything it had started is stopped again. The cause "
        "is usually in the last lines of that program's log, shown below; fix it and run "
        "`make run` again." + (f"\n{tail}" if tail else "")
    )


def _start_demo(settings: Settings, tokens: dict[str, dict[str, str]]) -> str:
    base = f"http://127.0.0.1:{settings.api_port}"
    by_role = {
        e["role"]: t
        for t, e in tokens.items()
        if e.get("district") in (None, demo.PARCEL["district"])
    }
    for _ in range(100):
        try:
            if httpx.get(f"{base}/readyz", timeout=3).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    try:
        return demo.walk(base, by_role)
    except httpx.HTTPError as exc:
        return f"not started ({exc})"
