"""The public API (`/lists/*`, `/public/*`, no token): the disclosure fields of DOMAIN.md,
may a parcel be supplied for a use now, and never personal data or an internal id."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx

from tests.e2e.api.test_lifecycle import _assess, _to_risk_assessment, report, to_risk_control
from tests.helpers import (
    ACCEPTED,
    CLEAN_SAMPLES,
    DIRTY_SAMPLES,
    EVALUATOR,
    LAND_USER,
    MET_RESULTS,
    POLLUTER,
    TARGETS,
    TOKENS,
    act,
    auth,
    clean_facts,
    facts,
    get,
    pdf,
    start,
)

PERSON = "赵晓红"  # an individual named in an uploaded document's title and file name
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PUBLIC_DOCUMENT_FIELDS = {"kind", "kind_name", "sha256", "size", "media_type", "date", "url"}


async def upload_titled(
    api: httpx.AsyncClient,
    pid: str,
    kind: str,
    role: str,
    *,
    content: bytes,
    filename: str,
    media_type: str = "application/pdf",
) -> dict[str, Any]:
    response = await api.post(
        f"/parcels/{pid}/documents",
        files={"file": (filename, content, media_type)},
        data={"kind": kind, "title": f"评估人 {PERSON}"},
        headers=auth(role),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def public_json(api: httpx.AsyncClient, pid: str) -> dict[str, Any]:
    """Every public answer about the parcel, by path (no token)."""
    paths = [f"/public/parcels/{pid}", f"/lists/negative/{pid}?use=R"]
    for name in ("suspected", "contaminated", "negative"):
        paths.append(f"/lists/{name}?q={pid}&include_left=true")
    found = {}
    for path in paths:
        response = await api.get(path)
        assert response.status_code == 200, (path, response.text)
        found[path] = response.json()
    return found


async def test_public_answers_carry_the_disclosure_and_no_personal_data(api, pid):
    """A listed, evaluated parcel: location, area, district, responsible party,
    investigation conclusion, pollutants over screening values, evaluation result and
    date; its public documents by SHA-256 under a neutral name; no uploader, title, file
    name, subject, party id or internal id anywhere."""
    await to_risk_control(api, pid)
    photo = await upload_titled(
        api,
        pid,
        "notice_board_photo",
        "district_government",
        content=PNG,
        filename=f"{PERSON}.png",
        media_type="image/png",
    )
    await act(api, pid, "monitoring_result", {"diffusion_found": False}, "responsible_party")
    await act(api, pid, "risk_control_completed", {}, "responsible_party")
    await act(api, pid, "commission_evaluator", {"party": EVALUATOR}, "responsible_party")
    body = pdf(f"effect evaluation {pid}")
    evaluation = await upload_titled(
        api,
        pid,
        "effect_evaluation_report",
        "third_party_evaluator",
        content=body,
        filename=f"{PERSON}的效果评估报告.pdf",
    )
    cited = [{"document_id": evaluation["document_id"], "kind": "effect_evaluation_report"}]
    await act(
        api,
        pid,
        "evaluation",
        {"met": True, "results": MET_RESULTS, "documents": cited},
        "third_party_evaluator",
    )
    internal = await get(api, pid)
    documents = (await api.get(f"/parcels/{pid}/documents", headers=auth("auditor"))).json()
    assert {d["title"] for d in documents["documents"]} >= {f"评估人 {PERSON}"}  # internally kept

    answers = await public_json(api, pid)
    text = json.dumps(answers, ensure_ascii=False)
    forbidden = [
        PERSON,
        "uploaded_by",
        "title",
        "filename",
        "document_id",
        "doc_",
        internal["run_id"],
        TOKENS["t-reserve"]["subject"],
        *(d["uploaded_by"] for d in documents["documents"]),
        *(p["id"] for p in (POLLUTER, LAND_USER, EVALUATOR)),
    ]
    leaked = [word for word in forbidden if word in text]
    assert leaked == [], leaked

    profile = answers[f"/public/parcels/{pid}"]
    assert (profile["district"], profile["area_m2"], profile["location"]) == (
        "朝阳区",
        1_400_000,
        {"lat": 39.8865, "lon": 116.5214},
    )
    assert profile["responsible_party"] == POLLUTER["name"]
    disclosure = profile["disclosure"]
    assert disclosure["investigation_conclusion"]
    assert set(disclosure["pollutants_over_screening"]) == {"苯并[a]芘", "铅"}
    assert disclosure["evaluation_result"] == "met" and disclosure["evaluation_date"]
    (entry,) = answers[f"/lists/contaminated?q={pid}&include_left=true"]["entries"]
    assert entry["responsible_party"] == POLLUTER["name"]
    assert entry["location"] == profile["location"] and entry["area_m2"] == 1_400_000
    assert entry["pollutants_over_screening"] == disclosure["pollutants_over_screening"]
    assert entry["evaluation_result"] == "met" and entry["evaluation_date"]

    # the public documents: only public kinds, addressed by SHA-256, named by their kind
    shown = {d["kind"]: d for d in profile["documents"]}
    assert set(shown) == {"notice_board_photo", "effect_evaluation_report"}
    assert all(set(d) == PUBLIC_DOCUMENT_FIELDS for d in shown.values())
    report_doc = shown["effect_evaluation_report"]
    assert report_doc["kind_name"] == "效果评估报告"
    assert report_doc["sha256"] == hashlib.sha256(body).hexdigest()
    assert report_doc["url"] == f"/public/parcels/{pid}/documents/{report_doc['sha256']}"
    for kind, content, name in (
        ("effect_evaluation_report", body, "effect_evaluation_report.pdf"),
        ("notice_board_photo", PNG, "notice_board_photo.png"),
    ):
        download = await api.get(shown[kind]["url"])  # no token
        assert download.status_code == 200, download.text
        assert download.content == content
        disposition = download.headers["content-disposition"]
        assert f'filename="{name}"' in disposition and PERSON not in disposition
    assert shown["notice_board_photo"]["sha256"] == photo["sha256"]
    # a kind the policy does not make public is not there, by digest or by id
    investigation = next(a for a in internal["actions"] if a["action"] == "investigation_report")
    hidden = investigation["documents"][0]
    for key in (hidden["sha256"], hidden["document_id"]):
        assert (await api.get(f"/public/parcels/{pid}/documents/{key}")).status_code == 404


async def test_list_cursors_carry_no_run_id(api, pid):
    """A page's cursor is opaque, but anyone can decode it: it names the last entry's
    entry time and parcel id, never the registration's run id."""
    runs = []
    for suffix in ("A", "B"):
        code = f"{pid}{suffix}"
        runs.append((await start(api, facts(code)))["run_id"])
        await act(api, code, "closure_screening", {"result": "suspected"}, "district_epb")
    page = (await api.get("/lists/suspected", params={"q": pid, "limit": 1})).json()
    assert page["total"] == 2 and page["next_cursor"]
    cursor = page["next_cursor"]
    decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert decoded[1] == page["entries"][0]["parcel_id"]
    assert not any(run in json.dumps(decoded) for run in runs)
    rest = (
        await api.get("/lists/suspected", params={"q": pid, "limit": 1, "cursor": cursor})
    ).json()
    assert [e["parcel_id"] for e in page["entries"] + rest["entries"]] == [f"{pid}A", f"{pid}B"]


