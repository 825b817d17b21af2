"""The schedules, created or brought up to date at start-up.

- `landflow-report-districts`: 31 December 18:00 Beijing time, one workflow that writes
  a report for each district for the current year (BJ 四(二); one activity per district);
- `landflow-report-city`: 31 January 09:00, the city report for the previous year;
- `landflow-registry-reconcile`: every 5 minutes, the registry rows of parcels whose run
  ended abnormally in the last hour are brought in line with the engine (a terminated
  parcel leaves the inboxes, although no activity of its own ran).
Safe to call at every start: an existing schedule is updated to this definition,
keeping whether ops paused it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError

from landflow.messages import REBUILD_WORKFLOW, REPORT_WORKFLOW, RebuildRequest
from landflow.reports import ReportRequest
from landflow.settings import Settings
from landflow.vocabulary import CITY, districts
from workflows.client import connect

log = logging.getLogger("landflow.schedules")

PREFIX = "landflow-report"
# An annual run missed while the cluster was down still runs if it is back within a month.
CATCHUP = timedelta(days=31)


def _yearly(
    settings: Settings, schedule_id: str, request: ReportRequest, month: int, day: int, hour: int
) -> Schedule:
    when = f"each {day} {'December' if month == 12 else 'January'} {hour:02d}:00 Beijing time"
    return Schedule(
        action=ScheduleActionStartWorkflow(
            REPORT_WORKFLOW,
            request,
            id=schedule_id,  # the server appends the scheduled time
            task_queue=settings.task_queue,
            static_summary=f"annual report ({', '.join(request.scopes)[:80]}), {when}",
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    month=[ScheduleRange(month)],
                    day_of_month=[ScheduleRange(day)],
                    hour=[ScheduleRange(hour)],
                    comment=when,
                )
            ],
            time_zone_name="Asia/Shanghai",
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP),
        state=ScheduleState(note=f"BJ 四(二) annual report, {when}"),
    )


def report_schedules(settings: Settings, prefix: str = PREFIX) -> dict[str, Schedule]:
    """Schedule id -> definition."""
    by_district = ReportRequest(scopes=list(districts()))
    city = ReportRequest(scopes=[CITY], years_back=1)
    return {
        f"{prefix}-districts": _yearly(settings, f"{prefix}-districts", by_district, 12, 31, 18),
        f"{prefix}-city": _yearly(settings, f"{prefix}-city", city, 1, 31, 9),
        f"{prefix.removesuffix('-report')}-registry-reconcile": _reconcile(settings, prefix),
    }


RECONCILE_ID = "landflow-registry-reconcile"  # with the default prefix
RECONCILE_EVERY = timedelta(minutes=5)


def _reconcile(settings: Settings, prefix: str) -> Schedule:
    request = RebuildRequest(write=True, reason="periodic reconcile", closed_within_hours=1)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            REBUILD_WORKFLOW,
            request,
            id=f"{prefix.removesuffix('-report')}-registry-reconcile",
            task_queue=settings.task_queue,
            static_summary="registry rows of parcels that ended abnormally in the last hour",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=RECONCILE_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note="the registry follows terminated and failed parcels"),
    )


def _replacing_with(new: Schedule):
    """An update callback: the new definition, but paused or running as ops left it."""

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
        state = current.description.schedule.state
        return ScheduleUpdate(schedule=dataclasses.replace(new, state=state))

    return update


async def ensure_schedules(client: Client, settings: Settings, prefix: str = PREFIX) -> list[str]:
    """Create the report schedules, or update existing ones; returns their ids."""
    schedules = report_schedules(settings, prefix)
    for schedule_id, schedule in schedules.items():
        try:
            await client.create_schedule(schedule_id, schedule)
            log.info("schedule %s created", schedule_id)
        except ScheduleAlreadyRunningError:
            await client.get_schedule_handle(schedule_id).update(_replacing_with(schedule))
            log.info("schedule %s updated", schedule_id)
    return list(schedules)


def ensure_schedules_for_dev(settings: Settings, attempts: int = 10) -> str:
    """For `make run`: ensure the schedules, retrying while the dev server starts; a failure
    is reported, not raised, so the service still comes up (the next start retries)."""

    async def run() -> list[str]:
        for attempt in range(1, attempts + 1):
            try:
                return await ensure_schedules(await connect(settings), settings)
            except (RuntimeError, RPCError) as exc:  # the dev server is not answering yet
                if attempt == attempts:
                    raise
                log.info("Temporal not ready for schedules (%s); retrying", exc)
                await asyncio.sleep(1)
        return []

    try:
        return "schedules " + ", ".join(asyncio.run(run()))
    except (RuntimeError, RPCError) as exc:
        log.warning("report schedules not ensured: %s", exc)
        return f"not scheduled ({exc})"
