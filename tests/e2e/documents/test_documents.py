"""Documents: every report is a file the bureaus review, the history proves which one, and
lab results come in as the lab sends them (XLSX or CSV)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from tests.e2e.api.test_lifecycle import to_risk_control
from tests.helpers import (
    EVALUATOR,
    OTHER_DISTRICT,
    act,
    auth,
    cite,
    facts,
    get,
    held_facts,
    pdf,
    start,
    upload,
)

REPORT = {"extent_m2": 1, "degree": "x"}


async def _investigating(api, pid: str) -> None:
    await start(api, facts(pid, enterprise_closed=False, industry="other"))


def _stored(settings) -> list[str]:
    return sorted(str(p) for p in Path(settings.documents_dir).rglob("*") if p.is_file())


async def _listed(api, pid: str) -> list[dict]:
    response = await api.get(f"/parcels/{pid}/documents", headers=auth("auditor"))
    assert response.status_code == 200, response.text
    return response.json()["documents"]


async def _history_length(temporal, pid: str) -> int:
    return len((await temporal.client.get_workflow_handle(f"parcel-{pid}").fetch_history()).events)


async def test_upload_dedupe_cite_download_with_etag_and_ranges(api, temporal, pid):
    await _investigating(api, pid)
    body = pdf(f"investigation report {pid}")
    first = await upload(
        api,
        pid,
        "investigation_report",
        "reserve_agency",
        content=body,
        filename="../../调查报告.pdf",
    )
    assert first["sha256"] == hashlib.sha256(body).hexdigest()
    assert first["filename"] == "调查报告.pdf" and first["media_type"] == "application/pdf"
    again = await upload(api, pid, "investigation_report", "reserve_agency", content=body)
    assert again["document_id"] == first["document_id"]  # the same bytes are one document
    cited = [{"document_id": first["document_id"], "kind": "investigation_report"}]
    samples = [{"item": "铅", "value_mg_kg": 50}]
    await act(
        api,
        pid,
        "investigation_report",
        {**REPORT, "samples": samples, "documents": cited},
        "reserve_agency",
    )
    parcel = await get(api, pid)
    recorded = next(a for a in parcel["actions"] if a["action"] == "investigation_report")
    assert recorded["documents"] == [{**cited[0], "sha256": first["sha256"]}]
    url = f"/parcels/{pid}/documents/{first['document_id']}"
    download = await api.get(url, headers=auth("city_epb"))
    assert download.status_code == 200 and download.content == body
    assert download.headers["etag"] == f'"{first["sha256"]}"'
    assert "filename*=UTF-8''" in download.headers["content-disposition"]
    cached = await api.get(
        url, headers={**auth("city_epb"), "If-None-Match": download.headers["etag"]}
    )
    assert cached.status_code == 304
    part = await api.get(url, headers={**auth("city_epb"), "Range": "bytes=0-7"})
    assert (part.status_code, part.content, part.headers["content-range"]) == (
        206,
        body[:8],
        f"bytes 0-7/{len(body)}",
    )
    assert (
        await api.get(url, headers={**auth("city_epb"), "Range": "bytes=99999-"})
    ).status_code == 416
    listed = (await api.get(f"/parcels/{pid}/documents", headers=auth("auditor"))).json()[
        "documents"
    ]
    assert [d["document_id"] for d in listed] == [first["document_id"]]
    # the public reads only public kinds, other companies nothing
    assert (await api.get(url)).status_code == 401
    assert (
        await api.get(f"/public/parcels/{pid}/documents/{first['document_id']}")
    ).status_code == 404
    assert (await api.get(url, headers=auth("land_user", "91110105OTHERCO001"))).status_code == 403
    trail = (await api.get(f"/parcels/{pid}/trail", headers=auth("auditor"))).json()
    assert any(d["sha256"] == first["sha256"] for a in trail["actions"] for d in a["documents"])


@pytest.mark.parametrize(
    ("content", "filename", "media_type", "status", "error"),
    [
        (b"", "empty.pdf", "application/pdf", 422, "InvalidBody"),
        (
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
            "report.pdf",
            "application/pdf",
            415,
            "UnsupportedMediaType",
        ),
        (
            b"MZ\x90\x00 an executable",
            "tool.exe",
            "application/octet-stream",
            415,
            "UnsupportedMediaType",
        ),
    ],
    ids=["empty", "png named pdf", "not a document type"],
)
async def test_refused_uploads_leave_nothing(
    api, pid, settings, content, filename, media_type, status, error
):
    await _investigating(api, pid)
    before = sorted(p.name for p in Path(settings.documents_dir).rglob("*") if p.is_file())
    refused = await upload(
        api,
        pid,
        "investigation_report",
        "reserve_agency",
        content=content,
        filename=filename,
        media_type=media_type,
        expect=(status,),
    )
    assert refused["error"] == error
    after = sorted(p.name for p in Path(settings.documents_dir).rglob("*") if p.is_file())
    assert after == before
    listed = (await api.get(f"/parcels/{pid}/documents", headers=auth("auditor"))).json()[
        "documents"
    ]
    assert listed == []


async def test_a_file_over_the_size_limit_is_413_and_leaves_nothing(api, pid, settings):
    await _investigating(api, pid)
    limit = settings.max_document_bytes
    big = pdf("big") + b"0" * (limit + 1)
    before = _stored(settings)
    refused = await upload(
        api, pid, "investigation_report", "reserve_agency", content=big, expect=(413,)
    )
    assert refused["error"] == "TooLarge"
    assert _stored(settings) == before  # no blob, no temporary file, no metadata
    assert await _listed(api, pid) == []  # no row
    digest = hashlib.sha256(big).hexdigest()
    assert not (Path(settings.documents_dir) / "sha256" / digest[:2] / digest[2:]).exists()


async def test_the_same_bytes_under_another_kind_are_a_conflict(api, pid, settings):
    """The same bytes with the same kind stay one document (200, the same id); with
    another kind they are refused (409) naming the kind and id they already have, so no
    upload can make another's bytes public by choosing a public kind."""
    await _investigating(api, pid)
    body = pdf(f"report {pid}")
    first = await upload(api, pid, "investigation_report", "reserve_agency", content=body)
    again = await upload(
        api, pid, "investigation_report", "reserve_agency", content=body, expect=(200,)
    )
    assert again["document_id"] == first["document_id"] and again["kind"] == "investigation_report"
    stored = _stored(settings)
    refused = await upload(
        api, pid, "effect_evaluation_report", "reserve_agency", content=body, expect=(409,)
    )
    assert refused["error"] == "DocumentKindConflict", refused
    assert first["document_id"] in refused["detail"] and "investigation_report" in refused["detail"]
    (field,) = refused["fields"]
    assert (field["field"], field["kind"], field["document_id"]) == (
        "kind",
        "investigation_report",
        first["document_id"],
    )
    assert _stored(settings) == stored
    assert [(d["document_id"], d["kind"]) for d in await _listed(api, pid)] == [
        (first["document_id"], "investigation_report")
    ]
    public = await api.get(f"/public/parcels/{pid}/documents/{first['sha256']}")
    assert public.status_code == 404  # still not a public kind
    # citing it under its own kind still works
    cited = [{"document_id": first["document_id"], "kind": "investigation_report"}]
    body_ = {**REPORT, "samples": [{"item": "铅", "value_mg_kg": 5}], "documents": cited}
    await act(api, pid, "investigation_report", body_, "reserve_agency")


