"""Registry writes: the parcel's rows and the public lists (idempotent, keyed by run)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity

from landflow.messages import CHANGE_LIST, PROJECT, ListChange, ParcelProjection
from registry import writes


class RegistryActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _write(self, fn: Callable[..., Any], **kwargs: Any) -> None:
        with Session(self.engine) as session:
            fn(session, **kwargs)

    @activity.defn(name=PROJECT.name)
    async def project(self, projection: ParcelProjection) -> None:
        await asyncio.to_thread(self._write, writes.apply_projection, projection=projection)

    @activity.defn(name=CHANGE_LIST.name)
    async def change_list(self, change: ListChange) -> None:
        await asyncio.to_thread(self._write, writes.apply_list_change, change=change)
        activity.logger.info(
            "list %s %s",
            change.list_name,
            change.change,
            extra={"parcel_id": change.parcel_id, "reason": change.reason},
        )
