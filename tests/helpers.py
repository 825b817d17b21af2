"""Builders shared by the tests: tokens per role and party, parcel facts, action shortcuts."""

from __future__ import annotations

import copy
import io
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

DISTRICT = "朝阳区"
OTHER_DISTRICT = "海淀区"
DESTINATION = "大兴区"

# Parties (统一社会信用代码-like ids; tests need not be 18 characters).
POLLUTER = {"id": "91110105POLLUTER01", "name": "北京焦化厂"}
LAND_USER = {"id": "91110105LANDUSER01", "name": "北京焦化厂有限公司"}
OTHER_COMPANY = {"id": "91110105OTHERCO001", "name": "另一家公司"}
CONTRACTOR = {"id": "91110105CONTRACT01", "name": "某修复工程公司"}
NEW_CONTRACTOR = {"id": "91110105CONTRACT02", "name": "另一修复工程公司"}
EVALUATOR = {"id": "91110105EVALUATE01", "name": "某评估公司"}

# token -> entry; district roles in two districts; party roles for two companies
TOKENS: dict[str, dict[str, Any]] = {
    "t-reserve": {"role": "reserve_agency", "subject": "北京市土地整理储备中心"},
    "t-gov": {"role": "district_government", "district": DISTRICT},
    "t-gov-other": {"role": "district_government", "district": OTHER_DISTRICT},
    "t-depb": {"role": "district_epb", "district": DISTRICT},
    "t-depb-other": {"role": "district_epb", "district": OTHER_DISTRICT},
    "t-depb-dest": {"role": "district_epb", "district": DESTINATION},
    "t-cityepb": {"role": "city_epb"},
    "t-planning": {"role": "planning_land"},
    "t-landuser": {"role": "land_user", "party": LAND_USER["id"], "party_name": LAND_USER["name"]},
    "t-landuser-other": {"role": "land_user", "party": OTHER_COMPANY["id"]},
    "t-responsible": {
        "role": "responsible_party",
        "party": POLLUTER["id"],
        "party_name": POLLUTER["name"],
    },
    "t-responsible-other": {"role": "responsible_party", "party": OTHER_COMPANY["id"]},
    "t-evaluator": {
        "role": "third_party_evaluator",
        "party": EVALUATOR["id"],
        "party_name": EVALUATOR["name"],
    },
    "t-evaluator-other": {"role": "third_party_evaluator", "party": OTHER_COMPANY["id"]},
    "t-auditor": {"role": "auditor"},
    "t-ops": {"role": "ops"},
    "t-public": {"role": "public"},
}
# (role, district or party) -> token; "own" parties by default
TOKEN_OF: dict[tuple[str, str | None], str] = {}
for _token, _entry in TOKENS.items():
    TOKEN_OF.setdefault((_entry["role"], _entry.get("district") or _entry.get("party")), _token)


def write_tokens(path: Path) -> Path:
    path.write_text(json.dumps(TOKENS, ensure_ascii=False), encoding="utf-8")
    return path


OWN = {
    "district_government": DISTRICT,
    "district_epb": DISTRICT,
    "land_user": LAND_USER["id"],
    "responsible_party": POLLUTER["id"],
    "third_party_evaluator": EVALUATOR["id"],
}


def auth(role: str, scope: str | None = None) -> dict[str, str]:
    """The token of `role` (for district and party roles: the parcel's own, or `scope`)."""
    return {"Authorization": f"Bearer {TOKEN_OF[(role, scope or OWN.get(role))]}"}


def facts(parcel_id: str, **overrides: Any) -> dict[str, Any]:
    """A closed coking plant whose right was recovered, planned residential (原北京焦化厂)."""
    base = {
        "parcel_id": parcel_id,
        "name": "原北京焦化厂",
        "district": DISTRICT,
        "area_m2": 1_400_000,
        "current_use": "industrial",
        "industry": "coking",
        "enterprise_closed": True,
        "right_status": "recovered",
        "planned_use": "residential",
        "polluter": {**POLLUTER, "status": "exists", "is_former_right_holder": False},
        "location": {"lat": 39.8865, "lon": 116.5214},
    }
    return {**copy.deepcopy(base), **overrides}


def held_facts(parcel_id: str, **overrides: Any) -> dict[str, Any]:
    """A chemical plant still held by its land user: the land user investigates (R2)."""
    return facts(
        parcel_id,
        enterprise_closed=False,
        right_status="to_be_recovered",
        industry="chemical",
        land_user=LAND_USER,
        polluter={**POLLUTER, "status": "exists"},
        **overrides,
    )


