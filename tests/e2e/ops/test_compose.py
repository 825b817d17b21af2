"""docker-compose.yml has the production shape: its parsed YAML, checked for meaning.

No Docker engine runs here. The file is read with PyYAML (anchors and merge keys
resolved; `${...}` left as written) and every check is about what a service does:
Temporal persists to PostgreSQL; its frontend and Web UI sit on an internal network
with no published 7233, speak mTLS and the UI asks for a login; the API, the scalable
workers and the one-shot migrate job are configured for Temporal, PostgreSQL and an
S3-compatible document store. `docker-compose config -q` then validates the file with
Compose itself where that tool is installed (skipped, saying so, where it is not).

The Temporal settings are the images' own environment variables:
- server: TEMPORAL_TLS_* of the server image's config template
  (https://github.com/temporalio/temporal/blob/main/docker/config_template.yaml);
- Web UI: TEMPORAL_TLS_* and TEMPORAL_AUTH_* of
  https://docs.temporal.io/references/web-ui-environment-variables;
- landflow: LANDFLOW_TEMPORAL_TLS_CA/CERT/KEY (landflow/settings.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from service.cli import app as cli
from workflows import visibility

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
LANDFLOW = ("migrate", "api", "worker")
LONG_RUNNING = ("postgres", "temporal", "api", "worker")
S3_IMAGES = ("minio/minio", "quay.io/minio/minio", "chrislusf/seaweedfs", "dxflrs/garage")
SERVER_TLS = (  # the frontend's certificate, mTLS with client CAs, and internode TLS
    "TEMPORAL_TLS_SERVER_CERT",
    "TEMPORAL_TLS_SERVER_KEY",
    "TEMPORAL_TLS_SERVER_CA_CERT",
    "TEMPORAL_TLS_FRONTEND_CERT",
    "TEMPORAL_TLS_FRONTEND_KEY",
    "TEMPORAL_TLS_CLIENT1_CA_CERT",
)
UI_TLS = ("TEMPORAL_TLS_CA", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY")
UI_AUTH = (
    "TEMPORAL_AUTH_PROVIDER_URL",
    "TEMPORAL_AUTH_CLIENT_ID",
    "TEMPORAL_AUTH_CLIENT_SECRET",
    "TEMPORAL_AUTH_CALLBACK_URL",
)
LANDFLOW_TLS = (
    "LANDFLOW_TEMPORAL_TLS_CA",
    "LANDFLOW_TEMPORAL_TLS_CERT",
    "LANDFLOW_TEMPORAL_TLS_KEY",
)


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no {name!r} service: {sorted(services)}"
    return services[name]


def env(name: str) -> dict[str, str]:
    """A service's environment, whichever syntax (mapping or KEY=VALUE list) it uses."""
    raw = service(name).get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def published_ports(name: str) -> set[str]:
    """Container ports a service publishes on the host (short or long syntax)."""
    found = set()
    for port in service(name).get("ports") or []:
        if isinstance(port, dict):
            found.add(str(port["target"]))
        else:
            found.add(str(port).split("/")[0].rsplit(":", 1)[-1])
    return found


def networks(name: str) -> set[str]:
    attached = service(name).get("networks") or ["default"]
    return set(attached)


def internal_networks() -> set[str]:
    return {
        n for n, spec in (compose().get("networks") or {}).items() if (spec or {}).get("internal")
    }


def mounts(name: str) -> set[PurePosixPath]:
    """Where files reach a service's containers: volume and bind targets, and secrets."""
    spec = service(name)
    found = set()
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            found.add(PurePosixPath(volume["target"]))
        else:  # source:target[:mode], or an anonymous volume's target alone
            parts = str(volume).split(":")
            found.add(PurePosixPath(parts[1] if len(parts) > 1 else parts[0]))
    for secret in spec.get("secrets") or []:
        source = secret if isinstance(secret, str) else secret.get("target") or secret["source"]
        found.add(PurePosixPath(source if source.startswith("/") else f"/run/secrets/{source}"))
    return found


def assert_mounted(name: str, variables: tuple[str, ...]) -> None:
    """Every file a variable names is inside something mounted into the service."""
    values = env(name)
    missing = [v for v in variables if not values.get(v)]
    assert not missing, f"{name}: {missing} not set"
    where = mounts(name)
    for variable in variables:
        path = PurePosixPath(values[variable])
        assert any(path == m or m in path.parents for m in where), (
            f"{name}: {variable}={path} is in no volume or secret mounted "
            f"({sorted(map(str, where))})"
        )