async def test_only_a_caller_who_acts_or_has_acted_may_upload(api, pid, settings):
    await start(api, facts(pid))  # the district EPB screens first
    before = _stored(settings)
    for role, scope in (
        ("district_epb", OTHER_DISTRICT),  # another district's bureau
        ("land_user", "91110105OTHERCO001"),  # a company bound to nothing here
        ("city_epb", None),  # a bureau with no step open and none answered
    ):
        refused = await upload(api, pid, "other", role, scope, expect=(403,))
        assert refused["error"] == "WrongParty", (role, refused)
    assert _stored(settings) == before and await _listed(api, pid) == []
    await upload(api, pid, "other", "district_epb", expect=(201,))  # owes the screening now
    await act(api, pid, "closure_screening", {"result": "suspected"}, "district_epb")
    await upload(api, pid, "other", "district_epb", expect=(201,))  # has acted on it
    await upload(api, pid, "other", "district_epb", OTHER_DISTRICT, expect=(403,))


async def test_the_parcels_own_party_reads_its_documents_another_district_does_not(api, pid):
    await start(api, held_facts(pid))  # the land user holds the right and investigates (R2)
    document = await upload(api, pid, "investigation_report", "land_user")
    url = f"/parcels/{pid}/documents"
    download = f"{url}/{document['document_id']}"
    for path in (url, download):
        for role, scope in (("land_user", None), ("district_epb", None), ("city_epb", None)):
            answer = await api.get(path, headers=auth(role, scope))
            assert answer.status_code == 200, (path, role, answer.text)
        for role, scope in (
            ("district_epb", OTHER_DISTRICT),
            ("district_government", OTHER_DISTRICT),
            ("land_user", "91110105OTHERCO001"),
            ("responsible_party", None),  # the polluter is not bound before R4
        ):
            answer = await api.get(path, headers=auth(role, scope))
            assert answer.status_code == 403, (path, role, scope, answer.text)
            assert answer.json()["error"] == "WrongParty"


