"""Public forms and signed links through the services (memory store, injected clock):
``form_view``, ``submit_form``, ``link_view``, ``submit_link``. Every refused submission and
every bad link is checked to change nothing: objects, submissions, used links, outbox."""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flowlane.core.errors import NotFound
from flowlane.model.recipe import load_recipe
from flowlane.runtime.simulate import build_account
from flowlane.services import forms
from flowlane.services.account import Account
from flowlane.services.links import OOPS, BadLink, encode_token
from flowlane.store.memory import MemoryStore

TZ = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "recipes" / "events"
REVIEWS = ROOT / "tests" / "fixtures" / "reviews"
ENV = {"FLOWLANE_SECRET": "11" * 32}
LINK = re.compile(r"https?://\S+/l/(\S+)")


def _account(root: Path) -> Account:
    recipe = load_recipe(root)
    account = build_account(recipe, NOW, TZ, None)
    account.links.env = ENV
    return account


def _store(account: Account) -> MemoryStore:
    assert isinstance(account.store, MemoryStore)
    return account.store


def _snapshot(account: Account) -> dict[str, Any]:
    """What a refused submission must leave as it was (refused ones are noted: see
    :func:`_refused`)."""
    store = _store(account)
    return copy.deepcopy(
        {
            "objects": {k: (v.type, v.data) for k, v in store.objects.items()},
            "submissions": [s for s in store.form_submissions if s[4]],
            "used": store.used_links,
            "outbox": len(store.outbox),
            "instances": sorted(store.instances),
        }
    )


def _refused(account: Account) -> int:
    """Submissions refused for their values (they count toward the rate limit)."""
    return sum(1 for s in _store(account).form_submissions if not s[4])


# ---- the registration form (S5.4) ------------------------------------------------------------


@pytest.fixture
def events() -> Account:
    account = _account(EVENTS)
    account.attempt(
        lambda: account.create_object(
            "event",
            {"title": "Spring meetup", "kind": "offline", "address": "Main st. 1"},
            object_id="meetup",
        )
    )
    account.attempt(
        lambda: account.create_object(
            "user", {"name": "Olga", "email": "o@x.example"}, object_id="olga"
        )
    )
    return account


GOOD = {"event": "meetup", "name": "Zoe", "email": "zoe@example.com", "consent": "yes"}


def test_the_view_shows_inputs_and_takes_hidden_values_from_the_query(events: Account) -> None:
    view = forms.form_view(events, "registration", {"event": "meetup", "other": "x"})
    assert view.title == "Register for the event"
    assert [(f.name, f.widget, f.required) for f in view.fields] == [
        ("name", "text", True),
        ("email", "email", True),
        ("phone", "tel", False),
    ]
    assert view.fields[0].label == "Your name"
    assert view.hidden == {"event": "meetup"}
    assert view.consent is not None and view.consent_required
    assert view.honeypot == "website"
    with pytest.raises(NotFound):
        forms.form_view(events, "nothing", {})


