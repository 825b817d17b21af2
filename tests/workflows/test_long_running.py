"""A parcel under risk control for ten years stays far under Temporal's history limits.

Ten yearly monitoring cycles pass in seconds on the time-skipping test server: each year
the reminder fires, the district reports its monitoring result; some years find
diffusion and the land user isolates; one year the report comes late and escalates.
The figures per cycle extrapolate the history to 50 years, one run, no continue-as-new.
"""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import pairwise

from sqlmodel import Session
from temporalio.client import WorkflowHandle

from landflow import registry
from landflow.temporal import workflow_id
from tests.conftest import api_client
from tests.helpers import REPORT, act, facts, start

WARN_EVENTS = 10_240  # Temporal warns here; the hard limit is 51,200 events or 50 MB
WARN_BYTES = 10 * 1024 * 1024  # and warns at 10 MB of history
YEARS = 10
DIFFUSION_YEARS = {2, 5, 8}  # the land user must isolate (BJ 19)
LATE_YEAR = 6  # the monitoring report misses its deadline and escalates


async def history_size(handle: WorkflowHandle) -> tuple[int, int]:
    """(events, bytes) of the workflow's history so far."""
    history = await handle.fetch_history()
    return len(history.events), sum(e.ByteSize() for e in history.events)


async def test_ten_years_of_monitoring_stay_far_under_the_history_limits(skipping, pid):
    env, settings = skipping
    gov = "district_government"
    async with api_client(settings, env.client) as api:
        await start(api, facts(pid))
        await act(api, pid, "closure_screening", {"result": "suspected"}, "district_epb")
        await act(api, pid, "investigation_report", REPORT, "reserve_agency")
        await act(api, pid, "filing_review", {"decision": "accepted"}, "city_epb")
        await act(api, pid, "filing_review", {"decision": "accepted"}, "planning_land")
        await act(api, pid, "choose_path", {"path": "risk_control"}, gov)
        control = {"control_zone": "焦炉区", "signs_posted": True, "notice_published": True}
        parcel = await act(api, pid, "control_measures", control, gov)
        assert (parcel["stage"], parcel["waiting_on"]) == ("risk_control", gov)

        handle = env.client.get_workflow_handle(workflow_id(pid))
        sizes = [await history_size(handle)]
        for year in range(1, YEARS + 1):
            # monitoring is due a year after the last result; the reminder goes 30 days before
            await env.sleep(timedelta(days=370 if year == LATE_YEAR else 340))
            diffusion = year in DIFFUSION_YEARS
            result = {"diffusion_found": diffusion, "sampled_on": f"year {year}"}
            parcel = await act(api, pid, "monitoring_result", result, gov)
            if diffusion:
                assert parcel["waiting_on"] == "land_user"
                await env.sleep(timedelta(days=10))
                parcel = await act(
                    api, pid, "isolation_measures", {"measures": "隔离墙"}, "land_user"
                )
            assert (parcel["stage"], parcel["waiting_on"], parcel["overdue"]) == (
                "risk_control",
                gov,
                False,
            )
            sizes.append(await history_size(handle))

    # every cycle left its trail in the one run: 10 results, 3 isolations, 10+ reminders
    with Session(registry.make_engine(settings.database_url)) as session:
        kinds = [n.kind for n in registry.notices_for(session, parcel_id=pid)]
    assert kinds.count("reminder") >= YEARS and kinds.count("escalation") == 1
    actions = [a["action"] for a in parcel["actions"]]
    assert actions.count("monitoring_result") == YEARS
    assert actions.count("isolation_measures") == len(DIFFUSION_YEARS)

    (start_events, _), (events, size) = sizes[0], sizes[-1]
    per_cycle = (events - start_events) / YEARS
    growth = [b - a for (_, a), (_, b) in pairwise(sizes)]
    # each update's result carries the whole parcel state, which grows by a cycle's
    # actions each year: bytes per cycle grow linearly, so extrapolate that trend
    bytes_trend = (growth[-1] - growth[0]) / (YEARS - 1)
    extra_years = range(YEARS + 1, 51)
    events_50 = events + per_cycle * len(extra_years)
    bytes_50 = size + sum(max(growth) + bytes_trend * (y - YEARS) for y in extra_years)
    figures = {
        "events_before_monitoring": start_events,
        "events_after_10_years": events,
        "events_per_cycle": per_cycle,
        "events_50_years": round(events_50),
        "bytes_after_10_years": size,
        "bytes_per_cycle_first_last": [growth[0], growth[-1]],
        "bytes_50_years": round(bytes_50),
    }
    print("long-running history:", json.dumps(figures))
    assert events < 2_000
    assert events_50 < WARN_EVENTS
    assert bytes_50 < WARN_BYTES
