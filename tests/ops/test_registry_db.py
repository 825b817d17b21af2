"""Registry writes are idempotent and ordered the same on SQLite and PostgreSQL.

Activities are retried and may arrive late, so every write is keyed by business ids:
repeating one leaves one row, and an older parcel state never overwrites a newer one.
Each test uses its own parcel ids and district, so the session's database is shared.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from landflow import registry
from landflow.contracts import (
    DeadlineNotice,
    Decision,
    ListChange,
    RegistryUpdate,
    Role,
    Stage,
    Step,
)
from landflow.registry import DecisionRow, ListEntryRow, NoticeRow, ParcelRow

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    engine = registry.make_engine(database_url)
    registry.create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


@pytest.fixture
def district() -> str:
    """A district name of the test's own, so counts see only its rows."""
    return f"区{uuid.uuid4().hex[:8]}"


def update(pid: str, district: str, at: datetime, **changes: object) -> RegistryUpdate:
    fields: dict[str, object] = {
        "parcel_id": pid,
        "workflow_id": f"parcel-{pid}",
        "name": "原北京焦化厂",
        "district": district,
        "planned_use": "residential",
        "stage": Stage.investigation,
        "waiting_on": Role.reserve_agency,
        "deadline": at + timedelta(days=90),
        "overdue": False,
        "updated_at": at,
    }
    return RegistryUpdate(**(fields | changes))


def count(session: Session, row: type, **where: object) -> int:
    query = select(func.count()).select_from(row)
    for column, value in where.items():
        query = query.where(getattr(row, column) == value)
    return session.exec(query).one()


def test_repeated_parcel_upserts_leave_one_row(session, pid, district):
    for _ in range(3):
        registry.upsert_parcel(session, update=update(pid, district, T0))
    assert count(session, ParcelRow, parcel_id=pid) == 1
    [row] = registry.list_parcels(session, district=district)
    assert (row.stage, row.waiting_on, row.name) == (
        "investigation",
        "reserve_agency",
        "原北京焦化厂",
    )


def test_an_older_state_never_overwrites_a_newer_one(session, pid, district):
    newer = update(
        pid, district, T0 + timedelta(hours=2), stage=Stage.filing, waiting_on=Role.city_epb
    )
    registry.upsert_parcel(session, update=newer)
    registry.upsert_parcel(session, update=update(pid, district, T0))  # a late retry
    row = session.get(ParcelRow, pid)
    session.refresh(row)
    assert (row.stage, row.waiting_on) == ("filing", "city_epb")
    assert row.updated_at == T0 + timedelta(hours=2)
    # a newer state given in Beijing time is the same instant in UTC, and it wins
    latest = T0.astimezone(BEIJING) + timedelta(hours=3)
    registry.upsert_parcel(
        session,
        update=update(pid, district, latest, stage=Stage.release, waiting_on=None, deadline=None),
    )
    session.refresh(row)
    assert (row.stage, row.waiting_on, row.deadline) == ("release", None, None)
    assert row.updated_at == T0 + timedelta(hours=3) and row.created_at == T0 + timedelta(hours=2)


def test_list_changes_are_applied_once(session, pid, district):
    registry.upsert_parcel(session, update=update(pid, district, T0))
    enter = ListChange(parcel_id=pid, change="enter", at=T0, reason="R6 超过管制值")
    for _ in range(2):
        registry.change_lists(session, change=enter)
    entries = [
        e for e in registry.list_entries(session, list_name="contaminated") if e.parcel_id == pid
    ]
    assert len(entries) == 1 and entries[0].district == district
    first_leave = T0 + timedelta(days=400)
    registry.change_lists(
        session,
        change=ListChange(parcel_id=pid, change="leave", at=first_leave, reason="evaluated"),
    )
    registry.change_lists(
        session,
        change=ListChange(
            parcel_id=pid, change="leave", at=first_leave + timedelta(days=1), reason="retry"
        ),
    )
    assert count(session, ListEntryRow, list_name="contaminated", parcel_id=pid) == 1
    assert pid not in {
        e.parcel_id for e in registry.list_entries(session, list_name="contaminated")
    }
    [left] = [
        e
        for e in registry.list_entries(session, list_name="contaminated", current=False)
        if e.parcel_id == pid
    ]
    assert registry.aware(left.left_at) == first_leave


def test_decisions_and_notices_are_recorded_once(session, pid, district):
    decision = Decision(
        id=f"{pid}-R1-1",
        rule="R1",
        version=1,
        row="R1.2",
        outcome="required",
        citation="BJ 二(一)",
        explanation="焦化企业关闭搬迁",
        inputs={"industry": "coking", "area_m2": 1_400_000},
        evaluated_at=T0,
    )
    for _ in range(3):
        registry.add_decision(session, parcel_id=pid, decision=decision)
    [row] = registry.decisions_for(session, parcel_id=pid)
    assert row.inputs == {"industry": "coking", "area_m2": 1_400_000}
    notice = DeadlineNotice(
        key=f"{pid}:investigation:1:reminder",
        parcel_id=pid,
        kind="reminder",
        step=Step.investigation,
        role=Role.reserve_agency,
        district=district,
        deadline=T0 + timedelta(days=90),
        at=T0 + timedelta(days=80),
    )
    assert registry.add_notice(session, notice=notice) is True
    assert registry.add_notice(session, notice=notice) is False
    assert count(session, NoticeRow, parcel_id=pid) == 1
    assert count(session, DecisionRow, parcel_id=pid) == 1


def test_an_inbox_lists_the_oldest_deadline_first_and_open_ended_last(session, district):
    ids = {label: f"T{uuid.uuid4().hex[:10]}" for label in ("late", "none", "soon", "other")}
    deadlines = {"late": T0 + timedelta(days=30), "none": None, "soon": T0 + timedelta(days=3)}
    for label, deadline in deadlines.items():
        registry.upsert_parcel(
            session,
            update=update(
                ids[label], district, T0, waiting_on=Role.district_epb, deadline=deadline
            ),
        )
    registry.upsert_parcel(session, update=update(ids["other"], district, T0))  # another role
    inbox = registry.tasks_for(session, role="district_epb", district=district)
    assert [r.parcel_id for r in inbox] == [ids["soon"], ids["late"], ids["none"]]
    assert registry.tasks_for(session, role="district_epb", district=f"{district}-x") == []


def test_parcels_are_counted_by_stage(session, district):
    before = registry.count_by_stage(session)
    stages = [Stage.filing, Stage.filing, Stage.listing]
    for stage in stages:
        registry.upsert_parcel(
            session, update=update(f"T{uuid.uuid4().hex[:10]}", district, T0, stage=stage)
        )
    after = registry.count_by_stage(session)
    assert after["filing"] - before.get("filing", 0) == 2
    assert after["listing"] - before.get("listing", 0) == 1
