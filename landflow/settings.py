"""Typed settings from LANDFLOW_* environment variables (pydantic-settings), read once.

Every setting is documented in the README's Configuration table; a deployment that is
not `dev` refuses to start with the dev signing key or without a tokens file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
DEV_ACTOR_KEY = "landflow-dev-actor-signing-key"  # refused outside dev


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LANDFLOW_", extra="ignore")

    env: str = "dev"
    data_dir: Path = Path(".data")
    temporal_port: int = 7233
    temporal_address: str = ""  # host:port; defaults to 127.0.0.1:<temporal_port>
    temporal_tls_ca: Path | None = None  # PEM of the CA that signed the frontend's cert
    temporal_tls_cert: Path | None = None  # client certificate (mTLS)
    temporal_tls_key: Path | None = None
    ui_port: int = 8233
    ui_url: str = ""  # where ops open the Temporal Web UI; defaults to the dev server's
    api_port: int = 8000
    namespace: str = "default"
    task_queue: str = "landflow"
    database_url: str = ""  # any SQLAlchemy URL; defaults to SQLite under data_dir
    tokens_file: Path | None = None
    actor_key: str = DEV_ACTOR_KEY  # HMAC key the API signs actors with
    actor_keys_previous: Annotated[list[str], NoDecode] = Field(default_factory=list)
    session_key: str = ""  # signs workbench session cookies; defaults to a key from actor_key
    # Mark the workbench's session and CSRF cookies Secure; defaults to true in production
    # (behind TLS), false elsewhere (a request that came over HTTPS gets them anyway).
    secure_cookies: bool | None = None
    policy_file: Path = PACKAGE_DIR / "policy.yaml"
    rules_dir: Path | None = None  # defaults to the packaged rules/ declarations
    documents_dir: Path | None = None  # defaults to <data_dir>/documents
    documents_url: str = ""  # s3://bucket/prefix for an S3-compatible store
    documents_endpoint: str = ""  # a non-AWS S3 endpoint (MinIO, ...)
    max_document_bytes: int = 50 * 2**20
    extra_districts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_url: str = ""
    tile_url: str = ""  # a map tile server for the public register (optional)
    action_timeout_s: float = 10.0
    max_body_bytes: int = 1_000_000
    max_header_bytes: int = 16_384
    tokens_reload_s: float = 2.0  # how often the tokens file is checked for changes
    worker_metrics_port: int = 0  # the worker's Prometheus endpoint; 0 = off
    worker_metrics_host: str = "0.0.0.0"  # all interfaces, so a container's port is reachable

    @field_validator("actor_keys_previous", "extra_districts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.temporal_address:
            self.temporal_address = f"127.0.0.1:{self.temporal_port}"
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'registry.db'}"
        if self.documents_dir is None:
            self.documents_dir = self.data_dir / "documents"
        if not self.ui_url:
            self.ui_url = f"http://127.0.0.1:{self.ui_port}"
        if not self.session_key:
            self.session_key = f"session:{self.actor_key}"
        if self.secure_cookies is None:
            self.secure_cookies = self.env == "production"
        if self.env != "dev" and self.actor_key == DEV_ACTOR_KEY:
            raise ValueError("LANDFLOW_ACTOR_KEY must be set outside dev (the dev key is public)")
        return self

    @property
    def documents_location(self) -> str:
        return self.documents_url or str(self.documents_dir)


@cache
def get_settings() -> Settings:
    return Settings()
