"""Registry writes: the parcel row and the two public lists (idempotent)."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity

from landflow import registry
from landflow.contracts import ListChange, RegistryUpdate


class RegistryActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _write(self, fn, **kwargs) -> None:
        with Session(self.engine) as session:
            fn(session, **kwargs)

    @activity.defn(name="sync_registry")
    async def sync_registry(self, update: RegistryUpdate) -> None:
        await asyncio.to_thread(self._write, registry.upsert_parcel, update=update)

    @activity.defn(name="change_lists")
    async def change_lists(self, change: ListChange) -> None:
        await asyncio.to_thread(self._write, registry.change_lists, change=change)
        activity.logger.info(
            "lists %s",
            change.change,
            extra={"parcel_id": change.parcel_id, "reason": change.reason},
        )
