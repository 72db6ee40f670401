"""``flowlane demo`` (what ``make run`` shows): the order recipe's traces, readably."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flowlane.cli.main import app

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "order-processing"


def test_demo_prints_every_scenario_and_exits_0(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    # A fixed width: Rich sizes its tables from COLUMNS, which differs between terminals.
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["demo", "--recipe", str(RECIPE), "--db", db]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo.db").exists()
    assert "ran on the database" in result.output
    assert "flowlane demo" in result.output
    scenarios = sorted(p.stem for p in (RECIPE / "scenarios").glob("*.yaml"))
    for stem in scenarios:
        assert stem in result.output
    assert result.output.count("all expectations held") == len(scenarios)
    assert "task_opened" in result.output and "Mon 02 Mar 10:01:00" in result.output


def test_demo_in_memory_prints_the_same_tables(tmp_path: Path) -> None:
    env = {"COLUMNS": "200"}
    memory = CliRunner(env=env).invoke(app, ["demo", "--recipe", str(RECIPE), "--memory"])
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    durable = CliRunner(env=env).invoke(app, ["demo", "--recipe", str(RECIPE), "--db", db])
    assert memory.exit_code == durable.exit_code == 0
    assert "ran on memory" in memory.output
    assert memory.output.rsplit("ran on", 1)[0] == durable.output.rsplit("ran on", 1)[0]
