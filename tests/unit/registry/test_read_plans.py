"""The registry's hot reads use indexes that answer them alone.

At 100,000 parcels (`make bench-scale`, `bench/pages_bench.py`) a district EPB owing
50,000 tasks waited 155 ms for its inbox's counts and the public register 250 ms: each
count read every task's (and every list entry's) table row, and each task's parcel row
for its status. An inbox's total and counts per stage, and a list's total, must come
from covering indexes; an inbox page and a list page must be read in index order (no
sort of every row). SQLite's query plan says which; PostgreSQL gets the same indexes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from landflow.vocabulary import Role, Stage, Step
from registry import queries, writes
from tests.unit.registry import T0, list_change, projection, sqlite_engine, task

COMPANY = "91110105POLLUTER01"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from sqlite_engine(tmp_path)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        for n in range(30):
            pid = f"P{n:03d}"
            due = {"deadline": T0 + timedelta(days=n), "overdue": n % 2 == 0}
            owed = [
                task(Role.district_epb, district="朝阳区", **due),
                task(Role.city_epb, step=Step.filing_review, stage=Stage.filing, **due),
                task(Role.land_user, party=COMPANY, **due),
            ]
            writes.apply_projection(session, projection=projection(pid, tasks=owed))
            writes.apply_list_change(session, change=list_change(pid, list_name="contaminated"))
        yield session


def plans(engine: Engine, session: Session, read: Callable[[], Any]) -> dict[str, str]:
    """Each statement `read` sends, with SQLite's plan for it (one line per step)."""
    sent: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    event.listen(engine, "before_cursor_execute", note)
    try:
        read()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    return {
        statement: "\n".join(
            row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}", params)
        )
        for statement, params in sent
    }


def assert_counts_covered(found: dict[str, str]) -> None:
    counts = {s: p for s, p in found.items() if "count(*)" in s}
    assert counts, found
    for statement, plan in counts.items():
        for line in plan.splitlines():
            if line.startswith(("SEARCH", "SCAN")):
                assert "COVERING INDEX" in line, f"{statement}\n{plan}"


def assert_pages_in_index_order(found: dict[str, str]) -> None:
    pages = {s: p for s, p in found.items() if "LIMIT" in s}
    assert pages, found
    for statement, plan in pages.items():
        assert "TEMP B-TREE FOR ORDER BY" not in plan, f"{statement}\n{plan}"


@pytest.mark.parametrize(
    ("role", "district", "party"),
    [
        (Role.district_epb, "朝阳区", None),
        (Role.city_epb, None, None),
        (Role.land_user, None, COMPANY),
    ],
)
@pytest.mark.parametrize("overdue", [None, True])
def test_an_inbox_counts_from_indexes_and_pages_in_their_order(
    engine: Engine,
    session: Session,
    role: Role,
    district: str | None,
    party: str | None,
    overdue: bool | None,
) -> None:
    def inbox() -> None:
        by_stage = queries.tasks_by_stage(session, role=role.value, district=district, party=party)
        read = partial(
            queries.tasks_for,
            session,
            role=role.value,
            district=district,
            party=party,
            overdue=overdue,
            limit=10,
            by_stage=by_stage,
        )
        first = read()
        assert first.total == (30 if overdue is None else 15)
        assert first.next_cursor is not None
        read(cursor=first.next_cursor)

    found = plans(engine, session, inbox)
    assert_counts_covered(found)
    assert_pages_in_index_order(found)


@pytest.mark.parametrize("district", [None, "朝阳区"])
def test_a_public_list_counts_from_indexes_and_pages_in_their_order(
    engine: Engine, session: Session, district: str | None
) -> None:
    def public_list() -> None:
        page = queries.list_entries(session, list_name="contaminated", district=district, limit=10)
        assert page.total == 30
        queries.list_entries(
            session, list_name="contaminated", district=district, cursor=page.next_cursor
        )

    found = plans(engine, session, public_list)
    assert_counts_covered(found)
    assert_pages_in_index_order(found)
