"""Session settings and the access log's sign-in links, without a server."""

from __future__ import annotations

import logging
from pathlib import Path

from api.web.signin import HideTokens
from landflow.settings import Settings


def test_secure_cookies_default_to_production(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, env="dev").secure_cookies is False
    production = {"data_dir": tmp_path, "env": "production", "actor_key": "k" * 32}
    assert Settings(**production).secure_cookies is True
    assert Settings(**production, secure_cookies=False).secure_cookies is False  # TLS elsewhere
    assert Settings(data_dir=tmp_path, env="dev", secure_cookies=True).secure_cookies is True


def test_secure_cookies_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LANDFLOW_SECURE_COOKIES", "true")
    assert Settings(data_dir=tmp_path, env="dev").secure_cookies is True


def test_a_logged_request_line_keeps_its_query_but_not_the_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/ui/login?next=%2Fui&token=dev-abc-朝阳区&lang=zh", "1.1", 200),
        None,
    )
    assert HideTokens().filter(record)
    line = record.getMessage()
    assert "dev-abc" not in line and "token=***" in line and "next=%2Fui" in line
    assert "lang=zh" in line
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "GET /ui/login?token=t", None, None)
    HideTokens().filter(plain)
    assert plain.getMessage() == "GET /ui/login?token=***"
