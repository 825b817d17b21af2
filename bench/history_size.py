"""History per parcel: bytes of history per action, and per decade of yearly monitoring.

Per action: parcels of each path (bench.drive) driven to release through the HTTP API on
a dev server; a parcel's history bytes (every run, the protobuf size Temporal counts
against its limits) divided by the actions it took. The worst path counts.

Per decade: a parcel under risk control, monitored yearly for ten years on the
time-skipping test server with the real worker and activities; each year the reminder
fires 30 days before the deadline and the report comes 20 days before it, one report
comes a month late (the deadline passes: escalation, overdue). The bytes its history
grew by from entering monitoring to the tenth report are the decade's.

The ceilings were set a little above what was measured (bench/PROFILE.md says what).
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from bench import Row
from bench.drive import (
    INVESTIGATION,
    RELEASE_ONLY,
    RISK_CONTROL,
    SCREENING,
    Clerk,
    Drive,
    api_client,
    new_id,
)
from bench.fixtures import api_client as asgi_client
from bench.fixtures import time_skipping_stack
from bench.stack import Layout, stack
from landflow import signing
from landflow.messages import (
    STARTED_UPDATE,
    ActionOutcome,
    ActionRequest,
    Actor,
    canonical_json,
    workflow_id,
)
from workflows.history import ParcelHistory, fetch_history

PATHS = (RELEASE_ONLY, INVESTIGATION, SCREENING, RISK_CONTROL)
PER_ACTION_CEILING = 7 * 1024  # bytes; measured 6.2 KB on the worst path (screening)
PER_DECADE_CEILING = 56 * 1024  # bytes; measured 46 KB
YEAR = timedelta(days=365)
POLLUTER = Actor(role="responsible_party", party="91110105POLLUTER01")
MONITORING = RISK_CONTROL.steps.index(
    next(s for s in RISK_CONTROL.steps if s.action == "monitoring_result")
)


def size(history: ParcelHistory) -> int:
    return sum(event.ByteSize() for event in history.events)


def actions_of(drive: Drive) -> int:
    return sum(1 for name, _ in drive.calls if name not in ("register", "upload"))


def registration_bytes(history: ParcelHistory) -> int:
    """Bytes before the first action: the start, the policy, the intake decisions and the
    first step's projection, paid once per parcel whatever it goes through."""
    total = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = event.workflow_execution_update_accepted_event_attributes
            if accepted.accepted_request.input.name != STARTED_UPDATE:
                break
        total += event.ByteSize()
    return total


@dataclass(frozen=True)
class Sized:
    registration: int  # bytes
    actions_bytes: int  # bytes after the registration
    actions: int

    @property
    def per_action(self) -> int:
        return round(self.actions_bytes / self.actions)


async def per_action() -> dict[str, Sized]:
    """Each path's history, one released parcel each: registration and per-action bytes."""
    found: dict[str, Sized] = {}
    async with stack(Layout()) as bench, api_client(bench.url(), 4) as http:
        clerk = Clerk(http)
        for path in PATHS:
            drive = await clerk.drive(new_id("H"), path)
            history = await fetch_history(bench.client, drive.pid)
            first = registration_bytes(history)
            found[path.name] = Sized(first, size(history) - first, actions_of(drive))
    return found


async def monitoring_report(handle: WorkflowHandle, now: Any, year: int) -> ActionOutcome:
    """What the API would send, signed with the API's key at the server's (skipped) time."""
    body = {"diffusion_found": False, "notes": f"第{year}年监测"}
    request = ActionRequest(
        actor=POLLUTER,
        body=body,
        size=len(canonical_json(body)),
        issued_at=now if now.tzinfo else now.replace(tzinfo=UTC),
        key=f"decade-{year}",
    )
    signed = signing.sign(signing.installed(), handle.id, "monitoring_result", request)
    return await handle.execute_update("monitoring_result", signed, result_type=ActionOutcome)


async def per_decade() -> tuple[int, int, int]:
    """(bytes the history grew by over ten years of monitoring, events, runs)."""
    with tempfile.TemporaryDirectory(prefix="landflow-decade-") as tmp:
        async with time_skipping_stack(Path(tmp)) as (env, settings):
            async with asgi_client(settings, env.client) as http:
                clerk = Clerk(http)
                pid = new_id("D")
                drive = Drive(pid, RISK_CONTROL)
                await clerk.register(drive, RISK_CONTROL.facts(pid))
                for index, step in enumerate(RISK_CONTROL.steps[:MONITORING]):
                    await clerk.act(drive, step, f"{pid}-{index}")
            if drive.last.get("step") != "monitoring":
                raise RuntimeError(f"{pid} is not monitored: {drive.last}")
            before = await fetch_history(env.client, pid)
            handle = env.client.get_workflow_handle(workflow_id(pid))
            for year in range(1, 11):
                await env.sleep(
                    YEAR - timedelta(days=20) + (timedelta(days=30) if year == 7 else timedelta())
                )
                with env.auto_time_skipping_disabled():
                    await monitoring_report(handle, await env.get_current_time(), year)
            after = await fetch_history(env.client, pid)
    return size(after) - size(before), len(after.events) - len(before.events), len(after.runs())


async def run() -> list[Row]:
    paths = await per_action()
    decade, events, runs = await per_decade()
    worst_name, worst = max(paths.items(), key=lambda item: item[1].per_action)
    note = (
        f"worst path {worst_name}; bytes per action after registration, per path: "
        + ", ".join(f"{n} {p.per_action:,} ({p.actions} actions)" for n, p in paths.items())
        + f"; registration {min(p.registration for p in paths.values()):,}-"
        f"{max(p.registration for p in paths.values()):,} B once per parcel; ceiling "
        f"{PER_ACTION_CEILING:,} B, a little above the measured worst"
    )
    decade_note = (
        f"10 yearly monitoring reports (one late: an escalation), reminders each year; "
        f"{events} events in {runs} run(s); time-skipping server, real worker and activities; "
        f"ceiling {PER_DECADE_CEILING:,} B"
    )
    return [
        Row(
            "history per action",
            worst.per_action,
            "bytes",
            None,
            PER_ACTION_CEILING,
            False,
            note,
        ),
        Row(
            "history per decade of monitoring",
            decade,
            "bytes",
            None,
            PER_DECADE_CEILING,
            False,
            decade_note,
        ),
    ]


if __name__ == "__main__":
    print(asyncio.run(run()))
