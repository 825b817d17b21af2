"""The first procedure's activities, under the names its histories carry, on today's
registry (keyed by run) and rules. `ParcelWorkflow` parcels finish through these."""

from __future__ import annotations

import asyncio

import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity

from landflow.decisions import Decision
from registry import queries, writes
from rules.engine import RulesEngine
from rules.policy_file import PolicyError
from workflows.legacy import contracts as legacy
from workflows.legacy import names
from workflows.legacy.convert import list_changes_of, notice_of, projection_of, registry_decision


def legacy_run_id() -> str:
    return activity.info().workflow_run_id or ""


class LegacyActivities:
    def __init__(self, rules: RulesEngine, engine: Engine) -> None:
        self.rules, self.engine = rules, engine

    @activity.defn(name=names.LOAD_POLICY)
    async def load_policy(self) -> legacy.Policy:
        def load() -> legacy.Policy:
            try:
                return legacy.Policy.model_validate(
                    yaml.safe_load(names.POLICY_FILE.read_text(encoding="utf-8"))
                )
            except (OSError, yaml.YAMLError, ValueError) as exc:
                raise PolicyError(f"{names.POLICY_FILE}: {exc}") from exc

        return await asyncio.to_thread(load)

    @activity.defn(name=names.DECIDE)
    async def decide(self, request: legacy.DecideInput) -> Decision:
        run_id = legacy_run_id()

        def decide() -> Decision:
            decision = self.rules.evaluate(
                request.rule, request.facts, request.context, decision_id=request.decision_id
            )
            with Session(self.engine) as session:
                writes.add_decisions(
                    session,
                    run_id=run_id,
                    parcel_id=request.parcel_id,
                    decisions=[registry_decision(decision, run_id)],
                )
            return decision

        return await asyncio.to_thread(decide)

    @activity.defn(name=names.SYNC_REGISTRY)
    async def sync_registry(self, update: legacy.RegistryUpdate) -> None:
        projection = projection_of(update, legacy_run_id())

        def write() -> None:
            with Session(self.engine) as session:
                writes.apply_projection(session, projection=projection)

        await asyncio.to_thread(write)

    @activity.defn(name=names.CHANGE_LISTS)
    async def change_lists(self, change: legacy.ListChange) -> None:
        run_id = legacy_run_id()

        def write() -> None:
            with Session(self.engine) as session:
                row = queries.current_run(session, parcel_id=change.parcel_id)
                name, district = (row.name, row.district) if row else ("", "")
                for item in list_changes_of(change, run_id, name, district):
                    writes.apply_list_change(session, change=item)

        await asyncio.to_thread(write)

    @activity.defn(name=names.NOTIFY_DEADLINE)
    async def notify_deadline(self, notice: legacy.DeadlineNotice) -> None:
        converted = notice_of(notice, legacy_run_id())

        def write() -> None:
            with Session(self.engine) as session:
                writes.add_notice(session, notice=converted)

        await asyncio.to_thread(write)
