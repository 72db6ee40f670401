"""``flowlane demo`` (what ``make run`` shows): the order recipe's traces, readably."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flowlane.cli.main import app

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "order-processing"


def test_demo_prints_every_scenario_and_exits_0() -> None:
    # A fixed width: Rich sizes its tables from COLUMNS, which differs between terminals.
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["demo", "--recipe", str(RECIPE)])
    assert result.exit_code == 0, result.output
    assert "flowlane demo" in result.output
    scenarios = sorted(p.stem for p in (RECIPE / "scenarios").glob("*.yaml"))
    for stem in scenarios:
        assert stem in result.output
    assert result.output.count("all expectations held") == len(scenarios)
    assert "task_opened" in result.output and "Mon 02 Mar 10:01:00" in result.output
