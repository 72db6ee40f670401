"""The objects pages over TestClient: type list, object lists with search and the condition
builder, mass start in batches with its progress, cards (create / change with field errors,
stage moves), the kanban board (moves that hold, refused moves that snap back with their
reason) and dictionaries.

The homework recipe (users) comes from ``tests/web/conftest.py``; the stage and guard cases
run on the events recipe, seeded here the same way."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import Seeded, seed
from tests.web.ui_helpers import login

from flowlane.runtime.durable import load_valid_recipe, open_durable
from flowlane.services.account import Account
from flowlane.store.sql.store import SqlStore
from flowlane.web.app import Container, create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

EVENTS = Path(__file__).resolve().parents[2] / "recipes" / "events"
HTMX = {"HX-Request": "true", "HX-Target": "results"}


def text_of(html: str) -> str:
    """The page's text without tags (entities decoded, spaces collapsed)."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)">', html)


# ---- the events recipe -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _events_seed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    path = tmp_path_factory.mktemp("events-seed") / "events.db"
    return path, seed(f"sqlite:///{path}", EVENTS)


@pytest.fixture
def events(
    tmp_path: Path, _events_seed: tuple[Path, Seeded]
) -> Iterator[tuple[TestClient, Callable[[], Account], SqlStore]]:
    """A client over a fresh copy of the seeded events recipe, an account maker, the store."""
    source, _ = _events_seed
    target = tmp_path / "events.db"
    shutil.copyfile(source, target)
    store = open_durable(load_valid_recipe(EVENTS), f"sqlite:///{target}")
    container = Container(store=store, data=tmp_path / "data")
    try:
        with TestClient(create_app(container), base_url="http://testserver") as c:
            yield c, container.account, store
    finally:
        store.close()


def make_event(acc_of: Callable[[], Account], object_id: str, **data: Any) -> None:
    acc = acc_of()
    acc.attempt(lambda: acc.create_object("event", data, object_id=object_id))


def stage_of(store: SqlStore, object_id: str) -> Any:
    rec = store.get_object(object_id)
    assert rec is not None
    return rec.data.get("stage")


def board_order(html: str) -> list[str]:
    """The board form's "order" inputs, in page order."""
    return re.findall(r'<input type="hidden" name="order" value="([^"]+)">', html)


def dragged(order: list[str], object_id: str, to: str) -> list[str]:
    """The order inputs after dragging the card ``object_id`` to the top of column ``to``."""
    card = next(v for v in order if v.startswith(f"{object_id}@"))
    rest = [v for v in order if v != card]
    at = rest.index(f"stage:{to}") + 1
    return [*rest[:at], card, *rest[at:]]


# ---- types and lists ---------------------------------------------------------------------------


def test_types_page_lists_types_with_counts(client: TestClient) -> None:
    login(client, "owner")
    page = client.get("/objects")
    assert page.status_code == 200
    assert '<a href="/objects/user">User</a>' in page.text
    row = re.search(r'href="/objects/user">User</a>.*?</tr>', page.text, re.S)
    assert row is not None and '<td class="num">6</td>' in row.group(0)
    assert 'href="/dictionaries"' in page.text


def test_list_search_and_condition_builder_filter_the_list(client: TestClient) -> None:
    login(client, "manager")
    page = client.get("/objects/user")
    assert page.status_code == 200
    assert "6 objects" in text_of(page.text)
    assert 'id="filter-form"' in page.text and 'hx-target="#results"' in page.text
    # one row: role is client (an htmx request answers the results only)
    one = client.get("/objects/user", params={"f": "role", "op": "eq", "v": "client"}, headers=HTMX)
    assert one.status_code == 200
    assert "<html" not in one.text
    assert "1 object" in text_of(one.text) and row_ids(one.text) == ["client"]
    # two rows joined by OR
    either = client.get(
        "/objects/user",
        params=[
            ("f", "role"),
            ("op", "eq"),
            ("v", "client"),
            ("v2", ""),
            ("f", "role"),
            ("op", "eq"),
            ("v", "owner"),
            ("v2", ""),
            ("join", "any"),
        ],
        headers=HTMX,
    )
    assert row_ids(either.text) == ["client", "owner"] and "2 objects" in text_of(either.text)
    # the same rows joined by AND match nothing
    both = client.get(
        "/objects/user",
        params=[
            *[("f", "role"), ("op", "eq"), ("v", "client")],
            *[("f", "role"), ("op", "eq"), ("v", "owner")],
            ("join", "all"),
        ],
        headers=HTMX,
    )
    assert "0 objects" in text_of(both.text) and "No objects match." in both.text
    # in a list, an expression typed by hand, search text
    some = client.get(
        "/objects/user", params={"f": "role", "op": "in", "v": "admin, manager"}, headers=HTMX
    )
    assert row_ids(some.text) == ["admin", "manager"]
    typed = client.get("/objects/user", params={"expr": "object.role == 'owner'"}, headers=HTMX)
    assert row_ids(typed.text) == ["owner"]
    found = client.get("/objects/user", params={"q": "Kira"}, headers=HTMX)
    assert row_ids(found.text) == ["client"]
    # sorting by a field, descending
    ordered = client.get("/objects/user", params={"sort": "-name"})
    assert row_ids(ordered.text)[0] == "owner"  # Olga Owner sorts after the others
    assert row_ids(ordered.text)[-1] == "admin"  # Adam Admin


