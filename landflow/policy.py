"""The policy a parcel runs under: deadlines, size limits, required documents, spot-checks.

The plan fixes calendar duties, not day counts per step (DOMAIN.md "Deadlines"), so
these are documented defaults in `policy.yaml` that an agency may change. A parcel
loads the policy in force when it starts, so its history records what applied to it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from landflow.documents import DocumentKind
from landflow.procedure import PROCEDURE
from landflow.vocabulary import Action, Role, Step


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepPolicy(_Closed):
    days: float = Field(gt=0)
    remind_days_before: float = Field(ge=0)
    escalate_to: Role

    @model_validator(mode="after")
    def _reminder_before_deadline(self) -> StepPolicy:
        if self.remind_days_before >= self.days:
            raise ValueError("remind_days_before must be less than days")
        return self


class HistoryBudget(_Closed):
    """Bounds on one parcel's history. Temporal warns at 10 MB / 10,240 events and stops a
    run at 50 MB / 51,200 events or 2,000 updates; a parcel continues as new well before."""

    continue_as_new_after_bytes: int = Field(default=4_000_000, gt=0)
    continue_as_new_after_events: int = Field(default=4_000, gt=0)
    continue_as_new_after_updates: int = Field(default=1_000, gt=0, le=1_900)
    max_run_bytes: int = Field(default=9_000_000, gt=0, description="refuse actions beyond")
    max_parcel_bytes: int = Field(default=500_000_000, gt=0, description="over all runs")


class Policy(_Closed):
    version: str
    steps: dict[Step, StepPolicy]
    body_limits: dict[str, int] = Field(
        default_factory=dict, description="bytes per action body; 'default' for the rest"
    )
    documents_required: dict[Action, list[DocumentKind]] = Field(default_factory=dict)
    public_document_kinds: list[DocumentKind] = Field(default_factory=list)
    spot_check_share: float = Field(default=0.2, ge=0, le=1)
    transport_notice_hours: float = Field(default=24, ge=0)
    max_samples: int = Field(default=5_000, gt=0, le=20_000)
    history: HistoryBudget = Field(default_factory=HistoryBudget)

    @model_validator(mode="after")
    def _complete(self) -> Policy:
        missing = sorted(set(PROCEDURE) - set(self.steps))
        if missing:
            raise ValueError(f"no deadline for steps {', '.join(missing)}")
        unknown = sorted(set(self.body_limits) - {"default", *Action})
        if unknown:
            raise ValueError(f"body_limits names unknown actions {', '.join(unknown)}")
        return self

    def body_limit(self, action: Action) -> int:
        return self.body_limits.get(str(action), self.body_limits.get("default", 65_536))

    def required_documents(self, action: Action) -> list[DocumentKind]:
        return self.documents_required.get(action, [])
