"""Schema changes go through alembic: `upgrade(engine)` brings a registry database to head.

The API, the worker and `landflow migrate` all call it; with several processes starting
at once (the API and worker of `make run`, scaled workers) one migrates while the others
wait on a lock, then find the database at head and do nothing.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection, Engine

from registry import tables
from registry.engine import check_usable, make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
FIRST_REVISION = "0001"
FIRST_TABLES = {"parcels", "list_entries", "decisions", "notices"}
PG_LOCK_KEY = 0x1A4DF10  # any constant shared by every landflow process


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to `revision`, then refuse to go on if tables.py has unmigrated tables."""
    check_usable(engine)
    with _file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Held until commit; PostgreSQL runs the whole upgrade in this transaction.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})")
        config = alembic_config()
        config.attributes["connection"] = connection
        _adopt_unversioned(connection, config)
        command.upgrade(config, revision)
    if revision == "head":
        check_models_migrated(engine)


def migrate(url: str) -> None:
    """`landflow migrate`: upgrade the database at `url` to head."""
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def check_models_migrated(engine: Engine, metadata: MetaData = tables.SQLModel.metadata) -> None:
    """A table or column of the models that no migration creates fails at start-up,
    naming it, rather than at the first write."""
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    missing = []
    for table in metadata.sorted_tables:
        if table.name not in tables:
            missing.append(table.name)
            continue
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in columns]
    if missing:
        raise RuntimeError(
            f"no migration creates {', '.join(missing)}: add one with "
            "`alembic revision --autogenerate -m '...'` (see migrations/)"
        )


def _adopt_unversioned(connection: Connection, config: Config) -> None:
    """A registry made by `create_all` before migrations existed has the first revision's
    tables but no alembic_version: mark it as at that revision instead of re-creating them."""
    existing = set(inspect(connection).get_table_names())
    if "alembic_version" not in existing and existing >= FIRST_TABLES:
        command.stamp(config, FIRST_REVISION)


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """SQLite has no advisory locks: serialise migrators on a file beside the database."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    path = Path(f"{database}.migrate-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
