"""The first procedure's activity inputs in today's shapes, for its activities and for the
registry rebuild (the same conversion both ways, so a rebuild equals what was written)."""

from __future__ import annotations

from datetime import datetime

from landflow.decisions import Decision
from landflow.messages import LEGACY_PARCEL_WORKFLOW, ListChange, Notice, ParcelProjection, TaskRow
from landflow.state import Disclosure, Parties
from landflow.vocabulary import DISTRICT_ROLES, Role, Stage
from workflows.legacy import contracts as legacy
from workflows.legacy.names import current_step


def _legacy_step(update: legacy.RegistryUpdate) -> legacy.Step:
    """Which first-procedure step a registry row stood for (its stage and waiting role)."""
    by_stage = {
        legacy.Stage.closure_screening: legacy.Step.closure_screening,
        legacy.Stage.investigation: legacy.Step.investigation,
        legacy.Stage.listing: legacy.Step.choose_path,
        legacy.Stage.remediation: legacy.Step.works,
        legacy.Stage.evaluation: legacy.Step.evaluation,
        legacy.Stage.release: legacy.Step.release,
    }
    if update.stage == legacy.Stage.filing:
        city = update.waiting_on == legacy.Role.city_epb
        return legacy.Step.filing_city_epb if city else legacy.Step.filing_planning_land
    if update.stage == legacy.Stage.risk_control:
        isolating = update.waiting_on == legacy.Role.land_user
        return legacy.Step.isolation if isolating else legacy.Step.monitoring
    return by_stage.get(update.stage, legacy.Step.release)


def projection_of(
    update: legacy.RegistryUpdate, run_id: str, started_at: datetime | None = None
) -> ParcelProjection:
    """A legacy registry row in today's shape (its one task from the waiting step)."""
    tasks = []
    released = update.stage == legacy.Stage.released
    if update.waiting_on is not None and update.deadline is not None and not released:
        role = Role(update.waiting_on.value)
        tasks.append(
            TaskRow(
                visit=0,
                step=current_step(_legacy_step(update)),
                stage=Stage(update.stage.value),
                role=role,
                district=update.district if role in DISTRICT_ROLES else None,
                deadline=update.deadline,
                overdue=update.overdue,
                blocking=True,
            )
        )
    return ParcelProjection(
        parcel_id=update.parcel_id,
        run_id=run_id,
        workflow_id=update.workflow_id,
        procedure=LEGACY_PARCEL_WORKFLOW,
        revision=int(update.updated_at.timestamp() * 1_000_000),  # workflow time only grows
        name=update.name,
        district=update.district,
        planned_use=update.planned_use,
        area_m2=0.0,
        stage=Stage(update.stage.value),
        status="released" if released else "running",
        listed=update.listed,
        overdue=update.overdue,
        deadline=update.deadline,
        waiting_on=[Role(update.waiting_on.value)] if update.waiting_on else [],
        tasks=tasks,
        parties=Parties(),
        disclosure=Disclosure(),
        started_at=started_at or update.updated_at,
        updated_at=update.updated_at,
    )


def list_changes_of(
    change: legacy.ListChange, run_id: str, name: str, district: str
) -> list[ListChange]:
    """The first procedure kept two lists at once: the contaminated and the negative list."""
    citation = "BJ 18; Law 58, 61" if change.change == "enter" else "Law 66"
    return [
        ListChange(
            parcel_id=change.parcel_id,
            run_id=run_id,
            list_name=list_name,
            change=change.change,
            at=change.at,
            reason=change.reason,
            citation=citation,
            name=name,
            district=district,
        )
        for list_name in ("contaminated", "negative")
    ]


def notice_of(notice: legacy.DeadlineNotice, run_id: str) -> Notice:
    return Notice(
        key=f"{run_id}/{notice.key}",  # the first procedure's keys repeat per registration
        parcel_id=notice.parcel_id,
        run_id=run_id,
        kind=notice.kind,
        district=notice.district,
        at=notice.at,
        step=current_step(notice.step),
        role=Role(notice.role.value),
        deadline=notice.deadline,
        escalate_to=Role(notice.escalate_to.value) if notice.escalate_to else None,
    )


def registry_decision(decision: Decision, run_id: str) -> Decision:
    """First-procedure ids (`<parcel>/<rule>/<n>`) repeat when an id is registered again:
    the registry keys them by run."""
    parcel_id, rule, number = decision.id.rsplit("/", 2)
    return decision.model_copy(update={"id": f"{parcel_id}/{run_id}/{rule}/{number}"})
