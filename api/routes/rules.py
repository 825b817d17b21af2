"""The rules: the catalogue, a dry-run over parcel facts, and a parcel's recorded decisions.

The dry-run decides what `rules.sequence.dry_run` decides: the points of the procedure
in the order a parcel meets them (landflow/procedure.py, RULE_SEQUENCE), as far as the
context supplies the steps' results, plus any rule listed in `context.include`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from api.deps import Caller, SessionDep
from api.errors import ApiError, not_found
from api.schemas import DecisionOut, ParcelDecisionsOut, error_responses
from landflow.bodies import (
    Evaluation,
    ResponsibilityDetermination,
    RiskAssessmentReport,
    SoilTransport,
)
from landflow.decisions import Decision
from landflow.facts import LongText, ParcelFacts, Sample, Strict
from registry import queries
from rules import gb_standards
from rules.engine import RulesEngine
from rules.sequence import dry_run

router = APIRouter(tags=["rules"])


RuleId = Literal["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "R11"]


class DryRunContext(Strict):
    """The results of the steps the dry-run should walk through (each optional)."""

    suspected_file: bool = Field(
        default=False, description="the district EPB opened a suspected-parcel file (R1)"
    )
    determination: ResponsibilityDetermination | None = Field(
        default=None, description="the responsibility determination (R4, Law 48)"
    )
    risk_assessment: RiskAssessmentReport | None = Field(
        default=None, description="the reviewed risk assessment (R11, and R8's targets)"
    )
    transport: SoilTransport | None = Field(default=None, description="soil to move off site (R7)")
    evaluation: Evaluation | None = Field(default=None, description="an effect evaluation (R8)")
    evaluator: str = Field(default="", max_length=40, description="the evaluator's party id (R8)")
    contractors: list[str] = Field(
        default_factory=list, max_length=20, description="contractor ids"
    )
    include: list[RuleId] = Field(
        default_factory=list, max_length=11, description="rules to evaluate in any case"
    )


class DryRunRequest(ParcelFacts):
    """Parcel facts as for POST /parcels (id, name and area may be left out), with the
    investigation's samples."""

    parcel_id: str = Field(
        default="dry-run", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )
    name: str = Field(default="dry-run", min_length=1, max_length=500)
    area_m2: float = Field(default=1.0, gt=0, le=1e9)
    samples: list[Sample] = Field(default_factory=list, max_length=5000)
    ph: float | None = Field(default=None, ge=0, le=14)
    farmland_type: Literal["paddy", "orchard", "other"] | None = None
    notes: str = LongText()
    context: DryRunContext = Field(default_factory=DryRunContext)


class DryRunOut(BaseModel):
    decisions: list[Decision]


class RuleRow(BaseModel):
    id: str
    when: dict[str, Any]
    outcome: str
    citation: str
    because: str
    law_over_plan: str | None = None


class RuleOut(BaseModel):
    id: str
    name: str
    version: int
    statement: dict[str, str]
    citation: str
    inputs: dict[str, list[Any]]
    outcomes: list[str]
    hit_policy: str
    rows: list[RuleRow]
    ruleset: str


class CatalogueOut(BaseModel):
    rules: list[RuleOut]


def _engine(request: Request) -> RulesEngine:
    return request.app.state.rules


@router.get("/rules", response_model=CatalogueOut, responses=error_responses(401))
async def catalogue(_caller: Caller, request: Request) -> CatalogueOut:
    """Every rule: id, statement (zh/en), citation, version, and its rows."""
    return CatalogueOut.model_validate({"rules": _engine(request).catalogue()})


def _sample_problems(facts: DryRunRequest) -> list[dict[str, Any]]:
    """One field per bad sample value, all at once (nothing is evaluated from a partial list)."""
    problems = gb_standards.sample_problems([s.model_dump() for s in facts.samples])
    return [
        {
            "field": f"samples[{p['index']}].{p['field']}" if p["index"] is not None else "samples",
            "value": p["value"],
            "reason": p["reason"],
        }
        for p in problems
    ]


@router.post("/rules/evaluate", response_model=DryRunOut, responses=error_responses(401, 422))
def evaluate(body: DryRunRequest, _caller: Caller, request: Request) -> DryRunOut:
    """Dry-run: what the rules decide for these facts now, starting no workflow."""
    problems = _sample_problems(body)
    if problems:
        listed = "; ".join(f"{p['field']}={p['value']!r}: {p['reason']}" for p in problems)
        raise ApiError(422, "InvalidBody", f"unknown items or units: {listed}", problems)
    if body.samples and body.current_use == "farmland" and body.ph is None:
        reason = "required to classify farmland samples (GB 15618)"
        raise ApiError(422, "InvalidBody", f"ph is {reason}", [{"field": "ph", "reason": reason}])
    facts = body.model_dump(
        mode="json",
        exclude_unset=True,
        exclude={"context", "samples", "ph", "farmland_type", "notes"},
    )
    context: dict[str, Any] = body.context.model_dump(
        mode="json", exclude={"include"}, exclude_none=True
    )
    context.update(
        samples=[s.model_dump() for s in body.samples], ph=body.ph, farmland_type=body.farmland_type
    )
    if body.context.determination:
        determination = body.context.determination
        context["determination"] = {"determination": determination.outcome}
        if determination.polluter:
            context["determination"]["determined_polluter"] = determination.polluter.model_dump(
                mode="json"
            )
    engine = _engine(request)
    try:
        made = dry_run(engine, facts, context)
        asked = [r for r in body.context.include if r not in {d.rule for d in made}]
        made += [
            engine.evaluate(rule, facts, context, decision_id=f"dry-run/{rule}/1") for rule in asked
        ]
    except ValueError as exc:
        raise ApiError(
            422,
            "InvalidBody",
            f"a rule cannot decide: {exc}",
            [{"field": "body", "reason": str(exc)}],
        ) from exc
    return DryRunOut(decisions=made)


@router.get(
    "/parcels/{parcel_id}/decisions",
    response_model=ParcelDecisionsOut,
    responses=error_responses(401, 404, 422),
)
def parcel_decisions(
    parcel_id: Annotated[str, Path(min_length=1, max_length=64)],
    _caller: Caller,
    session: SessionDep,
    run: Annotated[str | None, Query(max_length=64, description="a registration's run id")] = None,
) -> ParcelDecisionsOut:
    """Every decision of the parcel's current registration (or of `run`), oldest first."""
    row = queries.current_run(session, parcel_id=parcel_id)
    run_id = run or (row.run_id if row else None)
    runs = {r.run_id for r in queries.runs_of(session, parcel_id=parcel_id)}
    if run_id is None or run_id not in runs:
        raise not_found(f"parcel {parcel_id}" + (f" run {run}" if run else ""))
    rows = queries.decisions_for(session, run_id=run_id)
    return ParcelDecisionsOut(
        parcel_id=parcel_id,
        run_id=run_id,
        decisions=[
            DecisionOut.model_validate(
                {**r.model_dump(), "id": r.decision_id, "evaluated_at": r.evaluated_at}
            )
            for r in rows
        ],
    )
