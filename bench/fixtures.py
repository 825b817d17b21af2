"""Builders and in-process stacks shared by the benchmarks and the tests.

Tokens per role and party, parcel facts, sample sets, a small PDF; settings on a
directory of their own, the API in-process, the time-skipping server with a worker,
throwaway PostgreSQL databases; a bounded poll. bench/ may not import tests/, so these
live here and tests/helpers.py and tests/conftest.py take them from here.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import create_engine, make_url
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from landflow.settings import Settings
from service.worker import build_worker
from workflows import visibility

# What `from tests.helpers import ...` finds here (the builders and the poll).
__all__ = [
    "ACCEPTED",
    "CLEAN_SAMPLES",
    "CONTRACTOR",
    "DESTINATION",
    "DIRTY_SAMPLES",
    "DISTRICT",
    "EVALUATOR",
    "LAND_USER",
    "MET_RESULTS",
    "NEW_CONTRACTOR",
    "OPINION",
    "OTHER_COMPANY",
    "OTHER_DISTRICT",
    "OWN",
    "POLLUTER",
    "RETURNED",
    "SCREENING_SAMPLES",
    "TARGETS",
    "TOKENS",
    "TOKEN_OF",
    "TRANSPORT",
    "auth",
    "clean_facts",
    "eventually",
    "facts",
    "held_facts",
    "pdf",
    "write_tokens",
]

T = TypeVar("T")
BIN = Path(sys.executable).parent

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


# --- settings and stacks ---------------------------------------------------------------


def binary(name: str) -> str:
    """A program the project installs into the virtualenv (temporal, temporal-test-server)."""
    path = BIN / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: install the project (make test does)")
    return str(path)


async def dev_server() -> WorkflowEnvironment:
    """A `temporal` dev server of one's own (in memory), with landflow's search attributes
    and the pydantic converter; the caller shuts it down."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        search_attributes=list(visibility.ALL_KEYS),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )


async def register_search_attributes(client: Client, namespace: str) -> None:
    """landflow's search attributes on a namespace of a server started without them."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={
                key.name: IndexedValueType.Value(
                    f"INDEXED_VALUE_TYPE_{key.indexed_value_type.name}"
                )
                for key in visibility.ALL_KEYS
            },
        ),
        retry=True,
    )


async def time_skipping_server() -> WorkflowEnvironment:
    """The Java time-skipping test server with landflow's search attributes and the
    pydantic converter; the caller shuts it down."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    # The test server has no search-attribute flag: register them before any upsert.
    await register_search_attributes(env.client, env.client.namespace)
    return env


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    """Settings on a directory of their own: a SQLite registry, the tokens of TOKENS."""
    defaults: dict[str, Any] = {
        "data_dir": tmp,
        "database_url": f"sqlite:///{tmp / 'registry.db'}",
        "tokens_file": write_tokens(tmp / "tokens.json"),
        "task_queue": f"landflow-test-{uuid.uuid4().hex[:8]}",
        "action_timeout_s": 15,
    }
    return Settings(**(defaults | overrides))


def api_client(app_settings: Settings, client: Client) -> httpx.AsyncClient:
    """The API in-process (no HTTP server), on `client`'s Temporal."""
    app = create_app(app_settings)
    app.state.temporal = client
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://landflow")


@asynccontextmanager
async def time_skipping_stack(
    tmp: Path, **overrides: Any
) -> AsyncIterator[tuple[WorkflowEnvironment, Settings]]:
    """The Java time-skipping test server, its search attributes and a worker on it."""
    env = await time_skipping_server()
    try:
        settings = make_settings(tmp, **overrides)
        async with httpx.AsyncClient() as http, build_worker(env.client, settings, http):
            yield env, settings
    finally:
        await env.shutdown()


# --- PostgreSQL ----------------------------------------------------------------------
# The local server of these machines, else LANDFLOW_TEST_DATABASE_URL (a user that may
# CREATE DATABASE); each session works in throwaway databases named landflow_test_*.
LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """An empty database on the server for the block, dropped after."""
    name = f"landflow_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class NotWithin(AssertionError):
    """A poll ran out of time (an AssertionError, so a test reports a failure)."""


async def eventually(
    probe: Callable[[], Awaitable[T]],
    what: str,
    timeout: float = 10,
    every: float = 0.25,
    context: Callable[[], str] | None = None,
) -> T:
    """Poll until `probe` returns something truthy and return it; after `timeout` seconds
    raise NotWithin naming what never happened, the last answer and `context()` (logs, say),
    so no caller goes on as if it had."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            extra = f"\n{context()}" if context else ""
            raise NotWithin(f"{what}: not within {timeout:g} s (last: {result!r}){extra}")
        await asyncio.sleep(every)
