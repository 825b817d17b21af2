"""`landflow audit verify --all`: every parcel on the server, every document its history
cites. On a Temporal dev server of its own, since the session's holds parcels of other
tests whose documents live in other stores (or were broken on purpose)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from service.worker import build_worker
from tests.conftest import api_client, dev_server, make_settings
from tests.helpers import act, cite, facts, get, pdf, start


def verify_all(address: str, documents_dir: Path, data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "audit", "verify", "--all"],
        env={
            "LANDFLOW_TEMPORAL_ADDRESS": address,
            "LANDFLOW_DOCUMENTS_DIR": str(documents_dir),
            "LANDFLOW_DATA_DIR": str(data_dir),
            "PATH": str(Path(sys.executable).parent),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_verify_all_names_missing_and_changed_documents(tmp_path, pid):
    env = await dev_server()
    settings = make_settings(tmp_path)
    try:
        async with build_worker(env.client, settings), api_client(settings, env.client) as api:
            parcels = [f"{pid}A", f"{pid}B"]
            for n, code in enumerate(parcels):
                await start(api, facts(code, enterprise_closed=False, industry="other"))
                body = {
                    "extent_m2": 1,
                    "degree": "x",
                    "samples": [{"item": "铅", "value_mg_kg": 5 + n}],  # a samples blob each
                    "documents": await cite(api, code, "investigation_report", "reserve_agency"),
                }
                await act(api, code, "investigation_report", body, "reserve_agency")
            cited = [(await get(api, code))["actions"][-1]["documents"][0] for code in parcels]
        for _ in range(100):  # visibility catches up within moments; --all reads it
            if (await env.client.count_workflows()).count == len(parcels):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the dev server's visibility never listed both parcels")
        address = env.client.service_client.config.target_host
        documents_dir = Path(settings.documents_dir)

        clean = verify_all(address, documents_dir, tmp_path)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert "4 cited documents checked, 0 missing or changed" in clean.stdout

        def blob(sha: str) -> Path:
            return documents_dir / "sha256" / sha[:2] / sha[2:]

        missing, changed = (c["sha256"] for c in cited)
        blob(missing).unlink()
        blob(changed).chmod(0o644)
        blob(changed).write_bytes(pdf("another report"))
        broken = verify_all(address, documents_dir, tmp_path)
        assert broken.returncode == 1, broken.stdout + broken.stderr
        lines = broken.stdout.splitlines()
        assert any(
            f"parcel-{pid}A" in line and missing in line and "missing" in line for line in lines
        )
        assert any(
            f"parcel-{pid}B" in line and changed in line and "changed" in line for line in lines
        )
        assert "4 cited documents checked, 2 missing or changed" in broken.stdout
    finally:
        await env.shutdown()
