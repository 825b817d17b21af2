"""Hostile and broken input gets a clear 4xx ErrorOut (naming the field), never a 500;
a real uvicorn server keeps the keep-alive connection after every error; tokens are
compared in constant time and never logged; search attributes carry no personal data.

The first tests go through the session's in-process API. The server tests run
`landflow api` in a subprocess with the session's settings (same Temporal, worker,
registry and tokens; a document directory of its own, which one test breaks) and talk
HTTP/1.1 to it with one httpx client, checking by the client's socket address that every
request after an error travels on the same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from landflow.messages import workflow_id
from landflow.settings import Settings
from landflow.vocabulary import Action, Step
from service.worker import build_worker
from tests.conftest import api_client, fresh_postgres_database, make_settings
from tests.e2e.security.conftest import Park, Server, running_server
from tests.e2e.security.drive import (
    NOT_JSON,
    Witness,
    attempt,
    bearer,
    drive,
    if_match,
)
from tests.helpers import DISTRICT, POLLUTER, TOKENS, auth, clean_facts, facts, pdf, start

JSON = {"Content-Type": "application/json"}
SURROGATE = b'{"decision":"returned","reasons":"\\ud800"}'  # a lone surrogate, as JSON escapes it


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def reasons_nested(levels: int) -> bytes:
    """A review whose `reasons` is a list `levels` deep: the body is `levels + 1` deep."""
    return b'{"decision": "accepted", "reasons": ' + nested(levels) + b"}"


def fields(answer: dict[str, Any]) -> list[str]:
    return [f["field"] for f in answer.get("fields", [])]


def with_raw(body: dict[str, Any], name: str, raw: bytes) -> bytes:
    """`body` as JSON with the value of `name` replaced by the raw JSON text `raw`."""
    return json.dumps({**body, name: "@@"}).encode().replace(b'"@@"', raw)


# --- bodies the JSON parser, the validators and the encoders must survive --------------


async def test_a_lone_surrogate_is_403_for_the_public_and_422_for_the_bureau(
    api: httpx.AsyncClient, witness: Witness, parked: Park, pid: str
) -> None:
    reviewing, visit = await parked(Step.filing_review)
    request = attempt(api, reviewing, Action.filing_review, "t-public", SURROGATE)
    await witness.no_trace(reviewing, request, 403, "WrongRole")
    request = attempt(api, reviewing, Action.filing_review, "t-cityepb", SURROGATE, if_match(visit))
    answer = await witness.no_trace(reviewing, request, 422, "InvalidBody")
    assert fields(answer) == ["reasons"] and "surrogate" in answer["detail"], answer
    elsewhere = (
        b'{"decision": "accepted", "\\udfff": 1}',  # in a key
        b'{"decision": "accepted", "opinion": {"panel": ["\\ud800"]}}',  # deep inside
        b'{"decision": "accepted", "documents": [{"document_id": "\\ud800", "kind": "other"}]}',
    )
    for body in elsewhere:
        request = attempt(api, reviewing, Action.filing_review, "t-cityepb", body)
        assert "surrogate" in (await witness.no_trace(reviewing, request, 422))["detail"]
    # where FastAPI parses the body itself: registering a parcel, the rules' dry-run
    for path, role in (("/parcels", "reserve_agency"), ("/rules/evaluate", "auditor")):
        body = with_raw(facts(pid), "name", b'"\\ud800"')
        answer = await api.post(path, content=body, headers={**JSON, **auth(role)})
        assert (answer.status_code, fields(answer.json())) == (422, ["name"]), answer.text
    assert (await api.get(f"/parcels/{pid}", headers=auth("auditor"))).status_code == 404


async def test_a_replay_body_nested_5000_deep_is_422(api: httpx.AsyncClient, parked: Park) -> None:
    pid, _ = await parked(Step.filing_review)
    for body in (
        nested(5_000),
        b'{"events": ' * 5_000 + b"0" + b"}" * 5_000,
        b'{"events": [' + nested(5_000) + b"]}",
    ):
        answer = await api.post(
            f"/parcels/{pid}/replay", content=body, headers={**JSON, **auth("auditor")}
        )
        assert (answer.status_code, answer.json()["error"]) == (422, "InvalidBody"), answer.text
        assert fields(answer.json()) == ["body"]
        refused = await api.post(
            f"/parcels/{pid}/replay", content=body, headers={**JSON, **auth("ops")}
        )
        assert (refused.status_code, refused.json()["error"]) == (403, "WrongRole")


async def test_an_action_nested_deeper_than_32_is_422(
    api: httpx.AsyncClient, witness: Witness, parked: Park
) -> None:
    pid, _ = await parked(Step.filing_review)

    def review(token: str, body: bytes) -> Any:
        return attempt(api, pid, Action.filing_review, token, body)

    for body in (reasons_nested(32), nested(1_000), nested(100_000)):
        answer = await witness.no_trace(pid, review("t-cityepb", body), 422, "InvalidBody")
        assert fields(answer) == ["body"] and "nested" in answer["detail"], answer
        # out of role, the body is not even looked at
        await witness.no_trace(pid, review("t-ops", body), 403, "WrongRole")
    # 32 levels are read, and judged as a review: `reasons` is not text
    answer = await witness.no_trace(pid, review("t-cityepb", reasons_nested(31)), 422)
    assert fields(answer) == ["reasons"], answer


async def test_invalid_utf8_is_422(
    api: httpx.AsyncClient, witness: Witness, parked: Park, pid: str
) -> None:
    reviewing, _ = await parked(Step.filing_review)
    for body in (b'{"decision": "\xc3\x28"}', b"\xff\xfe{}", b'{"reasons": "\xed\xa0\x80"}'):
        request = attempt(api, reviewing, Action.filing_review, "t-planning", body)
        answer = await witness.no_trace(reviewing, request, 422, "InvalidBody")
        assert answer["fields"] == [{"field": "body", "reason": "not valid UTF-8"}], answer
        request = attempt(api, reviewing, Action.filing_review, "t-public", body)
        await witness.no_trace(reviewing, request, 403, "WrongRole")
    body = json.dumps(facts(pid), ensure_ascii=False).encode()
    body = body.replace("原北京焦化厂".encode(), b"\xff\xfe\xfd")
    answer = await api.post("/parcels", content=body, headers={**JSON, **auth("reserve_agency")})
    assert answer.status_code == 422, answer.text
    assert answer.json()["fields"] == [{"field": "body", "reason": "the body is not valid UTF-8"}]


@pytest.mark.parametrize(
    "kind",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_a_body_that_is_not_json_is_415(
    api: httpx.AsyncClient, witness: Witness, parked: Park, pid: str, kind: str | None
) -> None:
    headers = {"Content-Type": kind} if kind else {}
    body = json.dumps(facts(pid)).encode()
    answer = await api.post("/parcels", content=body, headers={**headers, **auth("reserve_agency")})
    assert (answer.status_code, answer.json()["error"]) == (415, "UnsupportedMediaType")
    waiting, _ = await parked(Step.release)
    for token in ("t-planning", "t-public"):
        request = api.post(
            f"/parcels/{waiting}/actions/release",
            content=b'{"notes": "ok"}',
            headers={**headers, **bearer(token)},
        )
        await witness.no_trace(waiting, request, 415, "UnsupportedMediaType")


async def test_a_body_over_the_limit_is_413(
    api: httpx.AsyncClient, witness: Witness, parked: Park, pid: str, settings: Settings
) -> None:
    limit = settings.max_body_bytes
    big = json.dumps({**facts(pid), "name": "x" * limit}).encode()
    answer = await api.post("/parcels", content=big, headers={**JSON, **auth("reserve_agency")})
    assert (answer.status_code, answer.json()["error"]) == (413, "TooLarge")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for at in range(0, len(big), 64 * 1024):
            yield big[at : at + 64 * 1024]

    streamed = await api.post(
        "/parcels", content=chunks(), headers={**JSON, **auth("reserve_agency")}
    )
    assert "content-length" not in streamed.request.headers
    assert (streamed.status_code, streamed.json()["error"]) == (413, "TooLarge"), streamed.text
    waiting, _ = await parked(Step.release)
    for token in ("t-planning", "t-public"):  # refused before anyone reads it
        request = attempt(api, waiting, Action.release, token, big)
        answer = await witness.no_trace(waiting, request, 413, "TooLarge")
        assert str(limit) in answer["detail"]
    # at the limit the body is read, and judged: by the action's own limit (policy)
    at_limit = json.dumps({"notes": "x" * (limit - 20)}).encode().ljust(limit)
    assert len(at_limit) == limit
    request = attempt(api, waiting, Action.release, "t-planning", at_limit)
    answer = await witness.no_trace(waiting, request, 413, "TooLarge")
    assert "release body" in answer["detail"], answer
    request = attempt(api, waiting, Action.release, "t-public", at_limit)
    await witness.no_trace(waiting, request, 403, "WrongRole")


async def test_unknown_actions_methods_and_paths_answer_error_out(
    api: httpx.AsyncClient, witness: Witness, parked: Park
) -> None:
    pid, _ = await parked(Step.release)
    answers = {
        (404, "NotFound"): [
            attempt(api, pid, "demolish", "t-planning", {}),
            api.get("/nowhere", headers=auth("auditor")),
            api.post("/parcels/x/actions", headers=auth("auditor")),
        ],
        (405, "MethodNotAllowed"): [
            api.get(f"/parcels/{pid}/actions/release", headers=auth("planning_land")),
            api.delete(f"/parcels/{pid}", headers=auth("reserve_agency")),
            api.put("/parcels", json={}, headers=auth("reserve_agency")),
        ],
    }
    for (status, error), requests in answers.items():
        for request in requests:
            answer = await witness.no_trace(pid, request, status, error)
            assert set(answer) == {"error", "detail"}, answer
    wrong = await api.get(f"/parcels/{pid}/actions/release", headers=auth("planning_land"))
    assert wrong.headers["allow"] == "POST"


async def test_an_overlong_key_and_a_bad_if_match_are_422(
    api: httpx.AsyncClient, witness: Witness, parked: Park
) -> None:
    pid, visit = await parked(Step.release)
    bad = {
        "Idempotency-Key": {"Idempotency-Key": "k" * 201},
        "If-Match": {"If-Match": '"abc"'},
    }
    for field, headers in bad.items():
        for token in ("t-planning", "t-public"):  # headers are read before anything
            request = attempt(api, pid, Action.release, token, {}, headers)
            answer = await witness.no_trace(pid, request, 422, "InvalidRequest")
            assert fields(answer) == [field], answer
    # a header is named as the client writes it, whichever check refuses it
    for value in ('"0"', '"-3"', f'"{visit}x"', '"' + "9" * 41 + '"', "W/"):
        request = attempt(api, pid, Action.release, "t-planning", {}, {"If-Match": value})
        answer = await witness.no_trace(pid, request, 422, "InvalidRequest")
        assert fields(answer) == ["If-Match"], answer
    # 200 characters are a key: the request is judged (here on its body)
    request = attempt(
        api, pid, Action.release, "t-planning", NOT_JSON, {"Idempotency-Key": "k" * 200}
    )
    assert fields(await witness.no_trace(pid, request, 422, "InvalidBody")) == ["body"]


async def test_non_finite_numbers_are_an_invalid_body_not_a_bad_signature(
    api: httpx.AsyncClient, witness: Witness, parked: Park
) -> None:
    """JSON has no NaN or Infinity; Python's parser reads them, the API signs the body
    with them, and the workflow receives them as null: the owner must hear 422."""
    pid, _ = await parked(Step.release)
    for raw in (b"NaN", b"Infinity", b"1e400"):
        body = with_raw({}, "notes", raw)
        request = attempt(api, pid, Action.release, "t-planning", body)
        answer = await witness.no_trace(pid, request, 422, "InvalidBody")
        assert fields(answer) in (["notes"], ["body"]), answer


async def test_a_malformed_multipart_upload_is_422(api: httpx.AsyncClient, parked: Park) -> None:
    """A body that cannot be read is an InvalidBody, as everywhere else (schemathesis
    found this one answering an undocumented 400)."""
    pid, _ = await parked(Step.investigation)
    for body in (b"--x\r\n-182820993247--x--\r\n", b"--x\r\nContent-Disposition: form-data\r\n"):
        answer = await api.post(
            f"/parcels/{pid}/documents",
            content=body,
            headers={"Content-Type": "multipart/form-data; boundary=x", **auth("reserve_agency")},
        )
        assert (answer.status_code, answer.json()["error"]) == (422, "InvalidBody"), answer.text


async def test_a_nul_character_is_refused_or_reaches_the_postgresql_registry(
    postgres_server: str, temporal: WorkflowEnvironment, tmp_path: Path, pid: str
) -> None:
    """PostgreSQL text holds no NUL: a name with one must be refused (422), or the parcel
    must still open its first step and reach the registry."""
    with fresh_postgres_database(postgres_server) as url:
        app_settings = make_settings(tmp_path, database_url=url, action_timeout_s=5)
        async with (
            httpx.AsyncClient() as http,
            build_worker(temporal.client, app_settings, http),
            api_client(app_settings, temporal.client) as pg_api,
        ):
            try:
                body = facts(pid, name="原北京焦化厂\u0000东区")
                answer = await pg_api.post("/parcels", json=body, headers=auth("reserve_agency"))
                if answer.status_code == 422:
                    assert fields(answer.json()) == ["name"], answer.text
                    return
                assert answer.status_code == 201, answer.text
                deadline = time.monotonic() + 10
                while True:
                    listed = await pg_api.get(
                        "/parcels", params={"district": DISTRICT}, headers=auth("ops")
                    )
                    rows = [p for p in listed.json()["parcels"] if p["parcel_id"] == pid]
                    if rows and rows[0]["stage"] == "closure_screening":
                        break
                    if time.monotonic() > deadline:
                        state = await pg_api.get(f"/parcels/{pid}", headers=auth("ops"))
                        pytest.fail(
                            f"accepted (201, {answer.json()['stage']}), but 10 s later the "
                            f"registry shows {rows}, the parcel stands at {state.json()['stage']}"
                        )
                    await asyncio.sleep(0.3)
            finally:
                with contextlib.suppress(RPCError):  # not left retrying after the test
                    await temporal.client.get_workflow_handle(workflow_id(pid)).terminate("over")


@pytest.mark.parametrize(
    ("path", "name", "value", "field"),
    [
        ("/parcels", "name", json.dumps("地" * 501), "name"),
        ("/parcels", "district", json.dumps("区" * 51), "district"),
        ("/parcels", "parcel_id", json.dumps("P" * 65), "parcel_id"),
        (
            "/parcels",
            "polluter",
            json.dumps({**POLLUTER, "name": "污" * 501, "status": "exists"}),
            "polluter.name",
        ),
        ("/parcels", "area_m2", "1e400", "area_m2"),
        (
            "/rules/evaluate",
            "samples",
            json.dumps([{"item": "铅" * 201, "value_mg_kg": 1}]),
            "samples.0.item",
        ),
        (
            "/rules/evaluate",
            "samples",
            '[{"item": "铅", "value_mg_kg": NaN}]',
            "samples.0.value_mg_kg",
        ),
    ],
    ids=["name", "district", "parcel_id", "polluter.name", "area", "sample.item", "sample.nan"],
)
async def test_very_long_or_huge_values_are_422_naming_the_field(
    api: httpx.AsyncClient, pid: str, path: str, name: str, value: str, field: str
) -> None:
    body = with_raw(facts(pid), name, value.encode())
    answer = await api.post(path, content=body, headers={**JSON, **auth("reserve_agency")})
    assert answer.status_code == 422, answer.text
    assert field in fields(answer.json()), answer.text


async def test_oversized_parameters_are_422_naming_them(api: httpx.AsyncClient) -> None:
    ops = auth("ops")
    checks = {
        "district": api.get("/parcels", params={"district": "区" * 51}, headers=ops),
        "limit": api.get("/parcels", params={"limit": 10**20}, headers=ops),
        "cursor": api.get("/parcels", params={"cursor": "c" * 201}, headers=ops),
        "parcel_id": api.get(f"/parcels/{'P' * 65}", headers=ops),
        "q": api.get("/lists/contaminated", params={"q": "q" * 101}),
    }
    for field, request in checks.items():
        answer = await request
        assert answer.status_code == 422 and fields(answer.json()) == [field], answer.text


# --- tokens and personal data ----------------------------------------------------------


COMPANY = "张三化工有限公司"  # the polluter: a company name the logs must not carry
POLLUTED_BY_COMPANY = {**POLLUTER, "name": COMPANY, "status": "exists"}


async def test_tokens_and_personal_data_are_never_logged(
    api: httpx.AsyncClient, pid: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await drive(api, pid, Step.remediation_plan, polluter=POLLUTED_BY_COMPANY)  # R4 named it
    for token in [*TOKENS, "t-unknown-secret"]:
        await api.get("/tasks", headers=bearer(token))
        await attempt(api, pid, Action.remediation_plan, token, NOT_JSON)
    await api.get("/parcels", headers={"Authorization": "Basic t-ops"})
    text = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert "decision R4" in text  # the worker's activity logs were captured
    secrets = [*TOKENS, "t-unknown-secret", COMPANY]
    secrets += [e["subject"] for e in TOKENS.values() if "subject" in e]
    assert [s for s in secrets if s in text] == []


ALLOWED_ATTRIBUTES = {
    "ParcelId",
    "District",
    "Stage",
    "WaitingOn",
    "Assignees",
    "Overdue",
    "DeadlineAt",
    "Listed",
}


async def test_search_attributes_carry_no_personal_data(
    api: httpx.AsyncClient, pid: str, temporal: WorkflowEnvironment
) -> None:
    transferee = {"id": "91110105TRANSFER01", "name": "李四置业有限公司"}
    await drive(api, pid, Step.choose_path, polluter=POLLUTED_BY_COMPANY, transferee=transferee)
    described = await temporal.client.get_workflow_handle(workflow_id(pid)).describe()
    found = {p.key.name: p.value for p in described.typed_search_attributes}
    found.pop("BuildIds", None)  # Temporal's own
    # Temporal's own too: the patches a run took (workflow.patched); a parcel registered
    # under the amendments takes none (landflow.procedure.Amendment)
    assert found.pop("TemporalChangeVersion", []) == []
    assert set(found) <= ALLOWED_ATTRIBUTES and {"ParcelId", "Stage", "Listed"} <= set(found)
    assert (found["ParcelId"], found["District"], found["Stage"]) == (pid, DISTRICT, "listing")
    assert found["WaitingOn"] == "district_government" and found["Listed"] is True
    shown = " ".join(str(v) for v in found.values()) + json.dumps(described.memo, default=str)
    shown += f"{await described.static_summary()} {await described.static_details()}"
    for secret in (COMPANY, transferee["name"], *[e.get("subject", "") for e in TOKENS.values()]):
        assert not secret or secret not in shown, secret


# --- a real server: headers, and the keep-alive connection after errors ----------------


class Connections:
    """One HTTP/1.1 client with a single connection; the client address of every answer."""

    def __init__(self, url: str) -> None:
        self.addresses: list[tuple[str, int]] = []
        self.client = httpx.AsyncClient(
            base_url=url,
            timeout=30,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            event_hooks={"response": [self._seen]},
        )

    async def _seen(self, response: httpx.Response) -> None:
        stream = response.extensions["network_stream"]
        self.addresses.append(tuple(stream.get_extra_info("client_addr")))

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The request, then a health check that must travel on the same connection."""
        answer = await self.client.request(method, path, **kwargs)
        await answer.aread()
        assert answer.headers.get("connection", "").lower() != "close", (path, answer.headers)
        health = await self.client.get("/healthz")
        assert health.status_code == 200
        assert len(set(self.addresses)) == 1, f"{method} {path} ({answer.status_code}) reconnected"
        return answer


