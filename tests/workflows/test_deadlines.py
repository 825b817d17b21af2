"""Deadlines are durable timers: months pass in seconds on the time-skipping server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from landflow import registry, visibility
from tests.conftest import api_client
from tests.helpers import CLEAN_SAMPLES, REPORT, act, auth, facts, get, start


async def test_investigation_deadline_reminds_escalates_and_clears(skipping, webhook, pid):
    env, settings = skipping
    async with api_client(settings, env.client) as api:
        started = await start(api, facts(pid, enterprise_closed=False, industry="other"))
        assert (started["stage"], started["waiting_on"]) == ("investigation", "reserve_agency")
        deadline = datetime.fromisoformat(started["deadline"])
        entered = datetime.now(UTC)  # the test server's clock starts at real time
        assert timedelta(days=179) < deadline - entered < timedelta(days=181)  # policy: 180

        await env.sleep(timedelta(days=155))  # the reminder goes 30 days before
        engine = registry.make_engine(settings.database_url)
        with Session(engine) as session:
            kinds = [n.kind for n in registry.notices_for(session, parcel_id=pid)]
        assert kinds == ["reminder"]
        assert (await get(api, pid))["overdue"] is False

        await env.sleep(timedelta(days=30))  # past the deadline
        parcel = await get(api, pid)
        assert parcel["overdue"] is True
        with Session(engine) as session:
            notices = registry.notices_for(session, parcel_id=pid)
            row = session.get(registry.ParcelRow, pid)
            assert row is not None and row.overdue
        assert [n.kind for n in notices] == ["reminder", "escalation"]
        # the same notices went out to the configured webhook, keyed for idempotency
        posted = webhook.notices(pid)
        assert [(key, body["kind"]) for key, body in posted] == [(n.key, n.kind) for n in notices]
        assert posted[1][1]["escalate_to"] == "city_epb"
        assert notices[1].escalate_to == "city_epb" and notices[1].step == "investigation"
        overdue = await api.get("/parcels", params={"overdue": "true"}, headers=auth("ops"))
        assert pid in [p["parcel_id"] for p in overdue.json()["parcels"]]

        report = {**REPORT, "samples": CLEAN_SAMPLES}
        parcel = await act(api, pid, "investigation_report", report, "reserve_agency")
        assert parcel["overdue"] is False
        assert (parcel["stage"], parcel["waiting_on"]) == ("filing", "city_epb")
        with Session(engine) as session:
            row = session.get(registry.ParcelRow, pid)
            assert row is not None and not row.overdue and row.waiting_on == "city_epb"
        desc = await env.client.get_workflow_handle(f"parcel-{pid}").describe()
        assert desc.typed_search_attributes.get(visibility.OVERDUE) is False
