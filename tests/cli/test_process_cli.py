"""``flowlane process validate`` and ``flowlane schema``: output lines and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from flowlane.cli.process import process_app, schema_command

runner = CliRunner()

VALID = """\
key: ok
name: OK
object: order
blocks:
  start: {type: start, next: wait}
  wait: {type: delay, for: 1h, next: done}
  done: {type: end, outcome: positive}
"""

WARNS = """\
key: warns
name: Warns
object: order
blocks:
  start: {type: start, next: ask}
  ask: {type: question, title: Paid?, options: {'yes': done, 'no': null}}
  done: {type: end}
"""

BROKEN = """\
key: broken
name: Broken
object: order
blocks:
  start: {type: start, next: nowhere}
  lost: {type: end}
"""


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_valid_file_exits_0(tmp_path: Path) -> None:
    result = runner.invoke(process_app, ["validate", _write(tmp_path, "ok.yaml", VALID)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["0 error(s), 0 warning(s)"]


def test_warnings_are_printed_and_exit_0(tmp_path: Path) -> None:
    path = _write(tmp_path, "warns.yaml", WARNS)
    result = runner.invoke(process_app, ["validate", path])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{path}:ask: warning: empty exit 'options.no': that branch ends here",
        "0 error(s), 1 warning(s)",
    ]


def test_errors_exit_1_and_every_file_is_checked(tmp_path: Path) -> None:
    broken = _write(tmp_path, "broken.yaml", BROKEN)
    warns = _write(tmp_path, "warns.yaml", WARNS)
    result = runner.invoke(process_app, ["validate", broken, warns])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        f"{broken}:start: exit 'next' names no block 'nowhere'",
        f"{broken}:lost: no path from 'start' reaches this block",
        f"{warns}:ask: warning: empty exit 'options.no': that branch ends here",
        "2 error(s), 1 warning(s)",
    ]


def test_unparsable_file_exits_1(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", "key: [\n")
    result = runner.invoke(process_app, ["validate", path])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}:2: invalid YAML: expected the node content, but found '<stream end>'",
        "1 error(s), 0 warning(s)",
    ]


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    path = str(tmp_path / "none.yaml")
    result = runner.invoke(process_app, ["validate", path])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].startswith(f"{path}: cannot read")


def test_validate_needs_a_file() -> None:
    result = runner.invoke(process_app, ["validate"])
    assert result.exit_code == 2


def _schema_app() -> typer.Typer:
    app = typer.Typer()
    app.command("schema")(schema_command)

    @app.callback()
    def _root() -> None:
        """Root."""

    return app


def test_schema_kinds_print_json_schema() -> None:
    app = _schema_app()
    for kind, title in [
        ("process", "ProcessFile"),
        ("scenario", "ScenarioFile"),
        ("objects", "flowlane objects.yaml"),
        ("recipe", "RecipeFile"),
    ]:
        result = runner.invoke(app, ["schema", kind])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["title"] == title


def test_process_schema_uses_aliases() -> None:
    result = runner.invoke(_schema_app(), ["schema", "process"])
    schema = json.loads(result.stdout)
    assert "if" in schema["$defs"]["Branch"]["properties"]
    assert "else" in schema["$defs"]["ConditionBlock"]["properties"]


def test_unknown_schema_kind_exits_2() -> None:
    result = runner.invoke(_schema_app(), ["schema", "forms"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "unknown schema 'forms': use one of process, scenario, objects, recipe" in result.stderr


def test_wired_into_the_main_app(tmp_path: Path) -> None:
    from flowlane.cli.main import app

    result = runner.invoke(app, ["process", "validate", _write(tmp_path, "ok.yaml", VALID)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["0 error(s), 0 warning(s)"]
