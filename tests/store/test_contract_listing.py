"""Store contract, part two: the listings the API pages through (process versions, instances
with filters and counts, an instance's history page). Runs on memory, SQLite and PostgreSQL
with the ``store`` fixture of ``test_contract.py``."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from tests.store import test_contract as contract
from tests.store.test_contract import _deploy_spec, _history, _instance

from flowlane.model.recipe import Recipe
from flowlane.store.base import Store

store = contract.store
recipe = contract.recipe


def test_process_versions(store: Store, recipe: Recipe) -> None:
    assert store.process_versions("new-order") == []
    before = datetime.now(UTC) - timedelta(seconds=5)
    _deploy_spec(store, recipe, "new-order")
    _deploy_spec(store, recipe, "new-order")  # the same spec: no new version
    _deploy_spec(store, recipe, "new-order", description="changed")
    _deploy_spec(store, recipe, "reach-by-phone")
    versions = store.process_versions("new-order")
    assert [(v.key, v.version) for v in versions] == [("new-order", 1), ("new-order", 2)]
    assert all(v.source == recipe.sources["new-order"] for v in versions)
    for v in versions:
        assert v.deployed_at is not None
        assert before <= v.deployed_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert [v.version for v in store.process_versions("reach-by-phone")] == [1]


def test_find_instances_filters_pages_and_counts(store: Store) -> None:
    with store.transaction():
        store.put_instance(_instance("i1"))
        store.put_instance(_instance("i2", object_id="order-2", status="ended"))
        store.put_instance(_instance("i3", process="reach-by-phone"))
        fourth = _instance("i4", status="incident")
        fourth.version = 2
        store.put_instance(fourth)
        store.put_instance(_instance("i5", object_id=None))
    page, total = store.find_instances()
    assert ([s.id for s in page], total) == (["i5", "i4", "i3", "i2", "i1"], 5)
    page, total = store.find_instances(process="new-order", offset=1, limit=2)
    assert ([s.id for s in page], total) == (["i4", "i2"], 4)
    page, total = store.find_instances(object_id="order-1")
    assert [s.id for s in page] == ["i4", "i3", "i1"]
    page, total = store.find_instances(process="new-order", status="incident")
    assert ([s.id for s in page], total) == (["i4"], 1)
    assert page[0].version == 2
    assert store.find_instances(status="cancelled") == ([], 0)
    assert store.find_instances(offset=10) == ([], 5)
    assert store.instance_counts("new-order") == {
        (1, "running"): 2,
        (1, "ended"): 1,
        (2, "incident"): 1,
    }
    assert store.instance_counts("nothing") == {}


def test_find_instances_sees_the_transactions_writes(store: Store) -> None:
    with store.transaction():
        store.put_instance(_instance("i1"))
        state = copy.deepcopy(_instance("i1"))
        state.status = "ended"
        store.put_instance(state)
        page, total = store.find_instances(status="ended")
        assert ([s.id for s in page], total) == (["i1"], 1)
        assert store.instance_counts("new-order") == {(1, "ended"): 1}


def test_history_page(store: Store) -> None:
    lines = [_history("i1", f"e{n}", n) for n in range(5)]
    other = _history("i2", "other", 9)
    with store.transaction():
        for line in [*lines[:2], other, *lines[2:]]:
            store.add_history(copy.deepcopy(line))
        assert store.history_page("i1", 0, 2) == (lines[:2], 5)
    assert store.history_page("i1", 2, 2) == (lines[2:4], 5)
    assert store.history_page("i1", 4, 10) == (lines[4:], 5)
    assert store.history_page("i2") == ([other], 1)
    assert store.history_page("nobody") == ([], 0)
