"""Notices are keyed by run (issue 9, finding 2: the keys of a re-registered id collided
with the first run's). A released id registered again gets the same step visits, hence
the same reminders and escalations; both runs' notices are rows of their own, and
`landflow registry verify` finds the registry equal to the engine.

Its own dev server, so `verify` compares exactly this module's parcel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from landflow.settings import Settings
from registry import queries
from registry.engine import make_engine
from service.worker import build_worker
from tests.conftest import api_client, dev_server, make_settings
from tests.e2e.record.conftest import policy_file
from tests.helpers import act, auth, clean_facts, eventually, get, start

REPO = Path(__file__).resolve().parents[3]
DAY_S = 86_400
DUE_S = 3.0  # the release step's deadline: its reminder and escalation come in seconds
RELEASE = {"days": DUE_S / DAY_S, "remind_days_before": DUE_S / 2 / DAY_S, "escalate_to": "ops"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[WorkflowEnvironment, Settings, httpx.AsyncClient]]:
    env = await dev_server()
    tmp = tmp_path_factory.mktemp("notices")
    settings = make_settings(
        tmp,
        policy_file=policy_file(tmp, steps={"release": RELEASE}),
        temporal_address=env.client.service_client.config.target_host,
    )
    try:
        async with build_worker(env.client, settings), api_client(settings, env.client) as api:
            yield env, settings, api
    finally:
        await env.shutdown()


def _notices(settings: Settings, run_id: str) -> dict[str, str]:
    """The registry's notices of one run: key -> kind."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            rows = queries.notices_for(session, run_id=run_id)
            assert {r.run_id for r in rows} <= {run_id}
            return {r.key: r.kind for r in rows}
    finally:
        engine.dispose()


async def _reminded_escalated_released(
    api: httpx.AsyncClient, settings: Settings, pid: str
) -> tuple[str, dict[str, str]]:
    """One registration: start, let the release step's reminder and escalation come,
    release. Its run id and notices."""
    run_id = (await start(api, clean_facts(pid)))["run_id"]

    async def both_sent() -> dict[str, str] | None:
        found = _notices(settings, run_id)
        return found if sorted(found.values()) == ["escalation", "reminder"] else None

    notices = await eventually(both_sent, f"run {run_id}'s reminder and escalation", DUE_S + 20)
    await act(api, pid, "release", {}, "planning_land")
    assert (await get(api, pid))["status"] == "released"
    return run_id, notices


def _verify(settings: Settings) -> subprocess.CompletedProcess[str]:
    """`landflow registry verify` as ops run it, against this module's server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANDFLOW_")}
    env |= {
        "LANDFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "LANDFLOW_DATABASE_URL": settings.database_url,
        "LANDFLOW_DATA_DIR": str(settings.data_dir),
        "LANDFLOW_DOCUMENTS_DIR": str(settings.documents_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "registry", "verify"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_a_released_id_registered_again_keeps_both_runs_notices(own):
    _env, settings, api = own
    pid = f"N{uuid.uuid4().hex[:8]}"
    first, first_notices = await _reminded_escalated_released(api, settings, pid)
    second, second_notices = await _reminded_escalated_released(api, settings, pid)
    assert first != second
    # The same step visits and kinds: only the run keeps the keys apart.
    assert {k.split("/", 1)[1] for k in first_notices} == {
        k.split("/", 1)[1] for k in second_notices
    }
    assert _notices(settings, first) == first_notices, "the second run overwrote the first's"
    assert _notices(settings, second) == second_notices
    runs = (await api.get(f"/parcels/{pid}/runs", headers=auth("auditor"))).json()["runs"]
    assert [(r["run_id"], r["status"]) for r in runs] == [(first, "released"), (second, "released")]
    verified = _verify(settings)
    print(f"\nlandflow registry verify (exit {verified.returncode}): {verified.stdout.strip()}")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip().splitlines()[-1] == (
        "0 differences (2 registrations of 1 parcels)"
    )