def test_a_submission_creates_the_registration_and_fires_the_form_event(events: Account) -> None:
    result = forms.submit_form(events, "registration", GOOD, address="10.0.0.1")
    assert result.ok, result
    assert result.message.startswith("Thank you!")
    rec = events.get_object(str(result.object_id))
    assert rec.type == "registration"
    # `register`, launched on form:registration, copied the event and moved it to waiting
    assert rec.data["event"] == "meetup"
    assert rec.data["event_title"] == "Spring meetup"
    assert rec.data["stage"] == "waiting"
    assert len(_store(events).form_submissions) == 1
    assert _store(events).form_submissions[0][3] == rec.id
    assert "10.0.0.1" not in repr(_store(events).form_submissions)  # only a keyed hash


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"consent": ""}, {"consent": forms.CONSENT_MISSING}),
        ({"name": "  "}, {"name": forms.REQUIRED}),
        ({"email": "not-an-email"}, {"email": "'not-an-email' is not an email address."}),
        ({"phone": "call me"}, {"phone": "'call me' is not a phone number."}),
        ({"event": "no-such-event"}, {"event": forms.BAD_HIDDEN}),
        ({"event": "olga"}, {"event": forms.BAD_HIDDEN}),  # an object of another type
        ({"event": ""}, {"event": forms.BAD_HIDDEN}),
        (
            {"name": "x" * (forms.MAX_VALUE + 1)},
            {"name": "Please keep this under 20000 characters."},
        ),
    ],
)
def test_bad_input_gives_errors_per_input_and_changes_nothing(
    events: Account, change: dict[str, str], errors: dict[str, str]
) -> None:
    before = _snapshot(events)
    result = forms.submit_form(events, "registration", {**GOOD, **change}, address="10.0.0.1")
    assert not result.ok
    assert result.errors == errors
    assert result.message == forms.NOT_SAVED
    assert _snapshot(events) == before
    assert _refused(events) == 1  # noted for the rate limit, nothing else


def test_a_filled_honeypot_pretends_success_and_changes_nothing(events: Account) -> None:
    before = _snapshot(events)
    result = forms.submit_form(
        events, "registration", {**GOOD, "website": "http://spam.example"}, address="10.0.0.9"
    )
    assert result.ok and result.object_id is None
    assert _snapshot(events) == before
    assert _refused(events) == 0


def test_the_rate_limit_counts_per_address_and_window(events: Account) -> None:
    for i in range(5):
        data = {**GOOD, "email": f"z{i}@example.com"}
        assert forms.submit_form(events, "registration", data, address="10.0.0.1").ok
    before = _snapshot(events)
    limited = forms.submit_form(events, "registration", GOOD, address="10.0.0.1")
    assert not limited.ok and limited.rate_limited
    assert limited.message == forms.RATE_LIMITED
    assert _snapshot(events) == before
    assert forms.submit_form(events, "registration", GOOD, address="10.0.0.2").ok
    events.runner.now = NOW + timedelta(minutes=11)
    assert forms.submit_form(events, "registration", GOOD, address="10.0.0.1").ok


def test_refused_submissions_count_toward_the_rate_limit(events: Account) -> None:
    for i in range(5):  # a bot probing object ids through the hidden event input
        probe = forms.submit_form(
            events, "registration", {**GOOD, "event": f"guess-{i}"}, address="10.0.0.7"
        )
        assert probe.errors == {"event": forms.BAD_HIDDEN}
    limited = forms.submit_form(events, "registration", GOOD, address="10.0.0.7")
    assert limited.rate_limited and not limited.ok
    assert _refused(events) == 5  # posts over the limit are not noted: the count stays at 5
    assert events.store.objects_of_type("registration") == []


def test_an_update_form_is_not_open_without_a_link() -> None:
    account = _account(REVIEWS)
    with pytest.raises(NotFound):
        forms.form_view(account, "review-sales", {})
    with pytest.raises(NotFound):
        forms.submit_form(account, "review-sales", {"rating": "5"}, address="10.0.0.1")


# ---- signed links (S4) ---------------------------------------------------------------------


@pytest.fixture
def reviews() -> Account:
    account = _account(REVIEWS)

    def setup() -> None:
        account.create_object(
            "user", {"name": "Cleo", "email": "cleo@client.example"}, object_id="cleo"
        )
        account.create_object(
            "contract",
            {"number": "C-17", "service": "Audit", "department": "support", "client": "cleo"},
            object_id="c17",
        )
        account.create_object("review", {"contract": "c17", "client": "cleo"}, object_id="r1")

    account.attempt(setup)
    return account


def _token(account: Account) -> str:
    (mail,) = [m for m in _store(account).outbox if m.to == "cleo@client.example"]
    found = LINK.search(mail.body)
    assert found is not None, mail.body
    return found.group(1)


