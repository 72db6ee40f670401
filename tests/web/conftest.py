"""UI tests over TestClient use the API tests' seeded database and users (recipes/homework):
``client``, ``users``, ``account()``, ``store``, ``container`` (see tests/api/conftest.py).
Modules with fixtures of the same name (test_public.py) keep their own."""

from tests.api.conftest import (  # noqa: F401 - fixtures for this folder
    _seeded_sqlite,
    account,
    client,
    container,
    db_url,
    headers,
    seeded,
    store,
    tokens,
    users,
)
