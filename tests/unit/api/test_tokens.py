"""Bearer tokens (api/auth.py): each token names its actor, a near miss names nobody (401),
and the lookup takes as long wherever the token sits in the file, or if it is in none."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import TokenEntry, TokenStore, digest
from landflow.vocabulary import Role
from tests.conftest import make_settings
from tests.helpers import TOKENS

FIRST, LAST = next(iter(TOKENS)), list(TOKENS)[-1]


def near_misses(token: str) -> dict[str, str]:
    return {
        "one char off": token[:-1] + chr(ord(token[-1]) + 1),
        "one char short": token[:-1],
        "one char long": token + "x",
        "a prefix": token[:2],
        "other case": token.upper(),
        "not ascii": token + "令",
        "empty": "",
    }


@pytest.fixture(scope="module")
def store() -> TokenStore:
    return TokenStore({t: TokenEntry.model_validate(e) for t, e in TOKENS.items()})


def test_each_token_names_its_own_actor(store: TokenStore) -> None:
    for token, entry in TOKENS.items():
        actor = store.actor(token)
        assert actor is not None, token
        scope = entry.get("district") or entry.get("party")
        assert (actor.role.value, actor.district or actor.party) == (entry["role"], scope)
        assert store.actor_by_digest(digest(token)) == actor  # a workbench session's way in


@pytest.mark.parametrize("token", [FIRST, LAST])
def test_a_near_miss_names_nobody(store: TokenStore, token: str) -> None:
    for what, guess in near_misses(token).items():
        assert guess not in TOKENS, what
        assert store.actor(guess) is None, what
        assert store.actor_by_digest(digest(guess)) is None, what
    assert store.actor_by_digest(digest(token)[:-1]) is None
    assert store.actor_by_digest(token) is None  # the token is not its own digest


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app in-process on a SQLite registry (no server): /tasks reads only the registry."""
    with TestClient(create_app(make_settings(tmp_path_factory.mktemp("tokens")))) as client:
        yield client


def test_the_api_answers_a_near_miss_with_401(api: TestClient) -> None:
    assert api.get("/tasks", headers={"Authorization": f"Bearer {FIRST}"}).status_code == 200
    for what, guess in near_misses(FIRST).items():
        answer = api.get("/tasks", headers={"Authorization": f"Bearer {guess}".encode()})
        assert answer.status_code == 401, what
        assert answer.json()["error"] == "Unauthenticated", what


# --- no early exit -----------------------------------------------------------------------
# A lookup that stopped at the first match would answer the first token of a big file
# much faster than the last or an unknown one (50-100x here with 3,000 tokens); one that
# compares every token takes as long for each. The bound is loose (within 2x, on each
# case's fastest of many interleaved rounds, as load on the machine only ever adds time),
# so it holds on a busy machine and still fails on an early exit.

MANY = 3000
ROUNDS = 30


def fastest(lookups: dict[str, Callable[[], object]]) -> dict[str, float]:
    best = dict.fromkeys(lookups, float("inf"))
    for _ in range(ROUNDS):
        for name, lookup in lookups.items():
            started = time.perf_counter()
            lookup()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def test_the_lookup_takes_as_long_wherever_the_token_is() -> None:
    tokens = [f"t-{n:05d}-{'k' * 40}" for n in range(MANY)]
    entries = {token: TokenEntry(role=Role.ops, subject=token[:7]) for token in tokens}
    store = TokenStore(entries)
    first, last, unknown = tokens[0], tokens[-1], tokens[0][:-1] + "j"
    found = [store.actor(token) for token in (first, last, unknown)]
    assert [a.subject if a else None for a in found] == ["t-00000", "t-02999", None]
    took = fastest(
        {
            "first": lambda: store.actor(first),
            "last": lambda: store.actor(last),
            "unknown": lambda: store.actor(unknown),
            "first by digest": lambda: store.actor_by_digest(digest(first)),
            "unknown by digest": lambda: store.actor_by_digest(digest(unknown)),
        }
    )
    shown = {name: f"{seconds * 1e6:.0f} µs" for name, seconds in took.items()}
    assert min(took.values()) > max(took.values()) / 2, shown
