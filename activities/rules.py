"""Rule decisions: evaluated by the durable-rules host, recorded in the registry.

The decisions are the activity's result, so the workflow history holds them; the
registry rows (keyed by the ids the workflow numbered) are a copy for lists and search.
Samples come by reference: the activity reads them from the document store, so the
history holds their digest once, not a copy per decision.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from documents.store import DocumentStore, NotStored
from landflow.messages import DECIDE, DecideRequest, DecideResult
from registry import writes
from rules.engine import RulesEngine
from rules.sequence import decide_point


def load_samples(store: DocumentStore, sha256: str) -> list[dict[str, Any]]:
    """Samples stored once as canonical JSON (api/normalise.py writes them)."""
    with store.open(sha256) as stream:
        samples = json.loads(stream.read())
    if not isinstance(samples, list):
        raise ValueError(f"blob {sha256} holds no sample list")
    return samples


class RulesActivities:
    def __init__(self, rules: RulesEngine, engine: Engine, store: DocumentStore) -> None:
        self.rules, self.engine, self.store = rules, engine, store

    def _decide(self, request: DecideRequest) -> DecideResult:
        context = dict(request.context)
        try:
            if request.samples is not None:
                context["samples"] = load_samples(self.store, request.samples.sha256)
            numbers = dict(request.first_number)

            def number(rule: str) -> str:
                n = numbers.get(rule, 1)
                numbers[rule] = n + 1
                return f"{request.parcel_id}/{request.run_id}/{rule}/{n}"

            decisions = decide_point(
                self.rules,
                request.point,
                request.facts,
                decided=request.decided,
                context=context,
                decision_id=number,
            )
        except NotStored as exc:  # retryable: the store may be catching up (S3)
            raise ApplicationError(
                f"samples not in the document store: {exc}", type="NotStored"
            ) from exc
        except (KeyError, ValueError) as exc:
            raise ApplicationError(
                f"rules at {request.point.value} cannot decide: {exc}",
                type="RuleError",
                non_retryable=True,
            ) from exc
        with Session(self.engine) as session:
            writes.add_decisions(
                session, run_id=request.run_id, parcel_id=request.parcel_id, decisions=decisions
            )
        return DecideResult(decisions=decisions)

    @activity.defn(name=DECIDE.name)
    async def decide(self, request: DecideRequest) -> DecideResult:
        result = await asyncio.to_thread(self._decide, request)
        for decision in result.decisions:
            activity.logger.info(
                "decision %s %s (%s)",
                decision.rule,
                decision.outcome,
                decision.citation,
                extra={"parcel_id": request.parcel_id, "rule": decision.rule, "row": decision.row},
            )
        return result