def test_builder_errors_are_shown_in_the_results(client: TestClient) -> None:
    login(client, "owner")
    bad_date = client.get(
        "/objects/user", params={"f": "birthday", "op": "gt", "v": "soon"}, headers=HTMX
    )
    assert bad_date.status_code == 200
    assert 'id="filter-error"' in bad_date.text and "ISO 8601" in bad_date.text
    bad_expr = client.get("/objects/user", params={"expr": "object.nope =="}, headers=HTMX)
    assert 'id="filter-error"' in bad_expr.text and "where:" in bad_expr.text
    wrong_op = client.get(
        "/objects/user", params={"f": "birthday", "op": "contains", "v": "x"}, headers=HTMX
    )
    assert "does not fit the field" in unescape(wrong_op.text)
    no_range = client.get(
        "/objects/user", params={"f": "birthday", "op": "between", "v": "2020-01-01"}, headers=HTMX
    )
    assert "both ends of the range" in no_range.text


def test_condition_rows_fit_the_field_type(client: TestClient) -> None:
    login(client, "owner")
    date_row = client.get("/objects/user/condition-row", params={"f": "birthday", "changed": "f"})
    assert date_row.status_code == 200
    assert 'value="within_last"' in date_row.text and 'value="contains"' not in date_row.text
    assert 'type="date"' in date_row.text
    assert '<option value="gt" >after</option>' in date_row.text.replace("\n", "")
    enum_row = client.get("/objects/user/condition-row", params={"f": "role", "changed": "f"})
    assert '<option value="client"' in enum_row.text and 'value="in"' in enum_row.text
    empty_row = client.get(
        "/objects/user/condition-row", params={"f": "name", "op": "empty", "v": "x"}
    )
    assert '<input type="hidden" name="v" value="">' in empty_row.text
    between = client.get("/objects/user/condition-row", params={"f": "birthday", "op": "between"})
    assert between.text.count('type="date"') == 2
    # the field changed: the operator falls back to the first one that fits
    changed = client.get(
        "/objects/user/condition-row", params={"f": "birthday", "op": "contains", "changed": "f"}
    )
    assert '<option value="eq" selected' in changed.text


def test_a_client_sees_only_their_own_user_and_no_mass_start(client: TestClient) -> None:
    login(client, "client")
    page = client.get("/objects/user")
    assert page.status_code == 200
    assert row_ids(page.text) == ["client"]
    assert 'id="mass-start"' not in page.text
    assert "New object" not in page.text


# ---- mass start ---------------------------------------------------------------------------------


def _next_batch(html: str) -> dict[str, Any] | None:
    found = re.search(r"hx-vals='([^']+)'", html)
    return None if found is None else json.loads(unescape(found.group(1)))


def test_mass_start_runs_in_batches_to_completion(
    client: TestClient, store: SqlStore, account: Callable[[], Account]
) -> None:
    csrf = login(client, "manager")
    page = client.get("/objects/user")
    assert 'id="mass-start"' in page.text
    assert '<option value="homework-review">' in page.text
    headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
    # every user except the owner: 5 objects, 2 a batch
    first = client.post(
        "/objects/user/mass-start",
        data={"process": "homework-review", "f": "role", "op": "ne", "v": "owner", "size": "2"},
        headers=headers,
    )
    assert first.status_code == 200, first.text
    assert "0 of 5 started" in text_of(first.text)
    steps = []
    state = _next_batch(first.text)
    while state is not None:
        res = client.post("/objects/user/mass-start/batch", data=state, headers=headers)
        assert res.status_code == 200, res.text
        steps.append(re.search(r"(\d+) of 5 started", text_of(res.text)))
        state = _next_batch(res.text)
        last = res.text
    assert [s.group(1) for s in steps if s] == ["2", "4", "5"]
    assert "Done: the process was started for 5 objects." in text_of(last)
    assert 'aria-valuenow="5"' in last
    started = {s.object_id for s in store.instances_of("homework-review")}
    assert started == {"admin", "manager", "employee", "employee-plain", "client"}


