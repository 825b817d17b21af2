"""Record the golden histories of the law's chain (tests/histories/v2/).

    .venv/bin/python -m tests.histories.record

    .venv/bin/python -m tests.histories.record --force NAME   # record NAME again

Each path is driven through the real API, worker and a throwaway dev server by the
same scenarios the end-to-end tests run, then exported exactly as `landflow audit
export` writes it. Only missing files are recorded: a golden history stands for parcels
already running in production, and the workflow must keep replaying the committed files
(guard changes with `workflow.patched`, or start a new workflow type; see the README).
Every evaluation is spot-checked here (policy share 1.0), so a path can fail one.
The first procedure's histories (tests/histories/legacy/) were recorded by the release
that ran it and are kept as they are. The monitoring step gets a 3-second deadline so
the risk-control history holds a reminder, an escalation and an Overdue flag.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from service.worker import build_worker
from tests.conftest import api_client, dev_server, make_settings
from tests.e2e.api import test_lifecycle as paths
from tests.e2e.record.conftest import policy_file
from tests.helpers import ACCEPTED, act, start
from workflows.history import fetch_history

HERE = Path(__file__).resolve().parent / "v2"
Scenario = Callable[[httpx.AsyncClient, str], Awaitable[None]]


async def risk_control_with_missed_deadline(api: httpx.AsyncClient, pid: str) -> None:
    """Risk control whose yearly monitoring report comes late (reminded, escalated),
    with a diffusion and the land user's isolation, ending in removal from the lists."""
    await paths._to_risk_assessment(api, pid, paths.DIRTY_SAMPLES, **_held())
    await paths._assess(
        api,
        pid,
        "responsible_party",
        acceptable=False,
        targets=paths.TARGETS,
        recommendation="risk_control",
    )
    await act(api, pid, "choose_path", {"path": "risk_control"}, "district_government")
    await act(
        api,
        pid,
        "control_measures",
        {"control_zone": "东区", "signs_posted": True, "notice_published": True},
        "district_government",
    )
    await asyncio.sleep(4)  # past the 3-second monitoring deadline: reminded and escalated
    await act(api, pid, "monitoring_result", {"diffusion_found": True}, "responsible_party")
    await act(api, pid, "isolation_measures", {"measures": "阻隔墙"}, "land_user")
    await act(api, pid, "risk_control_completed", {}, "responsible_party")
    await act(api, pid, "commission_evaluator", {"party": paths.EVALUATOR}, "responsible_party")
    documents = await paths.cite(api, pid, "effect_evaluation_report", "third_party_evaluator")
    outcome = await act(
        api,
        pid,
        "evaluation",
        {"met": True, "results": paths.MET_RESULTS, "documents": documents},
        "third_party_evaluator",
    )
    if outcome["step"] == "spot_check":
        await act(api, pid, "spot_check", {"result": "met"}, "city_epb")
    await act(api, pid, "removal_application", {}, "land_user")
    await act(api, pid, "removal_review", ACCEPTED, "city_epb")
    await act(api, pid, "removal_review", ACCEPTED, "planning_land")
    await act(api, pid, "release", {}, "planning_land")


def _held() -> dict[str, object]:
    from tests.helpers import LAND_USER

    return {"investigator": "land_user", "right_status": "held", "land_user": LAND_USER}


async def _evaluated(api: httpx.AsyncClient, pid: str, spot_check: str = "met") -> dict:
    await act(api, pid, "commission_evaluator", {"party": paths.EVALUATOR}, "responsible_party")
    documents = await paths.cite(api, pid, "effect_evaluation_report", "third_party_evaluator")
    outcome = await act(
        api,
        pid,
        "evaluation",
        {"met": True, "results": paths.MET_RESULTS, "documents": documents},
        "third_party_evaluator",
    )
    if outcome["step"] == "spot_check":
        outcome = await act(api, pid, "spot_check", {"result": spot_check}, "city_epb")
    return outcome


