"""schemathesis over the API's own OpenAPI document: every operation, every role.

Each operation gets LANDFLOW_FUZZ_EXAMPLES generated requests (15 here, 500 with
`make fuzz`), schema-valid and schema-violating, sent with a token of a random role (or
none, or an unknown one), some aimed at real parcels. Every answer must be no 5xx, a
documented status and content type, and match the documented schema. The number of
requests is printed and written to LANDFLOW_FUZZ_REPORT (when set).

The app runs in-process on the session's event loop with a worker, a registry and a
Temporal namespace of its own, so fuzzed parcels and report runs meet no other test.
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
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from landflow import visibility
from landflow.worker import build_worker
from tests.conftest import api_client, make_settings
from tests.helpers import TOKENS, auth, clean_facts, facts, start

EXAMPLES = int(os.environ.get("LANDFLOW_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CALLERS = [*TOKENS, None, "t-unknown"]
BASE_URL = "http://landflow"


async def own_namespace(env: WorkflowEnvironment) -> Client:
    name = f"fuzz-{uuid.uuid4().hex[:8]}"
    await env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name, workflow_execution_retention_period=Duration(seconds=86_400)
        )
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=name,
            search_attributes={k.name: k.indexed_value_type for k in visibility.ALL_KEYS},
        )
    )
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


def request_of(case: Any, caller: str | None) -> dict[str, Any]:
    """The generated request as httpx arguments, with the caller's token."""
    sent = case.as_transport_kwargs(base_url=BASE_URL)
    headers = {k: v for k, v in sent["headers"].items() if k.lower() != "authorization"}
    if caller is not None:
        headers["Authorization"] = f"Bearer {caller}"
    request = {"method": sent["method"], "url": sent["url"], "headers": headers}
    request["params"] = sent.get("params") or None
    if "json" in sent:
        request["json"] = sent["json"]
    elif sent.get("data") is not None:
        request["content"] = sent["data"]
    return request


def strategies(operation: Any) -> st.SearchStrategy[Any]:
    positive = operation.as_strategy(GenerationMode.POSITIVE)
    try:
        return st.one_of(positive, operation.as_strategy(GenerationMode.NEGATIVE))
    except Exception:  # nothing in the operation can be made invalid
        return positive


async def test_every_operation_answers_as_documented(fuzz_api, capsys):
    loop = asyncio.get_running_loop()
    known = [f"F{uuid.uuid4().hex[:8]}", f"F{uuid.uuid4().hex[:8]}"]
    await start(fuzz_api, facts(known[0]))
    await start(fuzz_api, clean_facts(known[1]))  # waits on release: actions can succeed
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
            return  # not sendable over HTTP at all (e.g. a newline in a header)
        sent[case.operation.label] += 1
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    def fuzz(operation: Any) -> None:
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=EXAMPLES <= 50,  # the CI profile is the same every run
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=strategies(operation),
            caller=st.sampled_from(CALLERS),
            parcel=st.sampled_from([None, *known]),
        )
        def one(case: Any, caller: str | None, parcel: str | None) -> None:
            if parcel and "parcel_id" in (case.path_parameters or {}):
                case.path_parameters["parcel_id"] = parcel
            check(case, caller)

        one()

    # Answers random data rarely reaches: a start, an action taken, a parcel read.
    succeeding = [
        ("POST /parcels", {"body": facts(f"F{uuid.uuid4().hex[:8]}")}, "reserve_agency"),
        (
            "POST /parcels/{parcel_id}/actions/{action}",
            {"path_parameters": {"parcel_id": known[1], "action": "release"}, "body": {}},
            "planning_land",
        ),
        ("GET /parcels/{parcel_id}", {"path_parameters": {"parcel_id": known[1]}}, "auditor"),
        ("GET /tasks", {}, "district_epb"),
    ]
    for label, parts, role in succeeding:
        operation = schema.find_operation_by_label(label)
        assert operation is not None, label
        case = operation.Case(media_type="application/json" if "body" in parts else None, **parts)
        await asyncio.to_thread(check, case, auth(role)["Authorization"].split()[1])
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
