"""Builders shared by the tests: tokens per role, parcel facts, and action shortcuts."""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from landflow.devrun import DEMO_PARCEL

DISTRICT = "朝阳区"
OTHER_DISTRICT = "海淀区"

# token -> entry; one token per role, two per district role (own and other district)
TOKENS: dict[str, dict[str, Any]] = {
    "t-reserve": {"role": "reserve_agency", "subject": "北京市土地整理储备中心"},
    "t-landuser": {"role": "land_user", "subject": "北京焦化厂"},
    "t-gov": {"role": "district_government", "district": DISTRICT},
    "t-gov-other": {"role": "district_government", "district": OTHER_DISTRICT},
    "t-depb": {"role": "district_epb", "district": DISTRICT},
    "t-depb-other": {"role": "district_epb", "district": OTHER_DISTRICT},
    "t-cityepb": {"role": "city_epb"},
    "t-planning": {"role": "planning_land"},
    "t-responsible": {"role": "responsible_party", "subject": "首钢集团"},
    "t-evaluator": {"role": "third_party_evaluator", "subject": "某评估公司"},
    "t-auditor": {"role": "auditor"},
    "t-ops": {"role": "ops"},
    "t-public": {"role": "public"},
}
TOKEN_OF = {(e["role"], e.get("district")): t for t, e in TOKENS.items()}


def write_tokens(path: Path) -> Path:
    path.write_text(json.dumps(TOKENS, ensure_ascii=False), encoding="utf-8")
    return path


def auth(role: str, district: str | None = None) -> dict[str, str]:
    if district is None and (role, DISTRICT) in TOKEN_OF:
        district = DISTRICT
    return {"Authorization": f"Bearer {TOKEN_OF[(role, district)]}"}


def facts(parcel_id: str, **overrides: Any) -> dict[str, Any]:
    """The demo parcel: a closed coking plant whose right was recovered, planned residential."""
    return {**copy.deepcopy(DEMO_PARCEL), "parcel_id": parcel_id, **overrides}


def chemical_facts(parcel_id: str) -> dict[str, Any]:
    """A chemical plant still held by its polluter: the land user investigates, R4 names it."""
    return facts(
        parcel_id,
        enterprise_closed=False,
        right_status="to_be_recovered",
        polluter={"name": "某化工厂", "status": "exists"},
        industry="chemical",
    )


# The full remediation path with a returned filing and a failed evaluation.
FULL_PATH_STAGES = [
    "intake",
    "closure_screening",
    "investigation",
    "filing",
    "investigation",
    "filing",
    "listing",
    "remediation",
    "evaluation",
    "remediation",
    "evaluation",
    "release",
    "released",
]


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
    )


CLEAN_SAMPLES = [{"item": "铅", "value_mg_kg": 50.0}, {"item": "7440-38-2", "value_mg_kg": 10.0}]
DIRTY_SAMPLES = [
    {"item": "Benzo[a]pyrene", "value_mg_kg": 8.5, "depth_m": 1.0},
    {"item": "铅", "value_mg_kg": 900.0},
]
REPORT = {
    "pollutants": ["PAHs", "lead"],
    "samples": DIRTY_SAMPLES,
    "extent_m2": 50_000,
    "degree": "heavy PAH contamination near the coke ovens",
}
TRANSPORT = {
    "origin_district": DISTRICT,
    "destination_district": "大兴区",
    "time": "2027-03-01 22:00",
    "route": "五环-京开高速",
    "quantity_m3": 12000,
    "destination": "大兴区水泥窑",
    "disposal": "cement kiln co-processing",
}


async def act(
    api: httpx.AsyncClient,
    parcel_id: str,
    action: str,
    body: dict[str, Any],
    role: str,
    district: str | None = None,
    expect: int = 200,
    **headers: str,
) -> dict[str, Any]:
    response = await api.post(
        f"/parcels/{parcel_id}/actions/{action}",
        json=body,
        headers={**auth(role, district), **headers},
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
        received = self.received = []

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