def padding(count: int, size: int) -> dict[str, str]:
    return {f"X-Padding-{i}": "a" * size for i in range(count)}


async def test_two_hundred_headers_of_1kb_are_431(server: Server) -> None:
    connections = Connections(server.url)
    async with connections.client:
        answer = await connections.send(
            "GET", "/parcels", headers={**auth("ops"), **padding(200, 1024)}
        )
        assert (answer.status_code, answer.json()["error"]) == (431, "HeadersTooLarge")
        fine = await connections.send(
            "GET", "/parcels", headers={**auth("ops"), **padding(10, 1024)}
        )
        assert fine.status_code == 200, fine.text


async def test_every_error_keeps_the_keep_alive_connection(
    server: Server, parked: Park, settings: Settings
) -> None:
    pid, visit = await parked(Step.filing_review)
    action = f"/parcels/{pid}/actions/filing_review"

    def post(body: bytes, role: str = "city_epb", **headers: str) -> dict[str, Any]:
        return {"content": body, "headers": {**JSON, **auth(role), **headers}}

    async def chunked(body: bytes) -> AsyncIterator[bytes]:
        for at in range(0, len(body), 65_536):
            yield body[at : at + 65_536]

    too_large = b'{"reasons": "' + b"x" * settings.max_body_bytes + b'"}'
    hostile: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", "/parcels", {"headers": {**auth("ops"), **padding(200, 1024)}}, 431),
        ("POST", action, post(too_large), 413),
        (
            "POST",
            action,
            {"content": chunked(too_large), "headers": {**JSON, **auth("city_epb")}},
            413,
        ),
        ("POST", action, {"content": b"{}", "headers": {"Content-Type": "text/plain"}}, 415),
        ("POST", action, post(SURROGATE, "public"), 403),
        ("POST", action, post(SURROGATE), 422),
        ("POST", action, post(b"\xff\xfe"), 422),
        ("POST", action, post(nested(100_000)), 422),
        ("POST", f"/parcels/{pid}/replay", post(nested(5_000), "auditor"), 422),
        ("POST", action, post(b"{}", **{"Idempotency-Key": "k" * 201}), 422),
        ("POST", action, post(b"{}", **{"If-Match": '"abc"'}), 422),
        ("POST", action, post(b"{}", **if_match(visit + 1000)), 409),
        ("POST", action, post(b"{}", "auditor"), 403),
        ("POST", action, {"content": b"{}", "headers": JSON}, 401),
        ("POST", f"/parcels/{pid}/actions/demolish", post(b"{}"), 404),
        ("GET", action, {"headers": auth("city_epb")}, 405),
        ("GET", "/nowhere", {}, 404),
        ("GET", f"/parcels/{pid}/trail", {"headers": auth("ops")}, 403),
    ]
    connections = Connections(server.url)
    async with connections.client:
        for method, path, kwargs, status in hostile:
            answer = await connections.send(method, path, **kwargs)
            assert answer.status_code == status, (method, path, answer.text)
            assert {"error", "detail"} <= set(answer.json()), answer.text
    assert len(connections.addresses) == 2 * len(hostile)


