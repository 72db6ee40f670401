"""Errors are RFC 9457 problems: one shape for 401/403/404/409/413/422/500, no traces."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from tests.api.conftest import API
from tests.api.helpers import problem

from flowlane.api.app import create_api
from flowlane.api.container import Container
from flowlane.api.deps import CallDep
from flowlane.api.errors import STATUS, status_of
from flowlane.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Refused,
    TooManyRequests,
    Unauthorized,
    ValidationError,
)
from flowlane.web.app import create_app

Headers = Callable[[str], dict[str, str]]


def test_one_table_maps_error_classes_to_statuses() -> None:
    assert status_of(ValidationError("x")) == 422
    assert status_of(NotFound("x")) == 404
    assert status_of(Forbidden("x")) == 403
    assert status_of(Unauthorized("x")) == 401
    assert status_of(TooManyRequests("x", retry_after=1)) == 429
    assert status_of(Conflict("x")) == 409
    assert status_of(Refused("x")) == 409
    assert set(STATUS.values()) >= {401, 403, 404, 409, 422, 429}


def test_openapi_and_docs_are_served_under_api_v1(client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert {"/auth/login", "/me", "/tokens", "/users", "/users/{user_id}", "/roles"} <= set(paths)
    docs = client.get(f"{API}/docs")
    assert docs.status_code == 200 and f"{API}/openapi.json" in docs.text


def test_validation_errors_name_the_parameter(client: TestClient, headers: Headers) -> None:
    bad = client.get(f"{API}/users", params={"size": 500}, headers=headers("admin"))
    body = problem(bad, 422, "invalid_request")
    assert "query.size" in body["detail"]
    assert body["fields"]["errors"][0]["loc"] == "query.size"
    missing = client.post(f"{API}/auth/login", json={"email": "a@example.com"})
    assert "body.password" in problem(missing, 422)["detail"]
    not_json = client.post(
        f"{API}/auth/login", content=b"{", headers={"content-type": "application/json"}
    )
    problem(not_json, 422)


def test_unknown_paths_and_methods_are_problems(client: TestClient, headers: Headers) -> None:
    problem(client.get(f"{API}/nothing-here", headers=headers("admin")), 404)
    problem(client.delete(f"{API}/me", headers=headers("admin")), 405)
    problem(client.get(f"{API}/users/nobody", headers=headers("admin")), 404, "not_found")


def test_bodies_over_the_limit_are_413(container: Container, headers: Headers) -> None:
    container.body_limits = (("/users*", 100), ("*", 1000))
    with TestClient(create_app(container)) as small:
        big = {"name": "x" * 200}
        problem(small.post(f"{API}/users", json=big, headers=headers("admin")), 413, "too_large")
        streamed = iter([b'{"name": "', b"y" * 150, b'"}'])  # chunked: no content-length
        problem(
            small.post(
                f"{API}/users",
                content=streamed,
                headers={**headers("admin"), "content-type": "application/json"},
            ),
            413,
        )
        login = {"email": "x@example.com", "password": "y" * 100}
        problem(small.post(f"{API}/auth/login", json=login), 401)  # under its own limit


def test_a_crash_is_a_500_problem_without_internals(
    container: Container, headers: Headers, caplog: pytest.LogCaptureFixture
) -> None:
    api = create_api(container)
    boom = APIRouter()

    @boom.get("/boom")
    async def explode(call: CallDep) -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    api.include_router(boom)
    with TestClient(api, raise_server_exceptions=False) as c, caplog.at_level(logging.ERROR):
        response = c.get("/boom", headers=headers("owner"))
    body = problem(response, 500, "internal")
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert body["detail"] == "an internal error occurred"
    assert any("secret internal detail" in r.getMessage() or r.exc_info for r in caplog.records)
