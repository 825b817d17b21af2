"""A parcel's history budget over all its runs (policy history.max_parcel_bytes): the action
that would pass it is refused with 413 HistoryBudget naming the budget, nothing of it is
applied, and the parcel still answers (issue 9, "bounded histories").

One parcel is driven once for the module: it continues as new past RUN_BYTES, so the
budget must count its earlier runs, and monitoring reports of NOTE go to it until one is
refused.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from landflow.settings import Settings
from tests.e2e.record.conftest import own_stack
from tests.e2e.record.test_history_bounds import _to_monitoring, run_sizes
from tests.helpers import auth, get
from workflows.history import fetch_history

BUDGET = 160_000  # bytes over all runs; reaching monitoring takes about a third of it
RUN_BYTES = 40_000  # continue as new past this
NOTE = "监" * 3_000  # 9,000 bytes of notes per monitoring report (the limit is 40 KB)


@dataclass
class Refused:
    api: httpx.AsyncClient
    pid: str
    reports: int  # accepted before the refusal
    response: httpx.Response  # the refusal
    before: dict[str, Any]  # GET /parcels/{id} just before the refused report
    run_sizes: list[int]  # bytes of each run after it


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def refused(
    temporal: WorkflowEnvironment, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Refused]:
    pid = f"B{uuid.uuid4().hex[:10]}"
    history = {"max_parcel_bytes": BUDGET, "continue_as_new_after_bytes": RUN_BYTES}
    tmp = tmp_path_factory.mktemp("budget")
    async with own_stack(temporal, settings, tmp, history=history) as api:
        await _to_monitoring(api, pid)
        body = {"diffusion_found": False, "notes": NOTE}
        reports = 0  # accepted so far; bounded by the budget in notes
        while True:
            before = await get(api, pid)
            response = await api.post(
                f"/parcels/{pid}/actions/monitoring_result",
                json=body,
                headers=auth("responsible_party"),
            )
            if response.status_code != 200:
                break
            reports += 1
            if reports * len(NOTE.encode()) > BUDGET:
                raise AssertionError(f"{reports} reports, none refused: the budget never held")
        sizes = await run_sizes(temporal.client, pid)
        print(f"\nrefused after {reports} reports: {sum(sizes):,} bytes in runs {sizes}")
        yield Refused(api, pid, reports, response, before, sizes)


async def test_the_action_that_would_pass_the_parcels_budget_is_refused(refused: Refused, temporal):
    answer = refused.response.json()
    assert (refused.response.status_code, answer["error"]) == (413, "HistoryBudget"), answer
    assert f"{BUDGET} bytes (policy history.max_parcel_bytes)" in answer["detail"]
    assert refused.pid in answer["detail"]
    assert refused.reports >= 1 and len(refused.run_sizes) >= 2, "counted over several runs"
    # Nothing of the refused report was applied: the history accepted only the others.
    history = await fetch_history(temporal.client, refused.pid)
    accepted = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert accepted.count("monitoring_result") == refused.reports
    after = await get(refused.api, refused.pid)
    assert after["actions"] == refused.before["actions"]
    assert [a["action"] for a in after["actions"]].count("monitoring_result") == refused.reports
    assert after["status"] == "running"
    assert "monitoring_result" in {a["action"] for a in after["next_actions"]}


async def test_a_parcels_history_stays_within_its_budget_over_all_runs(refused: Refused):
    used, size = sum(refused.run_sizes), len(refused.response.request.content)
    assert used <= BUDGET, f"{used:,} bytes of history in runs {refused.run_sizes}"
    assert used + size > BUDGET * 0.9, "refused far before the budget"
