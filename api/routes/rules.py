"""The rules: the catalogue, a dry-run over parcel facts, and a parcel's recorded decisions.

Which rules a dry-run evaluates, in this order (the order the workflow meets them):

- R3 closure screening and R6 demolition filing: always;
- R1 investigation required: always (`context.suspected_file` stands in for the EPB's
  screening result, false unless sent); R2 investigator: when R1 says `required`;
- R5 construction-land risk (GB 36600): when samples are given and the current use is
  not farmland; R9 focus indicators: whenever samples are given;
- R10 farmland class (GB 15618): when the current use is farmland and samples are given
  (then `ph` is required);
- R4 remediator: when R5 says `control_or_remediation`, or when asked for;
- R7 soil transport: when `context.transport` is given, or asked for;
- R8 effect evaluation: when `context.evaluation` is given, or asked for.

"Asked for" means listed in `context.include`. A dry-run starts no workflow and writes
nothing: its decisions are what the rules would decide now, on the current versions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field, field_validator

from api.deps import Caller, SessionDep
from api.errors import ApiError, not_found
from api.schemas import error_responses
from landflow import registry
from landflow.contracts import Decision, Evaluation, ParcelFacts, SoilTransport, Strict
from landflow.registry import DecisionRow, ParcelRow, aware
from rules import gb_standards
from rules.engine import RulesEngine

router = APIRouter(tags=["rules"])


RuleId = Literal["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10"]


class DryRunContext(Strict):
    suspected_file: bool = Field(
        default=False, description="the district EPB has opened a suspected-parcel file (R1)"
    )
    transport: SoilTransport | None = Field(default=None, description="soil to move off site (R7)")
    evaluation: Evaluation | None = Field(default=None, description="an effect evaluation (R8)")
    contractor: str = Field(default="", max_length=500, description="the remediation contractor")
    include: list[RuleId] = Field(
        default_factory=list, max_length=10, description="rules to evaluate in any case"
    )


class DryRunRequest(ParcelFacts):
    """Parcel facts as for POST /parcels (the id, name and area may be left out)."""

    parcel_id: str = Field(
        default="dry-run", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )
    name: str = Field(default="dry-run", min_length=1, max_length=500)
    area_m2: float = Field(default=1.0, gt=0, le=1e9)
    context: DryRunContext = Field(default_factory=DryRunContext)

    @field_validator("samples")
    @classmethod
    def _samples_known(cls, samples: list[Any]) -> list[Any]:
        # Replaces ParcelFacts' check: the route reports each bad sample as its own field.
        return samples


class DryRunOut(BaseModel):
    decisions: list[Decision]


class RuleRow(BaseModel):
    id: str
    when: dict[str, Any]
    outcome: str
    citation: str
    because: str


class RuleOut(BaseModel):
    id: str
    name: str
    version: int
    statement: dict[str, str]
    citation: str
    inputs: dict[str, list[Any]]
    outcomes: list[str]
    rows: list[RuleRow]
    ruleset: str


class CatalogueOut(BaseModel):
    rules: list[RuleOut]


class ParcelDecisionsOut(BaseModel):
    parcel_id: str
    decisions: list[Decision]


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


class _DryRun:
    """Decides rules one by one over the same facts, keeping what each decided."""

    def __init__(self, engine: RulesEngine, facts: dict[str, Any]) -> None:
        self.engine, self.facts = engine, facts
        self.made: dict[str, Decision] = {}

    def decide(self, rule: str, **context: Any) -> Decision:
        try:
            decision = self.engine.evaluate(
                rule, self.facts, context, decision_id=f"dry-run/{rule}"
            )
        except ValueError as exc:
            raise ApiError(
                422,
                "InvalidBody",
                f"{rule} cannot decide: {exc}",
                [{"field": rule, "reason": str(exc)}],
            ) from exc
        self.made[rule] = decision
        return decision


@router.post("/rules/evaluate", response_model=DryRunOut, responses=error_responses(401, 422))
def evaluate(body: DryRunRequest, _caller: Caller, request: Request) -> DryRunOut:
    """Dry-run: what the rules decide for these facts now, starting no workflow.

    Which rules apply is described at the top of api/routes/rules.py: R3, R6, R1 (and R2
    if an investigation is required) always; R5 and R9 with construction-land samples;
    R10 with farmland samples (and pH); R4 when R5 finds control or remediation needed;
    R7/R8 with a transport/evaluation; anything listed in `context.include`.
    """
    problems = _sample_problems(body)
    if problems:
        listed = "; ".join(f"{p['field']}={p['value']!r}: {p['reason']}" for p in problems)
        raise ApiError(422, "InvalidBody", f"unknown items or units: {listed}", problems)
    facts = body.model_dump(mode="json", exclude_unset=True, exclude={"context"})
    context, asked = body.context, set(body.context.include)
    samples, farmland = bool(body.samples), body.current_use == "farmland"
    if samples and farmland and body.ph is None:
        reason = "required to classify farmland samples (GB 15618)"
        raise ApiError(422, "InvalidBody", f"ph is {reason}", [{"field": "ph", "reason": reason}])

    run = _DryRun(_engine(request), facts)
    run.decide("R3")
    run.decide("R6")
    investigation = run.decide("R1", suspected_file=context.suspected_file)
    if investigation.outcome == "required" or "R2" in asked:
        run.decide("R2")
    risk = run.decide("R5") if (samples and not farmland) or "R5" in asked else None
    if samples or "R9" in asked:
        run.decide("R9")
    if (samples and farmland) or "R10" in asked:
        run.decide("R10")
    if (risk and risk.outcome == "control_or_remediation") or "R4" in asked:
        run.decide("R4")
    if context.transport or "R7" in asked:
        run.decide("R7", transport=context.transport.model_dump() if context.transport else None)
    if context.evaluation or "R8" in asked:
        evaluation = context.evaluation.model_dump() if context.evaluation else None
        run.decide("R8", evaluation=evaluation, contractor=context.contractor)
    return DryRunOut(decisions=list(run.made.values()))


def _decision(row: DecisionRow) -> Decision:
    data = row.model_dump(exclude={"decision_id", "parcel_id"})
    return Decision(id=row.decision_id, **{**data, "evaluated_at": aware(row.evaluated_at)})


@router.get(
    "/parcels/{parcel_id}/decisions",
    response_model=ParcelDecisionsOut,
    responses=error_responses(401, 404, 422),
)
def parcel_decisions(
    parcel_id: Annotated[str, Path(min_length=1, max_length=64)],
    _caller: Caller,
    session: SessionDep,
) -> ParcelDecisionsOut:
    """Every decision recorded for a parcel in the registry, oldest first."""
    if session.get(ParcelRow, parcel_id) is None:
        raise not_found(f"parcel {parcel_id}")
    rows = registry.decisions_for(session, parcel_id=parcel_id)
    return ParcelDecisionsOut(parcel_id=parcel_id, decisions=[_decision(r) for r in rows])
