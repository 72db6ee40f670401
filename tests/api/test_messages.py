"""Messages over the API: the outbox, the mail sink, the in-app feed; forms and hooks.

The outbox, forms and hooks use ``recipes/launches`` (a webhook launch, the form
``signup``), seeded here; the in-app feed uses the shared homework fixtures."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from tests.api.conftest import API, PASSWORD
from tests.api.helpers import ON_BOTH, problem

from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable, request_account
from flowlane.services import auth, inbound
from flowlane.services.account import Account
from flowlane.services.signing import account_secret
from flowlane.store.records import SinkMail
from flowlane.store.sql.store import SqlStore
from flowlane.web.app import Container, create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

Headers = Callable[[str], dict[str, str]]
MakeAccount = Callable[[], Account]
LAUNCHES = Path(__file__).resolve().parents[2] / "recipes" / "launches"
PUBLIC = "https://flow.example.com"
ROLES = ("owner", "admin", "manager", "client")


class Launches:
    """The launches recipe on its own SQLite database, one user per role with a token."""

    def __init__(self, store: SqlStore, tokens: dict[str, str], client: TestClient):
        self.store = store
        self.tokens = tokens
        self.client = client

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def account(self) -> Account:
        return request_account(self.store)


@pytest.fixture
def launches(tmp_path: Path) -> Iterator[Launches]:
    recipe = load_valid_recipe(LAUNCHES)
    store = open_durable(recipe, f"sqlite:///{tmp_path / 'launches.db'}")
    try:
        deploy(recipe, store)
        acc = request_account(store)
        tokens: dict[str, str] = {}

        def make() -> None:
            for role in ROLES:
                data = {"name": role.title(), "role": role, "email": f"{role}@example.com"}
                acc.create_object("user", {**data, "password": PASSWORD}, object_id=role)
                tokens[role] = auth.create_token(acc, role, "tests", by=None).token

        acc.attempt(make)
        container = Container(store=store, data=tmp_path / "data", public_url=PUBLIC)
        with TestClient(create_app(container), base_url="http://testserver") as client:
            yield Launches(store, tokens, client)
    finally:
        store.close()


def fire_purchase(env: Launches) -> None:
    inbound.receive_hook(env.account(), "purchase", {"email": "kira@example.com", "ticket": "A1"})


def test_the_outbox_with_delivery_state(launches: Launches) -> None:
    fire_purchase(launches)
    client, h = launches.client, launches.headers
    box = client.get(f"{API}/messages", headers=h("admin"))
    assert box.status_code == 200, box.text
    body = box.json()
    assert body["total"] == 1 and body["items"][0]["subject"] == "Your ticket: A1"
    assert (body["items"][0]["status"], body["items"][0]["process"]) == (
        "queued",
        "purchase-webhook",
    )
    sent = client.get(f"{API}/messages", params={"status": "sent"}, headers=h("owner"))
    assert sent.json()["total"] == 0 and sent.json()["items"] == []
    bad = client.get(f"{API}/messages", params={"status": "lost"}, headers=h("owner"))
    problem(bad, 422, "invalid_request")
    problem(client.get(f"{API}/messages", headers=h("manager")), 403, "forbidden")
    problem(client.get(f"{API}/messages", headers=h("client")), 403, "forbidden")
    problem(client.get(f"{API}/messages"), 401, "unauthorized")


def _mime() -> str:
    msg = EmailMessage()
    msg["From"] = "flow@example.com"
    msg["To"] = "kira@example.com"
    msg["Subject"] = "Hello"
    msg.set_content("Hello, Kira")
    msg.add_alternative("<p>Hello, <b>Kira</b></p>", subtype="html")
    return msg.as_string()


def test_the_mail_sink(launches: Launches) -> None:
    acc = launches.account()
    stored = datetime(2024, 5, 1, 9, tzinfo=UTC)
    mail = SinkMail("m1", "<m1@example.com>", "kira@example.com", "Hello", _mime(), stored)
    acc.attempt(lambda: acc.store.add_sink_mail(mail))
    client, h = launches.client, launches.headers
    listed = client.get(f"{API}/mail-sink", headers=h("admin"))
    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] == 1
    item = listed.json()["items"][0]
    assert (item["outbox_id"], item["subject"], item["to"]) == ("m1", "Hello", "kira@example.com")
    one = client.get(f"{API}/mail-sink/{item['id']}", headers=h("owner"))
    assert one.status_code == 200, one.text
    assert one.json()["from"] == "flow@example.com"
    assert one.json()["text"].strip() == "Hello, Kira"
    assert one.json()["html"].strip() == "<p>Hello, <b>Kira</b></p>"
    problem(client.get(f"{API}/mail-sink/999", headers=h("owner")), 404, "not_found")
    problem(client.get(f"{API}/mail-sink/x", headers=h("owner")), 422, "invalid_request")
    problem(client.get(f"{API}/mail-sink", headers=h("manager")), 403, "forbidden")
    problem(client.get(f"{API}/mail-sink/{item['id']}", headers=h("client")), 403)


def test_forms_listed_and_read_by_staff(launches: Launches) -> None:
    client, h = launches.client, launches.headers
    found = client.get(f"{API}/forms", headers=h("manager"))
    assert found.status_code == 200, found.text
    assert found.json() == [
        {
            "key": "signup",
            "title": "signup",
            "type": "user",
            "mode": "create",
            "url": f"{PUBLIC}/forms/signup",
        }
    ]
    spec = client.get(f"{API}/forms/signup", headers=h("manager")).json()
    assert spec["type"] == "user" and spec["fields"]["email"]["type"] == "email"
    assert spec["rate_limit"] == {"count": 5, "per": "10m"}
    problem(client.get(f"{API}/forms/nope", headers=h("manager")), 404, "not_found")
    problem(client.get(f"{API}/forms", headers=h("client")), 403, "forbidden")
    problem(client.get(f"{API}/forms/signup", headers=h("client")), 403, "forbidden")


def test_a_submission_by_an_integration(launches: Launches) -> None:
    client, h = launches.client, launches.headers
    url = f"{API}/forms/signup/submissions"
    data = {"name": "Vera", "email": "vera@example.com"}
    done = client.post(url, json=data, headers=h("manager"))
    assert done.status_code == 201, done.text
    assert done.json()["ok"] is True
    made = launches.store.get_object(done.json()["object_id"])
    assert made is not None and made.data["email"] == "vera@example.com"
    bad = problem(client.post(url, json={"name": "Ann"}, headers=h("manager")), 422, "invalid")
    assert bad["fields"]["errors"] == {"email": "Please fill this in."}
    wrong = client.post(url, json={"name": "Ann", "email": "not an email"}, headers=h("admin"))
    assert set(problem(wrong, 422)["fields"]["errors"]) == {"email"}
    bot = client.post(url, json={**data, "website": "spam.example"}, headers=h("admin"))
    assert bot.status_code == 201 and bot.json()["object_id"] is None
    problem(client.post(url, json=[1], headers=h("admin")), 422, "invalid_request")
    problem(client.post(url, json=data, headers=h("client")), 403, "forbidden")
    problem(client.post(f"{API}/forms/nope/submissions", json=data, headers=h("admin")), 404)
    for _ in range(2):  # 5 counted by now (accepted and refused): the limit
        client.post(url, json={"name": "Ann"}, headers=h("admin"))
    limited = client.post(url, json=data, headers=h("admin"))
    problem(limited, 429, "too_many_requests")
    assert limited.headers["Retry-After"] == "600"
    with launches.store.transaction():
        names = [launches.store.get_object(u) for u in launches.store.objects_of_type("user")]
    assert "Ann" not in [u.data.get("name") for u in names if u is not None]


def test_hooks_with_signed_urls_for_admins(launches: Launches) -> None:
    client, h = launches.client, launches.headers
    found = client.get(f"{API}/hooks", headers=h("admin"))
    assert found.status_code == 200, found.text
    secret = account_secret(launches.store)
    assert found.json() == [
        {
            "key": "purchase",
            "processes": ["purchase-webhook"],
            "url": inbound.hook_url(PUBLIC, secret, "purchase"),
        }
    ]
    assert found.json()[0]["url"].startswith(f"{PUBLIC}/hooks/purchase?token=")
    problem(client.get(f"{API}/hooks", headers=h("manager")), 403, "forbidden")
    problem(client.get(f"{API}/hooks", headers=h("client")), 403, "forbidden")


@ON_BOTH
def test_my_in_app_feed(
    client: TestClient, headers: Headers, account: MakeAccount, users: dict[str, str]
) -> None:
    acc = account()
    ids: list[str] = []

    def comment() -> None:
        ids.append(acc.start("homework", users["client"], {"topic": "T"}, by="owner"))
        task = acc.open_task("homework", users["client"])
        acc.comment(task, "First", by=users["owner"])
        acc.comment(acc.open_task("homework", users["client"]), "Second", by=users["owner"])

    acc.attempt(comment)
    feed = client.get(f"{API}/notifications", headers=headers("client"))
    assert feed.status_code == 200, feed.text
    body = feed.json()
    assert (body["total"], body["unread"]) == (2, 2)
    assert [n["body"] for n in body["items"]] == ["Second", "First"]
    count = client.get(f"{API}/notifications/unread-count", headers=headers("client"))
    assert count.json() == {"unread": 2}
    first = body["items"][1]["id"]
    read = client.post(
        f"{API}/notifications/read", json={"ids": [first]}, headers=headers("client")
    )
    assert read.status_code == 200 and read.json() == {"marked": [first]}, read.text
    unread = client.get(
        f"{API}/notifications", params={"unread_only": True}, headers=headers("client")
    ).json()
    assert [n["body"] for n in unread["items"]] == ["Second"] and unread["unread"] == 1
    missing = client.post(
        f"{API}/notifications/read", json={"ids": ["nope"]}, headers=headers("client")
    )
    problem(missing, 404, "not_found")
    for bad in ({}, {"ids": [first], "all": True}, {"ids": []}, {"all": False}):
        problem(client.post(f"{API}/notifications/read", json=bad, headers=headers("client")), 422)
    everything = client.post(
        f"{API}/notifications/read", json={"all": True}, headers=headers("client")
    )
    assert len(everything.json()["marked"]) == 1
    assert client.get(f"{API}/notifications/unread-count", headers=headers("client")).json() == {
        "unread": 0
    }
    others = client.get(f"{API}/notifications", headers=headers("manager")).json()
    assert others["total"] == 0
