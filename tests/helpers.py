"""Builders shared by the tests: tokens per role and party, parcel facts (from
bench/fixtures.py), action shortcuts, a webhook receiver."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

# The builders (tokens, facts, samples, pdf) and the poll are shared with the benchmarks,
# which may not import tests/: they live in bench/fixtures.py and are found here too.
from bench.fixtures import *  # noqa: F403
from bench.fixtures import auth, pdf


async def upload(
    api: httpx.AsyncClient,
    parcel_id: str,
    kind: str,
    role: str,
    scope: str | None = None,
    content: bytes | None = None,
    filename: str = "report.pdf",
    media_type: str = "application/pdf",
    expect: tuple[int, ...] = (200, 201),
) -> dict[str, Any]:
    body = content if content is not None else pdf(f"{kind} {parcel_id} {uuid.uuid4()}")
    response = await api.post(
        f"/parcels/{parcel_id}/documents",
        files={"file": (filename, body, media_type)},
        data={"kind": kind},
        headers=auth(role, scope),
    )
    assert response.status_code in expect, response.text
    return response.json()


async def cite(
    api: httpx.AsyncClient, parcel_id: str, kind: str, role: str, scope: str | None = None
) -> list[dict[str, str]]:
    document = await upload(api, parcel_id, kind, role, scope)
    return [{"document_id": document["document_id"], "kind": kind}]


async def act(
    api: httpx.AsyncClient,
    parcel_id: str,
    action: str,
    body: dict[str, Any],
    role: str,
    scope: str | None = None,
    expect: int = 200,
    **headers: str,
) -> dict[str, Any]:
    response = await api.post(
        f"/parcels/{parcel_id}/actions/{action}",
        json=body,
        headers={**auth(role, scope), **{k.replace("_", "-"): v for k, v in headers.items()}},
    )
    assert response.status_code == expect, response.text
    return response.json()


async def start(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/parcels", json=body, headers=auth("reserve_agency"))
    assert response.status_code == 201, response.text
    return response.json()


async def get(api: httpx.AsyncClient, parcel_id: str) -> dict[str, Any]:
    response = await api.get(f"/parcels/{parcel_id}", headers=auth("auditor"))
    assert response.status_code == 200, response.text
    return response.json()


class WebhookReceiver:
    """A real HTTP endpoint on loopback that records what the worker POSTs to it."""

    def __init__(self) -> None:
        received: list[tuple[str | None, dict[str, Any]]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append((self.headers.get("idempotency-key"), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/notices"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def notices(self, parcel_id: str) -> list[tuple[str | None, dict[str, Any]]]:
        return [(key, body) for key, body in self.received if body["parcel_id"] == parcel_id]