def clean_facts(parcel_id: str) -> dict[str, Any]:
    """Commercial land staying commercial: no rule asks for anything but release."""
    return facts(
        parcel_id,
        name="某商业地块",
        current_use="commercial",
        industry=None,
        enterprise_closed=False,
        right_status="held",
        planned_use="commercial",
        polluter=None,
        land_user=LAND_USER,
    )


CLEAN_SAMPLES = [{"item": "铅", "value_mg_kg": 50.0}, {"item": "7440-38-2", "value_mg_kg": 10.0}]
DIRTY_SAMPLES = [
    {"item": "Benzo[a]pyrene", "value_mg_kg": 8.5, "depth_m": 1.0},
    {"item": "铅", "value_mg_kg": 900.0},
]
SCREENING_SAMPLES = [
    {"item": "苯并[a]芘", "value_mg_kg": 1.0}
]  # over screening, under intervention
TARGETS = [{"item": "苯并[a]芘", "target_mg_kg": 0.55}, {"item": "铅", "target_mg_kg": 400}]
MET_RESULTS = [{"item": "苯并[a]芘", "value_mg_kg": 0.3}, {"item": "铅", "value_mg_kg": 200}]
OPINION = {
    "conclusion": "采样密度不足",
    "required_revisions": ["补充焦油池区域采样"],
    "panel": ["张工", "李工"],
    "date": "2027-01-15",
}
RETURNED = {"decision": "returned", "reasons": "采样点不足", "opinion": OPINION}
ACCEPTED = {"decision": "accepted"}
TRANSPORT = {
    "origin_district": DISTRICT,
    "destination_district": DESTINATION,
    "time": "2099-03-01T22:00:00+08:00",
    "mode": "road",
    "route": "五环-京开高速",
    "quantity_m3": 12000,
    "destination": "大兴区水泥窑",
    "disposal": "cement kiln co-processing",
}


def pdf(label: str) -> bytes:
    """A small, real PDF (one page with `label`), unique per label."""
    text = label.encode("latin-1", "replace")
    stream = b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


async def upload(
    api: httpx.AsyncClient,
    parcel_id: str,
    kind: str,
    role: str,
    scope: str | None = None,
    content: bytes | None = None,
    filename: str = "report.pdf",
    media_type: str = "application/pdf",
    expect: tuple[int, ...] = (200, 201),
) -> dict[str, Any]:
    body = content if content is not None else pdf(f"{kind} {parcel_id} {uuid.uuid4()}")
    response = await api.post(
        f"/parcels/{parcel_id}/documents",
        files={"file": (filename, body, media_type)},
        data={"kind": kind},
        headers=auth(role, scope),
    )
    assert response.status_code in expect, response.text
    return response.json()


async def cite(
    api: httpx.AsyncClient, parcel_id: str, kind: str, role: str, scope: str | None = None
) -> list[dict[str, str]]:
    document = await upload(api, parcel_id, kind, role, scope)
    return [{"document_id": document["document_id"], "kind": kind}]


async def act(
    api: httpx.AsyncClient,
    parcel_id: str,
    action: str,
    body: dict[str, Any],
    role: str,
    scope: str | None = None,
    expect: int = 200,
    **headers: str,
) -> dict[str, Any]:
    response = await api.post(
        f"/parcels/{parcel_id}/actions/{action}",
        json=body,
        headers={**auth(role, scope), **{k.replace("_", "-"): v for k, v in headers.items()}},
    )
    assert response.status_code == expect, response.text
    return response.json()


async def start(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/parcels", json=body, headers=auth("reserve_agency"))
    assert response.status_code == 201, response.text
    return response.json()


async def get(api: httpx.AsyncClient, parcel_id: str) -> dict[str, Any]:
    response = await api.get(f"/parcels/{parcel_id}", headers=auth("auditor"))
    assert response.status_code == 200, response.text
    return response.json()


class WebhookReceiver:
    """A real HTTP endpoint on loopback that records what the worker POSTs to it."""

    def __init__(self) -> None:
        received: list[tuple[str | None, dict[str, Any]]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append((self.headers.get("idempotency-key"), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/notices"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def notices(self, parcel_id: str) -> list[tuple[str | None, dict[str, Any]]]:
        return [(key, body) for key, body in self.received if body["parcel_id"] == parcel_id]
