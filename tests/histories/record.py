"""Regenerate the golden histories in this directory.

    .venv/bin/python -m tests.histories.record            # a throwaway dev server
    .venv/bin/python -m tests.histories.record --address 127.0.0.1:7233

Each lifecycle path is driven through the real API, worker and dev server, then its
history is exported exactly as `landflow audit export` writes it. Re-record only on
purpose: a golden history stands for parcels already running in production, and the
workflow must keep replaying the old files (guard changes with `workflow.patched`).
The monitoring step gets a 3-second deadline so the risk-control history holds a
reminder, an escalation and an Overdue flag; every other step keeps the real policy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import yaml
from landflow.contracts import ParcelState
from landflow.temporal import workflow_id
from landflow.worker import build_worker
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from landflow import audit, visibility
from landflow.settings import PACKAGE_DIR, Settings
from tests.helpers import (
    REPORT,
    TRANSPORT,
    act,
    chemical_facts,
    clean_facts,
    facts,
    start,
    write_tokens,
)

HERE = Path(__file__).resolve().parent
SHORT_STEP = "monitoring"
SHORT_DAYS = 3 / 86_400  # 3 s, reminded 1.5 s before

Scenario = Callable[[httpx.AsyncClient, Client, str], Awaitable[None]]


async def no_investigation_release(api: httpx.AsyncClient, _client: Client, pid: str) -> None:
    await start(api, clean_facts(pid))
    await act(api, pid, "release", {"notes": "商业用地维持原用途"}, "planning_land")


async def full_remediation_loops(api: httpx.AsyncClient, _client: Client, pid: str) -> None:
    """Returned filing, soil transport, a failed evaluation, then release."""
    await start(api, facts(pid))
    await act(
        api, pid, "closure_screening", {"result": "suspected", "notes": "焦油残留"}, "district_epb"
    )
    await act(api, pid, "investigation_report", REPORT, "reserve_agency")
    returned = {"decision": "returned", "reasons": "采样点位不足"}
    await act(api, pid, "filing_review", returned, "city_epb")
    await act(api, pid, "investigation_report", REPORT, "reserve_agency")
    await act(api, pid, "filing_review", {"decision": "accepted"}, "city_epb")
    await act(api, pid, "filing_review", {"decision": "accepted"}, "planning_land")
    await act(api, pid, "choose_path", {"path": "remediation"}, "district_government")
    plan = {"plan": "热脱附", "contractor": "北京建工环境修复"}
    await act(api, pid, "remediation_plan", plan, "district_government")
    await act(api, pid, "soil_transport", TRANSPORT, "district_government")
    await act(api, pid, "works_completed", {"summary": "完工"}, "district_government")
    failed = {"met": False, "evaluator": "某评估公司"}
    await act(api, pid, "evaluation", failed, "third_party_evaluator")
    await act(api, pid, "works_completed", {"summary": "补充修复"}, "district_government")
    await act(
        api, pid, "evaluation", {"met": True, "evaluator": "某评估公司"}, "third_party_evaluator"
    )
    await act(api, pid, "release", {}, "planning_land")


async def risk_control_remediation(api: httpx.AsyncClient, client: Client, pid: str) -> None:
    """Risk control, a missed monitoring deadline, diffusion and isolation, then remediation."""
    await start(api, chemical_facts(pid))
    await act(api, pid, "investigation_report", REPORT, "land_user")
    await act(api, pid, "filing_review", {"decision": "accepted"}, "city_epb")
    await act(api, pid, "filing_review", {"decision": "accepted"}, "planning_land")
    await act(api, pid, "choose_path", {"path": "risk_control"}, "district_government")
    zone = {"control_zone": "东区", "signs_posted": True, "notice_published": True}
    await act(api, pid, "control_measures", zone, "district_government")
    await _until_overdue(client, pid)
    await act(api, pid, "monitoring_result", {"diffusion_found": True}, "district_government")
    await act(api, pid, "isolation_measures", {"measures": "防渗隔离墙"}, "land_user")
    await act(api, pid, "choose_path", {"path": "remediation"}, "district_government")
    plan = {"plan": "原位化学氧化", "contractor": "某修复公司"}
    await act(api, pid, "remediation_plan", plan, "responsible_party")
    await act(api, pid, "works_completed", {"summary": "完工"}, "responsible_party")
    await act(
        api, pid, "evaluation", {"met": True, "evaluator": "某评估公司"}, "third_party_evaluator"
    )
    await act(api, pid, "release", {}, "planning_land")


async def _until_overdue(client: Client, pid: str) -> None:
    handle = client.get_workflow_handle(workflow_id(pid))
    for _ in range(100):
        state = await handle.query("current", result_type=ParcelState)
        if state.overdue:
            await asyncio.sleep(0.5)  # let the escalation activity finish
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{pid} never became overdue")


SCENARIOS: dict[str, Scenario] = {
    "no_investigation_release": no_investigation_release,
    "full_remediation_loops": full_remediation_loops,
    "risk_control_remediation": risk_control_remediation,
}


def _short_policy(path: Path) -> Path:
    policy = yaml.safe_load((PACKAGE_DIR / "policy.yaml").read_text(encoding="utf-8"))
    policy["steps"][SHORT_STEP].update(days=SHORT_DAYS, remind_days_before=SHORT_DAYS / 2)
    path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    return path


async def record(client: Client, tmp: Path, suffix: str) -> None:
    settings = Settings(
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'registry.db'}",
        tokens_file=write_tokens(tmp / "tokens.json"),
        task_queue=f"landflow-golden-{uuid.uuid4().hex[:8]}",
        policy_file=_short_policy(tmp / "policy.yaml"),
        action_timeout_s=15,
    )
    app = create_app(settings)
    app.state.temporal = client
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient() as http,
        build_worker(client, settings, http),
        httpx.AsyncClient(transport=transport, base_url="http://landflow") as api,
    ):
        for name, scenario in SCENARIOS.items():
            pid = f"golden-{name.replace('_', '-')}{suffix}"
            await scenario(api, client, pid)
            history = await audit.fetch_history(client, pid)
            (HERE / f"{name}.json").write_bytes(history.canonical())
            print(f"{name}.json: {len(history.events)} events, sha256 {history.sha256()}")


async def main(address: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if address:
            client = await Client.connect(address, data_converter=pydantic_data_converter)
            await record(client, Path(tmp), f"-{uuid.uuid4().hex[:6]}")
            return
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=shutil.which(
                "temporal", path=str(Path(sys.executable).parent)
            ),
            search_attributes=list(visibility.ALL_KEYS),
            data_converter=pydantic_data_converter,
            dev_server_log_level="error",
        )
        try:
            await record(env.client, Path(tmp), "")
        finally:
            await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="an existing dev server (host:port) to record on")
    asyncio.run(main(parser.parse_args().address))
    sys.stdout.flush()
    os._exit(0)  # skip interpreter finalisation: the core bridge can crash there (sdk-python#300)
