"""Standard BPMN processes hosted by the runtime (ADR 0012 "Hosting"): a process file with
``bpmn:`` deploys a diagram; its scenarios run on the simulator in memory, with a JSON round
trip of every instance between steps, and on SQLite, writing the same trace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support import write_recipe

from flowlane.model.recipe import load_recipe
from flowlane.model.validate import validate_recipe
from flowlane.runtime.simulate import Database, simulate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "bpmn-review"
SCENARIOS = sorted((FIXTURE / "scenarios").glob("*.yaml"))


def test_the_fixture_validates() -> None:
    recipe = load_recipe(FIXTURE)
    assert recipe.problems == []
    assert [str(d) for d in validate_recipe(recipe) if d.severity == "error"] == []
    spec = recipe.processes["review"]
    assert spec.bpmn is not None and "review.bpmn" in spec.bpmn.documents


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_memory_roundtrip_and_sqlite(path: Path, tmp_path: Path) -> None:
    straight = simulate(FIXTURE, path)
    assert straight.ok, straight.message
    tripped = simulate(FIXTURE, path, roundtrip=True)
    assert tripped.ok, tripped.message
    assert tripped.trace == straight.trace
    durable = simulate(FIXTURE, path, db=Database(f"sqlite:///{tmp_path / 'f.db'}"))
    assert durable.ok, durable.message
    assert durable.trace == straight.trace


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_on_postgresql_writes_the_memory_trace(path: Path, pg_database: str) -> None:
    memory = simulate(FIXTURE, path)
    durable = simulate(FIXTURE, path, db=Database(pg_database))
    assert durable.ok, durable.message
    assert durable.trace == memory.trace


GATEWAY_ONLY = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D">
  <bpmn:process id="P" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:outgoing>a</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="Gate"><bpmn:incoming>a</bpmn:incoming>
      <bpmn:outgoing>b</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:endEvent id="E"><bpmn:incoming>b</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="a" sourceRef="S" targetRef="Gate"/>
    <bpmn:sequenceFlow id="b" sourceRef="Gate" targetRef="E">
      <bpmn:conditionExpression>amount &gt; 10</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
  </bpmn:process>
</bpmn:definitions>
"""

UNSUPPORTED = GATEWAY_ONLY.replace("exclusiveGateway", "complexGateway")

PROCESS = """
key: p
name: P
object: user
variables:
  amount: {type: number}
bpmn: {file: p.bpmn}
"""

SCENARIO = """
name: t
clock: 2026-03-02T10:00:00+03:00
objects:
  - {type: user, id: anna, data: {name: Anna, email: anna@example.com}}
steps:
  - start: {process: p, object: anna, vars: {amount: AMOUNT}}
  - expect: EXPECT
"""


def _recipe(tmp_path: Path, diagram: str) -> Path:
    root = write_recipe(tmp_path / "recipe", {"p": PROCESS})
    (root / "processes" / "p.bpmn").write_text(diagram)
    return root


def _scenario(tmp_path: Path, amount: int, expect: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("AMOUNT", str(amount)).replace("EXPECT", expect))
    return path


def test_unsupported_elements_are_problems_of_the_process_file_by_id(tmp_path: Path) -> None:
    recipe = load_recipe(_recipe(tmp_path, UNSUPPORTED))
    errors = [d for d in validate_recipe(recipe) if d.severity == "error"]
    assert [(Path(d.file).name, d.block) for d in errors] == [("p.yaml", "Gate")]
    assert "complexGateway" in errors[0].message


def test_a_missing_diagram_is_a_problem_of_the_process_file(tmp_path: Path) -> None:
    root = write_recipe(tmp_path / "recipe", {"p": PROCESS})
    recipe = load_recipe(root)
    assert [(d.block, "cannot read p.bpmn" in d.message) for d in recipe.problems] == [
        ("bpmn", True)
    ]


def test_the_run_ends_the_instance_positively(tmp_path: Path) -> None:
    root = _recipe(tmp_path, GATEWAY_ONLY)
    path = _scenario(tmp_path, 20, "{ended: {process: p, object: anna, outcome: positive}}")
    result = simulate(root, path)
    assert result.ok, result.message
    durable = simulate(root, path, db=Database(f"sqlite:///{tmp_path / 'f.db'}"))
    assert durable.ok, durable.message
    assert durable.trace == result.trace


