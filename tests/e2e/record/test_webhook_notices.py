"""Notices reach the bureau's webhook: the reminder and the escalation of a closure
screening nobody answers (60 days, reminded 14 days before; policy.yaml, BJ 16) are POSTed
once each, with the notice's key as Idempotency-Key, on the time-skipping stack with the
real worker and activities (tests/conftest.py `skipping`, `webhook`)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from bench.fixtures import api_client, facts
from landflow.settings import Settings
from tests.helpers import WebhookReceiver, start


async def test_the_reminder_and_the_escalation_are_posted_once_with_their_keys(
    skipping: tuple[WorkflowEnvironment, Settings], webhook: WebhookReceiver, pid: str
) -> None:
    env, settings = skipping
    async with api_client(settings, env.client) as api:
        started = await start(api, facts(pid))
    assert started["stage"] == "closure_screening", started

    await env.sleep(timedelta(days=50))  # past the reminder (day 46), before the deadline
    reminders = webhook.notices(pid)
    assert [body["kind"] for _, body in reminders] == ["reminder"], reminders

    await env.sleep(timedelta(days=15))  # past the deadline (day 60)
    posted = webhook.notices(pid)
    assert [body["kind"] for _, body in posted] == ["reminder", "escalation"], posted
    for key, body in posted:
        assert key == body["key"]
        assert body["step"] == "closure_screening" and body["role"] == "district_epb"
    assert posted[1][1]["escalate_to"] == "city_epb"
