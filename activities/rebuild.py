"""The registry rebuild as an activity: the registry is written only by activities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client

from documents.store import DocumentStore
from landflow.messages import REBUILD, RebuildRequest, RebuildSummary
from registry import writes
from registry.rebuild import reconcile


class RebuildActivities:
    def __init__(self, client: Client, engine: Engine, store: DocumentStore) -> None:
        self.client, self.engine, self.store = client, engine, store

    def _status(self, value: str, detail: str) -> None:
        with Session(self.engine) as session:
            writes.set_status(session, key="rebuild", value=value, detail=detail)

    @activity.defn(name=REBUILD.name)
    async def rebuild(self, request: RebuildRequest) -> RebuildSummary:
        partial = request.closed_within_hours is not None
        since = (
            datetime.now(UTC) - timedelta(hours=request.closed_within_hours)
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
