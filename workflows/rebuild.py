"""The registry rebuilt from the engine, as a workflow: one at a time, visible to ops."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from landflow.messages import REBUILD, REBUILD_WORKFLOW, RebuildRequest, RebuildSummary


@workflow.defn(name=REBUILD_WORKFLOW)
class RegistryRebuildWorkflow:
    @workflow.run
    async def run(self, request: RebuildRequest) -> RebuildSummary:
        workflow.set_current_details(
            f"**Registry {'rebuild' if request.write else 'verify'}:** {request.reason or 'asked'}"
        )
        return await workflow.execute_activity(
            REBUILD.name,
            request,
            result_type=REBUILD.output,
            start_to_close_timeout=timedelta(hours=6),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary="registry rebuild" if request.write else "registry verify",
        )
