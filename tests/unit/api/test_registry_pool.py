"""A registry whose every connection is in use answers 503 Unavailable with Retry-After
(api/errors.py), never 500; once a connection is free the same request answers.

The app's engine is a real SQLite engine with a pool of one and a short timeout, so the
test holds that one connection instead of starting fifty requests."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import create_engine

from api.app import create_app
from tests.conftest import make_settings
from tests.helpers import auth


def test_an_exhausted_pool_is_503_with_retry_after(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    app = create_app(settings)
    app.state.engine.dispose()
    app.state.engine = create_engine(
        settings.database_url,
        connect_args={"check_same_thread": False},
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.2,
    )
    client = TestClient(app, raise_server_exceptions=False)
    with app.state.engine.connect():  # the pool's only connection, held
        busy = client.get("/parcels", headers=auth("ops"))
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"] == "Unavailable", busy.json()
        assert "retry later" in busy.json()["detail"]
        assert busy.headers["Retry-After"].isdigit()
    free = client.get("/parcels", headers=auth("ops"))
    assert free.status_code == 200, free.text
    app.state.engine.dispose()