async def supply(api: httpx.AsyncClient, pid: str, use: str) -> tuple[bool, str]:
    response = await api.get(f"/lists/negative/{pid}", params={"use": use})  # no token
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["reason"] and set(answer) == {"parcel_id", "use", "allowed", "reason", "citation"}
    return answer["allowed"], answer["citation"]


async def test_district_government_named_by_r4_is_the_public_responsible_party(api, pid):
    """R4.1 (Law 68): the government recovered the right from the polluter, so the
    district government is responsible; the public sees it named, never null. The listed
    parcel may not be supplied for housing (Law 61 ¶2) nor built on (Law 66 ¶3)."""
    polluter = {**POLLUTER, "status": "exists", "is_former_right_holder": True}
    await _to_risk_assessment(api, pid, DIRTY_SAMPLES, polluter=polluter)
    r4 = next(d for d in (await get(api, pid))["decisions"] if d["rule"] == "R4")
    assert r4["outcome"] == "district_government"
    await _assess(
        api,
        pid,
        "district_government",
        acceptable=False,
        targets=TARGETS,
        recommendation="remediation",
    )
    profile = (await api.get(f"/public/parcels/{pid}")).json()
    assert profile["listed"] and profile["responsible_party"] == "朝阳区人民政府"
    listed = (await api.get("/lists/contaminated", params={"q": pid})).json()["entries"]
    assert [e["responsible_party"] for e in listed] == ["朝阳区人民政府"]
    assert await supply(api, pid, "R") == (False, "Law 61 ¶2")
    assert await supply(api, pid, "residential") == (False, "Law 61 ¶2")
    assert await supply(api, pid, "M") == (False, "Law 66 ¶3")


async def test_supply_check_of_a_running_and_of_released_parcels(api, pid):
    running = f"{pid}R"
    await start(api, facts(running))  # at the closure screening, never listed
    assert await supply(api, running, "R") == (False, "BJ 15, 20")
    assert await supply(api, running, "M") == (False, "BJ 15, 20")
    # released for residential use after a clean investigation: any use
    await start(api, facts(pid, enterprise_closed=False, industry="other"))
    await report(api, pid, CLEAN_SAMPLES)
    await act(api, pid, "filing_review", ACCEPTED, "city_epb")
    await act(api, pid, "filing_review", ACCEPTED, "planning_land")
    await act(api, pid, "release", {}, "planning_land")
    assert await supply(api, pid, "R") == (True, "Law 66; BJ 15, 20")
    assert await supply(api, pid, "M") == (True, "Law 66; BJ 15, 20")
    # released for commercial use without an investigation: housing needs one first
    commercial = f"{pid}C"
    await start(api, clean_facts(commercial))
    await act(api, commercial, "release", {}, "planning_land")
    assert await supply(api, commercial, "B") == (True, "Law 66; BJ 15, 20")
    assert await supply(api, commercial, "R") == (False, "Law 59 ¶2; GB 36600 4.1")
    # an unknown use, an unknown parcel
    unknown_use = await api.get(f"/lists/negative/{pid}", params={"use": "castle"})
    assert unknown_use.status_code == 422 and unknown_use.json()["fields"][0]["field"] == "use"
    assert (await api.get(f"/lists/negative/{pid}X", params={"use": "R"})).status_code == 404