async def test_after_a_failure_inside_the_app_the_keep_alive_connection_is_kept(
    server: Server, api: httpx.AsyncClient, pid: str
) -> None:
    """The server's document directory is broken under it (its temp folder replaced by a
    file): an upload fails inside the app; the answer is a 503 ErrorOut that leaks no
    server path, and the connection stays open for the next request."""
    await start(api, clean_facts(pid))
    upload = {
        "files": {"file": ("report.pdf", pdf(f"broken {pid}"), "application/pdf")},
        "data": {"kind": "investigation_report"},
        "headers": auth("reserve_agency"),
    }
    connections = Connections(server.url)
    async with connections.client:
        stored = await connections.send("POST", f"/parcels/{pid}/documents", **upload)
        assert stored.status_code == 201, stored.text
        scratch = server.documents / "tmp"
        shutil.rmtree(scratch)
        scratch.write_text("not a directory")
        try:
            upload["files"] = {"file": ("report.pdf", pdf(f"again {pid}"), "application/pdf")}
            failed = await connections.send("POST", f"/parcels/{pid}/documents", **upload)
        finally:
            scratch.unlink()
            scratch.mkdir()
        assert failed.status_code == 503, failed.text
        assert failed.json() == {
            "error": "Unavailable",
            "detail": "the document store is unavailable; nothing was stored, retry later",
        }
        assert failed.headers["Retry-After"] == "5"
        again = await connections.send("GET", f"/parcels/{pid}", headers=auth("auditor"))
        assert again.status_code == 200