def test_the_email_carries_a_link_to_the_department_form(reviews: Account) -> None:
    (mail,) = _store(reviews).outbox
    assert mail.subject == "How did we do? Contract C-17"
    assert "http://127.0.0.1:8000/l/" in mail.body
    assert reviews.get_object("r1").data["status"] == "link_sent"
    found, form, record = reviews.links.check(_token(reviews), reviews.now)
    assert form.mode == "update"
    assert (found.form, found.object_id, record.id) == ("review-support", "r1", "r1")
    assert found.issued_at == NOW


def test_opening_then_submitting_moves_the_review(reviews: Account) -> None:
    token = _token(reviews)
    view = forms.link_view(reviews, token)
    assert view.title == "Your review (support)" and view.object_id == "r1"
    assert reviews.get_object("r1").data["status"] == "client_opened_link"
    forms.link_view(reviews, token)  # opening again changes nothing more
    result = forms.submit_link(reviews, token, {"rating": "2", "text": "Slow"}, address="1.2.3.4")
    assert result.ok and result.object_id == "r1"
    data = reviews.get_object("r1").data
    assert (data["status"], data["rating"], data["text"]) == ("review_received", 2, "Slow")
    assert len(_store(reviews).used_links) == 1


def _reusable(account: Account) -> None:
    """Make the support review form's links usable more than once."""
    store = _store(account)
    form = store.forms["review-support"]
    link = form.link_settings.model_copy(update={"single_use": False})
    store.forms["review-support"] = form.model_copy(update={"link": link})


def test_reopening_an_answered_reusable_link_keeps_the_review(reviews: Account) -> None:
    _reusable(reviews)
    token = _token(reviews)
    forms.link_view(reviews, token)
    assert forms.submit_link(reviews, token, {"rating": "3"}, address="1.2.3.4").ok
    assert reviews.get_object("r1").data["status"] == "review_received"
    assert forms.link_view(reviews, token).object_id == "r1"  # still opens (not single use)
    assert reviews.get_object("r1").data["status"] == "review_received"
    assert forms.submit_link(reviews, token, {"rating": "4"}, address="1.2.3.4").ok
    data = reviews.get_object("r1").data
    assert (data["status"], data["rating"]) == ("review_received", 4)


def test_an_older_link_opened_after_a_newer_one_was_answered_changes_nothing(
    reviews: Account,
) -> None:
    _reusable(reviews)
    old = _token(reviews)
    reviews.runner.now = NOW + timedelta(days=1)
    newer = encode_token(reviews.links.secret, "r1", "review-support", reviews.now)
    reviews.runner.now = NOW + timedelta(days=1, hours=1)
    assert forms.submit_link(reviews, newer, {"rating": "5"}, address="1.2.3.4").ok
    before = _snapshot(reviews)
    forms.link_view(reviews, old)
    assert _snapshot(reviews) == before
    assert reviews.get_object("r1").data["status"] == "review_received"


def test_a_link_issued_after_the_last_answer_applies_on_open_again(reviews: Account) -> None:
    _reusable(reviews)
    assert forms.submit_link(reviews, _token(reviews), {"rating": "2"}, address="1.2.3.4").ok
    reviews.runner.now = NOW + timedelta(days=2)
    again = encode_token(reviews.links.secret, "r1", "review-support", reviews.now)
    forms.link_view(reviews, again)
    assert reviews.get_object("r1").data["status"] == "client_opened_link"


def test_a_bad_rating_gives_an_error_and_leaves_the_link_usable(reviews: Account) -> None:
    token = _token(reviews)
    forms.link_view(reviews, token)
    before = _snapshot(reviews)
    result = forms.submit_link(reviews, token, {"rating": "five"}, address="1.2.3.4")
    assert result.errors == {"rating": "'five' is not an integer."}
    assert _snapshot(reviews) == before
    assert forms.submit_link(reviews, token, {"rating": "5"}, address="1.2.3.4").ok


