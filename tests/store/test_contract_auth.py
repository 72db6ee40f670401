"""The store contract for authentication: sessions, API tokens, failed logins.

Runs on :class:`~flowlane.store.memory.MemoryStore` (the reference) and on SQLite and
PostgreSQL, like ``test_contract.py``; looks only at what the protocol returns.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowlane.model.recipe import Recipe, load_recipe
from flowlane.store.auth import ApiTokenRecord, SessionRecord
from flowlane.store.base import Store
from flowlane.store.memory import MemoryStore
from flowlane.store.sql import open_store

AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "homework"


class Boom(Exception):
    """Raised inside a transaction to make it roll back."""


@pytest.fixture(scope="module")
def recipe() -> Recipe:
    return load_recipe(RECIPE)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, recipe: Recipe, tmp_path: Path) -> Iterator[Store]:
    assert recipe.schema is not None
    schema = copy.deepcopy(recipe.schema)
    opened: Store
    if request.param == "memory":
        opened = MemoryStore(schema)
    elif request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path}/x.db", schema, reset=True)
    else:
        opened = open_store(request.getfixturevalue("pg_database"), schema, reset=True)
    try:
        yield opened
    finally:
        opened.close()


def session(id_hash: str, user: str) -> SessionRecord:
    return SessionRecord(id_hash, user, f"csrf-{id_hash}", AT, AT + timedelta(days=1))


def test_sessions_are_kept_found_and_deleted(store: Store) -> None:
    with store.transaction():
        store.put_session(session("h1", "anna"))
        store.put_session(session("h2", "anna"))
        store.put_session(session("h3", "boris"))
    assert store.get_session("h1") == session("h1", "anna")
    assert store.get_session("nope") is None
    with store.transaction():
        assert store.delete_sessions(id_hash="h3") == 1
        assert store.delete_sessions(user_id="anna") == 2
        assert store.delete_sessions() == 0
    assert [store.get_session(h) for h in ("h1", "h2", "h3")] == [None, None, None]


def test_a_rolled_back_session_is_not_kept(store: Store) -> None:
    with pytest.raises(Boom), store.transaction():
        store.put_session(session("h1", "anna"))
        raise Boom
    assert store.get_session("h1") is None


def test_api_tokens_are_listed_revoked_and_touched(store: Store) -> None:
    first = ApiTokenRecord("t1", "hash1", "anna", "ci", AT)
    second = ApiTokenRecord("t2", "hash2", "anna", "cli", AT + timedelta(seconds=1))
    third = ApiTokenRecord("t3", "hash3", "boris", "ci", AT)
    with store.transaction():
        for t in (second, first, third):
            store.put_api_token(t)
    assert store.get_api_token(token_hash="hash2") == second
    assert store.get_api_token(token_id="t3") == third
    assert store.get_api_token(token_hash="nope") is None
    assert [t.id for t in store.api_tokens("anna")] == ["t1", "t2"]
    assert [t.id for t in store.api_tokens()] == ["t1", "t3", "t2"]
    later = AT + timedelta(hours=1)
    with store.transaction():
        store.touch_api_token("t1", later)
        assert store.revoke_api_token("t1", later) is True
        assert store.revoke_api_token("t1", later) is False
        assert store.revoke_api_token("nope", later) is False
    got = store.get_api_token(token_id="t1")
    assert got is not None and (got.last_used_at, got.revoked_at) == (later, later)


def test_login_failures_are_counted_per_key_and_time_and_cleared(store: Store) -> None:
    with store.transaction():
        for minutes in (0, 5, 10):
            store.add_login_failure("k1", AT + timedelta(minutes=minutes))
        store.add_login_failure("k2", AT)
    assert store.count_login_failures("k1", AT) == 3
    assert store.count_login_failures("k1", AT + timedelta(minutes=5)) == 2
    assert store.count_login_failures("k2", AT) == 1
    with store.transaction():
        store.clear_login_failures("k1")
    assert store.count_login_failures("k1", AT) == 0
    assert store.count_login_failures("k2", AT) == 1
