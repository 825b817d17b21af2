"""The demo parcel `make run` starts: 原北京焦化厂, walked to its joint filing review with
real (small, generated) PDF reports at each step it has passed."""

from __future__ import annotations

from typing import Any

import httpx
from fpdf import FPDF

from landflow.vocabulary import Role

POLLUTER = {"id": "91110105DEMOPOLL01", "name": "北京焦化厂"}
LAND_USER = {"id": "91110105DEMOLAND01", "name": "北京焦化厂有限公司"}
EVALUATOR = {"id": "91110105DEMOEVAL01", "name": "北京某环境评估有限公司"}
# Party tokens `make run` writes (one company per party role, for the demo parcel).
PARTIES: dict[Role, list[dict[str, str]]] = {
    Role.land_user: [LAND_USER],
    Role.responsible_party: [POLLUTER],
    Role.third_party_evaluator: [EVALUATOR],
}
PARCEL: dict[str, Any] = {
    "parcel_id": "DEMO-JH-001",
    "name": "原北京焦化厂",
    "district": "朝阳区",
    "area_m2": 1_400_000,
    "current_use": "industrial",
    "industry": "coking",
    "enterprise_closed": True,
    "right_status": "recovered",
    "planned_use": "residential",
    "polluter": {**POLLUTER, "status": "exists", "is_former_right_holder": False},
    "location": {"lat": 39.8865, "lon": 116.5214},
    "boundary": {
        "type": "Polygon",
        "coordinates": [
            [
                [116.512, 39.882],
                [116.531, 39.882],
                [116.531, 39.891],
                [116.512, 39.891],
                [116.512, 39.882],
            ]
        ],
    },
}
SAMPLES = [
    {"item": "苯并[a]芘", "value_mg_kg": 8.5, "depth_m": 1.0, "sample_id": "JH-S01"},
    {"item": "铅", "value_mg_kg": 900.0, "depth_m": 0.5, "sample_id": "JH-S02"},
    {"item": "砷", "value_mg_kg": 18.0, "depth_m": 2.0, "sample_id": "JH-S03"},
]


def pdf_report(title: str, lines: list[str]) -> bytes:
    """A one-page PDF (fpdf2; Latin text with the built-in fonts)."""
    document = FPDF()
    document.add_page()
    document.set_font("Helvetica", "B", 16)
    document.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
    document.set_font("Helvetica", size=11)
    for line in lines:
        document.multi_cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output())


def _upload(
    api: httpx.Client, token: str, kind: str, title: str, lines: list[str]
) -> dict[str, str]:
    pid = PARCEL["parcel_id"]
    response = api.post(
        f"/parcels/{pid}/documents",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": (f"{kind}.pdf", pdf_report(title, lines), "application/pdf")},
        data={"kind": kind},
    )
    response.raise_for_status()
    return {"document_id": response.json()["document_id"], "kind": kind}


def walk(base: str, tokens: dict[str, str]) -> str:
    """Start the demo parcel and walk it to the joint filing review (once)."""
    pid = PARCEL["parcel_id"]
    with httpx.Client(base_url=base, timeout=30) as api:
        started = api.post(
            "/parcels", json=PARCEL, headers={"Authorization": f"Bearer {tokens['reserve_agency']}"}
        )
        if started.status_code == 409:
            return "already running"
        started.raise_for_status()

        def act(role: str, action: str, body: dict[str, Any]) -> None:
            response = api.post(
                f"/parcels/{pid}/actions/{action}",
                json=body,
                headers={
                    "Authorization": f"Bearer {tokens[role]}",
                    "Idempotency-Key": f"demo-{action}",
                },
            )
            response.raise_for_status()

        act(
            "district_epb",
            "closure_screening",
            {"result": "suspected", "notes": "焦油残留，疑似污染"},
        )
        report = _upload(
            api,
            tokens["reserve_agency"],
            "investigation_report",
            f"Soil investigation report - {pid}",
            [
                "Former Beijing Coking Plant, Chaoyang district.",
                "PAHs and lead above GB 36600 values.",
            ],
        )
        act(
            "reserve_agency",
            "investigation_report",
            {
                "samples": SAMPLES,
                "extent_m2": 50_000,
                "degree": "焦油池区域多环芳烃重度污染",
                "pollutants": ["PAHs", "lead"],
                "documents": [report],
            },
        )
    return "started (waiting on the joint filing review)"
