"""A parcel's history grows linearly and stays bounded for decades (issue: system of record).

Large payloads (samples) are stored once and cited; replies are small; a parcel continues
as new long before Temporal's limits, and its audit export and replay cover every run.
"""

from __future__ import annotations

import httpx
from temporalio.client import Client

from tests.e2e.record.conftest import Stack
from tests.helpers import ACCEPTED, TARGETS, act, cite, facts, get, start
from workflows.history import fetch_history

TEN_MB = 10 * 2**20


def samples(n: int, offset: float = 0.0) -> list[dict]:
    items = ("苯并[a]芘", "铅", "砷", "镉", "汞")
    return [
        {
            "item": items[i % len(items)],
            "value_mg_kg": 0.1 + (i % 50) * 0.01 + offset,
            "depth_m": 0.5,
            "sample_id": f"S{i:04d}",
        }
        for i in range(n)
    ]


async def run_sizes(client: Client, pid: str) -> list[int]:
    history = await fetch_history(client, pid)
    return [sum(e.ByteSize() for e in run) for run in history.runs()]


async def test_twenty_reports_of_2000_samples_keep_a_small_history(api, temporal, pid):
    await start(api, facts(pid, enterprise_closed=False, industry="other"))
    returned = {
        "decision": "returned",
        "reasons": "补充",
        "opinion": {"conclusion": "补充采样", "date": "2027-01-01"},
    }
    for round_ in range(20):
        documents = await cite(api, pid, "investigation_report", "reserve_agency")
        body = {
            "samples": samples(2000, round_ * 0.001),
            "extent_m2": 1,
            "degree": "x",
            "documents": documents,
        }
        outcome = await act(api, pid, "investigation_report", body, "reserve_agency")
        assert outcome["step"] == "filing_review"
        await act(api, pid, "filing_review", returned, "city_epb")
    parcel = await get(api, pid)  # alive and answering
    assert parcel["stage"] == "investigation"
    sizes = await run_sizes(temporal.client, pid)
    print(f"20 reports x 2,000 samples: history {sum(sizes):,} bytes in {len(sizes)} run(s)")
    assert sum(sizes) < 2 * 2**20, "samples must be cited by digest, not copied into the history"
    decision = next(
        d
        for d in (
            await api.get(
                f"/parcels/{pid}/decisions", headers={"Authorization": "Bearer t-auditor"}
            )
        ).json()["decisions"]
        if d["rule"] == "R5"
    )
    assert decision["inputs"]["sample_count"] == 2000 and "samples" not in decision["inputs"]


async def _to_monitoring(api: httpx.AsyncClient, pid: str) -> None:
    await start(api, facts(pid, enterprise_closed=False, industry="other"))
    documents = await cite(api, pid, "investigation_report", "reserve_agency")
    report = {
        "samples": [{"item": "苯并[a]芘", "value_mg_kg": 8.5}],
        "extent_m2": 1,
        "degree": "x",
        "documents": documents,
    }
    await act(api, pid, "investigation_report", report, "reserve_agency")
    await act(api, pid, "filing_review", ACCEPTED, "city_epb")
    await act(api, pid, "filing_review", ACCEPTED, "planning_land")
    documents = await cite(api, pid, "risk_assessment_report", "responsible_party")
    assessment = {
        "acceptable": False,
        "targets": TARGETS,
        "recommendation": "risk_control",
        "documents": documents,
    }
    await act(api, pid, "risk_assessment_report", assessment, "responsible_party")
    await act(api, pid, "risk_assessment_review", ACCEPTED, "city_epb")
    await act(api, pid, "risk_assessment_review", ACCEPTED, "planning_land")
    await act(api, pid, "choose_path", {"path": "risk_control"}, "district_government")
    measures = {"control_zone": "东区", "signs_posted": True, "notice_published": True}
    await act(api, pid, "control_measures", measures, "district_government")


async def test_300_long_monitoring_reports_continue_as_new_and_stay_bounded(api, temporal, pid):
    await _to_monitoring(api, pid)
    note = "监" * 10_000  # 10,000 characters, 30,000 bytes
    for _ in range(300):
        outcome = await act(
            api,
            pid,
            "monitoring_result",
            {"diffusion_found": False, "notes": note},
            "responsible_party",
        )
        assert outcome["step"] == "monitoring"
    parcel = await get(api, pid)
    sizes = await run_sizes(temporal.client, pid)
    print(f"300 monitoring reports of 10,000 characters: runs {[f'{s:,}' for s in sizes]} bytes")
    assert parcel["runs"] == len(sizes) >= 2
    assert max(sizes) < TEN_MB / 2, "each run stays far under Temporal's 10 MB warning"
    assert len(parcel["actions"]) == 8 + 300
    # the audit tools read every run: the export, the trail and the replay
    auditor = {"Authorization": "Bearer t-auditor"}
    trail = (await api.get(f"/parcels/{pid}/trail", headers=auditor)).json()
    assert len(trail["runs"]) == len(sizes)
    assert sum(a["action"] == "monitoring_result" for a in trail["actions"]) == 300
    verdict = (await api.post(f"/parcels/{pid}/replay", headers=auditor)).json()
    assert verdict == {"deterministic": True}


async def test_continuing_as_new_after_every_action_changes_nothing(stack: Stack, temporal, pid):
    """A parcel that continues as new at every wait ends exactly like one that never does."""
    from tests.e2e.api.test_lifecycle import test_full_remediation_chain_with_loops

    async with stack(history={"continue_as_new_after_events": 1}) as api:
        await test_full_remediation_chain_with_loops(api, pid, _settings_of(api))
        parcel = await get(api, pid)
        assert parcel["runs"] > 20
        auditor = {"Authorization": "Bearer t-auditor"}
        assert (await api.post(f"/parcels/{pid}/replay", headers=auditor)).json() == {
            "deterministic": True
        }


def _settings_of(api: httpx.AsyncClient):  # the app behind the ASGI transport
    return api._transport.app.state.settings  # type: ignore[attr-defined]