async def amended_remediation(api: httpx.AsyncClient, pid: str) -> None:
    """A parcel under both amendments (landflow.procedure.Amendment): a failed spot-check
    and a revised plan with a new contractor, then a removal review returned by the
    planning bureau (Law 66 ¶2), more works, a new evaluation, removal and release."""
    await paths._to_risk_assessment(api, pid, paths.DIRTY_SAMPLES)
    await paths._assess(
        api,
        pid,
        "responsible_party",
        acceptable=False,
        targets=paths.TARGETS,
        recommendation="remediation",
    )
    await act(api, pid, "choose_path", {"path": "remediation"}, "district_government")
    plan = {"plan": "热脱附", "contractor": paths.CONTRACTOR, "notice_board": True}
    for contractor in (paths.CONTRACTOR, paths.NEW_CONTRACTOR):
        documents = await paths.cite(api, pid, "remediation_plan", "responsible_party")
        revised = {**plan, "contractor": contractor, "documents": documents}
        await act(api, pid, "remediation_plan", revised, "responsible_party")
        await act(api, pid, "plan_filing_review", {"decision": "acknowledged"}, "district_epb")
        await act(api, pid, "works_completed", {"summary": "完工"}, "responsible_party")
        failed = contractor == paths.CONTRACTOR
        await _evaluated(api, pid, "not_met" if failed else "met")
    await act(api, pid, "removal_application", {}, "responsible_party")
    await act(api, pid, "removal_review", paths.RETURNED, "planning_land")
    await act(api, pid, "works_completed", {"summary": "补充修复"}, "responsible_party")
    await _evaluated(api, pid)
    await act(api, pid, "removal_application", {}, "responsible_party")
    await act(api, pid, "removal_review", ACCEPTED, "city_epb")
    await act(api, pid, "removal_review", ACCEPTED, "planning_land")
    await act(api, pid, "release", {}, "planning_land")


async def isolation_by_the_manager(api: httpx.AsyncClient, pid: str) -> None:
    """Diffusion under risk control on recovered land: the reserve agency, which holds
    it, isolates (BJ 19); targets reached, the parcel stays open at its evaluation."""
    await paths._to_risk_assessment(api, pid, paths.DIRTY_SAMPLES)
    await paths._assess(
        api,
        pid,
        "responsible_party",
        acceptable=False,
        targets=paths.TARGETS,
        recommendation="risk_control",
    )
    await act(api, pid, "choose_path", {"path": "risk_control"}, "district_government")
    await act(
        api,
        pid,
        "control_measures",
        {"control_zone": "东区", "signs_posted": True, "notice_published": True},
        "district_government",
    )
    await act(api, pid, "monitoring_result", {"diffusion_found": True}, "responsible_party")
    await act(api, pid, "isolation_measures", {"measures": "阻隔墙"}, "reserve_agency")
    await act(api, pid, "risk_control_completed", {}, "responsible_party")


async def key_unit_transfer(api: httpx.AsyncClient, pid: str) -> None:
    """Law 67: a key supervised unit's land before its transfer, nothing found; the
    report goes to the real-estate registry; released."""
    from tests.helpers import LAND_USER, held_facts

    transfer = {"right_status": "transferred", "transferee": LAND_USER}
    await start(api, held_facts(pid, key_supervised_unit=True, planned_use="industrial") | transfer)
    await paths.report(api, pid, paths.CLEAN_SAMPLES, "land_user")
    await act(api, pid, "filing_review", ACCEPTED, "planning_land")
    await act(api, pid, "filing_review", ACCEPTED, "city_epb")
    await act(api, pid, "release", {}, "planning_land")


async def released_without_investigation(api: httpx.AsyncClient, pid: str) -> None:
    await start(api, paths.clean_facts(pid))
    await act(api, pid, "release", {"notes": "商业用地维持原用途"}, "planning_land")


SCENARIOS: dict[str, Scenario] = {
    "no_investigation_release": released_without_investigation,
    "full_remediation_chain": lambda api, pid: paths.test_full_remediation_chain_with_loops(
        api, pid, api._transport.app.state.settings
    ),  # type: ignore[attr-defined]
    "determination_land_user": paths.test_undetermined_polluter_falls_to_the_land_user,
    "risk_control_removal": risk_control_with_missed_deadline,
    "amended_remediation": amended_remediation,
    "isolation_by_the_manager": isolation_by_the_manager,
    "key_unit_transfer": key_unit_transfer,
}


async def record(force: set[str]) -> None:
    HERE.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="landflow-record-"))
    env = await dev_server()
    try:
        short = policy_file(
            tmp,
            steps={
                "monitoring": {
                    "days": 3 / 86_400,
                    "remind_days_before": 1.5 / 86_400,
                    "escalate_to": "district_epb",
                }
            },
            spot_check_share=1.0,
        )
        settings = make_settings(tmp, policy_file=short)
        async with build_worker(env.client, settings), api_client(settings, env.client) as api:
            for name, scenario in SCENARIOS.items():
                if (HERE / f"{name}.json").exists() and name not in force:
                    continue
                pid = f"GOLD-{name.replace('_', '-')}-{uuid.uuid4().hex[:4]}"
                await scenario(api, pid)
                history = await fetch_history(env.client, pid)
                (HERE / f"{name}.json").write_bytes(history.canonical())
                print(f"{name}: {len(history.events)} events, sha256 {history.sha256()}")
    finally:
        await env.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(record(set(sys.argv[2:]) if sys.argv[1:2] == ["--force"] else set()))