def test_an_error_of_the_run_is_an_incident_naming_the_element(tmp_path: Path) -> None:
    root = _recipe(tmp_path, GATEWAY_ONLY)
    path = _scenario(tmp_path, 5, "{incident: {process: p, object: anna, contains: Gate}}")
    result = simulate(root, path)
    assert result.ok, result.message
    line = next(x for x in result.trace if x["event"] == "incident")
    assert line["block"] == "Gate"
    assert "no condition is true" in line["details"]["message"]


def test_block_states_decode_unchanged_and_bpmn_states_round_trip() -> None:
    from flowlane.engine.state import InstanceState, from_dict, to_dict

    plain = to_dict(InstanceState("i1", "p", 1, None))
    assert "bpmn" not in plain
    assert from_dict(plain).bpmn is None
    state = InstanceState("i2", "p", 1, None, bpmn={"run": {"tokens": {}}, "seen": 0, "subs": []})
    assert from_dict(json.loads(json.dumps(to_dict(state)))) == state
    copied = state.copy()
    assert copied == state and copied.bpmn is not state.bpmn


def test_cli_import_standard_writes_a_process_file_that_runs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flowlane.cli.main import app

    root = write_recipe(tmp_path / "recipe", {})
    shutil.copy(FIXTURE / "objects.yaml", root / "objects.yaml")
    diagram = root / "processes" / "review.bpmn"
    shutil.copy(FIXTURE / "processes" / "review.bpmn", diagram)
    out = root / "processes" / "review.yaml"
    result = CliRunner().invoke(
        app,
        [
            "bpmn",
            "import",
            "--standard",
            str(diagram),
            "--key",
            "review",
            "--object",
            "claim",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(out.read_text())
    assert written == {
        "key": "review",
        "name": "Claim review",
        "object": "claim",
        "bpmn": {"file": "review.bpmn", "process": "ClaimReview"},
    }
    recipe = load_recipe(root)
    assert recipe.problems == []
    assert [d for d in validate_recipe(recipe) if d.severity == "error"] == []


def test_cli_import_standard_names_unsupported_elements(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flowlane.cli.main import app

    diagram = tmp_path / "p.bpmn"
    diagram.write_text(UNSUPPORTED)
    result = CliRunner().invoke(app, ["bpmn", "import", "--standard", str(diagram)])
    assert result.exit_code == 1
    assert "Gate: complexGateway" in result.output


ASK = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D">
  <bpmn:process id="Inline" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:outgoing>a</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Ask" name="Ask"><bpmn:incoming>a</bpmn:incoming>
      <bpmn:outgoing>b</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="E"><bpmn:incoming>b</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="a" sourceRef="S" targetRef="Ask"/>
    <bpmn:sequenceFlow id="b" sourceRef="Ask" targetRef="E"/>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_process_text_with_an_inline_diagram_deploys_and_runs(kind: str, tmp_path: Path) -> None:
    """The API's deploy of process text: the diagram inline in ``bpmn.documents``; on SQLite
    the version (diagram included) is read back from the database by a new store."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from flowlane.runtime.simulate import build_account
    from flowlane.services import processes
    from flowlane.store.sql import open_store

    tz = ZoneInfo("Europe/Moscow")
    db = Database(f"sqlite:///{tmp_path / 'd.db'}") if kind == "sqlite" else None
    recipe = load_recipe(FIXTURE)
    text = yaml.safe_dump(
        {
            "key": "inline",
            "name": "Inline",
            "object": "claim",
            "bpmn": {"documents": {"inline.bpmn": ASK}},
        }
    )
    acc = build_account(recipe, datetime(2026, 3, 2, 10, 0, tzinfo=tz), tz, None, db)
    try:

        def go() -> None:
            acc.create_object(
                "user",
                {"name": "Olga", "email": "o@example.com", "role": "owner"},
                object_id="olga",
            )
            acc.create_object("claim", {"number": "C-9"}, object_id="c9")
            processes.deploy(acc, text, by="olga")
            acc.start("inline", "c9", {}, by="olga")

        acc.attempt(go)
        (task,) = acc.store.find_tasks(open_only=True, process="inline")
        assert task.block == "Ask"
        acc.attempt(lambda: acc.answer(task, option=None, fields={}, by="olga"))
        (state,) = acc.store.instances_of("inline")
        assert (state.status, state.outcome) == ("ended", "positive")
    finally:
        acc.store.close()
    if db is not None:
        assert recipe.schema is not None
        store = open_store(db.url, recipe.schema, tz=tz)
        try:
            definition = store.definition("inline")
            assert definition is not None and definition.bpmn is not None
            assert definition.bpmn.program.main == "Inline"
        finally:
            store.close()


def _triage(tmp_path: Path, dmn: str | None) -> Path:
    root = write_recipe(tmp_path / "recipe", {})
    shutil.copy(FIXTURE / "objects.yaml", root / "objects.yaml")
    for name in ("triage.yaml", "triage.bpmn"):
        shutil.copy(FIXTURE / "processes" / name, root / "processes" / name)
    if dmn is not None:
        (root / "processes" / "triage.dmn").write_text(dmn)
    return root


def test_a_bad_dmn_file_is_a_problem_naming_the_file_and_element(tmp_path: Path) -> None:
    good = (FIXTURE / "processes" / "triage.dmn").read_text()
    bad = good.replace("<text>&lt; 1000</text>", "<text>&lt; &lt; 1000</text>")
    recipe = load_recipe(_triage(tmp_path, bad))
    assert recipe.problems == []
    errors = [d for d in validate_recipe(recipe) if d.severity == "error"]
    assert [(Path(d.file).name, d.block) for d in errors] == [("triage.yaml", "SmallAmount")]
    assert errors[0].message.startswith("triage.dmn: SmallAmount: input entry")


def test_a_decision_missing_from_the_dmn_files_names_the_task(tmp_path: Path) -> None:
    good = (FIXTURE / "processes" / "triage.dmn").read_text()
    recipe = load_recipe(_triage(tmp_path, good.replace('"ClaimRoute"', '"Other"')))
    errors = [d for d in validate_recipe(recipe) if d.severity == "error"]
    assert [d.block for d in errors] == ["Route"]
    assert "'ClaimRoute' is not in the loaded DMN files" in errors[0].message


def test_an_unreadable_dmn_file_is_a_problem_of_the_process_file(tmp_path: Path) -> None:
    recipe = load_recipe(_triage(tmp_path, None))
    assert [(d.block, "cannot read triage.dmn" in d.message) for d in recipe.problems] == [
        ("bpmn", True)
    ]


def test_a_dmn_file_that_is_not_dmn_names_the_file(tmp_path: Path) -> None:
    recipe = load_recipe(_triage(tmp_path, ASK))
    errors = [d for d in validate_recipe(recipe) if d.severity == "error"]
    assert len(errors) == 1 and "triage.dmn: not a DMN document" in errors[0].message


def test_inline_documents_named_dmn_are_decisions() -> None:
    """The API deploys process text with the DMN inline in ``bpmn.documents``."""
    from flowlane.model.bpmn_process import compile_source
    from flowlane.model.process import BpmnSource

    folder = FIXTURE / "processes"
    source = BpmnSource.model_validate(
        {
            "documents": {
                "triage.bpmn": (folder / "triage.bpmn").read_text(),
                "triage.dmn": (folder / "triage.dmn").read_text(),
            }
        }
    )
    hosted = compile_source(source)
    assert hosted.program.main == "Triage"


def _hosted(diagram: str) -> object:
    """An in-memory account with ``diagram`` deployed as process ``std`` (object ``claim``)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from flowlane.runtime.simulate import build_account
    from flowlane.services import processes

    tz = ZoneInfo("Europe/Moscow")
    acc = build_account(load_recipe(FIXTURE), datetime(2026, 3, 2, 10, 0, tzinfo=tz), tz, None)
    text = yaml.safe_dump(
        {"key": "std", "name": "Std", "object": "claim", "bpmn": {"documents": {"s.bpmn": diagram}}}
    )

    def go() -> None:
        acc.create_object(
            "user", {"name": "Olga", "email": "o@example.com", "role": "owner"}, object_id="olga"
        )
        acc.create_object("claim", {"number": "C-9"}, object_id="c9")
        processes.deploy(acc, text, by="olga")

    acc.attempt(go)
    return acc


def _start(acc: Any, data: dict[str, Any] | None = None) -> Any:
    acc.attempt(lambda: acc.start("std", "c9", dict(data or {}), by="olga"))
    (state,) = acc.store.instances_of("std")
    return state


def test_a_run_in_error_is_not_retried_but_refused_with_a_clear_message() -> None:
    from flowlane.core.errors import Refused
    from flowlane.engine import events as ev
    from flowlane.engine.bpmn_host import RETRY_REFUSED
    from flowlane.services import instances

    acc: Any = _hosted(GATEWAY_ONLY)
    state = _start(acc, {"amount": 5})
    assert state.status == "incident" and state.bpmn["run"]["status"] == "error"
    with pytest.raises(Refused, match=RETRY_REFUSED):
        instances.retry(acc, state.id, by="olga")
    with pytest.raises(Refused, match=RETRY_REFUSED):
        acc.retry(state.id, by=None)
    assert [i.resolved for i in acc.store.incidents()] == [False]
    acc.runner.deliver(state.id, ev.Retried())  # the engine ignores a retry that slips past
    acc.runner.run()
    assert acc.store.get_instance(state.id).status == "incident"
    instances.cancel(acc, state.id, by="olga")
    assert acc.store.get_instance(state.id).status == "cancelled"


def test_an_unexpected_exception_of_a_step_is_an_incident_at_the_element(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flowlane.core.errors import Refused
    from flowlane.engine import bpmn

    def broken(run: Any, t: Any, n: Any) -> None:
        raise TypeError("unsupported operand")

    monkeypatch.setitem(bpmn._HANDLERS, "exclusiveGateway", broken)
    acc: Any = _hosted(GATEWAY_ONLY)
    state = _start(acc, {"amount": 20})  # the request does not fail
    assert state.status == "incident"
    assert "Gate" in state.incident and "TypeError: unsupported operand" in state.incident
    (incident,) = acc.store.incidents(open_only=True)
    assert incident.block == "Gate"
    with pytest.raises(Refused, match="cannot be retried"):
        acc.retry(state.id, by=None)


def test_an_unexpected_exception_outside_the_run_is_an_incident_naming_the_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """E.g. answering a task: the answer's request does not fail, the instance stops."""
    from flowlane.engine import bpmn_host

    acc: Any = _hosted(PAIR)
    state = _start(acc)
    task = next(
        t for t in acc.store.find_tasks(open_only=True, process="std") if t.block == "First"
    )

    def broken(step: Any, run: Any) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(bpmn_host, "_sync_tasks", broken)
    acc.attempt(lambda: acc.answer(task, option=None, fields={}, by="olga"))
    after = acc.store.get_instance(state.id)
    assert after.status == "incident"
    assert state.id in after.incident and "RecursionError" in after.incident
    assert bpmn_host.run_failed(after)


PAIR = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D">
  <bpmn:process id="Pair" isExecutable="true">
    <bpmn:startEvent id="S"/>
    <bpmn:parallelGateway id="Split"/>
    <bpmn:userTask id="First" name="NAME"/>
    <bpmn:userTask id="Second" name="Second"/>
    <bpmn:parallelGateway id="Join"/>
    <bpmn:endEvent id="E"/>
    <bpmn:sequenceFlow id="a" sourceRef="S" targetRef="Split"/>
    <bpmn:sequenceFlow id="b" sourceRef="Split" targetRef="First"/>
    <bpmn:sequenceFlow id="c" sourceRef="Split" targetRef="Second"/>
    <bpmn:sequenceFlow id="d" sourceRef="First" targetRef="Join"/>
    <bpmn:sequenceFlow id="e" sourceRef="Second" targetRef="Join"/>
    <bpmn:sequenceFlow id="f" sourceRef="Join" targetRef="E"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_answering_a_task_completes_its_own_token_not_a_task_named_like_it() -> None:
    """The first task is *named* like the second task's BPMN token id: answering the second
    must complete the second."""
    from flowlane.engine.bpmn import BpmnRun
    from flowlane.model.bpmn_process import compile_source
    from flowlane.model.process import BpmnSource

    def compiled(diagram: str) -> Any:
        return compile_source(BpmnSource.model_validate({"documents": {"s.bpmn": diagram}}))

    probe = BpmnRun.start(compiled(PAIR).program)
    second = next(r.token for r in probe.ready() if r.node == "Second")
    acc: Any = _hosted(PAIR.replace("NAME", second))
    state = _start(acc)
    tasks = {t.block: t for t in acc.store.find_tasks(open_only=True, process="std")}
    assert sorted(tasks) == ["First", "Second"]
    acc.attempt(lambda: acc.answer(tasks["Second"], option=None, fields={}, by="olga"))
    left = [t.block for t in acc.store.find_tasks(open_only=True, process="std")]
    assert left == ["First"]
    assert acc.store.get_instance(state.id).bpmn["run"]["completed"] == ["Second"]
