"""Typed settings from LANDFLOW_* environment variables, read once."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LANDFLOW_", extra="ignore")

    env: str = "dev"
    data_dir: Path = Path(".data")
    temporal_port: int = 7233
    temporal_address: str = ""  # host:port; defaults to 127.0.0.1:<temporal_port>
    ui_port: int = 8233
    api_port: int = 8000
    namespace: str = "default"
    task_queue: str = "landflow"
    database_url: str = ""  # any SQLAlchemy URL; defaults to SQLite under data_dir
    tokens_file: Path | None = None
    policy_file: Path = PACKAGE_DIR / "policy.yaml"
    rules_dir: Path | None = None  # defaults to the packaged rules/ declarations
    webhook_url: str = ""
    action_timeout_s: float = 10.0
    max_body_bytes: int = 1_000_000
    worker_metrics_port: int = 0  # the worker's Prometheus endpoint; 0 = off
    worker_metrics_host: str = "0.0.0.0"  # all interfaces, so a container's port is reachable

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.temporal_address:
            self.temporal_address = f"127.0.0.1:{self.temporal_port}"
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'registry.db'}"
        return self


@cache
def get_settings() -> Settings:
    return Settings()
