"""Users, groups and roles over the API, with who may do what (DESIGN §7, S2)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from tests.api.conftest import API, ROLE_KEYS
from tests.api.helpers import ON_BOTH, problem

from flowlane.services import permissions

Headers = Callable[[str], dict[str, str]]


@ON_BOTH
def test_users_are_listed_filtered_searched_and_paginated(
    client: TestClient, headers: Headers
) -> None:
    everyone = client.get(f"{API}/users", headers=headers("manager"))
    assert everyone.status_code == 200, everyone.text
    body = everyone.json()
    assert body["total"] == len(ROLE_KEYS) and (body["page"], body["size"]) == (1, 50)
    assert [u["id"] for u in body["items"]] == sorted(u["id"] for u in body["items"])
    assert all("password" not in u["data"] for u in body["items"])
    staff = client.get(f"{API}/users", params={"role": "employee"}, headers=headers("admin"))
    assert sorted(u["id"] for u in staff.json()["items"]) == ["employee", "employee-plain"]
    found = client.get(f"{API}/users", params={"search": "KIRA"}, headers=headers("admin"))
    assert [u["id"] for u in found.json()["items"]] == ["client"]
    page = client.get(f"{API}/users", params={"page": 2, "size": 4}, headers=headers("admin"))
    assert page.json()["total"] == len(ROLE_KEYS) and len(page.json()["items"]) == 2


def test_clients_see_only_themselves(client: TestClient, headers: Headers) -> None:
    problem(client.get(f"{API}/users", headers=headers("client")), 403, "forbidden")
    problem(client.get(f"{API}/groups", headers=headers("client")), 403)
    problem(client.get(f"{API}/users/manager", headers=headers("client")), 404, "not_found")
    me = client.get(f"{API}/users/client", headers=headers("client"))
    assert me.status_code == 200 and me.json()["name"] == "Kira Client"


def test_admins_create_users_who_can_then_log_in(client: TestClient, headers: Headers) -> None:
    new = {
        "id": "nina",
        "name": "Nina",
        "email": "nina@example.com",
        "role": "employee",
        "permissions": ["work_with_tasks"],
        "password": "nina's password",
    }
    made = client.post(f"{API}/users", json=new, headers=headers("admin"))
    assert made.status_code == 201, made.text
    user = made.json()
    assert (user["id"], user["role"], user["permissions"]) == (
        "nina",
        "employee",
        ["work_with_tasks"],
    )
    assert "password" not in user["data"]
    login = {"email": "nina@example.com", "password": "nina's password"}
    assert client.post(f"{API}/auth/login", json=login).status_code == 200
    problem(client.post(f"{API}/users", json=new, headers=headers("admin")), 409, "refused")
    for role in ("manager", "employee", "client"):
        other = {"id": f"x-{role}", "name": "X"}
        problem(client.post(f"{API}/users", json=other, headers=headers(role)), 403, "forbidden")


def test_bad_user_input_is_refused_naming_the_field(client: TestClient, headers: Headers) -> None:
    owner = headers("owner")
    unknown = client.post(f"{API}/users", json={"name": "Y", "permissions": ["fly"]}, headers=owner)
    assert "permissions" in problem(unknown, 409)["detail"]
    role = client.post(f"{API}/users", json={"name": "Y", "role": "king"}, headers=owner)
    assert "role" in problem(role, 409)["detail"]
    extra = client.post(f"{API}/users", json={"name": "Y", "salary": 1}, headers=owner)
    assert "salary" in problem(extra, 422, "invalid_request")["detail"]
    group = client.post(f"{API}/users", json={"name": "Y", "groups": ["nope"]}, headers=owner)
    assert "groups" in problem(group, 409)["detail"]


def test_admins_change_roles_and_permissions_a_person_only_their_name(
    client: TestClient, headers: Headers
) -> None:
    url = f"{API}/users/employee-plain"
    change = {"permissions": ["work_with_tasks"], "groups": ["with-homework"]}
    done = client.patch(url, json=change, headers=headers("admin"))
    assert done.status_code == 200, done.text
    assert done.json()["permissions"] == ["work_with_tasks"]
    assert done.json()["groups"] == ["with-homework"]
    renamed = client.patch(url, json={"name": "Lena"}, headers=headers("employee_plain"))
    assert renamed.status_code == 200 and renamed.json()["name"] == "Lena"
    problem(client.patch(url, json={"role": "admin"}, headers=headers("employee_plain")), 403)
    problem(
        client.patch(f"{API}/users/client", json={"name": "Z"}, headers=headers("manager")), 403
    )
    problem(client.patch(url, json={"password": "x" * 10}, headers=headers("admin")), 422)


def test_only_an_owner_makes_an_owner_and_the_last_owner_stays(
    client: TestClient, headers: Headers
) -> None:
    to_owner = {"role": "owner"}
    problem(client.patch(f"{API}/users/manager", json=to_owner, headers=headers("admin")), 403)
    problem(
        client.patch(f"{API}/users/owner", json={"role": "admin"}, headers=headers("admin")), 403
    )
    last = client.patch(f"{API}/users/owner", json={"role": "admin"}, headers=headers("owner"))
    assert "last owner" in problem(last, 409)["detail"]
    made = client.patch(f"{API}/users/manager", json=to_owner, headers=headers("owner"))
    assert made.status_code == 200 and made.json()["role"] == "owner"


def test_groups_are_listed_and_added_by_admins(client: TestClient, headers: Headers) -> None:
    listed = client.get(f"{API}/groups", headers=headers("employee"))
    assert listed.json() == ["watch-only", "with-homework"]
    added = client.post(f"{API}/groups", json={"key": "vip"}, headers=headers("admin"))
    assert added.status_code == 201 and "vip" in added.json()
    problem(client.post(f"{API}/groups", json={"key": "x"}, headers=headers("manager")), 403)
    problem(client.post(f"{API}/groups", json={"key": "vip"}, headers=headers("owner")), 409)


def test_roles_say_what_each_may_do(client: TestClient, headers: Headers) -> None:
    body = client.get(f"{API}/roles", headers=headers("client")).json()
    by_key = {r["key"]: r for r in body["roles"]}
    assert list(by_key) == list(permissions.ROLES)
    assert "manage_processes" in by_key["admin"]["actions"]
    assert "work_with_tasks" not in by_key["employee"]["actions"]
    assert by_key["employee"]["with_permissions"] == {"work_with_tasks": ["work_with_tasks"]}
    assert body["permissions"] == ["work_with_tasks"]
    assert {a["key"] for a in body["actions"]} == set(permissions.ACTIONS)
