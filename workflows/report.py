"""The annual report (BJ 四(二)): one activity per scope, run by the report schedules.

Districts report their year to the city EPB by 31 December; the city EPB reports the
previous year to the city government by 31 January. The schedules pass no year: the
workflow takes it from its own start time in Beijing time, so a schedule's action never
needs editing from one year to the next.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from landflow.messages import BUILD_REPORT, REPORT_WORKFLOW
    from landflow.reports import ReportInput, ReportRequest, ReportSummary
    from landflow.vocabulary import BEIJING_TIME

REPORT_TIMEOUT = timedelta(minutes=5)  # a city-wide scan of the registry


@workflow.defn(name=REPORT_WORKFLOW)
class ReportWorkflow:
    @workflow.run
    async def run(self, request: ReportRequest) -> list[ReportSummary]:
        now = workflow.now()
        year = request.year
        if year is None:
            year = now.astimezone(BEIJING_TIME).year - request.years_back
        workflow.set_current_details(
            f"**Annual report {year}:** {len(request.scopes)} scope(s): "
            + ", ".join(request.scopes)
        )
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        BUILD_REPORT.name,
                        ReportInput(
                            year=year,
                            scope=scope,
                            workflow_id=workflow.info().workflow_id,
                            generated_at=now,
                        ),
                        start_to_close_timeout=REPORT_TIMEOUT,
                        result_type=BUILD_REPORT.output,
                        summary=f"report {year} {scope}",
                    )
                    for scope in request.scopes
                )
            )
        )
