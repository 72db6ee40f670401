"""Helpers for UI tests over ``TestClient``: log a user of the seeded database in."""

from __future__ import annotations

import re
from typing import Any

from tests.api.conftest import PASSWORD

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def login(client: Any, user_id: str, password: str = PASSWORD) -> str:
    """Log ``user_id`` in on ``client`` (the client keeps the cookie); returns the session's
    CSRF token (send it as ``X-CSRF-Token`` or the form field ``csrf_token``)."""
    res = client.post(
        "/login",
        data={"email": f"{user_id}@example.com", "password": password, "next": "/account"},
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text
    page = client.get("/account")
    assert page.status_code == 200, page.text
    found = CSRF_META.search(page.text)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


def csrf_of(html: str) -> str:
    found = CSRF_META.search(html)
    assert found is not None
    return found.group(1)
