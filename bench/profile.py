"""`python -m bench.profile`: where a parcel's time goes, sampled with py-spy.

Drives parcels through the API as the lifecycle benchmark does, while py-spy samples the
worker and API processes. Writes collapsed stacks to bench/profile/{worker,api}.txt
(open them in speedscope or flamegraph.pl) and prints the frames of landflow, the SDK
and SQLAlchemy by share of busy samples. bench/PROFILE.md says what they showed.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
from pathlib import Path

from bench.lifecycle import api_client, in_parallel, new_id, parcel_job, reference_shape
from bench.stack import BIN, Proc, stack

OUT = Path(__file__).resolve().parent / "profile"
PARCELS = 60
WATCHED = ("landflow/", "activities/", "rules/", "workflows/", "api/", "sqlalchemy/orm/session")
WATCHED += ("temporalio/worker/_workflow", "temporalio/worker/workflow_sandbox", "run_in_thread")
IDLE = ("EpollSelector.select", "Condition.wait", "_worker (concurrent/futures/thread.py")


def spy(proc: Proc) -> subprocess.Popen:
    argv = [str(BIN / "py-spy"), "record", "-p", str(proc.pid), "-r", "100", "--nonblocking"]
    argv += ["--format", "raw", "-o", str(OUT / f"{proc.name}.txt")]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top(path: Path, count: int = 25) -> list[tuple[float, str]]:
    """Inclusive share of busy samples per watched function (idle waits left out)."""
    shares: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = stack.split(";")
        if not stack or frames[-1].startswith(IDLE):
            continue
        busy += int(samples)
        names = {f.split(":")[0] + ")" for f in frames if any(w in f for w in WATCHED)}
        for name in names:
            shares[name] += int(samples)
    return [(100 * n / max(busy, 1), name) for name, n in shares.most_common(count)]


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    async with stack() as bench:
        worker = bench.start_worker()
        await bench.start_api()
        api = next(p for p in bench.procs if p.name == "api")
        async with api_client(bench, 20) as http:
            await reference_shape(bench, http)  # warm
            spies = [spy(worker), spy(api)]
            await asyncio.sleep(1)
            ids = [new_id("P") for _ in range(PARCELS)]
            seconds = await in_parallel(PARCELS, 20, lambda i: parcel_job(http, ids, i))
            for one in spies:
                one.send_signal(signal.SIGINT)
                one.wait(30)
    print(f"{PARCELS} parcels in {seconds:.1f} s")
    for name in ("worker", "api"):
        print(f"\n{name}: share of busy samples ({OUT / name}.txt)")
        for share, frame in top(OUT / f"{name}.txt"):
            print(f"  {share:5.1f}%  {frame}")


if __name__ == "__main__":
    asyncio.run(main())
