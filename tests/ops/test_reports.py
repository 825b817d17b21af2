"""The annual report (BJ 四(二)): schedules on the dev server, figures checked against the registry.

The module runs its own worker on a fresh registry, so every figure is known exactly;
its policy gives `control_measures` a deadline of seconds, so one parcel goes overdue
through the real escalation path.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.report import compute_report
from landflow import registry
from landflow.contracts import (
    BEIJING_DISTRICTS,
    BEIJING_TIME,
    Decision,
    ListChange,
    RegistryUpdate,
    ReportInput,
    Stage,
)
from landflow.registry import ListEntryRow, NoticeRow, ParcelRow, ReportRow
from landflow.schedules import ensure_schedules
from landflow.settings import PACKAGE_DIR, Settings
from landflow.worker import build_worker
from tests.conftest import api_client, make_settings
from tests.helpers import DISTRICT, OTHER_DISTRICT, REPORT, act, auth, clean_facts, facts, start

YEAR = datetime.now(BEIJING_TIME).year
DISTRICTS = (DISTRICT, OTHER_DISTRICT)  # where this module puts its parcels


@dataclass
class Reporting:
    client: Client
    settings: Settings
    engine: Engine
    api: httpx.AsyncClient
    prefix: str


def short_policy(path: Path) -> Path:
    """The packaged policy, but `control_measures` falls due about 2.6 s after it opens."""
    policy = yaml.safe_load((PACKAGE_DIR / "policy.yaml").read_text(encoding="utf-8"))
    policy["steps"]["control_measures"].update(days=0.00003, remind_days_before=0.00001)
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def reporting(
    temporal: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Reporting]:
    tmp = tmp_path_factory.mktemp("reports")
    settings = make_settings(tmp, policy_file=short_policy(tmp / "policy.yaml"))
    prefix = f"test-report-{uuid.uuid4().hex[:8]}"
    client = temporal.client
    schedule_ids = await ensure_schedules(client, settings, prefix)
    try:
        async with (
            httpx.AsyncClient() as http,
            build_worker(client, settings, http),
            api_client(settings, client) as api,
        ):
            yield Reporting(
                client, settings, registry.make_engine(settings.database_url), api, prefix
            )
    finally:
        for schedule_id in schedule_ids:
            await client.get_schedule_handle(schedule_id).delete()


# --- driving parcels through the API ---------------------------------------------------


async def to_listing(api: httpx.AsyncClient, pid: str) -> None:
    """A closed coking plant, investigated and filed: listed, the district must choose a path."""
    await start(api, facts(pid))
    await act(api, pid, "closure_screening", {"result": "suspected"}, "district_epb")
    await act(api, pid, "investigation_report", REPORT, "reserve_agency")
    await act(api, pid, "filing_review", {"decision": "accepted"}, "city_epb")
    parcel = await act(api, pid, "filing_review", {"decision": "accepted"}, "planning_land")
    assert (parcel["stage"], parcel["listed"]) == ("listing", True)


async def remediate_and_release(api: httpx.AsyncClient, pid: str) -> None:
    gov = "district_government"
    await act(api, pid, "choose_path", {"path": "remediation"}, gov)
    await act(
        api, pid, "remediation_plan", {"plan": "热脱附", "contractor": "北京建工环境修复"}, gov
    )
    await act(api, pid, "works_completed", {"summary": "完工"}, gov)
    evaluation = {"met": True, "evaluator": "某评估公司"}
    await act(api, pid, "evaluation", evaluation, "third_party_evaluator")
    parcel = await act(api, pid, "release", {}, "planning_land")
    assert (parcel["stage"], parcel["listed"]) == ("released", False)


async def wait_overdue(engine: Engine, pid: str, seconds: float = 20) -> None:
    for _ in range(int(seconds * 10)):
        with Session(engine) as session:
            row = session.get(ParcelRow, pid)
            if row is not None and row.overdue:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{pid} did not go overdue within {seconds}s")


async def run_schedule(client: Client, schedule_id: str) -> list[dict[str, Any]]:
    """Trigger the schedule now and wait for the report workflow it starts."""
    handle = client.get_schedule_handle(schedule_id)
    before = len((await handle.describe()).info.recent_actions)
    await handle.trigger()
    for _ in range(100):
        actions = (await handle.describe()).info.recent_actions
        if len(actions) > before:
            workflow = client.get_workflow_handle(actions[-1].action.workflow_id)
            return await asyncio.wait_for(workflow.result(), timeout=30)
        await asyncio.sleep(0.1)
    raise AssertionError(f"schedule {schedule_id} started nothing")


# --- the registry, read directly -------------------------------------------------------


def registry_figures(engine: Engine, district: str | None) -> dict[str, Any]:
    """What the registry says for this year (everything in this module happens this year)."""

    def scoped(query, column):
        return query if district is None else query.where(column == district)

    with Session(engine) as session:
        parcels = session.exec(scoped(select(ParcelRow), ParcelRow.district)).all()
        contaminated = session.exec(
            scoped(select(ListEntryRow), ListEntryRow.district).where(
                ListEntryRow.list_name == "contaminated"
            )
        ).all()
        escalations = session.exec(
            scoped(select(NoticeRow), NoticeRow.district).where(NoticeRow.kind == "escalation")
        ).all()
        released = [e.parcel_id for e in contaminated if e.left_at is not None]
        safe = [
            pid
            for pid in released
            if [
                d.outcome for d in registry.decisions_for(session, parcel_id=pid) if d.rule == "R8"
            ][-1:]
            == ["met"]
        ]
    return {
        "parcels": len(parcels),
        "parcels_by_stage": dict(Counter(p.stage for p in parcels)),
        "entered": sorted(e.parcel_id for e in contaminated),
        "left": sorted(released),
        "on_list_at_year_end": sum(1 for e in contaminated if e.left_at is None),
        "escalations": len(escalations),
        "overdue_now": sorted(p.parcel_id for p in parcels if p.overdue),
        "redeveloped": len(released),
        "safely_utilised": len(safe),
    }


def report_figures(report: dict[str, Any]) -> dict[str, Any]:
    contaminated, safe = report["lists"]["contaminated"], report["safe_utilisation"]
    return {
        "parcels": report["parcels"],
        "parcels_by_stage": report["parcels_by_stage"],
        "entered": contaminated["entered"],
        "left": contaminated["left"],
        "on_list_at_year_end": contaminated["on_list_at_year_end"],
        "escalations": report["overdue"]["escalations"],
        "overdue_now": report["overdue"]["overdue_now"],
        "redeveloped": safe["redeveloped"],
        "safely_utilised": safe["safely_utilised"],
    }


# --- the tests ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pids() -> dict[str, str]:
    tag = uuid.uuid4().hex[:6]
    return {name: f"R{tag}-{name}" for name in ("released", "listed", "clean", "overdue", "other")}


async def test_district_schedule_reports_each_district_as_the_registry_says(reporting, pids):
    api, engine = reporting.api, reporting.engine
    missing = await api.get(f"/reports/{YEAR}/{DISTRICT}", headers=auth("auditor"))
    assert missing.status_code == 404 and "not been produced" in missing.json()["detail"]

    await to_listing(api, pids["released"])
    await remediate_and_release(api, pids["released"])
    await to_listing(api, pids["listed"])
    await start(api, clean_facts(pids["clean"]))
    await act(api, pids["clean"], "release", {}, "planning_land")
    other = {**clean_facts(pids["other"]), "district": OTHER_DISTRICT}
    await start(api, other)
    await act(api, pids["other"], "release", {}, "planning_land")
    await to_listing(api, pids["overdue"])
    await act(api, pids["overdue"], "choose_path", {"path": "risk_control"}, "district_government")
    await wait_overdue(engine, pids["overdue"])

    summaries = await run_schedule(reporting.client, f"{reporting.prefix}-districts")
    assert sorted(s["scope"] for s in summaries) == sorted(BEIJING_DISTRICTS)
    assert {s["year"] for s in summaries} == {YEAR}

    response = await api.get(f"/reports/{YEAR}/{DISTRICT}", headers=auth("public"))
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["year"], report["scope"]) == (YEAR, DISTRICT)
    assert report["workflow_id"].startswith(f"{reporting.prefix}-districts")
    assert report_figures(report) == registry_figures(engine, DISTRICT)
    # ... and the registry holds what the API calls above did
    assert report_figures(report) == {
        "parcels": 4,
        "parcels_by_stage": {"released": 2, "listing": 1, "risk_control": 1},
        "entered": sorted([pids["released"], pids["listed"], pids["overdue"]]),
        "left": [pids["released"]],
        "on_list_at_year_end": 2,
        "escalations": 1,
        "overdue_now": [pids["overdue"]],
        "redeveloped": 1,
        "safely_utilised": 1,
    }
    assert report["lists"]["negative"] == report["lists"]["contaminated"]  # entered together
    assert report["overdue"]["escalations_by_step"] == {"control_measures": 1}
    safe = report["safe_utilisation"]
    assert (safe["rate"], safe["target"], safe["target_year"], safe["met"]) == (
        1.0,
        0.9,
        2020,
        True,
    )
    assert "R8" in safe["definition"] and "95 %" in safe["definition"]

    haidian = (await api.get(f"/reports/{YEAR}/{OTHER_DISTRICT}", headers=auth("auditor"))).json()
    assert report_figures(haidian) == registry_figures(engine, OTHER_DISTRICT)
    assert (haidian["parcels"], haidian["safe_utilisation"]["rate"]) == (1, None)
    assert haidian["safe_utilisation"]["met"] is None  # nothing redeveloped: no verdict
    with Session(engine) as session:
        stored = session.exec(select(ReportRow).where(ReportRow.year == YEAR)).all()
    assert sorted(r.scope for r in stored) == sorted(BEIJING_DISTRICTS)


async def test_ops_run_produces_the_city_report(reporting, pids):
    api = reporting.api
    assert (await api.get(f"/reports/{YEAR}")).status_code == 401
    refused = await api.post(f"/reports/{YEAR}/run", headers=auth("auditor"))
    assert refused.status_code == 403
    future = await api.post(f"/reports/{YEAR + 1}/run", headers=auth("ops"))
    assert future.status_code == 422 and future.json()["fields"][0]["field"] == "year"
    unknown = await api.get(f"/reports/{YEAR}/浦东新区", headers=auth("ops"))
    assert unknown.status_code == 404 and "朝阳区" in unknown.json()["detail"]

    run = await api.post(f"/reports/{YEAR}/run", headers=auth("ops"))
    assert run.status_code == 202, run.text
    assert run.json()["scopes"] == [*BEIJING_DISTRICTS, "city"]
    handle = reporting.client.get_workflow_handle(run.json()["workflow_id"])
    await asyncio.wait_for(handle.result(), timeout=30)

    city = (await api.get(f"/reports/{YEAR}", headers=auth("auditor"))).json()
    assert city["scope"] == "city"
    assert report_figures(city) == registry_figures(reporting.engine, None)
    districts = [
        (await api.get(f"/reports/{YEAR}/{d}", headers=auth("auditor"))).json() for d in DISTRICTS
    ]
    assert city["parcels"] == sum(d["parcels"] for d in districts)  # the module's two districts
    assert {d["workflow_id"] for d in districts} == {run.json()["workflow_id"]}  # replaced


async def test_city_schedule_reports_the_previous_year_and_survives_a_second_start(reporting):
    client, prefix = reporting.client, reporting.prefix
    summaries = await run_schedule(client, f"{prefix}-city")
    assert [(s["year"], s["scope"]) for s in summaries] == [(YEAR - 1, "city")]
    last_year = await reporting.api.get(f"/reports/{YEAR - 1}", headers=auth("auditor"))
    assert last_year.status_code == 200 and last_year.json()["parcels"] == 0  # all began this year

    # ops paused it; a second start (make run again) updates without failing or resuming it
    await client.get_schedule_handle(f"{prefix}-city").pause(note="paused by ops")
    assert await ensure_schedules(client, reporting.settings, prefix) == [
        f"{prefix}-districts",
        f"{prefix}-city",
    ]
    described = await client.get_schedule_handle(f"{prefix}-city").describe()
    assert described.schedule.state.paused
    spec = described.schedule.spec
    assert spec.time_zone_name == "Asia/Shanghai"
    (calendar,) = spec.calendars
    assert [
        (r.start, r.end) for r in (*calendar.month, *calendar.day_of_month, *calendar.hour)
    ] == [
        (1, 1),
        (31, 31),
        (9, 9),
    ]
    districts = await client.get_schedule_handle(f"{prefix}-districts").describe()
    (calendar,) = districts.schedule.spec.calendars
    assert (calendar.month[0].start, calendar.day_of_month[0].start) == (12, 31)
    # the next district run falls on 31 December, 18:00 in Beijing
    (next_run, *_) = districts.info.next_action_times
    local = next_run.astimezone(BEIJING_TIME)
    assert (local.month, local.day, local.hour) == (12, 31, 18)


# --- the rate's definition, on hand-written registry rows ------------------------------


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _listed(session: Session, pid: str, entered: str, left: str | None, r8: list[tuple]) -> None:
    registry.upsert_parcel(
        session,
        update=RegistryUpdate(
            parcel_id=pid,
            workflow_id=f"parcel-{pid}",
            name="旧数据导入",
            district=DISTRICT,
            planned_use="residential",
            stage=Stage.released if left else Stage.listing,
            waiting_on=None,
            deadline=None,
            overdue=False,
            listed=left is None,
            updated_at=_at(entered),
        ),
    )
    registry.change_lists(
        session, change=ListChange(parcel_id=pid, change="enter", at=_at(entered), reason="")
    )
    if left:
        registry.change_lists(
            session, change=ListChange(parcel_id=pid, change="leave", at=_at(left), reason="")
        )
    for number, (outcome, at) in enumerate(r8, 1):
        registry.add_decision(
            session,
            parcel_id=pid,
            decision=Decision(
                id=f"{pid}/R8/{number}",
                rule="R8",
                version=1,
                row="R8.x",
                outcome=outcome,
                citation="BJ 30; Law 65",
                explanation="",
                inputs={},
                evaluated_at=_at(at),
            ),
        )


def test_safe_utilisation_counts_releases_without_a_met_evaluation_against_the_rate(tmp_path):
    engine = registry.make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    registry.create_schema(engine)
    with Session(engine) as session:
        # released after a met evaluation: safe
        _listed(
            session,
            "P-safe",
            "2025-03-01T00:00:00+08:00",
            "2026-05-01T00:00:00+08:00",
            [("not_met", "2026-02-01T00:00:00+08:00"), ("met", "2026-04-01T00:00:00+08:00")],
        )
        # released while its last evaluation said not met (a met one came only later): not safe
        _listed(
            session,
            "P-unsafe",
            "2026-01-10T00:00:00+08:00",
            "2026-06-01T00:00:00+08:00",
            [("not_met", "2026-05-01T00:00:00+08:00"), ("met", "2026-07-01T00:00:00+08:00")],
        )
        # released at 01:00 on 1 January in Beijing (still 2026 in UTC): counts for 2027
        _listed(
            session,
            "P-new-year",
            "2026-02-01T00:00:00+08:00",
            "2027-01-01T01:00:00+08:00",
            [("met", "2026-12-01T00:00:00+08:00")],
        )
        # still listed: not redeveloped
        _listed(session, "P-listed", "2026-12-31T23:00:00+08:00", None, [])

    def report_for(year: int) -> dict[str, Any]:
        request = ReportInput(
            year=year, scope=DISTRICT, workflow_id="w", generated_at=datetime.now(UTC)
        )
        with Session(engine) as session:
            return compute_report(session, request=request).model_dump(mode="json")

    y2026 = report_for(2026)
    figures = y2026["safe_utilisation"]
    assert (figures["redeveloped"], figures["safely_utilised"], figures["rate"]) == (2, 1, 0.5)
    assert (figures["met"], figures["not_safe"]) == (False, ["P-unsafe"])
    contaminated = y2026["lists"]["contaminated"]
    assert contaminated["entered"] == ["P-listed", "P-new-year", "P-unsafe"]
    assert contaminated["left"] == ["P-safe", "P-unsafe"]
    assert contaminated["on_list_at_year_end"] == 2  # P-new-year and P-listed

    y2030 = report_for(2030)
    figures = y2030["safe_utilisation"]
    assert (figures["redeveloped"], figures["safely_utilised"]) == (3, 2)
    assert (figures["target"], figures["target_year"], figures["met"]) == (0.95, 2030, False)
