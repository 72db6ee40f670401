"""``flowlane simulate``: JSON trace lines and exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.support import write_recipe
from typer.testing import CliRunner

from flowlane.cli.main import app

PROC = """
key: hello
name: hello
object: order
blocks:
  start: {type: start, next: wait}
  wait: {type: delay, for: 1h, next: fin}
  fin: {type: end, outcome: positive}
"""

SCENARIO = """
name: hello
clock: 2026-03-02T10:00:00+03:00
objects:
  - {type: order, id: o1, data: {number: A-1}}
steps:
  - start: {process: hello, object: o1}
  - advance: 1h
  - expect: {ended: {process: hello, object: o1, outcome: %s}}
"""


def _files(tmp_path: Path, outcome: str) -> tuple[Path, Path]:
    root = write_recipe(tmp_path / "r", {"hello": PROC})
    scen = tmp_path / "s.yaml"
    scen.write_text(textwrap.dedent(SCENARIO % outcome))
    return root, scen


def test_exit_0_and_json_lines(tmp_path: Path) -> None:
    root, scen = _files(tmp_path, "positive")
    result = CliRunner().invoke(app, ["simulate", str(root), "--scenario", str(scen)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    events = [x["event"] for x in lines]
    assert "instance_started" in events and "instance_ended" in events
    fired = next(x for x in lines if x["event"] == "timer_fired")
    assert fired["time"] == "2026-03-02T11:00:00+03:00"
    assert {"time", "instance", "process", "block", "event", "details"} <= set(fired)


def test_exit_1_names_the_expectation_and_what_was_found(tmp_path: Path) -> None:
    root, scen = _files(tmp_path, "negative")
    result = CliRunner().invoke(app, ["simulate", str(root), "-s", str(scen), "--quiet"])
    assert result.exit_code == 1
    assert "step 3: expect ended" in result.output
    assert "outcome=positive" in result.output


def test_exit_2_on_an_invalid_scenario(tmp_path: Path) -> None:
    root, scen = _files(tmp_path, "positive")
    scen.write_text(scen.read_text().replace("advance: 1h", "advanse: 1h"))
    result = CliRunner().invoke(app, ["simulate", str(root), "-s", str(scen), "-q"])
    assert result.exit_code == 2
    assert "advanse" in result.output


def test_exit_2_on_an_invalid_recipe(tmp_path: Path) -> None:
    root, scen = _files(tmp_path, "positive")
    (root / "processes" / "hello.yaml").write_text(PROC.replace("next: fin", "next: nowhere"))
    result = CliRunner().invoke(app, ["simulate", str(root), "-s", str(scen), "-q"])
    assert result.exit_code == 2
    assert "hello.yaml:wait" in result.output