async def test_after_an_unexpected_error_the_500_keeps_the_keep_alive_connection(
    settings: Settings, temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A server with a registry of its own, whose `parcels` table is dropped under it (a
    botched repair by hand): listing parcels fails inside the app with an error nothing
    expects. The answer is the 500 ErrorOut, naming no table or file, and the next
    requests travel on the same connection."""
    registry = tmp_path / "registry.db"
    own = settings.model_copy(
        update={"data_dir": tmp_path, "database_url": f"sqlite:///{registry}"}
    )
    async with running_server(own, temporal, tmp_path) as server:
        connections = Connections(server.url)
        async with connections.client:
            listed = await connections.send("GET", "/parcels", headers=auth("ops"))
            assert listed.status_code == 200, listed.text
            with contextlib.closing(sqlite3.connect(registry)) as db:
                db.execute("DROP TABLE parcels")
                db.commit()
            failed = await connections.send("GET", "/parcels", headers=auth("ops"))
            assert failed.status_code == 500, failed.text
            assert failed.json() == {
                "error": "Internal",
                "detail": "an unexpected error occurred; it is logged",
            }
            again = await connections.send("GET", "/parcels", headers=auth("ops"))
            assert again.status_code == 500, again.text
        assert len(connections.addresses) == 6  # three requests, each with its health check
    logged = server.log.read_text(encoding="utf-8")
    assert "unexpected OperationalError on GET /parcels" in logged, logged[-3000:]
