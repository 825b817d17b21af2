"""The fault-and-load run: N parcels (LANDFLOW_FAULT_LOAD_PARCELS, default 40; the full
run uses 400) driven CONCURRENCY at a time through three paths (release without
investigation; a clean investigation and release; listed, remediated and removed), while
the worker, the API and the dev server are each SIGKILLed at random moments and started
again. Clients retry 503, 429 and broken connections with the same Idempotency-Key.

At the end every parcel is where its path ends, every action, decision and list entry
is there exactly once, and `landflow registry verify` finds 0 differences. The seed
(LANDFLOW_FAULT_LOAD_SEED) makes the fault moments repeatable.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.faults.conftest import (
    REPO,
    ROUTES,
    SPOT_CHECK,
    Route,
    Stack,
    Tally,
    assert_registered_once,
    course,
    drive,
    read_parcel,
    start_parcel,
)

pytestmark = pytest.mark.faults

N = int(os.environ.get("LANDFLOW_FAULT_LOAD_PARCELS", "40"))
SEED = int(os.environ.get("LANDFLOW_FAULT_LOAD_SEED", str(random.randrange(10**6))))
CONCURRENCY = 8
MIX = ("release", "clean", "remediation")
KINDS = ("worker", "api", "temporal")
CYCLES = max(1, round(N / 130))  # one kill of each kind per cycle: 1 at N=40, 3 at N=400
STACK = {"action_timeout_s": 5.0}


@dataclass
class Fault:
    kind: str
    at: float  # share of the load's moves done when it struck
    after_s: float  # since the load began
    down_s: float
    back_in_s: float  # from the restart to serving again


@dataclass
class Load:
    """How far the load is: moves done, of all it has."""

    total: int
    done: int = 0
    finished: bool = False

    def share(self) -> float:
        return self.done / self.total

    def bump(self) -> None:
        self.done += 1


def plan(rng: random.Random) -> list[tuple[float, str]]:
    """When (share of the moves done) each kill strikes: one per slot of (0.05, 0.85)."""
    kinds = [kind for _ in range(CYCLES) for kind in rng.sample(KINDS, len(KINDS))]
    width = 0.8 / len(kinds)
    return [(0.05 + width * (i + rng.uniform(0.1, 0.9)), kind) for i, kind in enumerate(kinds)]


async def inject(
    stack: Stack, load: Load, rng: random.Random, began: float, faults: list[Fault]
) -> None:
    for share, kind in plan(rng):
        while load.share() < share and not load.finished:
            await asyncio.sleep(0.1)
        if load.finished:
            raise AssertionError(f"the load ended before the {kind} kill at {share:.0%}")
        struck = time.monotonic()
        await stack.kill(kind, signal.SIGKILL)
        down = rng.uniform(0.5, 3.0)
        await asyncio.sleep(down)
        restart = time.monotonic()
        await stack.start(kind)
        faults.append(Fault(kind, load.share(), struck - began, down, time.monotonic() - restart))


def expected_actions(route: Route, parcel: dict[str, Any]) -> Counter[tuple[str, str]]:
    moves = list(route.moves)
    if any(a["action"] == SPOT_CHECK.action for a in parcel["actions"]):
        moves.append(SPOT_CHECK)  # drawn for this parcel (BJ 30)
    return Counter((m.action, m.role) for m in moves)


async def check(
    stack: Stack,
    parcel: str,
    route: Route,
    first_of: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    """Where the path ends, each action once, and the registry's rows once each, as for
    the first parcel of the same path."""
    state = await read_parcel(stack.http, parcel)
    seen = course(state)
    assert seen["end"] == ("released", "released", False, False), seen["end"]
    assert seen["stages"] == list(route.stages), seen["stages"]
    assert seen["lists"] == sorted((name, True) for name in route.lists), seen["lists"]
    taken = Counter((a["action"], a["role"]) for a in state["actions"])
    assert taken == expected_actions(route, state), f"actions {taken}"
    rows = assert_registered_once(stack, state)
    reference = first_of.setdefault(route.name, (seen, rows))
    assert seen["decisions"] == reference[0]["decisions"], seen["decisions"]
    assert rows["decisions"] == reference[1]["decisions"], rows["decisions"]
    assert rows["lists"] == reference[1]["lists"], rows["lists"]


async def test_parcels_under_load_and_faults_end_exactly_once(
    stack: Stack, pid: str, capsys: pytest.CaptureFixture[str]
):
    http, rng = stack.http, random.Random(SEED)
    with capsys.disabled():  # first, so a run that fails half-way can still be repeated
        print(f"\nfault-and-load run begins: N={N}, LANDFLOW_FAULT_LOAD_SEED={SEED}")
    tally = Tally()
    parcels = {f"{pid}-{n:04d}": ROUTES[MIX[n % len(MIX)]] for n in range(N)}
    load = Load(total=sum(len(route.moves) + 1 for route in parcels.values()))
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(parcel: str, route: Route) -> None:
        async with gate:
            await start_parcel(http, route.facts(parcel), tally)
            load.bump()
            await drive(http, parcel, route.moves, tally=tally, progress=load.bump)

    faults: list[Fault] = []
    began = time.monotonic()
    injector = asyncio.create_task(inject(stack, load, rng, began, faults))
    driving = asyncio.ensure_future(
        asyncio.gather(*(one(p, route) for p, route in parcels.items()))
    )
    await asyncio.wait({driving, injector}, return_when=asyncio.FIRST_EXCEPTION)
    load.finished = True
    for task in (driving, injector):  # a failed kill or restart stops the load at once
        if task.done() and task.exception() is not None:
            for other in (driving, injector):
                other.cancel()
            raise task.exception()  # type: ignore[misc]
    await driving
    await injector
    driven_s = time.monotonic() - began

    await stack.registry_ready()
    verify = subprocess.run(
        [sys.executable, "-m", "service.cli", "registry", "verify"],
        env=stack.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    first_of: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    problems = []
    for parcel, route in parcels.items():
        try:
            await check(stack, parcel, route, first_of)
        except AssertionError as exc:
            problems.append(f"{parcel} ({route.name}): {str(exc).splitlines()[0]}")
    wall_s = time.monotonic() - began
    with capsys.disabled():
        print(f"\nfault-and-load run: N={N} parcels, {CONCURRENCY} at a time, seed {SEED}")
        print(f"  paths: {dict(Counter(route.name for route in parcels.values()))}")
        print(f"  wall time {wall_s:.1f}s (driving {driven_s:.1f}s, {load.done} moves)")
        for fault in faults:
            print(
                f"  SIGKILL {fault.kind:<8} at {fault.at:4.0%} of the moves, "
                f"{fault.after_s:5.1f}s in, down {fault.down_s:.1f}s, "
                f"serving again {fault.back_in_s:.1f}s after its restart"
            )
        print(f"  client retries: {tally}")
        print(f"  parcels not as their path ends: {len(problems)}")
        print(f"  registry verify (exit {verify.returncode}): {verify.stdout.strip()[-3000:]}")
    assert not problems, f"{len(problems)} of {N} parcels:\n" + "\n".join(problems[:30])
    assert [f.kind for f in faults] == [kind for _, kind in plan(random.Random(SEED))]
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.strip().splitlines()[-1].startswith("0 differences"), verify.stdout
