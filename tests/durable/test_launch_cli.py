"""``flowlane start`` (one object, mass start in batches with progress) and ``flowlane
forecast`` on a real database, and the runtime's batched mass start."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from tests.support import write_recipe
from typer.testing import CliRunner

from flowlane.cli.main import app
from flowlane.core.errors import Refused
from flowlane.runtime.durable import deploy, load_valid_recipe, mass_start, open_durable
from flowlane.services.account import Account
from flowlane.store.sql import tables as t

THANKS = """\
key: thanks
name: Thank paying clients
object: order
blocks:
  start: {type: start, next: wait}
  wait: {type: delay, for: 1d, next: done}
  done: {type: end}
"""

CHECK = """\
key: check
name: Check big new orders
object: order
launch:
  on: periodic
  every: 10m
  where: {all: [{field: status, op: eq, value: new}, {field: amount, op: gt, value: 100}]}
blocks:
  start: {type: start, next: done}
  done: {type: end}
"""


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, str]:
    recipe = write_recipe(tmp_path / "recipe", {"thanks": THANKS, "check": CHECK})
    url = f"sqlite:///{tmp_path / 'f.db'}"
    loaded = load_valid_recipe(recipe)
    store = open_durable(loaded, url)
    try:
        deploy(loaded, store)
        account = Account(store, datetime.now(UTC))
        with store.transaction():
            for i in range(23):
                status = "paid" if i % 2 else "new"
                account.create_object(
                    "order",
                    {"number": f"A-{i}", "status": status, "amount": i * 10},
                    object_id=f"o{i:02d}",
                )
    finally:
        store.close()
    return recipe, url


def _instances(url: str, process: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return int(
                c.execute(
                    select(func.count())
                    .select_from(t.instances)
                    .where(t.instances.c.process == process)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_mass_start_runs_in_batches_and_reports_progress(db: tuple[Path, str]) -> None:
    recipe, url = db
    store = open_durable(load_valid_recipe(recipe), url)
    seen: list[tuple[int, int]] = []
    try:
        started = mass_start(
            store,
            "thanks",
            {"field": "status", "op": "eq", "value": "paid"},
            batch=4,
            progress=lambda done, total: seen.append((done, total)),
        )
    finally:
        store.close()
    assert len(started) == 11
    assert seen == [(0, 11), (4, 11), (8, 11), (11, 11)]
    assert _instances(url, "thanks") == 11


def test_mass_start_refuses_a_bad_filter_and_starts_nothing(db: tuple[Path, str]) -> None:
    recipe, url = db
    store = open_durable(load_valid_recipe(recipe), url)
    try:
        with pytest.raises(Refused, match="order has no field 'colour'"):
            mass_start(store, "thanks", {"field": "colour", "value": "red"})
        with pytest.raises(Refused, match=r"filter all\.0\.op: Input should be"):
            mass_start(store, "thanks", {"all": [{"field": "status", "op": "like"}]})
    finally:
        store.close()
    assert _instances(url, "thanks") == 0


def test_cli_start_one_object_and_mass_start_with_progress(db: tuple[Path, str]) -> None:
    recipe, url = db
    cli = CliRunner()
    one = cli.invoke(app, ["start", str(recipe), "thanks", "--object", "o01", "--db", url])
    assert one.exit_code == 0, one.output
    assert "started" in one.output and "on o01" in one.output
    mass = cli.invoke(
        app,
        [
            "start",
            str(recipe),
            "thanks",
            "--where",
            "object.amount >= 150",
            "--batch",
            "2",
            "--db",
            url,
        ],
    )
    assert mass.exit_code == 0, mass.output
    assert "started 8 instance(s) of thanks" in mass.output
    assert "8/8" in mass.output  # the progress bar's last state
    assert _instances(url, "thanks") == 9


def test_cli_start_with_a_filter_file(db: tuple[Path, str], tmp_path: Path) -> None:
    recipe, url = db
    spec = tmp_path / "big.yaml"
    spec.write_text(
        "any:\n  - {field: amount, op: gt, value: 200}\n  - {field: number, op: eq, value: A-0}\n"
    )
    result = CliRunner().invoke(
        app, ["start", str(recipe), "thanks", "--filter", str(spec), "--db", url]
    )
    assert result.exit_code == 0, result.output
    assert "started 3 instance(s)" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("{field: amount, op: near}\n")
    refused = CliRunner().invoke(
        app, ["start", str(recipe), "thanks", "--filter", str(bad), "--db", url]
    )
    assert refused.exit_code == 1
    assert "bad.yaml" in refused.output


def test_cli_start_needs_exactly_one_target(db: tuple[Path, str]) -> None:
    recipe, url = db
    neither = CliRunner().invoke(app, ["start", str(recipe), "thanks", "--db", url])
    assert neither.exit_code == 1 and "--object" in neither.output
    both = CliRunner().invoke(
        app, ["start", str(recipe), "thanks", "--object", "o1", "--all", "--db", url]
    )
    assert both.exit_code == 1


def test_cli_forecast_counts_what_would_enter(db: tuple[Path, str]) -> None:
    recipe, url = db
    result = CliRunner().invoke(app, ["forecast", str(recipe), "check", "--db", url])
    assert result.exit_code == 0, result.output
    # new orders (even i) with amount > 100: i = 12, 14, …, 22
    assert "6 object(s) would enter check now (launch: periodic)" in result.output
