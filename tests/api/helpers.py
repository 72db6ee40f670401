"""Helpers for API tests (import as ``from tests.api.helpers import ...``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

ON_BOTH = pytest.mark.parametrize("seeded", ["sqlite", "postgresql"], indirect=True)
"""Run the test on SQLite and on a fresh PostgreSQL database."""

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "fields"}


def problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert the response is an RFC 9457 problem with this status (and code); its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert set(body) == PROBLEM_KEYS, body
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    assert "Traceback" not in response.text
    return body
