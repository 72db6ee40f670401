"""The durable runtime's commands: simulate --db, deploy, worker (in-process and -n 2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.support import write_recipe
from typer.testing import CliRunner

from flowlane.cli.main import app
from flowlane.runtime.durable import load_valid_recipe, open_durable
from flowlane.services.account import Account

ORDERS = Path(__file__).resolve().parents[2] / "recipes" / "order-processing"

NAP = """\
key: nap
name: short nap
object: user
blocks:
  start: {type: start, next: nap}
  nap: {type: delay, for: 1m, next: done}
  done: {type: end, outcome: positive}
"""


def _recipe(root: Path, process: str = NAP) -> Path:
    return write_recipe(root, {"nap": process})


def test_simulate_on_a_database_needs_it_empty_or_reset(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    scenarios = sorted((ORDERS / "scenarios").glob("*.yaml"))[:2]
    args = ["simulate", str(ORDERS), "-q", "--db", url]
    for path in scenarios:
        args += ["-s", str(path)]
    cli = CliRunner()
    reset = cli.invoke(app, [*args, "--reset"])
    assert reset.exit_code == 0, reset.output
    assert reset.output.count("ok ") == 2
    again = cli.invoke(app, args)
    assert again.exit_code == 2
    assert "is not empty: pass --reset" in again.output


def test_deploy_refuses_an_invalid_recipe_naming_file_and_block(tmp_path: Path) -> None:
    broken = NAP.replace("next: done}", "next: nowhere}")
    recipe = _recipe(tmp_path / "recipe", broken)
    url = f"sqlite:///{tmp_path / 'd.db'}"
    result = CliRunner().invoke(app, ["deploy", str(recipe), "--db", url])
    assert result.exit_code == 1
    assert "error:" in result.output
    assert "nap.yaml:nap:" in result.output and "nowhere" in result.output


def _one_due_nap(recipe: Path, url: str, count: int = 1) -> None:
    assert CliRunner().invoke(app, ["deploy", str(recipe), "--db", url]).exit_code == 0
    store = open_durable(load_valid_recipe(recipe), url)
    try:
        account = Account(store, datetime.now(UTC) - timedelta(hours=1))
        with store.transaction():
            for i in range(count):
                account.create_object("user", {"name": f"U{i}"}, object_id=f"u{i}")
                account.start("nap", f"u{i}")
    finally:
        store.close()


def _statuses(recipe: Path, url: str) -> list[tuple[str, str | None]]:
    store = open_durable(load_valid_recipe(recipe), url)
    try:
        return [(s.status, s.outcome) for s in store.instances_of("nap")]
    finally:
        store.close()


def test_worker_until_idle_runs_what_is_due_and_stops(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "recipe")
    url = f"sqlite:///{tmp_path / 'w.db'}"
    _one_due_nap(recipe, url)
    assert _statuses(recipe, url) == [("running", None)]
    result = CliRunner().invoke(app, ["worker", str(recipe), "--db", url, "--until-idle"])
    assert result.exit_code == 0, result.output
    assert _statuses(recipe, url) == [("ended", "positive")]


@pytest.mark.slow
def test_worker_processes_share_the_work(tmp_path: Path, pg_database: str) -> None:
    """``-n 2`` starts two worker processes on one PostgreSQL database."""
    recipe = _recipe(tmp_path / "recipe")
    _one_due_nap(recipe, pg_database, count=50)
    result = CliRunner().invoke(
        app, ["worker", str(recipe), "--db", pg_database, "-n", "2", "--until-idle", "--batch", "5"]
    )
    assert result.exit_code == 0, result.output
    assert _statuses(recipe, pg_database) == [("ended", "positive")] * 50


def test_several_scenarios_on_one_new_database(tmp_path: Path) -> None:
    """Only the first needs the database empty: the later ones clear the earlier's data."""
    url = f"sqlite:///{tmp_path / 'many.db'}"
    args = ["simulate", str(ORDERS), "-q", "--db", url]
    for path in sorted((ORDERS / "scenarios").glob("*.yaml"))[:3]:
        args += ["-s", str(path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == 3


@pytest.mark.parametrize("url", ["mysql://u@h/x", "bogus"])
def test_an_unusable_database_url_is_an_error_line(tmp_path: Path, url: str) -> None:
    for args in (["init", "--db", url], ["deploy", str(ORDERS), "--db", url]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1
        assert result.output.startswith("error: ")
        assert "unsupported database" in result.output or "not a database URL" in result.output


def test_a_bad_log_level_is_an_error_line(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "recipe")
    url = f"sqlite:///{tmp_path / 'log.db'}"
    result = CliRunner(env={"FLOWLANE_LOG": "loud"}).invoke(
        app, ["worker", str(recipe), "--db", url, "--until-idle"]
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: FLOWLANE_LOG: 'LOUD'")
