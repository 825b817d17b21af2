"""Notices (reminders, escalations, publications): a log line, a registry row, a webhook."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity

from landflow.messages import LOAD_POLICY, NOTIFY, Notice, PolicyRequest
from landflow.policy import Policy
from registry import writes
from rules.policy_file import load_policy


class NoticeActivities:
    def __init__(
        self,
        policy_file: Path,
        engine: Engine,
        webhook_url: str = "",
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.policy_file, self.engine = policy_file, engine
        self.webhook_url, self.http = webhook_url, http
        self._parsed: tuple[tuple[int, int, int], Policy] | None = None

    @activity.defn(name=LOAD_POLICY.name)
    async def load_policy(self, _request: PolicyRequest) -> Policy:
        return await asyncio.to_thread(self._policy)

    def _policy(self) -> Policy:
        """The policy file as it is now; parsed again only when it changed (every parcel
        start asks, and parsing the YAML cost more than the rest of the activity)."""
        stat = self.policy_file.stat()
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if self._parsed is None or self._parsed[0] != key:
            self._parsed = (key, load_policy(self.policy_file))
        return self._parsed[1]

    def _record(self, notice: Notice) -> bool:
        with Session(self.engine) as session:
            return writes.add_notice(session, notice=notice)

    @activity.defn(name=NOTIFY.name)
    async def notify(self, notice: Notice) -> None:
        first = await asyncio.to_thread(self._record, notice)
        owed = (
            f": {notice.role.value} owes {notice.step.value}" if notice.step and notice.role else ""
        )
        activity.logger.warning(
            "%s%s%s",
            notice.kind,
            owed,
            f" by {notice.deadline.isoformat()}" if notice.deadline else "",
            extra={"parcel_id": notice.parcel_id, "notice": notice.key, "first": first},
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