def command_text(name: str) -> str:
    command = service(name).get("command") or []
    return command if isinstance(command, str) else "\n".join(map(str, command))


def host_of(address: str) -> str:
    """`temporal:7233` or `http://minio:9000/...` -> the service host name."""
    rest = address.split("://", 1)[-1]
    return rest.split("/", 1)[0].rsplit(":", 1)[0]


# --- Temporal --------------------------------------------------------------------------


def test_temporal_persists_to_the_postgresql_service():
    temporal = env("temporal")
    assert temporal.get("DB", "").startswith("postgres"), temporal.get("DB")
    database = service(temporal["POSTGRES_SEEDS"])
    assert str(database["image"]).startswith("postgres:")
    assert (temporal.get("DBNAME"), temporal.get("VISIBILITY_DBNAME")) == (
        "temporal",
        "temporal_visibility",
    )
    assert not any("auto-setup" in str(s.get("image", "")) for s in compose()["services"].values())
    schema = next(
        name
        for name, spec in compose()["services"].items()
        if "temporal-sql-tool" in command_text(name) and "update-schema" in command_text(name)
    )
    needs = service("temporal")["depends_on"][schema]["condition"]
    assert needs == "service_completed_successfully"  # the schema is ready before the server


def test_the_temporal_frontend_and_ui_are_on_an_internal_network_without_7233_published():
    internal = internal_networks()
    assert internal, "no network is declared `internal: true`"
    for name in ("temporal", "temporal-ui"):
        assert networks(name) & internal, f"{name} is on no internal network"
    assert "7233" not in published_ports("temporal")
    for name in compose()["services"]:
        assert "7233" not in published_ports(name), f"{name} publishes the frontend's port"
    # every client of the frontend can reach it on a network it shares with it
    for name in ("temporal-ui", *LANDFLOW[1:]):
        assert networks(name) & networks("temporal"), f"{name} shares no network with temporal"


def test_the_temporal_frontend_requires_mtls():
    assert_mounted("temporal", SERVER_TLS)
    assert env("temporal").get("TEMPORAL_TLS_REQUIRE_CLIENT_AUTH") == "true"


def test_every_client_of_the_frontend_presents_a_certificate():
    assert_mounted("temporal-ui", UI_TLS)
    for name in LANDFLOW[1:]:  # migrate needs no Temporal
        assert_mounted(name, LANDFLOW_TLS)
    setup = setup_job()  # the temporal CLI: its TEMPORAL_TLS_* variables, or flags
    script, values = command_text(setup), env(setup)
    assert {"TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"} <= values.keys() or (
        "--tls-cert-path" in script and "--tls-key-path" in script
    ), f"{setup} dials the frontend without a client certificate"


def test_the_web_ui_asks_for_a_login():
    ui = env("temporal-ui")
    assert host_of(ui.get("TEMPORAL_ADDRESS", "")) == "temporal"
    assert ui.get("TEMPORAL_AUTH_ENABLED") == "true"
    missing = [v for v in UI_AUTH if not ui.get(v)]
    assert not missing, f"temporal-ui: {missing} not set"
    assert ui["TEMPORAL_AUTH_CALLBACK_URL"].endswith("/auth/sso/callback")


def setup_job() -> str:
    return next(
        name
        for name in compose()["services"]
        if "temporal operator namespace create" in command_text(name)
    )


def test_the_setup_job_creates_the_namespace_and_every_search_attribute():
    script = command_text(setup_job())
    assert "temporal operator search-attribute create" in script
    missing = [flag for flag in visibility.cli_flags() if flag not in script]
    assert not missing, f"{setup_job()} does not create {missing} (the workflow upserts them)"


def test_one_namespace_everywhere():
    namespace = env(setup_job()).get("NAMESPACE")
    for name in ("temporal-ui", *LANDFLOW):
        value = env(name).get("TEMPORAL_DEFAULT_NAMESPACE") or env(name).get("LANDFLOW_NAMESPACE")
        assert value == namespace, f"{name} uses namespace {value!r}, the setup job {namespace!r}"


