"""Open workbench sessions (api/web/session.py): opened at sign-in, looked up on every
request, deleted at sign-out; expired rows are dropped at the next sign-in."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete
from sqlmodel import Session, col

from registry.tables import WebSessionRow, aware, utc


def open_session(session: Session, *, session_id: str, expires_at: datetime) -> None:
    session.execute(delete(WebSessionRow).where(col(WebSessionRow.expires_at) < datetime.now(UTC)))
    session.add(WebSessionRow(session_id=session_id, expires_at=utc(expires_at)))
    session.commit()


def is_open(session: Session, *, session_id: str) -> bool:
    row = session.get(WebSessionRow, session_id)
    return row is not None and aware(row.expires_at) > datetime.now(UTC)


def close_session(session: Session, *, session_id: str) -> None:
    session.execute(delete(WebSessionRow).where(col(WebSessionRow.session_id) == session_id))
    session.commit()
