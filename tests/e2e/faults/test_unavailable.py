"""The API process stays up while the worker or the dev server is down: it answers 503
Unavailable within LANDFLOW_ACTION_TIMEOUT_S, succeeds once the part is back, and an
action sent meanwhile and retried with its Idempotency-Key is applied once."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.e2e.faults.conftest import (
    Prepared,
    Stack,
    assert_registered_once,
    eventually,
    perform,
    prepare,
    read_parcel,
    report,
    start_parcel,
)
from tests.helpers import CLEAN_SAMPLES, auth, clean_facts, facts

pytestmark = pytest.mark.faults

TIMEOUT_S = 3.0
STACK = {"action_timeout_s": TIMEOUT_S}
SLACK_S = 2.5  # the event loop and a busy 2-core machine
SCREENING = {"result": "suspected", "notes": "焦油残留"}


async def timed(http: httpx.AsyncClient, method: str, url: str, **request: Any) -> float:
    """Send once; assert a 503 Unavailable in time that tells the client to retry with
    its Idempotency-Key. Returns how long the answer took."""
    began = time.monotonic()
    try:
        response = await http.request(method, url, **request)
    except httpx.TransportError as exc:
        raise AssertionError(f"{method} {url}: the API did not answer ({exc!r})") from exc
    took = time.monotonic() - began
    assert response.status_code == 503, f"{method} {url}: {response.status_code} {response.text}"
    body = response.json()
    assert body["error"] == "Unavailable", body
    assert "Idempotency-Key" in body["detail"] and "did not answer in time" in body["detail"]
    assert took < TIMEOUT_S + SLACK_S, f"{method} {url} answered after {took:.1f}s"
    return took


async def unavailable(http: httpx.AsyncClient, prepared: Prepared) -> float:
    return await timed(http, "POST", prepared.url, json=prepared.json, headers=prepared.headers)


def taken(parcel: dict[str, Any], action: str) -> int:
    return sum(1 for a in parcel["actions"] if a["action"] == action)


async def at_stage(stack: Stack, pid: str, stage: str) -> dict[str, Any]:
    async def there() -> dict[str, Any] | None:
        parcel = await read_parcel(stack.http, pid)
        return parcel if parcel["stage"] == stage else None

    return await eventually(there, f"{pid} reaches {stage}", 60, 0.5, stack.tails)


async def in_registry(stack: Stack, pid: str) -> None:
    """GET /parcels reads the registry: it needs neither worker nor Temporal."""
    response = await stack.http.get("/parcels", params={"limit": 1000}, headers=auth("ops"))
    assert response.status_code == 200, response.text
    assert pid in [p["parcel_id"] for p in response.json()["parcels"]]


async def test_worker_down_answers_503_then_applies_the_action_once(stack: Stack, pid: str):
    http = stack.http
    await start_parcel(http, facts(pid))
    screening = Prepared(
        f"/parcels/{pid}/actions/closure_screening",
        SCREENING,
        {**auth("district_epb"), "Idempotency-Key": f"{pid}-screening"},
    )
    await stack.kill("worker")

    for _ in range(2):  # the client retries while the worker is away
        took = await unavailable(http, screening)
        assert took > TIMEOUT_S - 0.5, f"an update waits out the timeout, not {took:.1f}s"
    await timed(http, "GET", f"/parcels/{pid}", headers=auth("auditor"))  # a query needs one
    # A new parcel is started (durable) although no worker takes it up yet: 201 at intake.
    began = time.monotonic()
    response = await http.post(
        "/parcels", json=clean_facts(f"{pid}c"), headers=auth("reserve_agency")
    )
    assert response.status_code == 201, response.text
    assert (response.json()["stage"], response.json()["waiting_on"]) == ("intake", [])
    assert time.monotonic() - began < TIMEOUT_S + SLACK_S
    await in_registry(stack, pid)

    await stack.start("worker")
    first = await perform(http, screening)
    assert await perform(http, screening) == first, "a retry answers the first outcome"
    parcel = await read_parcel(http, pid)
    assert taken(parcel, "closure_screening") == 1
    assert (parcel["stage"], parcel["waiting_on"]) == ("investigation", ["reserve_agency"])
    assert [d["rule"] for d in parcel["decisions"]].count("R1") == 1
    await stack.registry_ready()  # the parcel started meanwhile made the worker rebuild
    assert_registered_once(stack, parcel)
    # The same action with a new key is a new request, and the step is over: 409.
    again = await http.post(
        screening.url, json=SCREENING, headers={**auth("district_epb"), "Idempotency-Key": "new"}
    )
    assert again.status_code == 409, again.text
    await at_stage(stack, f"{pid}c", "release")  # the worker took up the parcel started meanwhile


async def test_temporal_down_answers_503_then_applies_the_action_once(stack: Stack, pid: str):
    http = stack.http
    await start_parcel(http, facts(pid, enterprise_closed=False, industry="other", polluter=None))
    investigation = await prepare(http, pid, 0, report(CLEAN_SAMPLES))  # uploaded before
    await stack.kill("temporal")

    await unavailable(http, investigation)
    await timed(http, "GET", f"/parcels/{pid}", headers=auth("auditor"))
    newcomer = facts(f"{pid}n")
    await timed(http, "POST", "/parcels", json=newcomer, headers=auth("reserve_agency"))
    await in_registry(stack, pid)
    # An API process started while Temporal is down starts, connects lazily, answers 503.
    await stack.kill("api")
    await stack.start("api")
    await timed(http, "POST", "/parcels", json=newcomer, headers=auth("reserve_agency"))
    await unavailable(http, investigation)

    await stack.start("temporal")
    started = await start_parcel(http, newcomer)
    assert started["parcel_id"] == f"{pid}n"
    first = await perform(http, investigation)
    assert (first["stage"], sorted(first["waiting_on"])) == (
        "filing",
        ["city_epb", "planning_land"],
    )
    parcel = await read_parcel(http, pid)
    assert taken(parcel, "investigation_report") == 1
    assert [d["rule"] for d in parcel["decisions"]].count("R5") == 1
    await stack.registry_ready()
    assert_registered_once(stack, parcel)
    await at_stage(stack, f"{pid}n", "closure_screening")  # the worker polls again by itself


async def test_a_report_retried_after_it_was_applied_answers_its_outcome(stack: Stack, pid: str):
    """A client whose report got a 503 (or a lost answer) sends it again, same key, same
    body; by then the workflow has applied it. The answer must be the first outcome, as
    for any other action (the closure screening above), not a refusal."""
    http = stack.http
    await start_parcel(http, facts(pid, enterprise_closed=False, industry="other", polluter=None))
    investigation = await prepare(http, pid, 0, report(CLEAN_SAMPLES))
    first = await perform(http, investigation)
    again = await http.post(
        investigation.url, json=investigation.json, headers=investigation.headers
    )
    assert (again.status_code, again.json()) == (200, first), (
        "the same investigation_report (same Idempotency-Key and body) after it was applied"
    )
    assert taken(await read_parcel(http, pid), "investigation_report") == 1
