"""Fixtures for API tests: a seeded database, one user per role with an API token, a client.

* ``client`` — a ``TestClient`` over ``web.create_app`` (API at ``/api/v1``), no credentials.
* ``headers(role)`` — ``{"Authorization": "Bearer <token>"}`` of the user of that role key.
* ``users`` — role key -> user id; the keys are :data:`ROLE_KEYS`: ``owner``, ``admin``,
  ``manager``, ``employee`` (with ``work_with_tasks``), ``employee_plain`` (without it) and
  ``client``. Every user's password is :data:`PASSWORD`; emails are ``<id>@example.com``.
* ``container`` / ``store`` / ``account()`` — for setting up data through the services.
* ``db_url`` — SQLite (a copy of a database seeded once per session) by default; run a test
  on PostgreSQL too with ``@ON_BOTH`` (``from tests.api.helpers import ON_BOTH``).

The recipe is ``recipes/homework`` (processes ``homework`` and ``homework-review`` on users).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable, request_account
from flowlane.services import auth
from flowlane.services.account import Account
from flowlane.store.sql.store import SqlStore
from flowlane.web.app import Container, create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "homework"
PASSWORD = "correct horse battery"
API = "/api/v1"
ROLE_KEYS = ("owner", "admin", "manager", "employee", "employee_plain", "client")
_PEOPLE: dict[str, dict[str, object]] = {
    "owner": {"name": "Olga Owner", "role": "owner"},
    "admin": {"name": "Adam Admin", "role": "admin"},
    "manager": {"name": "Mila Manager", "role": "manager", "groups": []},
    "employee": {"name": "Egor Employee", "role": "employee", "permissions": ["work_with_tasks"]},
    "employee_plain": {"name": "Elena Employee", "role": "employee"},
    "client": {"name": "Kira Client", "role": "client"},
}


@dataclass(frozen=True)
class Seeded:
    """A seeded database: its URL, the user ids and API tokens by role key."""

    url: str
    users: dict[str, str]
    tokens: dict[str, str]


def seed(url: str, recipe_dir: Path = RECIPE) -> Seeded:
    """Deploy the recipe (by default :data:`RECIPE`) on ``url`` and make one user per role
    key with a token."""
    recipe = load_valid_recipe(recipe_dir)
    store = open_durable(recipe, url)
    try:
        deploy(recipe, store)
        acc = request_account(store)
        tokens: dict[str, str] = {}
        users: dict[str, str] = {}

        def make() -> None:
            for key, data in _PEOPLE.items():
                uid = key.replace("_", "-")
                fields = {**data, "email": f"{uid}@example.com", "password": PASSWORD}
                acc.create_object("user", fields, object_id=uid)
                users[key] = uid
                tokens[key] = auth.create_token(acc, uid, "tests", by=None).token

        acc.attempt(make)
        return Seeded(url, users, tokens)
    finally:
        store.close()


@pytest.fixture(scope="session")
def _seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    path = tmp_path_factory.mktemp("api-seed") / "seed.db"
    return path, seed(f"sqlite:///{path}")


@pytest.fixture
def seeded(
    request: pytest.FixtureRequest, tmp_path: Path, _seeded_sqlite: tuple[Path, Seeded]
) -> Seeded:
    """The seeded database of this test (``db_url`` param ``postgresql``: a fresh one)."""
    kind = getattr(request, "param", "sqlite")
    if kind == "postgresql":
        return seed(request.getfixturevalue("pg_database"))
    source, template = _seeded_sqlite
    path = tmp_path / "api.db"
    shutil.copyfile(source, path)
    return Seeded(f"sqlite:///{path}", template.users, template.tokens)


@pytest.fixture
def db_url(seeded: Seeded) -> str:
    return seeded.url


@pytest.fixture
def users(seeded: Seeded) -> dict[str, str]:
    return dict(seeded.users)


@pytest.fixture
def tokens(seeded: Seeded) -> dict[str, str]:
    return dict(seeded.tokens)


@pytest.fixture
def store(seeded: Seeded) -> Iterator[SqlStore]:
    opened = open_durable(load_valid_recipe(RECIPE), seeded.url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def container(store: SqlStore, tmp_path: Path) -> Container:
    return Container(store=store, data=tmp_path / "data")


@pytest.fixture
def account(container: Container) -> Callable[[], Account]:
    """``account()``: a fresh account on the test's store (run changes in ``attempt``)."""
    return container.account


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), base_url="http://testserver") as c:
        yield c


@pytest.fixture
def headers(tokens: dict[str, str]) -> Callable[[str], dict[str, str]]:
    """``headers(role_key)`` -> the Authorization header of that user's API token."""

    def make(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    return make
