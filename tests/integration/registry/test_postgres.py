"""The registry's writes and reads on PostgreSQL, and concurrent projections.

The contract classes of tests/unit/registry run here against a real PostgreSQL server
(one throwaway database for the module, emptied before each test). Workers run many
activities at once, so eight threads projecting one parcel must leave the highest
revision, whatever order the commits land in.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from landflow.messages import ParcelProjection
from landflow.vocabulary import Role, Stage
from registry import writes
from registry.engine import make_engine
from registry.migrate import upgrade
from registry.tables import ParcelRow, TaskRow
from tests.conftest import fresh_postgres_database
from tests.unit.registry import projection, task
from tests.unit.registry.test_queries import QueriesContract
from tests.unit.registry.test_writes import WritesContract

TABLES = "parcels, tasks, list_entries, decisions, notices, documents, reports, registry_status"
STAGES = list(Stage)


@pytest.fixture(scope="module")
def migrated(postgres_server: str) -> Iterator[Engine]:
    with fresh_postgres_database(postgres_server) as url:
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


@pytest.fixture
def engine(migrated: Engine) -> Engine:
    """The module's database, empty."""
    with migrated.begin() as connection:
        connection.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY"))
    return migrated


class TestWritesOnPostgres(WritesContract):
    pass


class TestQueriesOnPostgres(QueriesContract):
    pass


def revision_of(number: int, pid: str) -> ParcelProjection:
    """Revision `number` of a parcel: its stage and its tasks' visit say which it is."""
    return projection(
        pid,
        number,
        stage=STAGES[number % len(STAGES)],
        tasks=[task(Role.district_epb, visit=number), task(Role.city_epb, visit=number)],
    )


@pytest.mark.parametrize("round_", range(10))
def test_concurrent_projections_end_at_the_highest_revision(engine: Engine, round_: int) -> None:
    pid = f"RACE{round_}"
    revisions = list(range(1, 9))
    random.Random(round_).shuffle(revisions)  # the order the threads are started in
    barrier = threading.Barrier(len(revisions))
    results: dict[int, bool] = {}
    errors: list[BaseException] = []

    def write(number: int) -> None:
        try:
            with Session(engine) as session:
                barrier.wait(timeout=10)
                results[number] = writes.apply_projection(
                    session, projection=revision_of(number, pid)
                )
        except BaseException as exc:  # reported below, with the thread's revision
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in revisions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a projection never finished (deadlock?)"
    assert errors == []
    assert results[8] is True  # the highest revision is never refused
    with Session(engine) as session:
        [row] = session.exec(select(ParcelRow).where(ParcelRow.parcel_id == pid)).all()
        tasks = session.exec(select(TaskRow).where(TaskRow.run_id == row.run_id)).all()
    assert (row.revision, row.stage, row.current) == (8, STAGES[8 % len(STAGES)], True)
    assert sorted((t.role, t.visit) for t in tasks) == [("city_epb", 8), ("district_epb", 8)]


def test_a_higher_revision_racing_the_first_insert_is_not_dropped(engine: Engine) -> None:
    """The window the threads above hit now and then, opened on purpose: another writer
    commits the parcel's first row just after this writer's UPDATE found no row. The
    other writer is a real second connection; the hook only chooses the moment."""
    url = engine.url.render_as_string(hide_password=False)
    mine, other = make_engine(url), make_engine(url)
    fired: list[str] = []

    def other_writer_commits(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE parcels") and not fired:
            fired.append(statement)
            with Session(other) as session:
                assert writes.apply_projection(session, projection=revision_of(1, "GAP"))

    event.listen(mine, "after_cursor_execute", other_writer_commits)
    try:
        with Session(mine) as session:
            applied = writes.apply_projection(session, projection=revision_of(8, "GAP"))
    finally:
        mine.dispose()
        other.dispose()
    assert fired, "the UPDATE was never seen: the test did not open the window"
    with Session(engine) as session:
        row = session.exec(select(ParcelRow).where(ParcelRow.parcel_id == "GAP")).one()
    assert (applied, row.revision) == (True, 8), "revision 8 lost to revision 1"
