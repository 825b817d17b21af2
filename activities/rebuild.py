"""The registry rebuild as an activity: the registry is written only by activities."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client

from documents.store import DocumentStore
from landflow.messages import REBUILD, RebuildRequest, RebuildSummary
from registry import queries, writes
from registry.rebuild import reconcile

RECONCILED = "reconcile"  # registry_status key: when the last periodic pass began


def reconcile_since(session: Session, now: datetime, hours: float) -> datetime:
    """From when a periodic reconcile looks for abnormally ended parcels: its window, or
    back to the start of the last pass that succeeded when that is older (a worker down
    for longer than the window would otherwise leave ended parcels in the inboxes)."""
    window = now - timedelta(hours=hours)
    last = queries.status(session, key=RECONCILED)
    if last is None or last.value != "done":
        return window
    try:
        began = datetime.fromisoformat(last.detail)
    except ValueError:
        return window
    return min(window, began - timedelta(minutes=1))


class RebuildActivities:
    def __init__(self, client: Client, engine: Engine, store: DocumentStore) -> None:
        self.client, self.engine, self.store = client, engine, store

    def _status(self, value: str, detail: str) -> None:
        self._set("rebuild", value, detail)

    def _set(self, key: str, value: str, detail: str) -> None:
        with Session(self.engine) as session:
            writes.set_status(session, key=key, value=value, detail=detail)

    def _since(self, now: datetime, hours: float) -> datetime:
        with Session(self.engine) as session:
            return reconcile_since(session, now, hours)

    @activity.defn(name=REBUILD.name)
    async def rebuild(self, request: RebuildRequest) -> RebuildSummary:
        partial = request.closed_within_hours is not None
        began = datetime.now(UTC)
        since = (
            await asyncio.to_thread(self._since, began, request.closed_within_hours)
            if request.closed_within_hours is not None
            else None
        )
        if request.write and not partial:
            self._status("running", request.reason or "asked")
        done = 0

        def progress(_parcel_id: str) -> None:
            nonlocal done
            done += 1
            activity.heartbeat(done)

        report = await reconcile(
            self.client,
            self.engine,
            self.store,
            write=request.write,
            closed_since=since,
            progress=progress,
        )
        if request.write and not partial:
            self._status(
                "done", f"{report.registrations} registrations of {report.parcels} parcels"
            )
        if request.write and partial:  # the next pass reaches back to this one's start
            await asyncio.to_thread(
                self._set, RECONCILED, "done", began.isoformat(timespec="seconds")
            )
        activity.logger.info(
            "registry %s: %d parcels, %d registrations, %d differences",
            "rebuilt" if request.write else "verified",
            report.parcels,
            report.registrations,
            len(report.differences),
        )
        return RebuildSummary(
            parcels=report.parcels,
            registrations=report.registrations,
            differences=len(report.differences),
            unknown_runs=len(report.unknown_runs),
            sample=(report.differences + [f"unknown run {r}" for r in report.unknown_runs])[:100],
        )