# --- landflow ----------------------------------------------------------------------------


def test_landflow_services_are_built_here_and_reach_temporal_and_postgresql():
    for name in LANDFLOW:
        spec = service(name)
        build = spec.get("build")
        context = build.get("context", ".") if isinstance(build, dict) else build
        assert (ROOT / str(context)).resolve() == ROOT, name
        values = env(name)
        assert values["LANDFLOW_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert host_of(values["LANDFLOW_DATABASE_URL"].split("@", 1)[1]) == "postgres", name
        assert values["LANDFLOW_ENV"] == "production"
    for name in LANDFLOW[1:]:
        assert host_of(env(name)["LANDFLOW_TEMPORAL_ADDRESS"]) == "temporal", name


def test_the_api_serves_its_port_with_tokens_from_a_secret():
    api = service("api")
    assert api["command"][0] == "api"
    assert "8000" in published_ports("api")
    tokens = PurePosixPath(env("api")["LANDFLOW_TOKENS_FILE"])
    assert tokens in mounts("api"), "the tokens file is not mounted"
    assert "/readyz" in " ".join(api["healthcheck"]["test"])


def test_workers_scale_with_no_fixed_name_or_published_port():
    worker = service("worker")
    assert worker["command"] == ["worker"]
    assert "container_name" not in worker and not published_ports("worker")
    assert env("worker")["LANDFLOW_WORKER_METRICS_PORT"] == "9464"
    assert not any("container_name" in spec for spec in compose()["services"].values())


def test_migrate_runs_once_before_the_api_and_workers():
    migrate = service("migrate")
    assert migrate["command"] == ["migrate"]
    assert migrate.get("restart", "no") in ("no", "on-failure"), "a one-shot job must not restart"
    for name in ("api", "worker"):
        assert service(name)["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        ), name


def test_documents_go_to_an_s3_compatible_store_shared_by_api_and_workers():
    stores = [
        name
        for name, spec in compose()["services"].items()
        if str(spec.get("image", "")).split(":")[0] in S3_IMAGES
    ]
    assert stores, f"no S3-compatible document store among {sorted(compose()['services'])}"
    settings = {
        (env(n).get("LANDFLOW_DOCUMENTS_URL"), env(n).get("LANDFLOW_DOCUMENTS_ENDPOINT"))
        for n in ("api", "worker")
    }
    assert len(settings) == 1, f"the API and workers see different stores: {settings}"
    ((url, endpoint),) = settings
    assert (url or "").startswith("s3://") and len(url or "") > len("s3://"), url
    assert host_of(endpoint or "") in stores, f"LANDFLOW_DOCUMENTS_ENDPOINT={endpoint}"
    for name in ("api", "worker"):
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= env(name).keys(), name
    assert service(stores[0]).get("volumes"), "the documents must outlive the container"


def test_long_running_services_have_healthchecks():
    for name in LONG_RUNNING:
        assert service(name).get("healthcheck", {}).get("test"), name


def test_the_image_runs_the_commands_compose_uses():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["landflow"]' in dockerfile
    runner = CliRunner()
    for name in LANDFLOW:
        command = service(name)["command"][0]
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0, f"landflow {command}: {result.output}"


# --- Compose itself --------------------------------------------------------------------

needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (`make test` installs Debian's where apt-get "
    "works); the parsed-YAML checks above ran without it",
)


def compose_config(**variables: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("LANDFLOW_", "POSTGRES_"))
    }
    return subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        env=environment | variables,
        capture_output=True,
        text=True,
        timeout=60,
    )


def required_variables() -> dict[str, str]:
    """Every `${NAME:?...}` the file requires, with a value."""
    text = COMPOSE.read_text(encoding="utf-8")
    names = {
        part.split(":?", 1)[0] for part in text.split("${")[1:] if ":?" in part.split("}", 1)[0]
    }
    return {name: f"test-{name.lower()}" for name in names}


@needs_compose
def test_compose_validates_the_file():
    result = compose_config(**required_variables())
    assert result.returncode == 0, result.stderr


@needs_compose
def test_a_missing_database_password_is_refused_by_name():
    variables = {k: v for k, v in required_variables().items() if k != "POSTGRES_PASSWORD"}
    result = compose_config(**variables)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr
