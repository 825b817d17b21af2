"""Migrations build exactly the models' schema on SQLite and PostgreSQL, and 0003 says
when the re-keyed projection must be rebuilt from the engine.

Every registry the service has made is covered: an empty database, one at 0002 holding
rows of the old shape, one made by `create_all` before migrations existed; and the API,
the worker and `landflow migrate` starting together must take turns.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, Table, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from registry.engine import make_engine
from registry.migrate import (
    PG_LOCK_KEY,
    alembic_config,
    check_models_migrated,
    migrate,
    upgrade,
)
from registry.tables import ReportRow, StatusRow
from tests.conftest import fresh_postgres_database

ROOT = Path(__file__).resolve().parents[3]
MIGRATORS = 4  # the API, two workers and the migrate job
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
OLD_ROWS = {  # the shape of 0001 (rows keyed by parcel id), as registries hold them
    "parcels": {
        "parcel_id": "OLD-1",
        "workflow_id": "parcel-OLD-1",
        "name": "旧地块",
        "district": "朝阳区",
        "planned_use": "residential",
        "stage": "filing",
        "waiting_on": "city_epb",
        "deadline": datetime(2026, 9, 1, tzinfo=UTC),
        "overdue": False,
        "listed": False,
        "created_at": datetime(2026, 1, 5, tzinfo=UTC),
        "updated_at": datetime(2026, 2, 5, tzinfo=UTC),
    },
    "list_entries": {
        "list_name": "contaminated",
        "parcel_id": "OLD-1",
        "name": "旧地块",
        "district": "朝阳区",
        "entered_at": datetime(2026, 2, 1, tzinfo=UTC),
        "reason": "R6",
    },
}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_server")) as fresh:
        yield fresh


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    yield engine
    engine.dispose()


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def drift(engine: Engine) -> list[object]:
    """What `alembic revision --autogenerate` would add: nothing, if every model is migrated."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def rebuild_status(engine: Engine) -> StatusRow | None:
    with Session(engine) as session:
        return session.get(StatusRow, "rebuild")


def insert_old_rows(engine: Engine) -> None:
    with engine.begin() as connection:
        for table, row in OLD_ROWS.items():
            columns = ", ".join(row)
            values = ", ".join(f":{name}" for name in row)
            connection.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)


def test_an_empty_database_migrates_to_head_with_no_drift(engine: Engine, url: str) -> None:
    assert HEAD == "0006"
    migrate(url)
    assert revision(engine) == HEAD
    assert drift(engine) == []
    assert set(inspect(engine).get_table_names()) == set(SQLModel.metadata.tables) | {
        "alembic_version"
    }
    assert rebuild_status(engine) is None  # nothing to rebuild in a new registry
    migrate(url)  # at head already: nothing to do, nothing fails
    assert revision(engine) == HEAD


def test_old_shape_rows_at_0002_migrate_to_0003_with_a_rebuild_due(engine: Engine) -> None:
    upgrade(engine, "0002")
    insert_old_rows(engine)
    report = ReportRow(
        year=2026,
        scope="朝阳区",
        workflow_id="landflow-report-districts-2026",
        generated_at=datetime(2026, 12, 31, 10, tzinfo=UTC),
        body={"parcels": 1},
    )
    with Session(engine) as session:
        session.add(report)
        session.commit()
    upgrade(engine)
    assert revision(engine) == HEAD
    assert drift(engine) == []
    status = rebuild_status(engine)
    assert status is not None and (status.value, status.detail) == (
        "due",
        "projection tables re-created by migration 0003",
    )
    with engine.connect() as connection:
        for table in ("parcels", "list_entries", "tasks", "decisions", "notices"):
            count = connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar()
            assert count == 0, f"{table}: the rebuild refills it from the engine"
    with Session(engine) as session:
        [kept] = session.exec(select(ReportRow)).all()  # reports are not a projection
    assert (kept.scope, kept.body) == ("朝阳区", {"parcels": 1})


