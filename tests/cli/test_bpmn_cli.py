"""``flowlane bpmn export`` and ``flowlane bpmn import``: files, output and exit codes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flowlane.cli.main import app
from flowlane.model.process import ProcessFile
from flowlane.model.yamlio import load_file, parse_text

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
NEW_ORDER = ROOT / "recipes" / "order-processing" / "processes" / "new-order.yaml"


def _norm(data: object) -> dict[str, object]:
    return ProcessFile.model_validate(data).model_dump(by_alias=True)


def test_export_then_import_gives_the_same_process(tmp_path: Path) -> None:
    diagram = tmp_path / "new-order.bpmn"
    result = runner.invoke(app, ["bpmn", "export", str(NEW_ORDER), "-o", str(diagram)])
    assert result.exit_code == 0, result.output
    assert diagram.read_text().startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert f"wrote {diagram}" in result.stderr
    back = tmp_path / "back.yaml"
    result = runner.invoke(app, ["bpmn", "import", str(diagram), "--output", str(back)])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"wrote {back}"
    assert _norm(load_file(back)) == _norm(load_file(NEW_ORDER))
    assert back.read_text().startswith("key: new-order\nname: New order processing\n")


def test_without_output_the_result_goes_to_stdout(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bpmn", "export", str(NEW_ORDER)])
    assert result.exit_code == 0, result.output
    assert '<bpmn:process id="new-order"' in result.stdout
    diagram = tmp_path / "d.bpmn"
    diagram.write_text(result.stdout)
    result = runner.invoke(app, ["bpmn", "import", str(diagram)])
    assert result.exit_code == 0, result.output
    assert _norm(parse_text(result.stdout, source="x.yaml")) == _norm(load_file(NEW_ORDER))


def test_errors_print_error_and_exit_1(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = runner.invoke(app, ["bpmn", "export", str(missing)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {missing}: cannot read")
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "key: x\nname: X\nobject: user\nblocks:\n  start: {type: start, next: gone}\n"
    )
    result = runner.invoke(app, ["bpmn", "export", str(broken)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: {broken}: block start: next leads to unknown block 'gone'"
    )
    bad = tmp_path / "bad.bpmn"
    bad.write_text(
        '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:f="https://flowlane.dev/schema/bpmn/1.0"><process id="p">'
        '<userTask id="Task_1" f:type="task" f:params="{x"/></process></definitions>'
    )
    result = runner.invoke(app, ["bpmn", "import", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {bad}: element Task_1: flowlane:params is not JSON"
    xxe = tmp_path / "xxe.bpmn"
    xxe.write_text(
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'
    )
    result = runner.invoke(app, ["bpmn", "import", str(xxe)])
    assert result.exit_code == 1
    assert "refused: the document holds a DTD" in result.stderr


def test_import_of_an_incomplete_diagram_writes_it_and_warns(tmp_path: Path) -> None:
    plain = tmp_path / "plain.bpmn"
    plain.write_text(
        '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">'
        '<process id="camunda" name="From Camunda">'
        '<startEvent id="s"/><userTask id="t" name="Do"/><endEvent id="e"/>'
        '<sequenceFlow id="f1" sourceRef="s" targetRef="t"/>'
        '<sequenceFlow id="f2" sourceRef="t" targetRef="e"/>'
        "</process></definitions>"
    )
    out = tmp_path / "camunda.yaml"
    result = runner.invoke(app, ["bpmn", "import", str(plain), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert load_file(out) == {
        "key": "camunda",
        "name": "From Camunda",
        "blocks": {
            "s": {"type": "start", "next": "t"},
            "t": {"type": "task", "name": "Do", "next": "e"},
            "e": {"type": "end"},
        },
    }
    assert f"warning: {plain}: missing required parameter 'object'" in result.stderr
