"""docker-compose.yml is valid for Debian's docker-compose and has the production shape.

No Docker engine runs here: `docker-compose config` validates and resolves the file
(anchors, interpolation, depends_on conditions); the test then checks the services.
`make install` installs docker-compose where apt-get works; elsewhere this is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from landflow import visibility
from landflow.cli import app as cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {
    "postgres",
    "temporal-admin-tools",
    "temporal",
    "temporal-ui",
    "temporal-setup",
    "migrate",
    "api",
    "worker",
}
LANDFLOW = ("migrate", "api", "worker")

pytestmark = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (`make install` adds Debian's where apt-get works)",
)


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LANDFLOW_")}
    environment.pop("POSTGRES_PASSWORD", None)
    return subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config"],
        cwd=ROOT,
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    result = compose_config(POSTGRES_PASSWORD="s3cret")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def test_the_file_has_every_production_service(services):
    assert set(services) == SERVICES
    assert services["postgres"]["image"] == "postgres:16"
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    for job in ("temporal-admin-tools", "temporal-setup"):
        assert services[job]["image"].startswith("temporalio/admin-tools:")
    assert not any("auto-setup" in s.get("image", "") for s in services.values())


def test_temporal_schema_is_set_up_by_admin_tools_before_the_server_starts(services):
    script = "\n".join(services["temporal-admin-tools"]["command"])
    assert "temporal-sql-tool" in script and "update-schema" in script
    assert "temporal:temporal" in script and "temporal_visibility:visibility" in script
    needs = services["temporal"]["depends_on"]["temporal-admin-tools"]["condition"]
    assert needs == "service_completed_successfully"


def test_the_setup_job_creates_the_namespace_and_every_search_attribute(services):
    script = "\n".join(services["temporal-setup"]["command"])
    assert "temporal operator namespace create" in script
    assert "temporal operator search-attribute create" in script
    for flag in visibility.cli_flags():  # the attributes the workflow upserts, with types
        assert flag in script, flag


def test_landflow_services_are_built_here_and_configured_by_environment(services):
    for name in LANDFLOW:
        service = services[name]
        assert Path(service["build"]["context"]) == ROOT
        env = service["environment"]
        assert env["LANDFLOW_DATABASE_URL"] == (
            "postgresql+psycopg://postgres:s3cret@postgres:5432/landflow"
        )
        assert env["LANDFLOW_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["LANDFLOW_NAMESPACE"] == services["temporal-setup"]["environment"]["NAMESPACE"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["api"]["environment"]["LANDFLOW_TOKENS_FILE"].startswith("/run/secrets/")
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["temporal-setup"]["condition"] == "service_completed_successfully"


def test_the_worker_can_be_scaled(services):
    worker = services["worker"]
    assert worker["command"] == ["worker"]
    assert "container_name" not in worker and "ports" not in worker  # no name or port clash
    assert worker["environment"]["LANDFLOW_WORKER_METRICS_PORT"] == "9464"
    assert not any("container_name" in s for s in services.values())


def test_long_running_services_have_healthchecks(services):
    for name in ("postgres", "temporal", "api", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_a_missing_database_password_is_refused_by_name():
    result = compose_config()
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_the_image_runs_the_landflow_commands_compose_uses():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert 'ENTRYPOINT ["landflow"]' in dockerfile
    runner = CliRunner()
    for command in LANDFLOW:
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0, result.output
