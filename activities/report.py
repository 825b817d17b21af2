"""The annual report (BJ 四(二)): a district's or the city's year, computed from the registry.

Figures come from the registry only (parcels, list entries, decisions, notices), so
anyone with read access can recompute them; the report is stored in `reports`, keyed
by (year, scope), and a re-run replaces it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import groupby

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio import activity

from landflow.messages import BUILD_REPORT
from landflow.reports import (
    AnnualReport,
    ListFigures,
    OverdueFigures,
    ReportInput,
    ReportSummary,
    SafeUtilisation,
)
from landflow.vocabulary import BEIJING_TIME, CITY
from registry import writes
from registry.tables import LISTS, DecisionRow, ListEntryRow, NoticeRow, ParcelRow, aware

SAFE_UTILISATION_DEFINITION = (
    "Redeveloped contaminated parcels: parcels that were on the contaminated-parcel list and "
    "left it, released for their planned use (Law 66), before the end of the year; counted "
    "cumulatively, as the target is a rate over all redeveloped parcels, not a yearly flow. "
    "Safely utilised: those whose last third-party effect evaluation (rule R8; BJ 30, Law 65) "
    "before the release found the targets met. Rate = safely utilised / redeveloped; target "
    "90 % from 2020 and 95 % from 2030 (BJ 一(二)); no rate while nothing was redeveloped."
)


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The calendar year in Beijing time, as UTC instants [start, end)."""
    start = datetime(year, 1, 1, tzinfo=BEIJING_TIME)
    end = datetime(year + 1, 1, 1, tzinfo=BEIJING_TIME)
    return start.astimezone(UTC), end.astimezone(UTC)


def target_for(year: int) -> tuple[float, int]:
    """The BJ 一(二) target in force in `year`: 90 % (2020), 95 % from 2030."""
    return (0.95, 2030) if year >= 2030 else (0.90, 2020)


def _in(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= aware(moment) < end


def _scoped(query, column, scope: str):
    return query if scope == CITY else query.where(column == scope)


def _list_figures(entries: list[ListEntryRow], start: datetime, end: datetime) -> ListFigures:
    """The year on one list, read as the public reads it: a later registration's entry of
    the same parcel (a restart after an abnormal end, listed again) continues the entry
    the ended run left standing, so the parcel is on the list once, entered once."""
    stays = list(_stays(entries))
    return ListFigures(
        entered=sorted(pid for pid, since, _ in stays if _in(since, start, end)),
        left=sorted(pid for pid, _, until in stays if _in(until, start, end)),
        on_list_at_year_end=len(
            {pid for pid, since, until in stays if since < end and (until is None or until >= end)}
        ),
    )


def _stays(entries: list[ListEntryRow]) -> Iterator[tuple[str, datetime, datetime | None]]:
    """Each parcel's unbroken stays on the list: (parcel, entered, left or None)."""
    for parcel_id, own in groupby(sorted(entries, key=_by_parcel), key=lambda e: e.parcel_id):
        since: datetime | None = None
        for entry in own:
            since = since or aware(entry.entered_at)
            if entry.left_at is not None:
                yield parcel_id, since, aware(entry.left_at)
                since = None
        if since is not None:
            yield parcel_id, since, None


def _by_parcel(entry: ListEntryRow) -> tuple[str, datetime]:
    return entry.parcel_id, aware(entry.entered_at)


def _safe_utilisation(
    session: Session, contaminated: list[ListEntryRow], year: int, end: datetime
) -> SafeUtilisation:
    released = {
        e.run_id: (e.parcel_id, aware(e.left_at))
        for e in contaminated
        if e.left_at and aware(e.left_at) < end
    }
    evaluations = session.exec(
        select(DecisionRow)
        .where(DecisionRow.rule == "R8", col(DecisionRow.run_id).in_(list(released)))
        .order_by(col(DecisionRow.evaluated_at), col(DecisionRow.decision_id))
    )
    last_before_release: dict[str, str] = {}
    for decision in evaluations:
        if aware(decision.evaluated_at) <= released[decision.run_id][1]:
            last_before_release[decision.run_id] = decision.outcome
    safe = [run for run in released if last_before_release.get(run) == "met"]
    target, target_year = target_for(year)
    rate = len(safe) / len(released) if released else None
    return SafeUtilisation(
        definition=SAFE_UTILISATION_DEFINITION,
        redeveloped=len(released),
        safely_utilised=len(safe),
        rate=rate,
        target=target,
        target_year=target_year,
        met=None if rate is None else rate >= target,
        not_safe=sorted({released[run][0] for run in set(released) - set(safe)}),
    )


def compute_report(session: Session, *, request: ReportInput) -> AnnualReport:
    start, end = year_bounds(request.year)
    scope = request.scope
    parcels = [
        p
        for p in session.exec(_scoped(select(ParcelRow), ParcelRow.district, scope))
        if aware(p.started_at) < end and p.current
    ]
    entries = list(session.exec(_scoped(select(ListEntryRow), ListEntryRow.district, scope)))
    escalations = [
        n
        for n in session.exec(
            _scoped(select(NoticeRow), NoticeRow.district, scope).where(
                NoticeRow.kind == "escalation"
            )
        )
        if _in(n.at, start, end)
    ]
    return AnnualReport(
        year=request.year,
        scope=scope,
        period_start=start,
        period_end=end,
        generated_at=request.generated_at,
        workflow_id=request.workflow_id,
        parcels=len(parcels),
        parcels_by_stage=dict(sorted(Counter(p.stage for p in parcels).items())),
        lists={
            name: _list_figures([e for e in entries if e.list_name == name], start, end)
            for name in LISTS
        },
        overdue=OverdueFigures(
            escalations=len(escalations),
            escalations_by_step=dict(sorted(Counter(n.step for n in escalations).items())),
            overdue_now=sorted(p.parcel_id for p in parcels if p.overdue),
        ),
        safe_utilisation=_safe_utilisation(
            session, [e for e in entries if e.list_name == "contaminated"], request.year, end
        ),
    )


class ReportActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _build(self, request: ReportInput) -> AnnualReport:
        with Session(self.engine) as session:
            report = compute_report(session, request=request)
            writes.save_report(session, report=report)
            return report

    @activity.defn(name=BUILD_REPORT.name)
    async def build_report(self, request: ReportInput) -> ReportSummary:
        report = await asyncio.to_thread(self._build, request)
        activity.logger.info(
            "annual report %s %s: %d parcels, safe-utilisation rate %s",
            report.year,
            report.scope,
            report.parcels,
            report.safe_utilisation.rate,
            extra={"report": f"{report.year}/{report.scope}"},
        )
        return ReportSummary(
            year=report.year,
            scope=report.scope,
            parcels=report.parcels,
            safe_utilisation_rate=report.safe_utilisation.rate,
        )
