"""Deadline policy, reminders and escalations: a log line, a registry row, a webhook."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity

from landflow import registry
from landflow.contracts import DeadlineNotice, Policy
from landflow.policy import load_policy


class DeadlineActivities:
    def __init__(
        self,
        policy_file: Path,
        engine: Engine,
        webhook_url: str = "",
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.policy_file = policy_file
        self.engine = engine
        self.webhook_url = webhook_url
        self.http = http

    @activity.defn(name="load_policy")
    async def load_policy(self) -> Policy:
        return await asyncio.to_thread(load_policy, self.policy_file)

    def _record(self, notice: DeadlineNotice) -> bool:
        with Session(self.engine) as session:
            return registry.add_notice(session, notice=notice)

    @activity.defn(name="notify_deadline")
    async def notify_deadline(self, notice: DeadlineNotice) -> None:
        recorded = await asyncio.to_thread(self._record, notice)
        activity.logger.warning(
            "%s: %s owes %s by %s%s",
            notice.kind,
            notice.role.value,
            notice.step.value,
            notice.deadline.isoformat(),
            f", escalated to {notice.escalate_to.value}" if notice.escalate_to else "",
            extra={"parcel_id": notice.parcel_id, "notice": notice.key, "first": recorded},
        )
        if self.webhook_url and self.http is not None:
            # The key travels as Idempotency-Key so the receiver can drop a retried POST.
            response = await self.http.post(
                self.webhook_url,
                json=notice.model_dump(mode="json"),
                headers={"Idempotency-Key": notice.key},
                timeout=10,
            )
            response.raise_for_status()
