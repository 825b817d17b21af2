"""The annual report (BJ 四(二)) and the safe-utilisation rate (BJ 一(二)), and the
schedules that produce them.

The figures are worked out by hand from a small, explicit registry (written through
registry.writes, as the activities write it) whose moments sit on the edges of the
Beijing year; "now" is passed to `compute_report`, never read from the clock. A few
parcels driven through the API show the report workflow storing what the API serves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleRange, ScheduleState
from temporalio.testing import WorkflowEnvironment

from activities.report import compute_report
from landflow.messages import REBUILD_WORKFLOW, REPORT_WORKFLOW, RebuildRequest
from landflow.reports import ReportInput, ReportRequest
from landflow.settings import Settings
from landflow.vocabulary import BEIJING_DISTRICTS, BEIJING_TIME, CITY, Stage, Step
from registry import writes
from service.schedules import RECONCILE_ID, report_schedules
from service.worker import build_worker
from tests.conftest import api_client, make_settings
from tests.helpers import DISTRICT, OTHER_DISTRICT, act, auth, clean_facts, start
from tests.unit.registry import decision, list_change, notice, projection, sqlite_engine

NOW = datetime(2028, 1, 2, 9, 0, tzinfo=BEIJING_TIME)  # when the reports below are generated


def bj(text: str) -> datetime:
    """A moment in Beijing time, as the law's deadlines and the report's year run."""
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING_TIME)


class Registry:
    """Writes a hand-made registry through registry.writes."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.numbers: dict[str, int] = {}

    def register(self, pid: str, started: str, stage: Stage, **extra: Any) -> None:
        status = "released" if stage == Stage.released else extra.pop("status", "running")
        writes.apply_projection(
            self.session,
            projection=projection(
                pid, started_at=bj(started), stage=stage, status=status, tasks=[], **extra
            ),
        )

    def listed(
        self, pid: str, entered: str, left: str | None = None, name: str = "contaminated", **kw: Any
    ) -> None:
        writes.apply_list_change(
            self.session, change=list_change(pid, "enter", bj(entered), list_name=name, **kw)
        )
        if left is not None:
            change = list_change(pid, "leave", bj(left), list_name=name, **kw)
            writes.apply_list_change(self.session, change=change)

    def decided(self, pid: str, outcome: str, at: str, rule: str = "R8") -> None:
        self.numbers[pid] = number = self.numbers.get(pid, 0) + 1
        made = decision(pid, number, rule=rule, outcome=outcome, evaluated_at=bj(at))
        writes.add_decisions(self.session, run_id=f"run-{pid}", parcel_id=pid, decisions=[made])

    def escalated(self, pid: str, step: Step, at: str, kind: str = "escalation", **kw: Any) -> None:
        writes.add_notice(self.session, notice=notice(pid, kind, at=bj(at), step=step, **kw))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Eight registrations of 朝阳区 and 海淀区, 2025 to 2028 (see each line's comment)."""
    for engine in sqlite_engine(tmp_path_factory.mktemp("report")):
        with Session(engine) as session:
            r = Registry(session)
            # released after a met evaluation; escalated in the year's last minute
            r.register("CY-SAFE", "2026-02-01T10:00", Stage.released)
            r.listed("CY-SAFE", "2026-03-01T10:00", "2027-05-01T10:00")
            r.decided("CY-SAFE", "not_met", "2027-02-01T10:00")
            r.decided("CY-SAFE", "met", "2027-04-01T10:00")
            r.escalated("CY-SAFE", Step.works, "2027-12-31T23:59")
            # listed 00:30 on 1 January (still 2026 in UTC); released while its last
            # evaluation said not met (another rule's "met" and a later R8 do not count)
            r.register("CY-UNSAFE", "2026-12-20T10:00", Stage.released)
            r.listed("CY-UNSAFE", "2027-01-01T00:30", "2027-06-01T10:00")
            r.decided("CY-UNSAFE", "not_met", "2027-05-01T10:00")
            r.decided("CY-UNSAFE", "met", "2027-05-15T10:00", rule="R7")
            r.decided("CY-UNSAFE", "met", "2027-07-01T10:00")
            r.escalated("CY-UNSAFE", Step.investigation, "2026-12-31T23:59")  # the year before
            # left the list at 01:00 on 1 January 2028 (still 2027 in UTC)
            r.register("CY-NEWYEAR", "2027-01-15T10:00", Stage.released)
            r.listed("CY-NEWYEAR", "2027-02-01T10:00", "2028-01-01T01:00")
            r.decided("CY-NEWYEAR", "met", "2027-12-01T10:00")
            # listed at 23:00 on 31 December; overdue now
            r.register("CY-LISTED", "2027-03-01T10:00", Stage.listing, overdue=True)
            r.listed("CY-LISTED", "2027-12-31T23:00")
            r.listed("CY-LISTED", "2027-12-31T23:00", name="negative")
            r.escalated("CY-LISTED", Step.control_measures, "2027-06-01T10:00")
            r.escalated("CY-LISTED", Step.control_measures, "2027-05-01T10:00", kind="reminder")
            # released in 2026, evaluated met at the very moment of release: counts, cumulatively
            r.register("CY-2026", "2025-06-01T10:00", Stage.released)
            r.listed("CY-2026", "2025-08-01T10:00", "2026-10-01T10:00")
            r.decided("CY-2026", "met", "2026-10-01T10:00")
            # registered after 2027
            r.register("CY-LATE", "2028-02-01T10:00", Stage.investigation)
            # registered twice: only the current registration is a parcel of the year
            r.register(
                "CY-AGAIN", "2026-05-01T10:00", Stage.filing, run_id="run-old", status="terminated"
            )
            r.register("CY-AGAIN", "2027-04-01T10:00", Stage.investigation)
            r.listed("CY-AGAIN", "2027-04-02T10:00", "2027-08-01T10:00", name="suspected")
            # another district
            r.register("HD-1", "2027-01-10T10:00", Stage.released, district=OTHER_DISTRICT)
            r.listed("HD-1", "2027-02-01T10:00", "2027-09-01T10:00", district=OTHER_DISTRICT)
            r.decided("HD-1", "met", "2027-08-01T10:00")
            r.escalated("HD-1", Step.works, "2027-03-01T10:00", district=OTHER_DISTRICT)
        yield engine


def report_of(engine: Engine, year: int, scope: str = DISTRICT) -> dict[str, Any]:
    request = ReportInput(year=year, scope=scope, workflow_id="report-test", generated_at=NOW)
    with Session(engine) as session:
        return compute_report(session, request=request).model_dump(mode="json")


def figures(entered: list[str], left: list[str], at_end: int) -> dict[str, Any]:
    return {"entered": entered, "left": left, "on_list_at_year_end": at_end}


def test_a_districts_year_in_beijing_time(registry: Engine) -> None:
    report = report_of(registry, 2027)
    assert (report["year"], report["scope"], report["workflow_id"]) == (
        2027,
        DISTRICT,
        "report-test",
    )
    assert datetime.fromisoformat(report["generated_at"]) == NOW
    assert datetime.fromisoformat(report["period_start"]) == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert datetime.fromisoformat(report["period_end"]) == datetime(2027, 12, 31, 16, tzinfo=UTC)
    assert report["parcels"] == 6  # not CY-LATE, not CY-AGAIN's first registration
    assert report["parcels_by_stage"] == {"investigation": 1, "listing": 1, "released": 4}
    assert report["lists"] == {
        "contaminated": figures(
            entered=["CY-LISTED", "CY-NEWYEAR", "CY-UNSAFE"],
            left=["CY-SAFE", "CY-UNSAFE"],
            at_end=2,  # CY-NEWYEAR (left in 2028) and CY-LISTED
        ),
        "negative": figures(entered=["CY-LISTED"], left=[], at_end=1),
        "suspected": figures(entered=["CY-AGAIN"], left=["CY-AGAIN"], at_end=0),
    }
    assert report["overdue"] == {
        "escalations": 2,  # CY-UNSAFE's fell in 2026; reminders are not escalations
        "escalations_by_step": {"control_measures": 1, "works": 1},
        "overdue_now": ["CY-LISTED"],
    }
    safe = report["safe_utilisation"]
    assert {k: v for k, v in safe.items() if k != "definition"} == {
        "redeveloped": 3,  # CY-SAFE, CY-UNSAFE and, cumulatively, CY-2026
        "safely_utilised": 2,
        "rate": pytest.approx(2 / 3),
        "target": 0.9,
        "target_year": 2020,
        "met": False,
        "not_safe": ["CY-UNSAFE"],
    }
    assert "R8" in safe["definition"] and "95 %" in safe["definition"]


def test_the_city_report_covers_every_district(registry: Engine) -> None:
    city = report_of(registry, 2027, CITY)
    assert (city["scope"], city["parcels"]) == (CITY, 7)
    assert city["parcels_by_stage"]["released"] == 5
    contaminated = city["lists"]["contaminated"]
    assert contaminated["entered"] == ["CY-LISTED", "CY-NEWYEAR", "CY-UNSAFE", "HD-1"]
    assert contaminated["left"] == ["CY-SAFE", "CY-UNSAFE", "HD-1"]
    assert city["overdue"]["escalations_by_step"] == {"control_measures": 1, "works": 2}
    safe = city["safe_utilisation"]
    assert (safe["redeveloped"], safe["safely_utilised"], safe["rate"]) == (4, 3, 0.75)
    haidian = report_of(registry, 2027, OTHER_DISTRICT)
    assert (haidian["parcels"], haidian["safe_utilisation"]["rate"]) == (1, 1.0)
    assert haidian["safe_utilisation"]["met"] is True


def test_the_2030_target_and_a_year_with_nothing_redeveloped(registry: Engine) -> None:
    y2030 = report_of(registry, 2030)
    assert y2030["parcels"] == 7  # CY-LATE too
    safe = y2030["safe_utilisation"]
    assert (safe["redeveloped"], safe["safely_utilised"], safe["rate"]) == (4, 3, 0.75)
    assert (safe["target"], safe["target_year"], safe["met"]) == (0.95, 2030, False)
    assert y2030["lists"]["contaminated"] == figures([], [], 1)
    y2025 = report_of(registry, 2025)
    assert (y2025["parcels"], y2025["lists"]["contaminated"]["entered"]) == (1, ["CY-2026"])
    safe = y2025["safe_utilisation"]
    assert (safe["redeveloped"], safe["rate"], safe["met"]) == (0, None, None)  # no verdict


# --- through the API: the report workflow stores what GET /reports serves ------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def reporting(
    temporal: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """An API and worker of this module, on a registry of their own: figures are exact."""
    settings = make_settings(tmp_path_factory.mktemp("reporting"))
    async with (
        httpx.AsyncClient() as http,
        build_worker(temporal.client, settings, http),
        api_client(settings, temporal.client) as api,
    ):
        yield api


async def test_ops_run_stores_every_districts_report_and_the_citys(reporting, temporal):
    api = reporting
    tag = uuid.uuid4().hex[:6].upper()
    released, waiting, haidian = f"R{tag}-A", f"R{tag}-B", f"R{tag}-C"
    started = await start(api, clean_facts(released))
    await act(api, released, "release", {}, "planning_land")
    await start(api, clean_facts(waiting))
    await start(api, {**clean_facts(haidian), "district": OTHER_DISTRICT})
    await act(api, haidian, "release", {}, "planning_land")
    parcel = (await api.get(f"/parcels/{released}", headers=auth("auditor"))).json()
    registered = datetime.fromisoformat(parcel["history"][0]["entered"])
    year = registered.astimezone(BEIJING_TIME).year  # the parcels' year, whatever the clock
    assert started["stage"] == "release"

    missing = await api.get(f"/reports/{year}/{DISTRICT}", headers=auth("auditor"))
    assert missing.status_code == 404 and "not been produced" in missing.json()["detail"]
    assert (await api.get(f"/reports/{year}")).status_code == 401
    assert (await api.post(f"/reports/{year}/run", headers=auth("auditor"))).status_code == 403
    future = datetime.now(BEIJING_TIME).year + 1
    refused = await api.post(f"/reports/{future}/run", headers=auth("ops"))
    assert refused.status_code == 422 and refused.json()["fields"][0]["field"] == "year"
    unknown = await api.get(f"/reports/{year}/浦东新区", headers=auth("ops"))
    assert unknown.status_code == 404 and DISTRICT in unknown.json()["detail"]

    run = await api.post(f"/reports/{year}/run", headers=auth("ops"))
    assert run.status_code == 202, run.text
    assert run.json()["scopes"] == [*BEIJING_DISTRICTS, CITY]
    handle = temporal.client.get_workflow_handle(run.json()["workflow_id"])
    summaries = await asyncio.wait_for(handle.result(), timeout=60)
    assert sorted(s["scope"] for s in summaries) == sorted([*BEIJING_DISTRICTS, CITY])

    report = (await api.get(f"/reports/{year}/{DISTRICT}", headers=auth("public"))).json()
    assert (report["year"], report["workflow_id"]) == (year, run.json()["workflow_id"])
    assert (report["parcels"], report["parcels_by_stage"]) == (2, {"release": 1, "released": 1})
    assert report["lists"]["contaminated"] == figures([], [], 0)
    assert report["overdue"] == {"escalations": 0, "escalations_by_step": {}, "overdue_now": []}
    assert (report["safe_utilisation"]["rate"], report["safe_utilisation"]["met"]) == (None, None)
    city = (await api.get(f"/reports/{year}", headers=auth("auditor"))).json()
    assert (city["scope"], city["parcels"]) == (CITY, 3)
    other = (await api.get(f"/reports/{year}/{OTHER_DISTRICT}", headers=auth("auditor"))).json()
    assert other["parcels_by_stage"] == {"released": 1}


# --- the schedules -----------------------------------------------------------------


@pytest.fixture
def schedules(tmp_path: Path) -> tuple[Settings, dict[str, Any]]:
    settings = make_settings(tmp_path)
    return settings, report_schedules(settings, prefix="landflow-report")


def test_report_schedules_run_on_beijing_calendars(schedules: tuple[Settings, dict]) -> None:
    settings, found = schedules
    assert set(found) == {"landflow-report-districts", "landflow-report-city", RECONCILE_ID}
    expected = {  # id: (month, day, hour, request)
        "landflow-report-districts": (12, 31, 18, ReportRequest(scopes=list(BEIJING_DISTRICTS))),
        "landflow-report-city": (1, 31, 9, ReportRequest(scopes=[CITY], years_back=1)),
    }
    for schedule_id, (month, day, hour, request) in expected.items():
        schedule = found[schedule_id]
        spec = schedule.spec
        assert spec.time_zone_name == "Asia/Shanghai", schedule_id
        (calendar,) = spec.calendars
        assert (calendar.month, calendar.day_of_month, calendar.hour) == (
            [ScheduleRange(month)],
            [ScheduleRange(day)],
            [ScheduleRange(hour)],
        )
        assert (list(calendar.minute), list(calendar.second)) == (
            [ScheduleRange(0)],
            [ScheduleRange(0)],
        )
        action = schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, list(action.args)) == (REPORT_WORKFLOW, [request])
        assert action.task_queue == settings.task_queue
        assert schedule.policy.catchup_window == timedelta(days=31)  # a month to catch up
        assert request.year is None  # the workflow takes the year from its start time


