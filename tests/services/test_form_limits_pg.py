"""The rate limit of a public form under parallel posts on PostgreSQL: every post counts and
notes its submission in one transaction holding the lock of its form and address, so of
posts sent at once from one address exactly ``rate_limit.count`` are taken (taken and refused
ones alike count)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable, request_account
from flowlane.services import forms
from flowlane.services.account import Account

EVENTS = Path(__file__).resolve().parents[2] / "recipes" / "events"
GOOD = {"event": "meetup", "name": "Zoe", "email": "zoe@example.com", "consent": "yes"}
POSTS = 12
LIMIT = 5  # recipes/events/forms/registration.yaml: rate_limit {count: 5, per: 10m}


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWLANE_SECRET", "cd" * 32)


def _parallel(
    url: str, tmp_path: Path, post: Callable[[Account, int], forms.FormResult]
) -> list[forms.FormResult]:
    """``post`` run by :data:`POSTS` threads at once, each with a store of its own."""
    recipe = load_valid_recipe(EVENTS)
    setup = open_durable(recipe, url)
    deploy(recipe, setup)
    account = request_account(setup, tmp_path / "data")
    account.attempt(
        lambda: account.create_object(
            "event", {"title": "Meetup", "kind": "online", "online_link": "x"}, object_id="meetup"
        )
    )
    setup.close()
    stores = [open_durable(recipe, url) for _ in range(POSTS)]
    start = threading.Barrier(POSTS)

    def one(i: int) -> forms.FormResult:
        visitor = request_account(stores[i], tmp_path / "data")
        start.wait()
        return post(visitor, i)

    try:
        with ThreadPoolExecutor(POSTS) as pool:
            return list(pool.map(one, range(POSTS)))
    finally:
        for store in stores:
            store.close()


def test_parallel_posts_of_one_address_pass_the_limit_only_as_often_as_it_allows(
    pg_database: str, tmp_path: Path
) -> None:
    def post(account: Account, i: int) -> forms.FormResult:
        data = {**GOOD, "email": f"z{i}@example.com"}
        return forms.submit_form(account, "registration", data, address="10.1.1.1")

    results = _parallel(pg_database, tmp_path, post)
    assert sum(r.ok for r in results) == LIMIT
    assert sum(r.rate_limited for r in results) == POSTS - LIMIT
    check = open_durable(load_valid_recipe(EVENTS), pg_database)
    try:
        assert len(check.objects_of_type("registration")) == LIMIT
    finally:
        check.close()


def test_parallel_invalid_posts_count_toward_the_limit(pg_database: str, tmp_path: Path) -> None:
    def post(account: Account, i: int) -> forms.FormResult:
        data = {**GOOD, "event": f"guess-{i}"}  # probing object ids through the hidden input
        return forms.submit_form(account, "registration", data, address="10.1.1.2")

    results = _parallel(pg_database, tmp_path, post)
    assert sum(r.errors == {"event": forms.BAD_HIDDEN} for r in results) == LIMIT
    assert sum(r.rate_limited for r in results) == POSTS - LIMIT
