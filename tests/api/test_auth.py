"""Login, sessions and CSRF, logout, the login throttle, API tokens and their revocation."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from tests.api.conftest import API, PASSWORD
from tests.api.helpers import ON_BOTH, problem

from flowlane.services.auth import LOGIN_MAX_FAILURES
from flowlane.store.sql.store import SqlStore

Headers = Callable[[str], dict[str, str]]


def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, object]:
    response = client.post(f"{API}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_login_sets_a_http_only_cookie_and_gives_the_csrf_token(client: TestClient) -> None:
    response = client.post(
        f"{API}/auth/login", json={"email": "manager@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("flowlane_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    body = response.json()
    assert body["user"]["id"] == "manager" and body["user"]["role"] == "manager"
    assert "password" not in body["user"]["data"]
    assert len(body["csrf_token"]) >= 20
    me = client.get(f"{API}/me")
    assert me.status_code == 200 and me.json()["id"] == "manager"


def test_the_session_is_stored_hashed(client: TestClient, store: SqlStore) -> None:
    login(client, "admin@example.com")
    session_id = client.cookies["flowlane_session"]
    from flowlane.services.auth import digest

    found = store.get_session(digest(session_id))
    assert found is not None and found.user_id == "admin"
    assert store.get_session(session_id) is None


def test_unsafe_requests_with_the_cookie_need_the_csrf_token(client: TestClient) -> None:
    body = login(client, "admin@example.com")
    new = {"name": "scripts"}
    problem(client.post(f"{API}/tokens", json=new), 403, "forbidden")
    problem(client.post(f"{API}/tokens", json=new, headers={"X-CSRF-Token": "wrong"}), 403)
    ok = client.post(f"{API}/tokens", json=new, headers={"X-CSRF-Token": str(body["csrf_token"])})
    assert ok.status_code == 201, ok.text
    assert client.get(f"{API}/tokens").status_code == 200  # safe methods need no token


def test_logout_ends_the_session(client: TestClient) -> None:
    body = login(client, "client@example.com")
    session = client.cookies["flowlane_session"]
    out = client.post(f"{API}/auth/logout", headers={"X-CSRF-Token": str(body["csrf_token"])})
    assert out.status_code == 204
    client.cookies.set("flowlane_session", session)  # a stolen copy is useless now
    problem(client.get(f"{API}/me"), 401, "unauthorized")


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(client: TestClient) -> None:
    wrong = client.post(f"{API}/auth/login", json={"email": "admin@example.com", "password": "x"})
    nobody = client.post(f"{API}/auth/login", json={"email": "no@example.com", "password": "x"})
    assert problem(wrong, 401)["detail"] == problem(nobody, 401)["detail"]
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "flowlane_session" not in client.cookies


@ON_BOTH
def test_logins_are_throttled_per_email_and_address(client: TestClient) -> None:
    wrong = {"email": "owner@example.com", "password": "wrong password"}
    for _ in range(LOGIN_MAX_FAILURES):
        problem(client.post(f"{API}/auth/login", json=wrong), 401)
    right = {"email": "owner@example.com", "password": PASSWORD}
    throttled = client.post(f"{API}/auth/login", json=right)
    problem(throttled, 429, "too_many_requests")
    assert int(throttled.headers["retry-after"]) > 0
    # Another email from the same address is not throttled.
    assert client.post(
        f"{API}/auth/login", json={"email": "admin@example.com", "password": PASSWORD}
    ).is_success


def test_a_successful_login_forgets_earlier_failures(client: TestClient) -> None:
    wrong = {"email": "owner@example.com", "password": "wrong password"}
    for _ in range(LOGIN_MAX_FAILURES - 1):
        problem(client.post(f"{API}/auth/login", json=wrong), 401)
    login(client, "owner@example.com")
    for _ in range(LOGIN_MAX_FAILURES - 1):
        problem(client.post(f"{API}/auth/login", json=wrong), 401)
    login(client, "owner@example.com")


@ON_BOTH
def test_tokens_are_created_listed_used_and_revoked(
    client: TestClient, headers: Headers, store: SqlStore
) -> None:
    made = client.post(f"{API}/tokens", json={"name": "ci"}, headers=headers("manager"))
    assert made.status_code == 201, made.text
    token = made.json()
    assert token["token"].startswith("flowlane_") and token["user_id"] == "manager"
    mine = {"Authorization": f"Bearer {token['token']}"}
    assert client.get(f"{API}/me", headers=mine).json()["id"] == "manager"
    listed = client.get(f"{API}/tokens", headers=headers("manager")).json()
    assert [t["name"] for t in listed] == ["tests", "ci"]
    assert all("token" not in t for t in listed)
    used = next(t for t in listed if t["id"] == token["id"])
    assert used["last_used_at"] is not None
    assert all(token["token"] not in str(r) for r in store.api_tokens())  # hashed at rest
    gone = client.delete(f"{API}/tokens/{token['id']}", headers=headers("manager"))
    assert gone.status_code == 200 and gone.json()["revoked_at"] is not None
    problem(client.get(f"{API}/me", headers=mine), 401, "unauthorized")
    problem(client.delete(f"{API}/tokens/{token['id']}", headers=headers("manager")), 409)


def test_only_admins_manage_the_tokens_of_others(client: TestClient, headers: Headers) -> None:
    theirs = client.get(f"{API}/tokens", params={"user_id": "client"}, headers=headers("admin"))
    assert theirs.status_code == 200 and len(theirs.json()) == 1
    problem(
        client.get(f"{API}/tokens", params={"user_id": "client"}, headers=headers("manager")),
        403,
        "forbidden",
    )
    made = client.post(
        f"{API}/tokens", json={"name": "for kira", "user_id": "client"}, headers=headers("owner")
    )
    assert made.status_code == 201 and made.json()["user_id"] == "client"
    # Someone else's token is not even found by a person who may not manage it.
    problem(client.delete(f"{API}/tokens/{made.json()['id']}", headers=headers("manager")), 404)
    revoked = client.delete(f"{API}/tokens/{made.json()['id']}", headers=headers("admin"))
    assert revoked.status_code == 200


def test_no_credentials_and_bad_tokens_are_401(client: TestClient) -> None:
    problem(client.get(f"{API}/me"), 401, "unauthorized")
    problem(client.get(f"{API}/me", headers={"Authorization": "Bearer flowlane_nope"}), 401)
    problem(client.get(f"{API}/me", headers={"Authorization": "Basic eDp5"}), 401)
    client.cookies.set("flowlane_session", "made-up")
    problem(client.get(f"{API}/me"), 401)


def test_changing_a_password_ends_sessions_and_needs_the_current_one(
    client: TestClient, headers: Headers
) -> None:
    body = login(client, "employee@example.com")
    csrf = {"X-CSRF-Token": str(body["csrf_token"])}
    url = f"{API}/users/employee/password"
    problem(client.put(url, json={"password": "a new password"}, headers=csrf), 403)
    problem(
        client.put(url, json={"password": "short", "current_password": PASSWORD}, headers=csrf),
        409,
    )
    done = client.put(
        url, json={"password": "a new password", "current_password": PASSWORD}, headers=csrf
    )
    assert done.status_code == 204
    problem(client.get(f"{API}/me"), 401)
    login(client, "employee@example.com", "a new password")
    # Admins set anyone's password without the current one.
    reset = client.put(url, json={"password": "reset by admin"}, headers=headers("admin"))
    assert reset.status_code == 204
    login(client, "employee@example.com", "reset by admin")