async def test_citations_must_be_of_this_parcel_of_the_right_kind_and_required(api, temporal, pid):
    await _investigating(api, pid)
    other = f"{pid}x"
    await _investigating(api, other)
    foreign = await cite(api, other, "investigation_report", "reserve_agency")
    photo = await cite(api, pid, "other", "reserve_agency")
    samples = [{"item": "铅", "value_mg_kg": 50}]
    before = await _history_length(temporal, pid)
    for documents, field, reason in (
        (foreign, "documents[0].document_id", "a document of another parcel"),
        (
            [{"document_id": "doc_" + "0" * 24, "kind": "investigation_report"}],
            "documents[0].document_id",
            "no such document",
        ),
        ([{**photo[0], "kind": "investigation_report"}], "documents[0].kind", "uploaded as other"),
        (photo, "documents", "investigation_report"),
    ):
        refused = await act(
            api,
            pid,
            "investigation_report",
            {**REPORT, "samples": samples, "documents": documents},
            "reserve_agency",
            expect=422,
        )
        assert any(f["field"] == field and reason in f["reason"] for f in refused["fields"]), (
            refused
        )
    assert await _history_length(temporal, pid) == before


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _lab_rows(n: int) -> list[list[object]]:
    names = ("苯并(a)芘", "苯并［a］芘", "六价铬", "Cr(VI)", "铅", "Chromium VI")
    rows: list[list[object]] = [["sample_id", "depth_m", "item", "value", "unit"]]
    for i in range(n):
        rows.append([f"S{i:04d}", 0.5, names[i % len(names)], 0.01 + i % 7 * 0.001, "mg/kg"])
    return rows


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
async def test_lab_results_of_500_rows_with_three_bad_rows_name_the_three(api, pid, kind):
    await _investigating(api, pid)
    rows = _lab_rows(500)
    rows[10][2] = "苯并a]芘"  # spreadsheet row 11 (the header is row 1): unknown item
    rows[200][4] = "ppm"  # row 201: unknown unit
    rows[400][3] = -1  # row 401: negative value
    if kind == "xlsx":
        data, name, media = (
            _xlsx(rows),
            "lab.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        data, name, media = (
            "\n".join(",".join(map(str, r)) for r in rows).encode(),
            "lab.csv",
            "text/csv",
        )
    refused = await upload(
        api,
        pid,
        "lab_results",
        "reserve_agency",
        content=data,
        filename=name,
        media_type=media,
        expect=(422,),
    )
    assert sorted({f["row"] for f in refused["fields"]}) == [11, 201, 401], refused
    assert {f["column"] for f in refused["fields"]} == {"item", "unit", "value"}


