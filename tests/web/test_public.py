"""Public forms and signed links over HTTP on a SQLite store: the S4 flow end to end (the
process emails a signed link; opening it and submitting it move the review; a second
submission and a tampered link show only "Oops"), the S5 registration form with its errors
re-rendered, the honeypot, the rate limit and the body limit."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable, request_account
from flowlane.services.links import OOPS
from flowlane.store.sql.store import SqlStore
from flowlane.web.app import Container, create_app
from flowlane.web.public import MAX_BODY

with warnings.catch_warnings():
    # starlette asks for httpx2, which is not installed; httpx works the same for tests
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_URL = "https://forms.example"
LINK = re.compile(re.escape(PUBLIC_URL) + r"(/l/\S+)")
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def _open(root: Path, tmp_path: Path) -> SqlStore:
    recipe = load_valid_recipe(root)
    store = open_durable(recipe, f"sqlite:///{tmp_path / 'public.db'}")
    deploy(recipe, store)
    return store


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWLANE_SECRET", "ab" * 32)
    monkeypatch.setenv("FLOWLANE_PUBLIC_URL", PUBLIC_URL)  # what workers make links with


@pytest.fixture
def reviews(tmp_path: Path) -> Iterator[SqlStore]:
    store = _open(ROOT / "tests" / "fixtures" / "reviews", tmp_path)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def events(tmp_path: Path) -> Iterator[SqlStore]:
    store = _open(ROOT / "recipes" / "events", tmp_path)
    account = request_account(store, tmp_path / "data")
    account.attempt(
        lambda: account.create_object(
            "event", {"title": "Meetup", "kind": "online", "online_link": "x"}, object_id="meetup"
        )
    )
    try:
        yield store
    finally:
        store.close()


def _client(store: SqlStore, tmp_path: Path) -> TestClient:
    container = Container(store=store, public_url=PUBLIC_URL, data=tmp_path / "data")
    return TestClient(create_app(container))


def _status(store: SqlStore, object_id: str) -> object:
    rec = store.get_object(object_id)
    assert rec is not None
    return rec.data.get("status")


def test_the_review_link_from_the_email_opens_submits_and_is_used_once(
    reviews: SqlStore, tmp_path: Path
) -> None:
    account = request_account(reviews, tmp_path / "data")

    def setup() -> None:
        account.create_object("user", {"name": "Cleo", "email": "cleo@c.example"}, object_id="cleo")
        account.create_object(
            "contract",
            {"number": "C-9", "service": "Audit", "department": "sales", "client": "cleo"},
            object_id="c9",
        )
        account.create_object("review", {"contract": "c9", "client": "cleo"}, object_id="r1")

    account.attempt(setup)
    (mail,) = [m for m in reviews.messages() if m.to == "cleo@c.example"]
    found = LINK.search(mail.body)
    assert found is not None, mail.body
    path = found.group(1)
    assert _status(reviews, "r1") == "link_sent"
    client = _client(reviews, tmp_path)

    page = client.get(path)
    assert page.status_code == 200
    assert "Your review (sales)" in page.text
    assert 'name="rating"' in page.text
    assert _status(reviews, "r1") == "client_opened_link"

    bad = client.post(path, data={"rating": "lots", "text": "<b>hi</b>"})
    assert bad.status_code == 422
    assert "is not an integer" in bad.text
    assert "&lt;b&gt;hi&lt;/b&gt;" in bad.text and "<b>hi</b>" not in bad.text  # escaped
    assert _status(reviews, "r1") == "client_opened_link"

    sent = client.post(path, data={"rating": "5", "text": "Great"})
    assert sent.status_code == 200
    assert "Thank you for your review!" in sent.text
    rec = reviews.get_object("r1")
    assert rec is not None
    assert (rec.data["status"], rec.data["rating"], rec.data["text"]) == (
        "review_received",
        5,
        "Great",
    )

    again = client.post(path, data={"rating": "1", "text": "Changed my mind"})
    assert again.status_code == 404
    assert OOPS in again.text and "used" not in again.text
    assert client.get(path).status_code == 404
    rec = reviews.get_object("r1")
    assert rec is not None and rec.data["rating"] == 5

    payload, _, signature = path.removeprefix("/l/").partition(".")
    tampered = f"/l/{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    for response in (client.get(tampered), client.post(tampered, data={"rating": "1"})):
        assert response.status_code == 404
        assert OOPS in response.text


def test_the_registration_form_takes_the_event_from_the_query(
    events: SqlStore, tmp_path: Path
) -> None:
    client = _client(events, tmp_path)
    page = client.get("/forms/registration?event=meetup")
    assert page.status_code == 200
    assert '<input type="hidden" name="event" value="meetup">' in page.text
    assert "I agree to the processing of my personal data" in page.text
    assert 'name="website"' in page.text  # the honeypot
    assert page.headers["content-type"].startswith("text/html")

    data = {"event": "meetup", "name": "Zoe", "email": "zoe@example.com"}
    missing = client.post("/forms/registration", data=data)
    assert missing.status_code == 422
    assert "Please give your consent" in missing.text
    assert 'value="zoe@example.com"' in missing.text  # the entered values come back
    # the hidden event came with the post, not the query: it is shown again as posted
    assert '<input type="hidden" name="event" value="meetup">' in missing.text
    assert events.objects_of_type("registration") == []

    # the visitor corrects the page: what its inputs hold now is sent again
    again = dict(HIDDEN.findall(missing.text))
    assert again == {"event": "meetup"}
    sent = client.post("/forms/registration", data={**again, **data, "consent": "yes"})
    assert sent.status_code == 200
    assert "You are registered" in sent.text
    (reg,) = events.objects_of_type("registration")
    rec = events.get_object(reg)
    assert rec is not None
    assert (rec.data["event"], rec.data["stage"]) == ("meetup", "waiting")


def test_a_forged_event_id_is_refused(events: SqlStore, tmp_path: Path) -> None:
    client = _client(events, tmp_path)
    data = {"event": "nope", "name": "Zoe", "email": "z@example.com", "consent": "yes"}
    response = client.post("/forms/registration", data=data)
    assert response.status_code == 422
    assert "not valid" in response.text
    assert events.objects_of_type("registration") == []
    long = client.post("/forms/registration", data={**data, "event": "x" * 30_000})
    assert long.status_code == 422
    (shown,) = HIDDEN.findall(long.text)
    assert shown == ("event", "x" * 20_000)  # shown again, cut to the longest value


def test_honeypot_rate_limit_and_size(events: SqlStore, tmp_path: Path) -> None:
    client = _client(events, tmp_path)
    data = {"event": "meetup", "name": "Zoe", "email": "z@example.com", "consent": "yes"}
    bot = client.post("/forms/registration", data={**data, "website": "http://spam"})
    assert bot.status_code == 200 and "You are registered" in bot.text
    assert events.objects_of_type("registration") == []
    for _ in range(5):
        assert client.post("/forms/registration", data=data).status_code == 200
    limited = client.post("/forms/registration", data=data)
    assert limited.status_code == 429
    assert "Too many submissions" in limited.text
    assert len(events.objects_of_type("registration")) == 5
    big = client.post("/forms/registration", data={**data, "name": "x" * (MAX_BODY + 1)})
    assert big.status_code == 413


def test_unknown_and_link_only_forms_are_not_found(reviews: SqlStore, tmp_path: Path) -> None:
    client = _client(reviews, tmp_path)
    assert client.get("/forms/nothing").status_code == 404
    assert client.get("/forms/review-sales").status_code == 404
    assert client.post("/forms/review-sales", data={"rating": "5"}).status_code == 404
    assert client.get("/l/garbage").status_code == 404
