"""Rule decisions: evaluated by the durable-rules host, recorded in the registry.

The decision is the activity result, so the workflow history holds it; the registry
row (keyed by the decision id the workflow chose) is a copy for listing and search.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from landflow import registry
from landflow.contracts import DecideInput, Decision
from rules.engine import RulesEngine


class RulesActivities:
    def __init__(self, rules: RulesEngine, engine: Engine) -> None:
        self.rules = rules
        self.engine = engine

    def _decide(self, request: DecideInput) -> Decision:
        try:
            decision = self.rules.evaluate(
                request.rule, request.facts, request.context, decision_id=request.decision_id
            )
        except (KeyError, ValueError) as exc:
            raise ApplicationError(
                f"rule {request.rule} cannot decide: {exc}", type="RuleError", non_retryable=True
            ) from exc
        with Session(self.engine) as session:
            registry.add_decision(session, parcel_id=request.parcel_id, decision=decision)
        return decision

    @activity.defn(name="decide")
    async def decide(self, request: DecideInput) -> Decision:
        decision = await asyncio.to_thread(self._decide, request)
        activity.logger.info(
            "decision %s %s (%s)",
            decision.rule,
            decision.outcome,
            decision.citation,
            extra={"parcel_id": request.parcel_id, "rule": decision.rule, "row": decision.row},
        )
        return decision
