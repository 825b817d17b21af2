"""Dependencies declared once: settings, database session, Temporal client, caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session
from temporalio.client import Client

from api.errors import ApiError, unavailable
from documents.store import DocumentStore
from landflow.messages import Actor
from landflow.policy import Policy
from landflow.settings import Settings
from landflow.vocabulary import Role
from rules.engine import RulesEngine
from workflows.client import connect


# The dependencies that never block are `async def`: FastAPI runs a plain `def` one in a
# worker thread, a hop per request that bench/PROFILE.md found in every action.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session that has not touched the database yet (opening one does no I/O): no
    thread hop to make it. Closing it gives a connection back to the pool, which may ask
    the database (a rollback): in a worker thread then; routes that read through
    `read_then_release` have given theirs back already."""
    session = Session(request.app.state.engine)
    try:
        yield session
    finally:
        if session.in_transaction():
            await asyncio.to_thread(session.close)
        else:
            session.close()


async def get_temporal(request: Request) -> Client:
    """Connect lazily, so the API starts (and answers 503) while Temporal is down."""
    state = request.app.state
    if state.temporal is None:
        async with state.temporal_lock:
            if state.temporal is None:
                try:
                    state.temporal = await asyncio.wait_for(
                        connect(state.settings), timeout=state.settings.action_timeout_s
                    )
                except (TimeoutError, RuntimeError, OSError) as exc:
                    raise unavailable("the workflow engine") from exc
    return state.temporal


# Declares the scheme in the OpenAPI document (the docs page's "Authorize" button);
# the checks below are ours, so every refusal is the same 401 ErrorOut.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="a token from LANDFLOW_TOKENS_FILE; it names the caller's role, district and party",
)


async def get_caller(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Unauthenticated", "send Authorization: Bearer <token>")
    actor = request.app.state.tokens.actor(token.strip())
    if actor is None:
        raise ApiError(401, "Unauthenticated", "unknown token")
    return actor


async def get_store(request: Request) -> DocumentStore:
    return request.app.state.store


async def get_policy(request: Request) -> Policy:
    return request.app.state.policy


async def get_rules(request: Request) -> RulesEngine:
    return request.app.state.rules


async def get_optional_caller(request: Request) -> Actor | None:
    """The caller if a token came, else None (public reads with more for the signed-in)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return request.app.state.tokens.actor(token.strip())


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[DocumentStore, Depends(get_store)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
RulesDep = Annotated[RulesEngine, Depends(get_rules)]
MaybeCaller = Annotated[Actor | None, Depends(get_optional_caller)]
SessionDep = Annotated[Session, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
Caller = Annotated[Actor, Depends(get_caller)]


def require(*roles: Role):
    """A dependency that admits only the given roles (403 otherwise)."""

    async def check(caller: Caller) -> Actor:
        if caller.role not in roles:
            raise ApiError(
                403,
                "WrongRole",
                f"this needs the role {' or '.join(roles)}, not {caller.role.value}",
            )
        return caller

    return check
