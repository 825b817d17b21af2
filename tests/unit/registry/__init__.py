"""Builders for the registry's tests: the messages activities write, with small defaults.

Shared by the unit tests (SQLite) and tests/integration/registry (PostgreSQL), which run
the same contract classes on another engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from landflow.decisions import Decision
from landflow.messages import ListChange, Notice, ParcelProjection, TaskRow, workflow_id
from landflow.state import Disclosure, Parties
from landflow.vocabulary import Role, Stage, Step
from registry.engine import make_engine
from registry.migrate import upgrade

T0 = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)
DISTRICT = "朝阳区"


def sqlite_engine(directory: Path) -> Iterator[Engine]:
    """A fresh registry file, migrated the way the API and worker migrate it."""
    engine = make_engine(f"sqlite:///{directory / 'registry.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def task(
    role: Role = Role.district_epb,
    *,
    step: Step = Step.closure_screening,
    stage: Stage = Stage.closure_screening,
    visit: int = 1,
    deadline: datetime = T0 + timedelta(days=30),
    district: str | None = None,
    party: str | None = None,
    overdue: bool = False,
    blocking: bool = True,
) -> TaskRow:
    return TaskRow(
        visit=visit,
        step=step,
        stage=stage,
        role=role,
        district=district,
        party=party,
        deadline=deadline,
        overdue=overdue,
        blocking=blocking,
    )


def projection(
    parcel_id: str,
    revision: int = 1,
    *,
    run_id: str | None = None,
    tasks: list[TaskRow] | None = None,
    started_at: datetime = T0,
    **overrides: Any,
) -> ParcelProjection:
    """A parcel in closure screening, owed by its district EPB; one task unless given."""
    fields: dict[str, Any] = {
        "parcel_id": parcel_id,
        "run_id": run_id or f"run-{parcel_id}",
        "workflow_id": workflow_id(parcel_id),
        "procedure": "law-2019",
        "revision": revision,
        "name": "原北京焦化厂",
        "district": DISTRICT,
        "planned_use": "residential",
        "area_m2": 1_400_000.0,
        "location": {"lat": 39.8865, "lon": 116.5214},
        "stage": Stage.closure_screening,
        "status": "running",
        "listed": False,
        "overdue": False,
        "deadline": T0 + timedelta(days=30),
        "waiting_on": [Role.district_epb],
        "tasks": [task(district=overrides.get("district", DISTRICT))] if tasks is None else tasks,
        "parties": Parties(),
        "disclosure": Disclosure(),
        "started_at": started_at,
        "updated_at": started_at + timedelta(hours=revision),
    }
    return ParcelProjection(**(fields | overrides))


def list_change(
    parcel_id: str,
    change: str = "enter",
    at: datetime = T0,
    *,
    list_name: str = "contaminated",
    run_id: str | None = None,
    name: str = "原北京焦化厂",
    district: str = DISTRICT,
    reason: str = "R11 超过管制值",
) -> ListChange:
    return ListChange(
        parcel_id=parcel_id,
        run_id=run_id or f"run-{parcel_id}",
        list_name=list_name,  # type: ignore[arg-type]
        change=change,  # type: ignore[arg-type]
        at=at,
        reason=reason,
        citation="Law 59",
        name=name,
        district=district,
    )


def decision(
    parcel_id: str, number: int = 1, *, rule: str = "R1", outcome: str = "required", **extra: Any
) -> Decision:
    fields: dict[str, Any] = {
        "id": f"run-{parcel_id}/{rule}/{number}",
        "rule": rule,
        "version": 1,
        "row": f"{rule}.1",
        "outcome": outcome,
        "citation": "BJ 二(一)",
        "explanation": "焦化企业关闭搬迁",
        "inputs": {"industry": "coking", "area_m2": 1_400_000},
        "evaluated_at": T0,
    }
    return Decision(**(fields | extra))


def notice(
    parcel_id: str,
    kind: str = "reminder",
    *,
    at: datetime = T0 + timedelta(days=25),
    step: Step = Step.closure_screening,
    district: str = DISTRICT,
    run_id: str | None = None,
) -> Notice:
    run = run_id or f"run-{parcel_id}"
    return Notice(
        key=f"{run}:{step.value}:1:{kind}",
        parcel_id=parcel_id,
        run_id=run,
        kind=kind,  # type: ignore[arg-type]
        district=district,
        at=at,
        step=step,
        role=Role.district_epb,
        deadline=T0 + timedelta(days=30),
        escalate_to=Role.district_government if kind == "escalation" else None,
    )
