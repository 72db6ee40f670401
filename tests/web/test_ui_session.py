"""The UI's login, logout, CSRF, language switch and error pages (TestClient)."""

from __future__ import annotations

from tests.web.ui_helpers import login


def test_pages_need_a_session_and_send_to_login(client) -> None:
    res = client.get("/account", follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/login?next=%2Faccount"
    htmx = client.get("/account", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.headers["HX-Redirect"] == "/login?next=%2Faccount"


def test_login_wrong_password_says_so_and_sets_no_cookie(client) -> None:
    res = client.post("/login", data={"email": "owner@example.com", "password": "nope"})
    assert res.status_code == 401
    assert "Wrong email or password." in res.text
    assert "flowlane_session" not in res.cookies


def test_login_then_account_page_then_logout(client) -> None:
    csrf = login(client, "owner")
    page = client.get("/account")
    assert "Olga Owner" in page.text and "owner@example.com" in page.text
    # logging out needs the CSRF token
    refused = client.post("/logout", follow_redirects=False)
    assert refused.status_code == 403
    out = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_login_redirect_never_leaves_the_site(client) -> None:
    res = client.post(
        "/login",
        data={
            "email": "owner@example.com",
            "password": "correct horse battery",
            "next": "//evil.example/x",
        },
        follow_redirects=False,
    )
    assert res.status_code == 303 and res.headers["location"] == "/"


def test_home_sends_clients_to_cabinet_and_staff_to_inbox(client) -> None:
    login(client, "client")
    assert client.get("/", follow_redirects=False).headers["location"] == "/cabinet"
    client.cookies.clear()
    login(client, "manager")
    assert client.get("/", follow_redirects=False).headers["location"] == "/inbox"


def test_russian_by_cookie_and_by_browser_language(client) -> None:
    login(client, "owner")
    res = client.get("/lang/ru?next=/account", follow_redirects=True)
    assert "Мой аккаунт" in res.text and 'lang="ru"' in res.text
    client.cookies.delete("flowlane_lang")
    res = client.get("/account", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert "Мой аккаунт" in res.text


def test_change_password_ends_sessions_and_checks_the_current_one(client) -> None:
    csrf = login(client, "manager")
    wrong = client.post(
        "/account/password",
        data={"csrf_token": csrf, "current": "bad", "new": "another password 1"},
    )
    assert wrong.status_code == 403 and "current_password" in wrong.text
    ok = client.post(
        "/account/password",
        data={"csrf_token": csrf, "current": "correct horse battery", "new": "another password 1"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert client.get("/account", follow_redirects=False).status_code == 303
    login(client, "manager", "another password 1")


def test_vendor_assets_are_served_from_node_modules(client) -> None:
    assert client.get("/static/vendor/htmx/htmx.min.js").status_code == 200
    assert client.get("/static/vendor/bpmn-js/bpmn-modeler.production.min.js").status_code == 200
    assert client.get("/static/vendor/sortablejs/Sortable.min.js").status_code == 200
    assert client.get("/static/vendor/chart.js/chart.umd.min.js").status_code == 200
    assert client.get("/static/vendor/sortablejs/package.json").status_code == 404
    assert client.get("/static/flowlane/flowlane.css").status_code == 200
