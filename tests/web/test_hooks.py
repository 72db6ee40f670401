"""Inbound webhooks over HTTP (``POST /hooks/{key}?token=…``) on a SQLite store: the signed
token, JSON and form bodies, keyword messages, idempotency, the body limit; and
``flowlane hooks url``."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.support import write_recipe
from typer.testing import CliRunner

from flowlane.cli.main import app as cli
from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable, request_account
from flowlane.services.inbound import hook_token
from flowlane.services.signing import account_secret
from flowlane.store.sql.store import SqlStore
from flowlane.web.app import Container, create_app
from flowlane.web.hooks import MAX_BODY

with warnings.catch_warnings():
    # starlette asks for httpx2, which is not installed; httpx works the same for tests
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

PURCHASE = """\
key: purchase
name: purchase
object: user
launch: {on: event, event: "webhook:purchase"}
variables:
  ticket: {type: string}
blocks:
  start: {type: start, next: mail}
  mail: {type: message, to: client, subject: "Ticket {{ vars.ticket }}", body: b, next: done}
  done: {type: end}
"""
PRICE = """\
key: price
name: price
object: user
launch: {on: event, event: "keyword:price"}
blocks:
  start: {type: start, next: mail}
  mail: {type: message, to: client, subject: "Our prices", body: b, next: done}
  done: {type: end}
"""


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    return write_recipe(tmp_path / "recipe", {"purchase": PURCHASE, "price": PRICE})


@pytest.fixture
def store(recipe: Path, tmp_path: Path) -> Iterator[SqlStore]:
    loaded = load_valid_recipe(recipe)
    opened = open_durable(loaded, f"sqlite:///{tmp_path / 'hooks.db'}")
    deploy(loaded, opened)
    account = request_account(opened, tmp_path / "data")
    account.attempt(
        lambda: account.create_object(
            "user", {"name": "Anna", "email": "anna@example.com"}, object_id="anna"
        )
    )
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def client(store: SqlStore, tmp_path: Path) -> TestClient:
    return TestClient(create_app(Container(store=store, data=tmp_path / "data")))


def url(store: SqlStore, key: str = "purchase") -> str:
    return f"/hooks/{key}?token={hook_token(account_secret(store), key)}"


def subjects(store: SqlStore) -> list[str]:
    return [m.subject for m in store.messages()]


def test_a_signed_call_with_json_starts_the_process(client: TestClient, store: SqlStore) -> None:
    got = client.post(url(store), json={"email": "anna@example.com", "ticket": "VIP-7"})
    assert got.status_code == 200
    (iid,) = got.json()["started"]
    state = store.get_instance(iid)
    assert state is not None and state.process == "purchase" and state.object_id == "anna"
    assert subjects(store) == ["Ticket VIP-7"]


def test_a_form_body_works_too(client: TestClient, store: SqlStore) -> None:
    got = client.post(url(store), data={"email": "anna@example.com", "ticket": "Basic"})
    assert got.status_code == 200 and len(got.json()["started"]) == 1
    assert subjects(store) == ["Ticket Basic"]


@pytest.mark.parametrize(
    "path",
    [
        "/hooks/purchase",
        "/hooks/purchase?token=",
        "/hooks/purchase?token=forged",
        "/hooks/refund?token={purchase}",  # a token of another hook
    ],
)
def test_a_wrong_or_missing_token_is_a_bare_404(
    client: TestClient, store: SqlStore, path: str
) -> None:
    path = path.format(purchase=hook_token(account_secret(store), "purchase"))
    got = client.post(path, json={"email": "anna@example.com", "ticket": "X"})
    assert got.status_code == 404 and got.content == b""
    assert store.messages() == []


def test_a_message_text_fires_keyword_launches(client: TestClient, store: SqlStore) -> None:
    got = client.post(
        url(store, "bot"), json={"email": "anna@example.com", "text": "What is the PRICE?"}
    )
    assert got.status_code == 200 and len(got.json()["started"]) == 1
    assert subjects(store) == ["Our prices"]
    also = client.post(
        url(store, "bot"), json={"email": "anna@example.com", "message": "no keyword"}
    )
    assert also.json() == {"started": []}


@pytest.mark.parametrize("header", ["Idempotency-Key", "X-Request-Id"])
def test_a_repeated_call_fires_nothing_and_answers_the_same(
    client: TestClient, store: SqlStore, header: str
) -> None:
    body = {"email": "anna@example.com", "ticket": "VIP-7"}
    first = client.post(url(store), json=body, headers={header: "call-1"})
    again = client.post(url(store), json=body, headers={header: "call-1"})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and len(first.json()["started"]) == 1
    assert subjects(store) == ["Ticket VIP-7"]
    other = client.post(url(store), json=body, headers={header: "call-2"})
    assert len(other.json()["started"]) == 1
    assert subjects(store) == ["Ticket VIP-7", "Ticket VIP-7"]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"[1, 2]", "application/json", 422),
        (b"{not json", "application/json", 422),
        (b"<x/>", "application/xml", 415),
        (b"{}" + b" " * MAX_BODY, "application/json", 413),
    ],
)
def test_a_bad_body_is_refused_and_fires_nothing(
    client: TestClient, store: SqlStore, content: bytes, content_type: str, status: int
) -> None:
    got = client.post(url(store), content=content, headers={"Content-Type": content_type})
    assert got.status_code == status and got.json()["detail"]
    assert store.messages() == []


def test_a_refused_event_is_422_and_changes_nothing(client: TestClient, store: SqlStore) -> None:
    got = client.post(url(store), json={"object": "nobody", "ticket": "X"})
    assert got.status_code == 422
    assert got.json() == {"detail": "the event was refused"}  # the reason is only logged
    assert store.messages() == []


def test_hooks_url_prints_a_url_that_works(
    recipe: Path, store: SqlStore, client: TestClient, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'hooks.db'}"
    out = CliRunner().invoke(
        cli,
        ["hooks", "url", str(recipe), "purchase", "--db", db, "--public-url", "https://x.io/"],
    )
    assert out.exit_code == 0, out.output
    printed = out.output.strip()
    assert printed.startswith("https://x.io/hooks/purchase?token=")
    parts = urlsplit(printed)
    got = client.post(f"{parts.path}?{parts.query}", json={"email": "anna@example.com"})
    assert got.status_code == 200 and len(got.json()["started"]) == 1
