"""Hostile and bad input gets clear 4xx answers (ErrorOut, naming the field), Chinese text
round-trips, tokens are compared in constant time and never logged, and neither search
attributes nor logs carry personal data."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest

import api.auth
from api.auth import TokenEntry, TokenStore
from landflow.contracts import Action, Role, Step
from landflow.temporal import workflow_id
from tests.helpers import DISTRICT, TOKENS, auth, facts
from tests.security.drive import (
    NOT_JSON,
    ROUTE,
    attempt,
    bearer,
    drive,
    first_visit,
    parcel,
    take,
    token_of,
)

JSON = {"Content-Type": "application/json"}
PLANNING = token_of(Role.planning_land)  # owns `release`, open on parked[Step.release]


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


async def test_oversized_body_is_413(api, pid, settings, parked, witness):
    limit = settings.max_body_bytes
    big = json.dumps({**facts(pid), "name": "x" * limit}).encode()
    answer = await api.post("/parcels", content=big, headers={**JSON, **auth("reserve_agency")})
    assert (answer.status_code, answer.json()["error"]) == (413, "TooLarge")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    streamed = await api.post(
        "/parcels", content=chunks(), headers={**JSON, **auth("reserve_agency")}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413, streamed.text

    waiting = parked[Step.release]
    request = attempt(api, waiting, Action.release, PLANNING, big)
    await witness.no_trace(waiting, request, 413, "TooLarge")
    # at the limit the body is read, and judged on its content
    at_limit = json.dumps({"notes": "x" * (limit - 20)}).encode().ljust(limit)
    assert len(at_limit) == limit
    request = attempt(api, waiting, Action.release, PLANNING, at_limit)
    answer = await witness.no_trace(waiting, request, 422)
    assert answer["fields"][0]["field"] == "notes"


async def test_deeply_nested_json_is_a_clear_4xx(api, pid, parked, witness):
    deep = nested(100_000)
    started = await api.post("/parcels", content=deep, headers={**JSON, **auth("reserve_agency")})
    assert started.status_code == 422, started.text
    assert started.json()["fields"] == [
        {"field": "body", "reason": "the JSON body is nested too deeply"}
    ]
    inside = json.dumps(facts(pid), ensure_ascii=False).replace(
        '"原北京焦化厂"', "[" * 500 + "]" * 500
    )
    assert "[[[" in inside
    started = await api.post("/parcels", content=inside, headers={**JSON, **auth("reserve_agency")})
    assert started.status_code == 422 and started.json()["fields"][0]["field"] == "name"

    assert (await api.get(f"/parcels/{pid}", headers=auth("ops"))).status_code == 404
    waiting = parked[Step.release]
    for body in (deep, b'{"notes": ' + nested(900) + b"}", b'{"notes": ' + nested(40) + b"}"):
        request = attempt(api, waiting, Action.release, PLANNING, body)
        answer = await witness.no_trace(waiting, request, 422, "InvalidBody")
        assert "nested" in answer["detail"], answer
        # out of role, the body is not even looked at
        request = attempt(api, waiting, Action.release, token_of(Role.ops), body)
        await witness.no_trace(waiting, request, 403, "WrongRole")


@pytest.mark.parametrize(
    "kind",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_wrong_content_type_is_415(api, pid, parked, witness, kind):
    headers = {"Content-Type": kind} if kind else {}
    body = json.dumps(facts(pid)).encode()
    answer = await api.post("/parcels", content=body, headers={**headers, **auth("reserve_agency")})
    assert (answer.status_code, answer.json()["error"]) == (415, "UnsupportedMediaType")
    waiting = parked[Step.release]
    request = api.post(
        f"/parcels/{waiting}/actions/release",
        content=b'{"notes": "ok"}',
        headers={**headers, **bearer(PLANNING)},
    )
    await witness.no_trace(waiting, request, 415, "UnsupportedMediaType")


async def test_invalid_utf8_is_422(api, pid, parked, witness):
    body = json.dumps(facts(pid), ensure_ascii=False).encode()
    body = body.replace("原北京焦化厂".encode(), b"\xff\xfe\xfd")
    assert b"\xff" in body
    answer = await api.post("/parcels", content=body, headers={**JSON, **auth("reserve_agency")})
    assert answer.status_code == 422, answer.text
    assert answer.json()["fields"] == [{"field": "body", "reason": "the body is not valid UTF-8"}]
    waiting = parked[Step.release]
    for garbage in (b'{"notes": "\xc3\x28"}', NOT_JSON):
        request = attempt(api, waiting, Action.release, PLANNING, garbage)
        answer = await witness.no_trace(waiting, request, 422, "InvalidBody")
        assert answer["fields"][0]["field"] == "body"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "地" * 501}, "name"),
        ({"district": "区" * 51}, "district"),
        ({"parcel_id": "P" * 65}, "parcel_id"),
        ({"polluter": {"name": "污" * 501, "status": "exists"}}, "polluter.name"),
        ({"samples": [{"item": "铅" * 201, "value_mg_kg": 1}]}, "samples.0.item"),
    ],
    ids=["name", "district", "parcel_id", "polluter.name", "sample.item"],
)
async def test_very_long_strings_are_422_naming_the_field(api, pid, overrides, field):
    body = {**facts(pid), **overrides}
    answer = await api.post("/parcels", json=body, headers=auth("reserve_agency"))
    assert answer.status_code == 422, answer.text
    assert field in [f["field"] for f in answer.json()["fields"]], answer.text


async def test_oversized_parameters_are_422_naming_them(api, parked, witness):
    pid, ops = parked[Step.release], auth("ops")
    checks = {
        "district": api.get("/parcels", params={"district": "区" * 51}, headers=ops),
        "offset": api.get("/parcels", params={"offset": 10**20}, headers=ops),  # was a 500
        "parcel_id": api.get(f"/parcels/{'P' * 65}", headers=ops),
    }
    for field, request in checks.items():
        answer = await request
        assert answer.status_code == 422 and answer.json()["fields"][0]["field"] == field
    key = {"Idempotency-Key": "k" * 201}
    answer = await witness.no_trace(
        pid, attempt(api, pid, Action.release, PLANNING, {}, **key), 422
    )
    assert answer["fields"][0]["field"] == "idempotency-key"


async def test_chinese_text_round_trips_everywhere(api, pid):
    chinese = {
        "name": "北京市朝阳区原化工二厂（东区）地块",
        "polluter": {
            "name": "北京化工二厂",
            "status": "succeeded",
            "successor": "北京化学工业集团",
        },
        "transferee": {"name": "北京城建房地产开发有限公司"},
    }
    body = facts(pid, **chinese)
    await drive(api, pid, 0, **chinese)
    state = await parcel(api, pid)
    assert state["facts"] == body and state["district"] == DISTRICT

    inbox = (await api.get("/tasks", headers=auth("district_epb"))).json()["parcels"]
    assert {"parcel_id": pid, "name": body["name"], "district": DISTRICT}.items() <= next(
        p for p in inbox if p["parcel_id"] == pid
    ).items()
    listed = await api.get(
        "/parcels",
        params={"district": DISTRICT, "stage": "closure_screening"},
        headers=auth("auditor"),
    )
    assert body["name"] in [p["name"] for p in listed.json()["parcels"]]

    for move in ROUTE[: first_visit(Step.filing_city_epb)]:
        await take(api, pid, move)
    reasons = "采样点位不足，请补充东北角的深层土壤样品；“苯并[a]芘”超标。"
    returned = await attempt(
        api,
        pid,
        Action.filing_review,
        token_of(Role.city_epb),
        {"decision": "returned", "reasons": reasons},
    )
    assert returned.json()["actions"][-1]["payload"]["reasons"] == reasons
    assert returned.json()["actions"][0]["payload"]["notes"] == "焦油残留"
    for move in ROUTE[first_visit(Step.investigation) : first_visit(Step.choose_path)]:
        await take(api, pid, move)
    for name in ("contaminated", "negative"):
        entries = (await api.get(f"/lists/{name}")).json()["entries"]
        entry = next(e for e in entries if e["parcel_id"] == pid)
        assert (entry["name"], entry["district"]) == (body["name"], DISTRICT)


async def test_tokens_are_compared_in_constant_time(monkeypatch):
    """Every lookup compares the presented token with every known one, so the time taken
    does not tell how far a guess matched or where the token sits in the file."""
    store = TokenStore({t: TokenEntry.model_validate(e) for t, e in TOKENS.items()})
    compared: list[tuple[bytes, bytes]] = []
    real = api.auth.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api.auth.hmac, "compare_digest", counting)
    first, last = next(iter(TOKENS)), list(TOKENS)[-1]
    for token, role in (
        (first, TOKENS[first]["role"]),
        (last, TOKENS[last]["role"]),
        (first[:-1], None),
        (first + "x", None),
        ("", None),
        ("令牌", None),
    ):
        compared.clear()
        actor = store.actor(token)
        assert (actor.role.value if actor else None) == role, token
        assert len(compared) == len(TOKENS), token


async def test_tokens_and_personal_data_are_never_logged(api, pid, caplog):
    polluter = "张三化工有限公司"
    caplog.set_level(logging.DEBUG)
    await drive(
        api,
        pid,
        first_visit(Step.remediation_plan),  # R4 names the remediating party
        polluter={"name": polluter, "status": "exists"},
    )
    for token in [*TOKENS, "t-unknown-secret"]:
        await api.get("/tasks", headers=bearer(token))
        await attempt(api, pid, Action.release, token, NOT_JSON)
    await api.get("/parcels", headers={"Authorization": "Basic t-ops"})
    text = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert "decision R3" in text  # the worker's activity logs were captured
    secrets = [*TOKENS, "t-unknown-secret", polluter]
    secrets += [e["subject"] for e in TOKENS.values() if "subject" in e]
    assert [s for s in secrets if s in text] == []


ALLOWED_ATTRIBUTES = {
    "ParcelId",
    "District",
    "Stage",
    "WaitingOn",
    "Overdue",
    "DeadlineAt",
    "Listed",
}


async def test_search_attributes_carry_no_personal_data(api, pid, temporal):
    names = ["张三化工有限公司", "李四置业有限公司", "原北京焦化厂"]
    await drive(
        api,
        pid,
        first_visit(Step.choose_path),
        polluter={"name": names[0], "status": "exists"},
        transferee={"name": names[1]},
    )
    described = await temporal.client.get_workflow_handle(workflow_id(pid)).describe()
    found = {p.key.name: p.value for p in described.typed_search_attributes}
    found.pop("BuildIds", None)  # Temporal's own
    assert set(found) == ALLOWED_ATTRIBUTES
    assert (found["ParcelId"], found["District"], found["Stage"]) == (pid, DISTRICT, "listing")
    assert found["WaitingOn"] == "district_government" and found["Listed"] is True
    values = " ".join(str(v) for v in found.values()) + json.dumps(described.memo, default=str)
    for secret in names + [e.get("subject", "") for e in TOKENS.values() if e.get("subject")]:
        assert secret not in values