def test_the_reconcile_schedule_runs_every_five_minutes(schedules: tuple[Settings, dict]) -> None:
    settings, found = schedules
    reconcile = found[RECONCILE_ID]
    (interval,) = reconcile.spec.intervals
    assert (interval.every, reconcile.spec.calendars) == (timedelta(minutes=5), [])
    action = reconcile.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == (REBUILD_WORKFLOW, settings.task_queue)
    assert list(action.args) == [
        RebuildRequest(write=True, reason="periodic reconcile", closed_within_hours=1)
    ]


async def test_the_server_places_the_report_runs_in_beijing_time(temporal, schedules):
    """The dev server's own calendar: the districts' run at 18:00 on 31 December and the
    city's at 09:00 on 31 January, Beijing time (10:00 and 01:00 UTC)."""
    _, found = schedules
    client: Client = temporal.client
    tag = uuid.uuid4().hex[:8]
    created = []
    try:
        for schedule_id, (month, day, hour) in {
            "landflow-report-districts": (12, 31, 18),
            "landflow-report-city": (1, 31, 9),
        }.items():
            paused = dataclasses.replace(found[schedule_id], state=ScheduleState(paused=True))
            handle = await client.create_schedule(f"{schedule_id}-{tag}", paused)
            created.append(handle)
            times = (await handle.describe()).info.next_action_times
            assert times, f"{schedule_id}: the server lists no next run"
            for moment in times[:2]:
                local = moment.astimezone(BEIJING_TIME)
                assert (local.month, local.day, local.hour, local.minute) == (month, day, hour, 0)
            assert times[1] - times[0] in (timedelta(days=365), timedelta(days=366))
    finally:
        for handle in created:
            await handle.delete()
