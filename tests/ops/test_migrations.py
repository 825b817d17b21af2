"""Migrations build exactly the models' schema, on SQLite and PostgreSQL.

`alembic upgrade head` on an empty database must leave nothing for autogenerate to add:
a table or column added to registry.py without a revision fails here (and at start-up).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, Table, inspect
from sqlmodel import Session, SQLModel

from landflow import registry
from landflow.migrate import FIRST_TABLES, alembic_config, check_models_migrated, migrate
from landflow.registry import ParcelRow
from tests.conftest import fresh_postgres_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_server")) as url:
        yield url


def schema_diff(url: str) -> list:
    engine = registry.make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


def head_revision(url: str) -> str | None:
    engine = registry.make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def test_upgrade_head_builds_exactly_the_models(empty_database):
    migrate(empty_database)
    assert schema_diff(empty_database) == []
    engine = registry.make_engine(empty_database)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert tables == set(SQLModel.metadata.tables) | {"alembic_version"}
    migrate(empty_database)  # at head already: nothing to do, nothing fails
    assert head_revision(empty_database) == "0002"


def test_downgrade_to_base_and_back(empty_database):
    migrate(empty_database)
    engine = registry.make_engine(empty_database)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    migrate(empty_database)
    assert schema_diff(empty_database) == []


def test_concurrent_migrators_wait_for_each_other(empty_database):
    """The API and the worker start together and both migrate: one waits on the lock."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(empty_database)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert schema_diff(empty_database) == []


def test_a_registry_made_before_migrations_is_adopted_with_its_rows(empty_database):
    engine = registry.make_engine(empty_database)
    first = [SQLModel.metadata.tables[name] for name in FIRST_TABLES]
    SQLModel.metadata.create_all(engine, tables=first)  # how registries were made before
    now = datetime(2026, 1, 5, tzinfo=UTC)
    with Session(engine) as session:
        session.add(
            ParcelRow(
                parcel_id="OLD-1",
                workflow_id="parcel-OLD-1",
                name="旧地块",
                district="朝阳区",
                planned_use="residential",
                stage="filing",
                created_at=now,
                updated_at=now,
            )
        )
        session.commit()
    engine.dispose()
    migrate(empty_database)
    assert head_revision(empty_database) == "0002"
    assert schema_diff(empty_database) == []
    engine = registry.make_engine(empty_database)
    with Session(engine) as session:
        assert session.get(ParcelRow, "OLD-1").name == "旧地块"
    engine.dispose()


def test_a_model_column_without_a_migration_stops_start_up(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    migrate(url)
    models = MetaData()
    Table("parcels", models, Column("parcel_id", String, primary_key=True), Column("risk", String))
    Table("permits", models, Column("id", String, primary_key=True))
    engine = registry.make_engine(url)
    with pytest.raises(RuntimeError, match=r"no migration creates parcels\.risk, permits"):
        check_models_migrated(engine, models)
    check_models_migrated(engine)  # the real models are all migrated
    engine.dispose()


def test_the_alembic_command_line_uses_the_same_migrations(tmp_path):
    """`alembic upgrade head` / `alembic check` from the repo, URL from LANDFLOW_*."""
    env = {**os.environ, "LANDFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    alembic = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]
    for args in (["upgrade", "head"], ["check"], ["current"]):
        result = subprocess.run(
            [*alembic, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
    assert "0002 (head)" in result.stdout