def test_an_empty_database_at_0002_migrates_with_no_rebuild_due(engine: Engine) -> None:
    upgrade(engine, "0002")
    upgrade(engine)
    assert revision(engine) == HEAD
    assert rebuild_status(engine) is None


def test_a_registry_made_before_migrations_is_adopted(engine: Engine) -> None:
    """`create_all` made the first tables and no alembic_version: stamp, then upgrade."""
    upgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    insert_old_rows(engine)
    upgrade(engine)
    assert revision(engine) == HEAD
    assert drift(engine) == []
    status = rebuild_status(engine)
    assert status is not None and status.value == "due"


def test_head_refuses_to_downgrade(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        with pytest.raises(RuntimeError, match="rebuild it instead"):
            command.downgrade(config, "0002")


def test_a_model_without_a_migration_stops_start_up_naming_it(engine: Engine) -> None:
    upgrade(engine)
    check_models_migrated(engine)  # the real models are all migrated
    models = MetaData()
    Table("parcels", models, Column("run_id", String, primary_key=True), Column("risk", String))
    Table("permits", models, Column("id", String, primary_key=True))
    with pytest.raises(RuntimeError, match=r"no migration creates parcels\.risk, permits"):
        check_models_migrated(engine, models)


@contextmanager
def migration_lock_held(engine: Engine) -> Iterator[Callable[[], int]]:
    """Hold the lock migrators take (a file lock beside a SQLite file, an advisory lock on
    PostgreSQL); yields a count of the processes now waiting for it."""
    if engine.dialect.name == "sqlite":
        path = Path(f"{engine.url.database}.migrate-lock")
        with path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            inode = os.fstat(lock.fileno()).st_ino

            def waiting() -> int:  # blocked flock requests are the "->" lines of /proc/locks
                lines = Path("/proc/locks").read_text().splitlines()
                return sum("->" in line and f":{inode} " in line for line in lines)

            yield waiting
        return
    with engine.connect() as holder, engine.connect() as observer:
        holder.execute(text(f"SELECT pg_advisory_lock({PG_LOCK_KEY})"))
        holder.commit()

        def waiting() -> int:
            query = text(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND objid = :key AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())"
            )
            count = observer.execute(query, {"key": PG_LOCK_KEY}).scalar_one()
            observer.rollback()
            return int(count)

        try:
            yield waiting
        finally:
            holder.execute(text(f"SELECT pg_advisory_unlock({PG_LOCK_KEY})"))
            holder.commit()


def test_processes_migrating_at_once_take_turns(engine: Engine, url: str) -> None:
    """`landflow migrate` several times at once, as compose starts its processes: while
    the lock is held every one waits and nothing is migrated; once it is released all
    succeed, exactly one runs the revisions and the others find head."""
    env = {**os.environ, "LANDFLOW_DATABASE_URL": url}
    with migration_lock_held(engine) as waiting:
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "service.cli", "migrate"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(MIGRATORS)
        ]
        deadline = time.monotonic() + 60
        while waiting() < len(processes):
            finished = [p.args for p in processes if p.poll() is not None]
            assert not finished, "a migrator finished while another held the lock"
            assert time.monotonic() < deadline, f"only {waiting()} migrators wait for the lock"
            time.sleep(0.05)
        assert revision(engine) is None  # nothing migrated behind the lock holder's back
    outputs = []
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        outputs.append(stderr)
    assert sum("Running upgrade 0002 -> 0003" in out for out in outputs) == 1, outputs
    assert sum("Running upgrade" in out for out in outputs) == 1, outputs
    assert revision(engine) == HEAD
    assert drift(engine) == []


def test_the_alembic_command_line_uses_the_same_migrations(tmp_path: Path) -> None:
    """`alembic upgrade head` / `check` / `current` with the repo's alembic.ini, the URL
    from LANDFLOW_DATABASE_URL, as the README's migration workflow runs them."""
    env = {**os.environ, "LANDFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    alembic = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]
    result = None
    for args in (["upgrade", "head"], ["check"], ["current"]):
        result = subprocess.run(
            [*alembic, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"alembic {' '.join(args)}: {output}"
    assert result is not None and f"{HEAD} (head)" in result.stdout
