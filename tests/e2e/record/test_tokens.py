"""A revoked token stops working within seconds: the tokens file is watched."""

from __future__ import annotations

import asyncio
import json
import time

from tests.conftest import api_client
from tests.helpers import TOKENS


async def test_a_revoked_token_gets_401_within_seconds(temporal, settings, tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(TOKENS), encoding="utf-8")
    own = settings.model_copy(update={"tokens_file": tokens, "tokens_reload_s": 0.5})
    async with api_client(own, temporal.client) as api:
        headers = {"Authorization": "Bearer t-auditor"}
        assert (await api.get("/parcels", headers=headers)).status_code == 200
        revoked = {t: e for t, e in TOKENS.items() if t != "t-auditor"}
        tokens.write_text(json.dumps(revoked), encoding="utf-8")
        deadline = time.monotonic() + 5
        while (await api.get("/parcels", headers=headers)).status_code != 401:
            assert time.monotonic() < deadline, "the revoked token still works after 5 s"
            await asyncio.sleep(0.2)
        # a broken file keeps the last good one (and says so in the log)
        tokens.write_text("{not json", encoding="utf-8")
        await asyncio.sleep(1)
        assert (
            await api.get("/parcels", headers={"Authorization": "Bearer t-ops"})
        ).status_code == 200
