"""A rule decision: what the rule saw, what it decided, and on what authority."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Decision(BaseModel):
    """The full record, as the `decide` activity returns it (and the history keeps it).

    `inputs` are the few values the table read; large inputs (samples) appear as their
    digest and count, with the items that matter (exceedances) in `details`."""

    id: str
    rule: str
    version: int
    row: str
    outcome: str
    citation: str
    explanation: str
    inputs: dict[str, Any]
    details: dict[str, Any] = Field(default_factory=dict)
    # Where the 2016 plan and the 2019 law differ, the row says which it applied and why.
    law_over_plan: str | None = None
    evaluated_at: datetime

    def brief(self) -> DecisionBrief:
        return DecisionBrief(
            id=self.id,
            rule=self.rule,
            version=self.version,
            row=self.row,
            outcome=self.outcome,
            citation=self.citation,
            explanation=self.explanation,
            law_over_plan=self.law_over_plan,
            details={k: v for k, v in self.details.items() if k in BRIEF_DETAILS},
            evaluated_at=self.evaluated_at,
        )


# The details the procedure branches on, kept in the workflow state; the rest stays in
# the decision's activity result in the history.
BRIEF_DETAILS = frozenset(
    {
        "party_role",
        "party_id",
        "party_name",
        "land_class",
        "report_to",
        "listed",
        "key_pollutants",
        "real_estate_registry",
    }
)


class DecisionBrief(BaseModel):
    """A decision as the workflow state keeps it: small, with a pointer to the full record."""

    id: str
    rule: str
    version: int
    row: str
    outcome: str
    citation: str
    explanation: str
    law_over_plan: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    evaluated_at: datetime
