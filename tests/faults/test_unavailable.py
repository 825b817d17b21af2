"""The API stays up while the worker or Temporal is down: 503 in time, then success,
and an action retried with its Idempotency-Key is applied once."""

from __future__ import annotations

import signal
import time
from typing import Any

import httpx
import pytest

from api.app import create_app
from tests.faults.conftest import MakeStack
from tests.faults.procs import eventually
from tests.helpers import REPORT, act, auth, clean_facts, facts, get, start

pytestmark = pytest.mark.faults

TIMEOUT_S = 3.0
SLACK_S = 2.0  # event loop and a busy 2-core machine


async def timed(call) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = await call
    return response, time.monotonic() - began


def assert_unavailable(response: httpx.Response, took: float) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "Unavailable"
    assert "Idempotency-Key" in body["detail"] and "did not answer in time" in body["detail"]
    assert took < TIMEOUT_S + SLACK_S, f"answered after {took:.1f}s, timeout is {TIMEOUT_S}s"


def post_action(
    api: httpx.AsyncClient, pid: str, action: str, body: dict[str, Any], role: str, key: str
):
    return api.post(
        f"/parcels/{pid}/actions/{action}",
        json=body,
        headers={**auth(role), "Idempotency-Key": key},
    )


async def until_applied(
    api: httpx.AsyncClient,
    pid: str,
    action: str,
    body: dict[str, Any],
    role: str,
    key: str,
    within_s: float = 60,
) -> dict[str, Any]:
    """Retry as a client should: same Idempotency-Key, while the answer is 503.

    Right after a worker restart an action can still time out: the workflow's next task
    waits out the dead worker's sticky queue (5 s) before the new worker gets it."""
    give_up = time.monotonic() + within_s
    while True:
        response = await post_action(api, pid, action, body, role, key)
        if response.status_code != 503 or time.monotonic() > give_up:
            assert response.status_code == 200, response.text
            return response.json()


async def reaches(api: httpx.AsyncClient, pid: str, stage: str) -> None:
    async def there() -> bool:
        response = await api.get(f"/parcels/{pid}", headers=auth("auditor"))
        return response.status_code == 200 and response.json()["stage"] == stage

    await eventually(there, f"{pid} reaches {stage}", 60, 0.5)


def taken(parcel: dict[str, Any], action: str) -> int:
    return sum(1 for a in parcel["actions"] if a["action"] == action)


async def test_worker_down_answers_503_then_applies_the_action_once(make_stack: MakeStack, pid):
    stack = await make_stack(action_timeout_s=TIMEOUT_S)
    api = stack.api
    await start(api, facts(pid))
    stack.worker.stop(signal.SIGKILL)

    screening = {"result": "suspected", "notes": "焦油残留"}
    screen = ("closure_screening", screening, "district_epb", f"{pid}-1")
    for _ in range(2):  # the client retries while the worker is away
        response, took = await timed(post_action(api, pid, *screen))
        assert_unavailable(response, took)
    response, took = await timed(api.get(f"/parcels/{pid}", headers=auth("auditor")))
    assert_unavailable(response, took)  # a query needs a worker too
    # a new parcel is started (durable) though no worker picks it up yet
    response, took = await timed(
        api.post("/parcels", json=clean_facts(f"{pid}c"), headers=auth("reserve_agency"))
    )
    assert response.status_code == 201, response.text
    assert response.json()["stage"] == "intake" and took < TIMEOUT_S + SLACK_S
    # the registry does not need Temporal at all
    listing = await api.get("/parcels", params={"stage": "closure_screening"}, headers=auth("ops"))
    assert pid in [p["parcel_id"] for p in listing.json()["parcels"]]

    stack.worker.start()
    await stack.worker.polling()
    first = await until_applied(api, pid, *screen)
    again = await until_applied(api, pid, *screen)
    assert first == again
    parcel = await get(api, pid)
    assert taken(parcel, "closure_screening") == 1
    assert (parcel["stage"], parcel["waiting_on"]) == ("investigation", "reserve_agency")
    assert [d["rule"] for d in parcel["decisions"]].count("R1") == 1
    # the same action with a new key is a new request: refused, the step is over
    await act(api, pid, "closure_screening", screening, "district_epb", expect=409)
    await reaches(api, f"{pid}c", "release")


async def test_temporal_down_answers_503_then_applies_the_action_once(make_stack: MakeStack, pid):
    stack = await make_stack(action_timeout_s=TIMEOUT_S)
    api = stack.api
    await start(api, facts(pid, enterprise_closed=False, industry="other", polluter=None))
    stack.server.stop(signal.SIGKILL)

    key = f"{pid}-report"
    response, took = await timed(
        post_action(api, pid, "investigation_report", REPORT, "reserve_agency", key)
    )
    assert_unavailable(response, took)
    response, took = await timed(api.get(f"/parcels/{pid}", headers=auth("auditor")))
    assert_unavailable(response, took)
    response, took = await timed(
        api.post("/parcels", json=facts(f"{pid}n"), headers=auth("reserve_agency"))
    )
    assert_unavailable(response, took)
    # an API started while Temporal is down connects lazily, and answers 503 meanwhile
    transport = httpx.ASGITransport(app=create_app(stack.settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://landflow") as fresh:
        response, took = await timed(
            fresh.post("/parcels", json=facts(f"{pid}n"), headers=auth("reserve_agency"))
        )
        assert_unavailable(response, took)

        stack.server.start()
        await stack.server.connect()
        await start(fresh, facts(f"{pid}n"))

    parcel = await until_applied(api, pid, "investigation_report", REPORT, "reserve_agency", key)
    assert (parcel["stage"], parcel["waiting_on"]) == ("filing", "city_epb")
    await until_applied(api, pid, "investigation_report", REPORT, "reserve_agency", key)
    parcel = await get(api, pid)
    assert taken(parcel, "investigation_report") == 1
    await reaches(api, f"{pid}n", "closure_screening")  # the worker polls again by itself
