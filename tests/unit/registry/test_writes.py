"""Registry writes are idempotent and ordered: activities are retried and arrive late.

Every row is keyed by registration (run): repeating a write leaves one row, a late
projection of an older revision never overwrites a newer one, and a parcel id registered
again gets rows of its own. `WritesContract` runs here on a fresh SQLite file per test
and in tests/integration/registry on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from landflow.reports import AnnualReport, ListFigures, OverdueFigures, SafeUtilisation
from landflow.vocabulary import Role, Stage, Step
from registry import queries, writes
from registry.tables import (
    DecisionRow,
    ListEntryRow,
    NoticeRow,
    ParcelRow,
    ReportRow,
    StatusRow,
    TaskRow,
    aware,
)
from tests.unit.registry import (
    DISTRICT,
    T0,
    decision,
    list_change,
    notice,
    projection,
    sqlite_engine,
    task,
)

BEIJING = timezone(timedelta(hours=8))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from sqlite_engine(tmp_path)


def rows(engine: Engine, table: type[Any], **where: object) -> list[Any]:
    """Rows as a new session reads them (nothing cached from the writes)."""
    query = select(table)
    for name, value in where.items():
        query = query.where(getattr(table, name) == value)
    with Session(engine) as session:
        return list(session.exec(query))


def parcel(engine: Engine, run_id: str) -> ParcelRow:
    with Session(engine) as session:
        row = session.get(ParcelRow, run_id)
    assert row is not None, f"no parcel row for run {run_id}"
    return row


def task_roles(engine: Engine, run_id: str) -> list[str]:
    return sorted(t.role for t in rows(engine, TaskRow, run_id=run_id))


def report(generated_at: datetime, workflow_id: str) -> AnnualReport:
    figures = ListFigures(entered=[], left=[], on_list_at_year_end=0)
    return AnnualReport(
        year=2027,
        scope=DISTRICT,
        period_start=datetime(2026, 12, 31, 16, tzinfo=UTC),
        period_end=datetime(2027, 12, 31, 16, tzinfo=UTC),
        generated_at=generated_at,
        workflow_id=workflow_id,
        parcels=0,
        parcels_by_stage={},
        lists={"contaminated": figures},
        overdue=OverdueFigures(escalations=0, escalations_by_step={}, overdue_now=[]),
        safe_utilisation=SafeUtilisation(
            definition="",
            redeveloped=0,
            safely_utilised=0,
            rate=None,
            target=0.9,
            target_year=2020,
            met=None,
            not_safe=[],
        ),
    )


class WritesContract:
    """The writes' guarantees on whatever database the `engine` fixture opens."""

    @pytest.fixture
    def session(self, engine: Engine) -> Iterator[Session]:
        with Session(engine) as session:
            yield session

    def test_the_same_projection_applied_again_changes_nothing(
        self, engine: Engine, session: Session
    ) -> None:
        first = projection("P1", 1)
        assert writes.apply_projection(session, projection=first) is True
        assert writes.apply_projection(session, projection=first) is False  # a retry
        assert writes.apply_projection(session, projection=first) is False
        [row] = rows(engine, ParcelRow, parcel_id="P1")
        assert (row.run_id, row.revision, row.stage, row.status, row.current) == (
            "run-P1",
            1,
            "closure_screening",
            "running",
            True,
        )
        assert (row.waiting_on, row.location) == ("district_epb", {"lat": 39.8865, "lon": 116.5214})
        assert aware(row.deadline) == T0 + timedelta(days=30)
        [only] = rows(engine, TaskRow, run_id="run-P1")
        assert (only.role, only.step, only.visit, only.district) == (
            "district_epb",
            "closure_screening",
            1,
            DISTRICT,
        )

    def test_a_late_lower_revision_loses(self, engine: Engine, session: Session) -> None:
        newer = projection(
            "P1",
            3,
            stage=Stage.investigation,
            waiting_on=[Role.reserve_agency],
            tasks=[task(Role.reserve_agency, step=Step.investigation, stage=Stage.investigation)],
        )
        assert writes.apply_projection(session, projection=newer) is True
        assert writes.apply_projection(session, projection=projection("P1", 2)) is False
        row = parcel(engine, "run-P1")
        assert (row.revision, row.stage, row.waiting_on) == (3, "investigation", "reserve_agency")
        assert aware(row.updated_at) == newer.updated_at
        assert task_roles(engine, "run-P1") == ["reserve_agency"]  # the late tasks lost too
        # the next revision still wins
        assert writes.apply_projection(session, projection=projection("P1", 4)) is True
        assert parcel(engine, "run-P1").stage == "closure_screening"

    def test_force_overwrites_a_newer_revision_and_hand_edits(
        self, engine: Engine, session: Session
    ) -> None:
        writes.apply_projection(session, projection=projection("P1", 5, listed=True))
        session.execute(
            update(ParcelRow).where(col(ParcelRow.run_id) == "run-P1").values(stage="filing")
        )
        session.commit()  # someone edited the row by hand
        engine_truth = projection("P1", 2, tasks=[task(Role.city_epb), task(Role.planning_land)])
        assert writes.apply_projection(session, projection=engine_truth, force=True) is True
        row = parcel(engine, "run-P1")
        assert (row.revision, row.stage, row.listed) == (2, "closure_screening", False)
        assert task_roles(engine, "run-P1") == ["city_epb", "planning_land"]

    def test_a_newer_registration_becomes_current_and_the_older_stays(
        self, engine: Engine, session: Session
    ) -> None:
        old = projection("P1", 7, run_id="run-old", status="terminated", tasks=[])
        new = projection("P1", 1, run_id="run-new", started_at=T0 + timedelta(days=10))
        writes.apply_projection(session, projection=old)
        writes.apply_projection(session, projection=new)
        assert {(r.run_id, r.current) for r in rows(engine, ParcelRow, parcel_id="P1")} == {
            ("run-old", False),
            ("run-new", True),
        }
        # a late write of the older registration updates its own row, nothing else
        late = projection("P1", 8, run_id="run-old", status="terminated", tasks=[], listed=True)
        assert writes.apply_projection(session, projection=late) is True
        assert (parcel(engine, "run-old").listed, parcel(engine, "run-old").current) == (
            True,
            False,
        )
        assert parcel(engine, "run-new").current is True
        assert queries.current_run(session, parcel_id="P1").run_id == "run-new"  # type: ignore[union-attr]
        assert [r.run_id for r in queries.runs_of(session, parcel_id="P1")] == [
            "run-old",
            "run-new",
        ]
        assert task_roles(engine, "run-new") == ["district_epb"]
        assert task_roles(engine, "run-old") == []

    def test_an_older_registration_written_last_does_not_become_current(
        self, engine: Engine, session: Session
    ) -> None:
        writes.apply_projection(
            session, projection=projection("P1", run_id="run-new", started_at=T0 + timedelta(1))
        )
        writes.apply_projection(session, projection=projection("P1", run_id="run-old"))
        assert parcel(engine, "run-new").current and not parcel(engine, "run-old").current

    def test_started_at_is_fixed_by_the_first_write_and_instants_keep_their_moment(
        self, engine: Engine, session: Session
    ) -> None:
        writes.apply_projection(session, projection=projection("P1", 1))
        beijing_deadline = datetime(2027, 6, 1, 9, 0, tzinfo=BEIJING)
        later = projection(
            "P1", 2, started_at=T0 + timedelta(days=1), deadline=beijing_deadline, tasks=[]
        )
        writes.apply_projection(session, projection=later)
        row = parcel(engine, "run-P1")
        assert aware(row.started_at) == T0
        assert aware(row.deadline) == beijing_deadline  # the same instant, stored in UTC
        assert aware(row.deadline).utcoffset() == timedelta(0)  # type: ignore[union-attr]

    def test_tasks_are_replaced_by_each_projection_of_their_run_only(
        self, engine: Engine, session: Session
    ) -> None:
        joint = [task(Role.city_epb), task(Role.planning_land)]
        writes.apply_projection(session, projection=projection("P1", 1, tasks=joint))
        writes.apply_projection(session, projection=projection("P2", 1))
        assert task_roles(engine, "run-P1") == ["city_epb", "planning_land"]
        writes.apply_projection(
            session, projection=projection("P1", 2, tasks=[task(Role.planning_land, visit=2)])
        )
        [left] = rows(engine, TaskRow, run_id="run-P1")
        assert (left.role, left.visit) == ("planning_land", 2)
        writes.apply_projection(session, projection=projection("P1", 3, tasks=[]))
        assert task_roles(engine, "run-P1") == []
        assert task_roles(engine, "run-P2") == ["district_epb"]

    def test_list_entries_are_one_per_list_and_registration(
        self, engine: Engine, session: Session
    ) -> None:
        enter = list_change("P1", "enter", T0)
        for _ in range(3):
            writes.apply_list_change(session, change=enter)
        writes.apply_list_change(session, change=list_change("P1", list_name="negative"))
        writes.apply_list_change(
            session, change=list_change("P1", run_id="run-again", at=T0 + timedelta(days=400))
        )
        entries = rows(engine, ListEntryRow, parcel_id="P1")
        assert sorted((e.list_name, e.run_id) for e in entries) == [
            ("contaminated", "run-P1"),
            ("contaminated", "run-again"),
            ("negative", "run-P1"),
        ]
        left_at = T0 + timedelta(days=200)
        writes.apply_list_change(session, change=list_change("P1", "leave", left_at))
        retry = list_change("P1", "leave", left_at + timedelta(days=1), reason="retry")
        writes.apply_list_change(session, change=retry)
        never_entered = list_change("P1", "leave", left_at, list_name="suspected")
        writes.apply_list_change(session, change=never_entered)
        [entry] = rows(engine, ListEntryRow, run_id="run-P1", list_name="contaminated")
        assert (aware(entry.entered_at), aware(entry.left_at)) == (T0, left_at)
        assert (entry.reason, entry.left_reason) == ("R11 超过管制值", "R11 超过管制值")
        assert rows(engine, ListEntryRow, list_name="suspected") == []
        [again] = rows(engine, ListEntryRow, run_id="run-again")
        assert again.left_at is None  # the new registration is still on the list

    def test_decisions_are_recorded_once(self, engine: Engine, session: Session) -> None:
        first = decision("P1", 1)
        for _ in range(2):
            writes.add_decisions(session, run_id="run-P1", parcel_id="P1", decisions=[first])
        second = decision("P1", 1, rule="R2", outcome="reserve_agency")
        writes.add_decisions(session, run_id="run-P1", parcel_id="P1", decisions=[first, second])
        recorded = queries.decisions_for(session, run_id="run-P1")
        assert [(d.rule, d.outcome) for d in recorded] == [
            ("R1", "required"),
            ("R2", "reserve_agency"),
        ]
        assert recorded[0].inputs == {"industry": "coking", "area_m2": 1_400_000}
        assert len(rows(engine, DecisionRow)) == 2

    def test_notices_are_recorded_once(self, engine: Engine, session: Session) -> None:
        reminder = notice("P1")
        assert writes.add_notice(session, notice=reminder) is True
        assert writes.add_notice(session, notice=reminder) is False
        assert writes.add_notice(session, notice=notice("P1", "escalation")) is True
        assert sorted(n.kind for n in rows(engine, NoticeRow, parcel_id="P1")) == [
            "escalation",
            "reminder",
        ]

    def test_forget_run_removes_one_registration_only(
        self, engine: Engine, session: Session
    ) -> None:
        for run in ("run-a", "run-b"):
            writes.apply_projection(session, projection=projection("P1", run_id=run))
            writes.apply_list_change(session, change=list_change("P1", run_id=run))
            writes.add_notice(session, notice=notice("P1", run_id=run))
        writes.forget_run(session, run_id="run-a")
        for table in (ParcelRow, TaskRow, ListEntryRow, NoticeRow):
            assert {r.run_id for r in rows(engine, table)} == {"run-b"}, table.__name__

    def test_a_report_is_replaced_by_a_later_run_not_by_a_late_retry(
        self, engine: Engine, session: Session
    ) -> None:
        writes.save_report(session, report=report(T0, "first"))
        writes.save_report(session, report=report(T0 + timedelta(days=1), "second"))
        writes.save_report(session, report=report(T0 + timedelta(hours=1), "late retry"))
        [row] = rows(engine, ReportRow)
        assert (row.workflow_id, aware(row.generated_at)) == ("second", T0 + timedelta(days=1))
        assert row.body["workflow_id"] == "second"

    def test_status_is_one_row_per_key(self, engine: Engine, session: Session) -> None:
        writes.set_status(session, key="rebuild", value="due", detail="x" * 3000)
        writes.set_status(session, key="rebuild", value="done")
        [row] = rows(engine, StatusRow)
        assert (row.key, row.value, row.detail) == ("rebuild", "done", "")


class TestWritesOnSqlite(WritesContract):
    pass
