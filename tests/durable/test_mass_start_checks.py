"""The batched mass start (``runtime.durable.mass_start``) finds its objects with the same
checks as each batch: launch variables coerced to their types, the starter's role and the
process's state checked before anything is looked for, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.support import write_recipe

from flowlane.core.errors import Refused
from flowlane.runtime.durable import (
    MassStartStopped,
    deploy,
    load_valid_recipe,
    mass_start,
    open_durable,
)
from flowlane.services.account import Account

REMIND = """\
key: remind
name: Remind big orders
object: order
variables:
  min_amount: {type: number}
blocks:
  start: {type: start, next: done}
  done: {type: end}
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    recipe = write_recipe(tmp_path / "recipe", {"remind": REMIND})
    url = (
        f"sqlite:///{tmp_path / 'm.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("pg_database"))
    )
    loaded = load_valid_recipe(recipe)
    store = open_durable(loaded, url)
    try:
        deploy(loaded, store)
        account = Account(store, datetime.now(UTC))
        with store.transaction():
            account.create_object(
                "user", {"name": "Anna", "email": "a@x.example"}, object_id="anna"
            )
            account.create_object(
                "user", {"name": "Olga", "email": "o@x.example", "role": "owner"}, object_id="olga"
            )
            for i in range(6):
                account.create_object(
                    "order", {"number": f"A-{i}", "amount": i * 100}, object_id=f"o{i}"
                )
    finally:
        store.close()
    return recipe, url


def test_the_objects_are_found_with_the_variables_coerced(db: tuple[Path, str]) -> None:
    """``--var min_amount=300`` gives text; the variable is a number, in every batch and in
    the search that found the objects."""
    recipe, url = db
    store = open_durable(load_valid_recipe(recipe), url)
    try:
        started = mass_start(
            store, "remind", "object.amount >= vars.min_amount", {"min_amount": "300"}, batch=2
        )
        assert len(started) == 3
        with pytest.raises(Refused, match="min_amount"):
            mass_start(store, "remind", "object.amount >= vars.min_amount", {"min_amount": "x"})
    finally:
        store.close()


def test_a_refused_mass_start_is_refused_even_when_nothing_matches(db: tuple[Path, str]) -> None:
    recipe, url = db
    store = open_durable(load_valid_recipe(recipe), url)
    try:
        with pytest.raises(Refused, match="anna \\(client\\) may not start remind"):
            mass_start(store, "remind", "object.amount > 10000", by="anna")
        account = Account(store, datetime.now(UTC))
        account.attempt(lambda: account.stop_process("remind", by="olga"))
        with pytest.raises(Refused, match="remind is stopped"):
            mass_start(store, "remind", "object.amount > 10000", by="olga")
    finally:
        store.close()


def test_a_batch_refused_midway_says_how_many_were_started(db: tuple[Path, str]) -> None:
    """The batches before a refused one stay started; the refusal says how many, so that
    nobody runs the whole mass start again (a manual start always starts a new instance)."""
    recipe, url = db
    store = open_durable(load_valid_recipe(recipe), url)
    other = open_durable(load_valid_recipe(recipe), url)
    try:
        admin = Account(other, datetime.now(UTC))

        def stop_after_first(done: int, total: int) -> None:
            if done == 2:  # an admin stops the process between two batches
                admin.attempt(lambda: admin.stop_process("remind", by="olga"))

        with pytest.raises(MassStartStopped) as refused:
            mass_start(store, "remind", None, batch=2, by="olga", progress=stop_after_first)
        assert len(refused.value.started) == 2
        assert str(refused.value) == (
            "mass start of remind stopped after 2 of 6 object(s), which stay started: "
            "process remind is stopped: activate it before starting it"
        )
    finally:
        other.close()
        store.close()
