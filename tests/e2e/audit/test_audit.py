"""Auditors: export a parcel's history (open or closed), replay it offline to a verdict,
and read the trail of every review, who gave it and on which clause."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ACCEPTED, RETURNED, act, auth, cite, clean_facts, facts, start

AUDITOR = auth("auditor")


def audit_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "audit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,  # the command must end by itself: a hang fails the test
    )


async def _export(api, pid: str, tmp_path: Path) -> Path:
    response = await api.get(f"/parcels/{pid}/history", headers=AUDITOR)
    assert response.status_code == 200
    assert response.headers["x-history-sha256"] == hashlib.sha256(response.content).hexdigest()
    path = tmp_path / f"{pid}.json"
    path.write_bytes(response.content)
    return path


async def test_an_open_parcel_exported_replays_offline_with_a_verdict(api, pid, tmp_path):
    await start(api, facts(pid))
    await act(api, pid, "closure_screening", {"result": "suspected"}, "district_epb")
    exported = await _export(api, pid, tmp_path)  # waiting on the investigation: open
    done = audit_cli("replay", "--file", str(exported), "--workflow-id", f"parcel-{pid}")
    assert done.returncode == 0, done.stderr
    assert "replays deterministically" in done.stdout
    trail = audit_cli("trail", "--file", str(exported), "--json")
    assert trail.returncode == 0, trail.stderr
    assert json.loads(trail.stdout)["status"] == "running"


async def test_a_tampered_history_does_not_replay(api, pid, tmp_path):
    await start(api, clean_facts(pid))
    await act(api, pid, "release", {}, "planning_land")
    exported = await _export(api, pid, tmp_path)
    history = json.loads(exported.read_text())
    scheduled = [
        e for e in history["events"] if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ]
    scheduled[0]["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "something.else"
    exported.write_text(json.dumps(history))
    done = audit_cli("replay", "--file", str(exported))
    assert done.returncode == 1 and "does NOT replay" in done.stderr
    verdict = (
        await api.post(
            f"/parcels/{pid}/replay",
            content=exported.read_bytes(),
            headers={**AUDITOR, "Content-Type": "application/json"},
        )
    ).json()
    assert verdict["deterministic"] is False and verdict["event_id"]


@pytest.mark.parametrize("garbage", [b"{}", b'{"events": []}', b"[" * 5000 + b"]" * 5000])
async def test_replay_of_garbage_is_a_clear_422(api, pid, garbage):
    await start(api, clean_facts(pid))
    response = await api.post(
        f"/parcels/{pid}/replay",
        content=garbage,
        headers={**AUDITOR, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "InvalidBody"


async def test_the_trail_names_every_review_its_opinion_who_gave_it_and_the_clause(api, pid):
    await start(api, facts(pid, enterprise_closed=False, industry="other"))
    documents = await cite(api, pid, "investigation_report", "reserve_agency")
    report = {
        "samples": [{"item": "铅", "value_mg_kg": 50}],
        "extent_m2": 1,
        "degree": "x",
        "documents": documents,
    }
    await act(api, pid, "investigation_report", report, "reserve_agency")
    await act(api, pid, "filing_review", RETURNED, "city_epb")
    await act(
        api,
        pid,
        "investigation_report",
        {**report, "documents": await cite(api, pid, "investigation_report", "reserve_agency")},
        "reserve_agency",
    )
    await act(api, pid, "filing_review", ACCEPTED, "planning_land")
    await act(api, pid, "filing_review", ACCEPTED, "city_epb")
    await act(api, pid, "release", {}, "planning_land")
    trail = (await api.get(f"/parcels/{pid}/trail", headers=AUDITOR)).json()
    reviews = [a for a in trail["actions"] if a["action"] == "filing_review"]
    assert [(a["role"], a["payload"]["decision"]) for a in reviews] == [
        ("city_epb", "returned"),
        ("planning_land", "accepted"),
        ("city_epb", "accepted"),
    ]
    assert reviews[0]["payload"]["opinion"]["panel"] == ["张工", "李工"]
    assert all(a["signed"] for a in trail["actions"])
    reports = [a for a in trail["actions"] if a["action"] == "investigation_report"]
    assert all(a["documents"][0]["sha256"] and a["samples"]["count"] == 1 for a in reports)
    r5 = [d for d in trail["decisions"] if d["rule"] == "R5"]
    assert len(r5) == 2 and r5[0]["citation"].startswith("GB 36600")
    html = await api.get(f"/parcels/{pid}/trail", headers={**AUDITOR, "Accept": "text/html"})
    assert html.status_code == 200 and "filing_review" in html.text and "GB 36600" in html.text


async def test_only_auditors_read_the_record(api, pid):
    await start(api, clean_facts(pid))
    for role in ("public", "city_epb", "reserve_agency"):
        assert (await api.get(f"/parcels/{pid}/trail", headers=auth(role))).status_code == 403
    assert (await api.get(f"/parcels/{pid}/history", headers=auth("ops"))).status_code == 200
