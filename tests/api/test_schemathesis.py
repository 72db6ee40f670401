"""Schemathesis over the whole OpenAPI spec of the API (issue 7, robustness).

Every operation in ``/api/v1/openapi.json`` — whatever routers are registered when the test
runs — is called with generated input (valid and invalid), as the owner and again as a
client, over the seeded SQLite database of ``tests/api/conftest.py`` (a fresh copy per
operation, with one running instance so some tasks exist). For each response:

* no server error (``not_a_server_error``);
* the status code is one the operation declares, the content type is declared, and the body
  matches the declared schema;
* no body leaks a traceback or a Python file path.

State-changing calls may make later calls of the same operation answer 4xx; that is fine.
Bounded and deterministic: few examples per operation, derandomized, no deadline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.api.conftest import API

from flowlane.services.account import Account
from flowlane.web.app import Container, create_app

MAX_EXAMPLES = 6
"""Examples per operation and role: the file runs well within 3 minutes on 2 cores."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

LEAK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\"|/[\w./-]+\.py\b")
"""A Python traceback or a path of a Python source file in a response body."""


SPEC_APP = create_app(Container(store=None))  # type: ignore[arg-type]
"""The app the spec is read from (making the spec never touches the store)."""

schema = schemathesis.openapi.from_asgi(f"{API}/openapi.json", SPEC_APP)
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)


@pytest.fixture
def app(container: Container, account: Callable[[], Account], users: dict[str, str]) -> Any:
    """The app over a fresh copy of the seeded database, with one running instance (tasks)."""
    acc = account()
    acc.attempt(lambda: acc.start("homework-review", users["client"], by=users["owner"]))
    return create_app(container)


def assert_no_leak(text: str) -> None:
    found = LEAK.search(text)
    assert found is None, f"the body leaks internals: {found.group(0)!r} in {text[:500]!r}"


SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def call_and_check(case: schemathesis.Case, app: Any, auth: dict[str, str]) -> None:
    response = case.call(headers=auth, app=app)
    case.validate_response(response, checks=CHECKS, headers=auth)
    assert_no_leak(response.text)


@schema.parametrize()
@SETTINGS
def test_api_as_owner(
    case: schemathesis.Case, app: Any, headers: Callable[[str], dict[str, str]]
) -> None:
    """Every operation as the owner (may do everything: reaches the deepest code)."""
    call_and_check(case, app, headers("owner"))


@schema.parametrize()
@SETTINGS
def test_api_as_client(
    case: schemathesis.Case, app: Any, headers: Callable[[str], dict[str, str]]
) -> None:
    """Every operation as a client (refusals must be declared problems too)."""
    call_and_check(case, app, headers("client"))


def test_leak_pattern_finds_tracebacks() -> None:
    """The leak check itself: it sees what a stack trace would show."""
    trace = 'Traceback (most recent call last):\n  File "/app/src/flowlane/api/deps.py", line 3'
    with pytest.raises(AssertionError):
        assert_no_leak(trace)
    with pytest.raises(AssertionError):
        assert_no_leak('{"detail": "error in /work/src/flowlane/services/account.py"}')
    assert_no_leak('{"detail": "no such task: t-1", "code": "not_found"}')


def test_spec_declares_problems_as_problem_json() -> None:
    """Every problem response is declared as application/problem+json, as it is sent."""
    mount = next(r for r in SPEC_APP.routes if getattr(r, "path", None) == API)
    spec = mount.app.openapi()  # type: ignore[attr-defined]
    declared = [
        (path, method, status, set(response.get("content", {})))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status.startswith(("4", "5"))
    ]
    assert declared
    for path, method, status, types in declared:
        assert types == {"application/problem+json"}, (method, path, status, types)


def test_api_paths_the_mount_misses_are_problems(
    client: Any, headers: Callable[[str], dict[str, str]]
) -> None:
    """A path under /api/v1 that the mount does not match (a newline in it) is a problem."""
    response = client.get(f"{API}/kanban/a%0Ab", headers=headers("owner"))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "not_found"
