"""schemathesis over the API's own OpenAPI document: every operation, as documented.

Each operation gets LANDFLOW_FUZZ_EXAMPLES generated requests (15 by default), valid and
invalid by the schema, sent mostly with the token of a role that may call it (the
auditor for reads, the reserve agency for registrations and uploads, ops for report
runs, the owner for actions), sometimes with another, an unknown or no token; a share
aims at real parcels. Every answer must be no 5xx, a documented status and content
type, and match its documented schema. The number of requests is printed and written
to LANDFLOW_FUZZ_REPORT (when set).

The app runs in-process with a worker, a registry, a document store and a Temporal
namespace of its own, so fuzzed parcels meet no other test.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import schemathesis
from google.protobuf.duration_pb2 import Duration
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from bench.fixtures import register_search_attributes
from service.worker import build_worker
from tests.conftest import api_client, make_settings
from tests.helpers import TOKEN_OF, TOKENS, clean_facts, facts, start

EXAMPLES = int(os.environ.get("LANDFLOW_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OTHERS: list[str | None] = [*TOKENS, None, "t-unknown"]
BASE_URL = "http://landflow"
REGISTRAR_PATHS = ("/parcels", "/parcels/{parcel_id}/restart", "/parcels/{parcel_id}/documents")


async def own_namespace(env: WorkflowEnvironment) -> Client:
    """A namespace of the session's dev server for the fuzzer alone. With the other test
    process busy, the server once answered RegisterNamespace "operation was canceled"
    (CI): it is asked again, and a registration that went through anyway is found."""
    name = f"fuzz-{uuid.uuid4().hex[:8]}"
    request = RegisterNamespaceRequest(
        namespace=name, workflow_execution_retention_period=Duration(seconds=86_400)
    )
    for attempt in range(3):
        try:
            await env.client.workflow_service.register_namespace(request)
            break
        except RPCError as exc:
            if exc.status == RPCStatusCode.ALREADY_EXISTS:
                break
            if exc.status != RPCStatusCode.CANCELLED or attempt == 2:
                raise
            await asyncio.sleep(1)
    await register_search_attributes(env.client, name)
    return await Client.connect(
        env.client.service_client.config.target_host,
        namespace=name,
        data_converter=env.client.data_converter,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_api(
    temporal: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    client = await own_namespace(temporal)
    app_settings = make_settings(tmp_path_factory.mktemp("fuzz"), namespace=client.namespace)
    async with (
        httpx.AsyncClient() as http,
        build_worker(client, app_settings, http),
        api_client(app_settings, client) as api,
    ):
        yield api


def caller_for(label: str) -> str:
    """The token of a role that may call the operation."""
    method, path = label.split(" ", 1)
    if path.startswith("/reports/") and path.endswith("/run"):
        role = "ops"
    elif method == "POST" and path in REGISTRAR_PATHS:
        role = "reserve_agency"
    elif "/actions/" in path:
        role = "planning_land"  # releases the clean parcel below
    else:
        role = "auditor"
    return TOKEN_OF[(role, None)]


def request_of(case: Any, caller: str | None) -> dict[str, Any]:
    """The generated request as httpx arguments, with the caller's token."""
    sent = case.as_transport_kwargs(base_url=BASE_URL)
    headers = {k: v for k, v in sent["headers"].items() if k.lower() != "authorization"}
    if caller is not None:
        headers["Authorization"] = f"Bearer {caller}"
    request: dict[str, Any] = {"method": sent["method"], "url": sent["url"], "headers": headers}
    request["params"] = sent.get("params") or None
    for name in ("json", "data"):
        if sent.get(name) is not None:
            request[name] = sent[name]
    if sent.get("files") is not None:
        request["files"] = [(name, as_part(part)) for name, part in sent["files"]]
    if "content" in sent:
        request["content"] = sent["content"]
    return request


def as_part(part: tuple[Any, ...]) -> tuple[Any, ...]:
    """A multipart part httpx can render: a generated number or null becomes its JSON text
    (httpx would fail while streaming it, inside the app, as a 500 of the test's making)."""
    filename, value, *rest = part
    if not isinstance(value, str | bytes):
        value = json.dumps(value)
    return (filename, value, *rest)


def strategies(operation: Any) -> st.SearchStrategy[Any]:
    positive = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
    try:
        return st.one_of(positive, operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    except Exception:  # nothing in the operation can be made invalid
        return positive


async def test_every_operation_answers_as_documented(
    fuzz_api: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = asyncio.get_running_loop()
    known = [f"F{uuid.uuid4().hex[:8]}", f"F{uuid.uuid4().hex[:8]}"]
    await start(fuzz_api, facts(known[0]))
    await start(fuzz_api, clean_facts(known[1]))  # waits on release: an action can succeed
    document = (await fuzz_api.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    sent: Counter[str] = Counter()
    statuses: Counter[int] = Counter()

    def check(case: Any, caller: str | None) -> None:
        """Send one case from a worker thread through the app on the test's loop."""
        try:
            request = request_of(case, caller)
            call = fuzz_api.request(**request)
            response = asyncio.run_coroutine_threadsafe(call, loop).result(timeout=120)
        except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
            return  # not sendable over HTTP at all (a newline in a header, ...)
        sent[case.operation.label] += 1
        statuses[response.status_code] += 1
        response.request.read()  # a multipart upload streamed: schemathesis reads it back
        case.validate_response(response, checks=CHECKS)

    def fuzz(operation: Any) -> None:
        own = caller_for(operation.label)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=EXAMPLES <= 50,  # the default run is the same every time
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=strategies(operation),
            caller=st.sampled_from([own] * len(OTHERS) + OTHERS),
            parcel=st.sampled_from([None, *known]),
        )
        def one(case: Any, caller: str | None, parcel: str | None) -> None:
            if parcel and "parcel_id" in (case.path_parameters or {}):
                case.path_parameters["parcel_id"] = parcel
            check(case, caller)

        one()

    # Answers random data rarely reaches: a start, an action taken, a parcel and a trail.
    succeeding = [
        ("POST /parcels", {"body": facts(f"F{uuid.uuid4().hex[:8]}")}),
        (
            "POST /parcels/{parcel_id}/actions/release",
            {"path_parameters": {"parcel_id": known[1]}, "body": {}},
        ),
        ("GET /parcels/{parcel_id}", {"path_parameters": {"parcel_id": known[1]}}),
        ("GET /parcels/{parcel_id}/trail", {"path_parameters": {"parcel_id": known[0]}}),
    ]
    for label, parts in succeeding:
        operation = schema.find_operation_by_label(label)
        assert operation is not None, label
        case = operation.Case(media_type="application/json" if "body" in parts else None, **parts)
        await asyncio.to_thread(check, case, caller_for(label))
    assert statuses[201] == 1 and statuses[200] == 3, statuses

    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        try:
            await asyncio.to_thread(fuzz, operation)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
            failures[operation.label] = f"{type(exc).__name__}: {exc}"

    report = {
        "requests": sum(sent.values()),
        "operations": len(operations),
        "examples_per_operation": EXAMPLES,
        "per_operation": dict(sent),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "failures": failures,
    }
    if os.environ.get("LANDFLOW_FUZZ_REPORT"):
        Path(os.environ["LANDFLOW_FUZZ_REPORT"]).write_text(json.dumps(report, indent=2))
    with capsys.disabled():
        print(
            f"\nschemathesis: {report['requests']} requests over {len(operations)} operations, "
            f"statuses {report['statuses']}"
        )
    assert sent.keys() == {o.label for o in operations}, "an operation was never called"
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