async def test_lab_results_cited_by_the_report_are_parsed_into_samples(api, pid):
    await _investigating(api, pid)
    rows = _lab_rows(60)
    lab = await upload(
        api,
        pid,
        "lab_results",
        "reserve_agency",
        content=_xlsx(rows),
        filename="lab.xlsx",
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    documents = [
        *await cite(api, pid, "investigation_report", "reserve_agency"),
        {"document_id": lab["document_id"], "kind": "lab_results"},
    ]
    outcome = await act(
        api, pid, "investigation_report", {**REPORT, "documents": documents}, "reserve_agency"
    )
    assert outcome["step"] == "filing_review"
    parcel = await get(api, pid)
    report = next(a for a in parcel["actions"] if a["action"] == "investigation_report")
    assert report["samples"]["count"] == 60 and report["samples"]["source"] == lab["document_id"]
    r5 = next(
        d
        for d in (await api.get(f"/parcels/{pid}/decisions", headers=auth("auditor"))).json()[
            "decisions"
        ]
        if d["rule"] == "R5"
    )
    assert r5["inputs"]["sample_count"] == 60


async def test_audit_verify_names_a_tampered_document(api, temporal, pid, settings):
    await _investigating(api, pid)
    documents = await cite(api, pid, "investigation_report", "reserve_agency")
    await act(
        api,
        pid,
        "investigation_report",
        {**REPORT, "samples": [{"item": "铅", "value_mg_kg": 5}], "documents": documents},
        "reserve_agency",
    )
    env = {
        "LANDFLOW_TEMPORAL_ADDRESS": temporal.client.service_client.config.target_host,
        "LANDFLOW_DOCUMENTS_DIR": str(settings.documents_dir),
        "PATH": str(Path(sys.executable).parent),
    }
    ok = subprocess.run(
        [sys.executable, "-m", "service.cli", "audit", "verify", "--parcel", pid],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 missing or changed" in ok.stdout
    sha = (await get(api, pid))["actions"][-1]["documents"][0]["sha256"]
    blob = Path(settings.documents_dir) / "sha256" / sha[:2] / sha[2:]
    blob.chmod(0o644)
    blob.write_bytes(pdf("a different report"))
    tampered = subprocess.run(
        [sys.executable, "-m", "service.cli", "audit", "verify", "--parcel", pid],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tampered.returncode == 1
    assert sha in tampered.stdout and "changed" in tampered.stdout


async def test_lab_results_cited_by_monitoring_and_by_the_evaluation(api, pid):
    """A monitoring report's samples come from its spreadsheet; an evaluation's figures
    are the highest value of each item in the evaluator's spreadsheet (R8 against the
    targets: 苯并[a]芘 0.55, 铅 400)."""
    await to_risk_control(api, pid)
    monitoring = await upload(
        api,
        pid,
        "lab_results",
        "responsible_party",
        content=_xlsx(_lab_rows(30)),
        filename="monitoring.xlsx",
        media_type=XLSX,
    )
    cited = [{"document_id": monitoring["document_id"], "kind": "lab_results"}]
    await act(
        api,
        pid,
        "monitoring_result",
        {"diffusion_found": False, "documents": cited},
        "responsible_party",
    )
    recorded = next(
        a for a in (await get(api, pid))["actions"] if a["action"] == "monitoring_result"
    )
    assert recorded["samples"]["count"] == 30
    assert recorded["samples"]["source"] == monitoring["document_id"]
    await act(api, pid, "risk_control_completed", {}, "responsible_party")
    await act(api, pid, "commission_evaluator", {"party": EVALUATOR}, "responsible_party")
    rows: list[list[object]] = [
        ["样品编号", "采样深度", "检测项目", "检测值", "单位"],
        ["E1", 0.5, "苯并(a)芘", 0.2, "mg/kg"],
        ["E2", 1.0, "苯并［a］芘", 600, "μg/kg"],  # 0.6 mg/kg: the highest, over 0.55
        ["E3", 1.5, "Benzo[a]pyrene", 0.4, "mg/kg"],
        ["E4", 0.5, "铅", 350, "mg/kg"],
        ["E5", 1.0, "Pb", 0.1, "g/kg"],  # 100 mg/kg
    ]
    lab = await upload(
        api,
        pid,
        "lab_results",
        "third_party_evaluator",
        content=_xlsx(rows),
        filename="evaluation.xlsx",
        media_type=XLSX,
    )
    documents = [
        *await cite(api, pid, "effect_evaluation_report", "third_party_evaluator"),
        {"document_id": lab["document_id"], "kind": "lab_results"},
    ]
    outcome = await act(
        api, pid, "evaluation", {"met": True, "documents": documents}, "third_party_evaluator"
    )
    assert (outcome["stage"], outcome["step"]) == ("risk_control", "monitoring")  # not met
    parcel = await get(api, pid)
    evaluation = next(a for a in parcel["actions"] if a["action"] == "evaluation")
    assert evaluation["decisive"]["results"] == [
        {"item": "苯并[a]芘", "value_mg_kg": 0.6},
        {"item": "铅", "value_mg_kg": 350.0},
    ]
    assert evaluation["documents"][1]["document_id"] == lab["document_id"]
    r8 = [d for d in parcel["decisions"] if d["rule"] == "R8"][-1]
    assert r8["outcome"] == "not_met", r8
    decisions = (await api.get(f"/parcels/{pid}/decisions", headers=auth("auditor"))).json()
    r8 = next(d for d in reversed(decisions["decisions"]) if d["rule"] == "R8")
    # 苯并[a]芘 at its highest (0.6, not the first 0.2 or the last 0.4) fails its target;
    # 铅 at its highest (350, not the sum 450) meets it
    assert r8["inputs"]["failing_items"] == "苯并[a]芘"
    assert r8["details"]["failing"] == [
        {"item": "苯并[a]芘", "target_mg_kg": 0.55, "value_mg_kg": 0.6}
    ]
