"""Connecting to the registry database, with errors that name the file and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlmodel import create_engine


class RegistryUnavailable(RuntimeError):
    """The registry database cannot be used; the message says which and what to do."""


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA busy_timeout=30000")
            # WAL + NORMAL: no fsync per commit (bench/PROFILE.md). A killed process loses
            # nothing; a power cut may lose the last commits, never corrupt the file, and
            # the registry is rebuilt from the engine anyway (`landflow registry rebuild`).
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def check_usable(engine: Engine) -> None:
    """Open the database once and read from it; a corrupt or unreachable one is named."""
    where = _where(engine)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection.execute(text("PRAGMA schema_version")).scalar()
            else:
                connection.execute(text("SELECT 1"))
    except DatabaseError as exc:
        fix = (
            f"move it aside (`mv {where} {where}.corrupt`) and start again: the registry is "
            "rebuilt from the engine (`landflow registry rebuild`)"
            if engine.dialect.name == "sqlite"
            else "check LANDFLOW_DATABASE_URL and that the server is up"
        )
        kind = "unreachable" if isinstance(exc, OperationalError) else "not a usable database"
        raise RegistryUnavailable(
            f"the registry database {where} is {kind} ({exc.orig}); {fix}"
        ) from exc


def _where(engine: Engine) -> str:
    if engine.dialect.name == "sqlite" and engine.url.database:
        return str(Path(engine.url.database))
    return engine.url.render_as_string(hide_password=True)