def _tampered(token: str) -> str:
    payload, _, signature = token.partition(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{payload}.{flipped}{signature[1:]}"


def _other_form(account: Account, token: str) -> str:
    """The payload re-encoded for another department's form, the old signature kept."""
    good = encode_token(account.links.secret, "r1", "review-sales", NOW)
    return f"{good.partition('.')[0]}.{token.partition('.')[2]}"


def _bad_links(account: Account, token: str) -> dict[str, str]:
    secret = account.links.secret
    return {
        "tampered signature": _tampered(token),
        "form key changed": _other_form(account, token),
        "another account's secret": encode_token(b"\x22" * 32, "r1", "review-support", NOW),
        "an object of another type": encode_token(secret, "c17", "review-support", NOW),
        "no such form": encode_token(secret, "r1", "registration", NOW),
        "not a token": "garbage",
    }


@pytest.mark.parametrize(
    "case",
    [
        "tampered signature",
        "form key changed",
        "another account's secret",
        "an object of another type",
        "no such form",
        "not a token",
    ],
)
def test_a_bad_link_shows_only_oops_and_changes_nothing(reviews: Account, case: str) -> None:
    bad = _bad_links(reviews, _token(reviews))[case]
    before = _snapshot(reviews)
    with pytest.raises(BadLink) as opened:
        forms.link_view(reviews, bad)
    assert str(opened.value) == OOPS
    with pytest.raises(BadLink) as submitted:
        forms.submit_link(reviews, bad, {"rating": "5"}, address="1.2.3.4")
    assert str(submitted.value) == OOPS
    assert _snapshot(reviews) == before


def test_a_link_posted_to_another_form_is_refused(reviews: Account) -> None:
    token = _token(reviews)
    before = _snapshot(reviews)
    with pytest.raises(BadLink, match=OOPS):
        forms.submit_form(reviews, "review-sales", {"rating": "5"}, address="1.2.3.4", link=token)
    assert _snapshot(reviews) == before


def test_a_link_to_a_deleted_object_is_refused(reviews: Account) -> None:
    token = _token(reviews)
    del _store(reviews).objects["r1"]
    before = _snapshot(reviews)
    with pytest.raises(BadLink, match=OOPS):
        forms.link_view(reviews, token)
    with pytest.raises(BadLink, match=OOPS):
        forms.submit_link(reviews, token, {"rating": "5"}, address="1.2.3.4")
    assert _snapshot(reviews) == before


def test_an_expired_link_is_refused(reviews: Account) -> None:
    token = _token(reviews)
    reviews.runner.now = NOW + timedelta(days=30)
    assert forms.link_view(reviews, token).object_id == "r1"  # the last moment
    reviews.runner.now = NOW + timedelta(days=30, seconds=1)
    before = _snapshot(reviews)
    with pytest.raises(BadLink, match=OOPS):
        forms.link_view(reviews, token)
    with pytest.raises(BadLink, match=OOPS):
        forms.submit_link(reviews, token, {"rating": "5"}, address="1.2.3.4")
    assert _snapshot(reviews) == before


def test_a_used_link_is_refused(reviews: Account) -> None:
    token = _token(reviews)
    assert forms.submit_link(reviews, token, {"rating": "4"}, address="1.2.3.4").ok
    before = _snapshot(reviews)
    with pytest.raises(BadLink, match=OOPS):
        forms.link_view(reviews, token)
    with pytest.raises(BadLink, match=OOPS):
        forms.submit_link(reviews, token, {"rating": "1"}, address="1.2.3.4")
    assert _snapshot(reviews) == before
    assert reviews.get_object("r1").data["rating"] == 4


def test_the_reason_is_logged_not_shown(reviews: Account, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(BadLink) as refused:
        forms.link_view(reviews, _tampered(_token(reviews)))
    assert refused.value.reason.startswith("bad signature")
    assert "bad signature" in caplog.text
    assert "bad signature" not in str(refused.value)
