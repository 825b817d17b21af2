"""A second worker and API on the session's dev server, under a policy of the test's own
(tiny history budgets force continue-as-new; short deadlines make reminders fire)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from landflow.settings import PACKAGE_DIR, Settings
from service.worker import build_worker
from tests.conftest import api_client


def policy_file(tmp: Path, **changes: Any) -> Path:
    policy = yaml.safe_load((PACKAGE_DIR / "policy.yaml").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if isinstance(value, dict):
            policy.setdefault(key, {}).update(value)
        else:
            policy[key] = value
    path = tmp / f"policy-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    return path


Stack = Callable[..., Any]


@asynccontextmanager
async def own_stack(
    temporal: WorkflowEnvironment, settings: Settings, tmp: Path, **changes: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A worker and API on a fresh task queue of the session's server, under the policy
    file with `changes` (module-scoped fixtures use it directly)."""
    own = settings.model_copy(
        update={
            "policy_file": policy_file(tmp, **changes),
            "task_queue": f"landflow-test-{uuid.uuid4().hex[:8]}",
        }
    )
    async with build_worker(temporal.client, own), api_client(own, temporal.client) as api:
        yield api


@pytest.fixture
def stack(temporal: WorkflowEnvironment, settings: Settings, tmp_path: Path) -> Stack:
    """`async with stack(**policy_changes) as api:` a worker and API on a fresh task queue."""
    return partial(own_stack, temporal, settings, tmp_path)