def test_mass_start_with_nothing_matching_and_refusals(client: TestClient) -> None:
    csrf = login(client, "owner")
    headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
    none = client.post(
        "/objects/user/mass-start",
        data={"process": "homework-review", "q": "nobody-has-this"},
        headers=headers,
    )
    assert none.status_code == 200
    assert "0 of 0 started" in text_of(none.text) and "nothing was started" in none.text
    assert _next_batch(none.text) is None
    unknown = client.post("/objects/user/mass-start", data={"process": "nope"}, headers=headers)
    assert unknown.status_code == 404 and 'class="flash error"' in unknown.text
    no_process = client.post("/objects/user/mass-start", data={}, headers=headers)
    assert no_process.status_code == 422 and "Choose a process" in no_process.text


def test_mass_start_is_refused_for_a_client(client: TestClient, store: SqlStore) -> None:
    csrf = login(client, "client")
    res = client.post(
        "/objects/user/mass-start",
        data={"process": "homework-review"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert res.status_code == 403
    assert 'class="flash error"' in res.text
    batch = client.post(
        "/objects/user/mass-start/batch",
        data={"process": "homework-review", "total": "6", "size": "2"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert batch.status_code == 403
    assert store.instances_of("homework-review") == []


# ---- the card -----------------------------------------------------------------------------------


def test_card_create_and_update_with_field_errors(client: TestClient, store: SqlStore) -> None:
    csrf = login(client, "manager")
    form = client.get("/objects/order/new")
    assert form.status_code == 200
    assert 'name="field.amount" type="number"' in form.text
    assert 'name="field.client" type="text"' in form.text
    bad = client.post(
        "/objects/order/new",
        data={
            "csrf_token": csrf,
            "id": "o-1",
            "field.number": "A-1",
            "field.amount": "lots",
            "field.client": "nobody",
        },
    )
    assert bad.status_code == 422
    assert re.search(r'id="err-amount" role="alert">[^<]*number', bad.text)
    assert 'value="A-1"' in bad.text and 'value="lots"' in bad.text  # kept as typed
    assert store.get_object("o-1") is None
    missing_link = client.post(
        "/objects/order/new",
        data={"csrf_token": csrf, "id": "o-1", "field.amount": "10", "field.client": "nobody"},
    )
    assert missing_link.status_code == 422
    assert re.search(r'id="err-client" role="alert">[^<]*nobody', unescape(missing_link.text))
    made = client.post(
        "/objects/order/new",
        data={
            "csrf_token": csrf,
            "id": "o-1",
            "field.number": "A-1",
            "field.amount": "10.5",
            "field.client": "client",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    assert made.headers["location"] == "/objects/order/o-1?done=created"
    rec = store.get_object("o-1")
    assert rec is not None and rec.data["amount"] == 10.5 and rec.data["client"] == "client"
    card = client.get("/objects/order/o-1?done=created")
    assert "Created." in card.text and 'href="/objects/user/client"' not in card.text
    assert 'id="card-tasks"' in card.text
    # change one field; the others stay; a bad value is refused by its field
    saved = client.post(
        "/objects/order/o-1",
        data={
            "csrf_token": csrf,
            "field.number": "A-1",
            "field.amount": "12",
            "field.client": "client",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("done=saved")
    rec = store.get_object("o-1")
    assert rec is not None and rec.data["amount"] == 12 and rec.data["number"] == "A-1"
    refused = client.post(
        "/objects/order/o-1",
        data={"csrf_token": csrf, "field.amount": "-", "field.number": "A-1"},
    )
    assert refused.status_code == 422 and 'id="err-amount"' in refused.text
    # clearing a field
    client.post("/objects/order/o-1", data={"csrf_token": csrf, "field.number": ""})
    rec = store.get_object("o-1")
    assert rec is not None and rec.data.get("number") is None


def test_card_shows_the_object_its_instances_and_history(
    client: TestClient, account: Callable[[], Account]
) -> None:
    acc = account()
    acc.attempt(lambda: acc.start("homework-review", "client", {}, by=None))
    login(client, "owner")
    card = client.get("/objects/user/client")
    assert card.status_code == 200
    assert "Kira Client" in card.text
    assert 'id="card-instances"' in card.text and "homework-review" in card.text
    assert re.search(r'href="/instances/[^"]+"', card.text)
    assert 'id="card-history"' in card.text and "instance_started" in card.text
    wrong_type = client.get("/objects/order/client", follow_redirects=False)
    assert (
        wrong_type.status_code == 303 and wrong_type.headers["location"] == "/objects/user/client"
    )
    assert client.get("/objects/user/nobody").status_code == 404
    csrf = login(client, "owner")
    other = client.post("/objects/order/client", data={"csrf_token": csrf, "field.amount": "1"})
    assert other.status_code == 404  # a user is no order


def test_a_client_cannot_create_objects(client: TestClient, store: SqlStore) -> None:
    csrf = login(client, "client")
    res = client.post(
        "/objects/order/new", data={"csrf_token": csrf, "id": "o-9", "field.amount": "1"}
    )
    assert res.status_code == 403 and 'id="card-error"' in res.text
    assert store.get_object("o-9") is None


# ---- stages and the board (events) ------------------------------------------------------------


def test_board_moves_hold_or_snap_back_with_the_reason(events: Any) -> None:
    client, acc_of, store = events
    make_event(acc_of, "e-off", title="Meetup", kind="offline", address="Nevsky 1")
    make_event(acc_of, "e-on", title="Webinar", kind="online")
    assert stage_of(store, "e-on") == "preparation"  # intake moved both
    csrf = login(client, "owner")
    board = client.get("/kanban/event")
    assert board.status_code == 200
    assert 'hx-trigger="end"' in board.text and "Sortable.min.js" in board.text
    order = board_order(board.text)
    assert "stage:preparation" in order and "e-on@preparation" in order
    headers = {"X-CSRF-Token": csrf, "HX-Request": "true", "HX-Target": "board-form"}
    # the guard sends the online event without a link back
    refused = client.post(
        "/kanban/event/move",
        data={"order": dragged(order, "e-on", "registration")},
        headers=headers,
    )
    assert refused.status_code == 200
    assert "The move was refused:" in refused.text
    assert "the event is online and has no online link" in unescape(refused.text)
    assert stage_of(store, "e-on") == "preparation"
    assert "e-on@preparation" in board_order(refused.text)  # the card is back
    # the offline event with an address moves
    moved = client.post(
        "/kanban/event/move",
        data={"order": dragged(board_order(refused.text), "e-off", "registration")},
        headers=headers,
    )
    assert "e-off moved to registration" in moved.text
    assert stage_of(store, "e-off") == "registration"
    assert "e-off@registration" in board_order(moved.text)
    # counts per column
    assert re.search(
        r'data-stage="registration".*?<span class="badge count">1</span>', moved.text, re.S
    )
    # out of a final stage: refused by the stage rules
    acc = acc_of()
    acc.attempt(lambda: acc.move_stage("e-off", "held"))
    again = client.get("/kanban/event")
    out = client.post(
        "/kanban/event/move",
        data={"order": dragged(board_order(again.text), "e-off", "feedback")},
        headers=headers,
    )
    assert "stage 'held' is final" in unescape(out.text)
    assert stage_of(store, "e-off") == "held"
    # nothing moved (a card dropped where it was): the board as it is
    same = client.post("/kanban/event/move", data={"order": order}, headers=headers)
    assert same.status_code == 200 and "refused" not in same.text


def test_board_filter_and_more_cards(events: Any) -> None:
    client, acc_of, _store = events
    for i in range(23):
        make_event(acc_of, f"e{i:02d}", title=f"Event {i}", kind="offline", seats=i)
    login(client, "manager")
    board = client.get("/kanban/event")
    column = re.search(r'id="cards-preparation".*?id="more-preparation"', board.text, re.S)
    assert column is not None and column.group(0).count('class="card"') == 20
    assert 'id="more-preparation"' in board.text
    more = client.get("/kanban/event/column/preparation", params={"offset": 20})
    assert more.text.count('class="card"') == 3 and 'hx-swap-oob="true"' in more.text
    filtered = client.get(
        "/kanban/event",
        params={"f": "seats", "op": "ge", "v": "20"},
        headers={"HX-Request": "true", "HX-Target": "board-form"},
    )
    assert "<html" not in filtered.text
    assert re.findall(r'data-id="([^"]+)"', filtered.text) == ["e20", "e21", "e22"]
    not_number = client.get("/kanban/event", params={"f": "seats", "op": "ge", "v": "many"})
    assert "is not a number" in unescape(not_number.text)
    assert client.get("/kanban/user").status_code == 409  # users have no stages


def test_card_stage_buttons_move_or_say_why_not(events: Any) -> None:
    client, acc_of, store = events
    make_event(acc_of, "e1", title="Webinar", kind="online")
    csrf = login(client, "manager")
    card = client.get("/objects/event/e1")
    assert 'class="badge current-stage">preparation<' in card.text
    assert 'name="to" value="registration"' in card.text
    assert '<select id="field-kind" name="field.kind"' in card.text  # a dictionary link
    assert 'name="field.start" type="datetime-local"' in card.text
    refused = client.post(
        "/objects/event/e1/stage", data={"csrf_token": csrf, "to": "registration"}
    )
    assert refused.status_code == 409
    assert "no online link" in unescape(refused.text) and 'id="card-error"' in refused.text
    fixed = client.post(
        "/objects/event/e1",
        data={"csrf_token": csrf, "field.online_link": "https://meet.example/1"},
        follow_redirects=False,
    )
    assert fixed.status_code == 303
    moved = client.post(
        "/objects/event/e1/stage",
        data={"csrf_token": csrf, "to": "registration"},
        follow_redirects=False,
    )
    assert moved.status_code == 303 and stage_of(store, "e1") == "registration"
    assert "Moved." in client.get(moved.headers["location"]).text
    unknown = client.post("/objects/event/e1/stage", data={"csrf_token": csrf, "to": "archive"})
    assert unknown.status_code == 409 and "unknown stage" in unescape(unknown.text)


def test_a_client_cannot_move_cards(events: Any) -> None:
    client, acc_of, store = events
    make_event(
        acc_of, "e1", title="Meetup", kind="offline", address="Nevsky 1", responsible="client"
    )
    csrf = login(client, "client")
    board = client.get("/kanban/event")
    assert 'data-can-move="false"' in board.text
    res = client.post(
        "/kanban/event/move",
        data={"order": dragged(board_order(board.text), "e1", "registration")},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert "may not move" in res.text
    assert stage_of(store, "e1") == "preparation"


# ---- dictionaries -------------------------------------------------------------------------------


def test_dictionaries_list_and_add_a_value(events: Any) -> None:
    client, _acc_of, store = events
    csrf = login(client, "owner")
    page = client.get("/dictionaries")
    assert page.status_code == 200
    assert 'id="dictionary-event_type"' in page.text
    assert '<li class="badge">hybrid</li>' in page.text
    added = client.post(
        "/dictionaries/event_type/values",
        data={"csrf_token": csrf, "value": "conference"},
    )
    assert added.status_code == 200  # followed the redirect
    assert '<li class="badge">conference</li>' in added.text and "Added:" in added.text
    assert "conference" in store.schema.dictionaries["event_type"]
    empty = client.post("/dictionaries/event_type/values", data={"csrf_token": csrf, "value": " "})
    assert empty.status_code == 422 and "give the value" in empty.text
    unknown = client.post("/dictionaries/nope/values", data={"csrf_token": csrf, "value": "x"})
    assert unknown.status_code == 404


def test_a_manager_sees_dictionaries_but_cannot_add(events: Any) -> None:
    client, _acc_of, store = events
    csrf = login(client, "manager")
    page = client.get("/dictionaries")
    assert '<li class="badge">offline</li>' in page.text
    assert 'name="value"' not in page.text
    res = client.post("/dictionaries/event_type/values", data={"csrf_token": csrf, "value": "x"})
    assert res.status_code == 403
    assert "x" not in store.schema.dictionaries["event_type"]


def test_russian_pages(client: TestClient) -> None:
    login(client, "owner")
    client.cookies.set("flowlane_lang", "ru")
    page = client.get("/objects/user")
    assert "Добавить условие" in page.text and "Массовый запуск" in page.text
    assert "6 объектов" in text_of(page.text)
