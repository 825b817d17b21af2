"""Annual reports (BJ 四(二)): read the stored ones; ops can produce them now."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from api.deps import Caller, SessionDep, SettingsDep, TemporalDep, require
from api.errors import ApiError, from_temporal
from api.schemas import error_responses
from landflow.messages import REPORT_WORKFLOW, Actor
from landflow.reports import AnnualReport, ReportRequest
from landflow.vocabulary import BEIJING_TIME, CITY, Role, districts
from registry import queries

router = APIRouter(prefix="/reports", tags=["reports"])

ERRORS = error_responses(401, 403, 404, 422, 503)
Year = Annotated[int, Path(ge=2000, le=2200)]
District = Annotated[str, Path(min_length=1, max_length=50)]


class ReportRun(BaseModel):
    workflow_id: str
    year: int
    scopes: list[str]


def _stored(session: SessionDep, year: int, scope: str) -> AnnualReport:
    row = queries.get_report(session, year=year, scope=scope)
    if row is None:
        due = "31 January of the next year" if scope == CITY else "31 December"
        raise ApiError(
            404,
            "NotFound",
            f"the {year} report for {scope} has not been produced yet (scheduled for {due}; "
            f"ops can POST /reports/{year}/run)",
        )
    return AnnualReport.model_validate(row.body)


@router.get("/{year}", response_model=AnnualReport, responses=ERRORS)
def city_report(year: Year, _caller: Caller, session: SessionDep) -> AnnualReport:
    """The city EPB's report for the year: every district together."""
    return _stored(session, year, CITY)


@router.get("/{year}/{district}", response_model=AnnualReport, responses=ERRORS)
def district_report(
    year: Year, district: District, _caller: Caller, session: SessionDep
) -> AnnualReport:
    """A district's report for the year (one of Beijing's 16 districts)."""
    if district not in districts():
        raise ApiError(
            404,
            "NotFound",
            f"district {district!r} has no reports; reports exist for {' '.join(districts())}",
        )
    return _stored(session, year, district)


@router.post(
    "/{year}/run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReportRun,
    responses=ERRORS,
)
async def run_reports(
    year: Year,
    _caller: Annotated[Actor, Depends(require(Role.ops))],
    client: TemporalDep,
    settings: SettingsDep,
) -> ReportRun:
    """Produce the year's 16 district reports and the city report now (replacing stored ones).

    Answers once the report workflow has started; the reports follow within seconds.
    A run already in progress for the year is reused, not started twice.
    """
    this_year = datetime.now(BEIJING_TIME).year
    if year > this_year:
        raise ApiError(
            422,
            "InvalidYear",
            f"year {year} has not begun",
            [{"field": "year", "reason": f"must be {this_year} or earlier"}],
        )
    request = ReportRequest(year=year, scopes=[*districts(), CITY])
    wid = f"report-{year}-run"
    try:
        await client.start_workflow(
            REPORT_WORKFLOW,
            request,
            id=wid,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"annual reports {year}, run by ops",
            rpc_timeout=timedelta(seconds=settings.action_timeout_s),
        )
    except RPCError as exc:
        raise from_temporal(exc, f"report run {wid}") from exc
    return ReportRun(workflow_id=wid, year=year, scopes=request.scopes)
