"""Multi-instance, standard loops, task ioSpecification, data objects and business rule
tasks of the standard-BPMN interpreter (ADR 0012 stage 3 and DMN), on inline diagrams."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from flowlane.engine.bpmn import BpmnRun
from flowlane.engine.bpmn_data import MAX_INSTANCES, data_objects
from flowlane.model.bpmn_compile import BpmnImportError, BpmnProgram, CompileOptions, compile_bpmn
from flowlane.model.bpmn_graph import check_set, parse_bpmn
from flowlane.model.dmn import Decision, parse_dmn

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
    ' xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d">'
)


def program(
    *bodies: str, process: str = "p", decisions: dict[str, Decision] | None = None
) -> BpmnProgram:
    graphs = [
        parse_bpmn(f"{HEAD}{body}</bpmn:definitions>", source=f"f{i}.bpmn")
        for i, body in enumerate(bodies)
    ]
    bpmn = check_set(graphs)
    assert bpmn.problems == ()
    return compile_bpmn(bpmn, process, CompileOptions(), decisions)


def flow(fid: str, source: str, target: str, condition: str | None = None) -> str:
    if condition is None:
        return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}"/>'
    return (
        f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}">'
        f"<bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>"
    )


def around(activity: str, extra: str = "") -> str:
    """start → ``activity`` (id ``a``) → end."""
    return (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        f'{activity}<bpmn:endEvent id="end"/>{flow("f1", "start", "a")}{flow("f2", "a", "end")}'
        f"{extra}</bpmn:process>"
    )


def mi(
    *,
    sequential: bool = False,
    cardinality: str | None = None,
    collection: str | None = None,
    output: str | None = "out",
    completion: str | None = None,
    kind: str = "userTask",
    body: str = "",
) -> str:
    parts = []
    if cardinality is not None:
        parts.append(f"<bpmn:loopCardinality>{cardinality}</bpmn:loopCardinality>")
    if collection is not None:
        parts.append(f"<bpmn:loopDataInputRef>{collection}</bpmn:loopDataInputRef>")
    if output is not None:
        parts.append(f"<bpmn:loopDataOutputRef>{output}</bpmn:loopDataOutputRef>")
    parts.append('<bpmn:inputDataItem id="item"/>')
    if output is not None:
        parts.append('<bpmn:outputDataItem id="result"/>')
    if completion is not None:
        parts.append(f"<bpmn:completionCondition>{completion}</bpmn:completionCondition>")
    seq = ' isSequential="true"' if sequential else ""
    loop = (
        f"<bpmn:multiInstanceLoopCharacteristics{seq}>{''.join(parts)}"
        "</bpmn:multiInstanceLoopCharacteristics>"
    )
    return f'<bpmn:{kind} id="a">{loop}{body}</bpmn:{kind}>'


def ready_items(run: BpmnRun) -> list[object]:
    return [t.data.get("item") for t in run.ready()]


def test_parallel_cardinality_collects_outputs_by_index_whatever_the_order() -> None:
    run = BpmnRun.start(program(around(mi(cardinality="3"))))
    tasks = run.ready()
    assert [t.node for t in tasks] == ["a", "a", "a"]
    assert [t.data["item"] for t in tasks] == [0, 1, 2]
    for t in reversed(tasks):  # completion order 2, 1, 0
        run.complete(t.token, {"result": t.data["item"] * 10})
    assert run.status == "completed"
    assert run.data["out"] == [0, 10, 20]
    assert run.trace.count("a") == 3


def test_sequential_over_a_dict_keeps_keys_and_runs_one_at_a_time() -> None:
    prog = program(around(mi(sequential=True, collection="things")))
    run = BpmnRun.start(prog, {"things": {"x": 1, "y": 2}})
    assert ready_items(run) == [1]
    run.complete("a", {"result": "X"})
    assert ready_items(run) == [2]
    run.complete("a", {"result": "Y"})
    assert run.status == "completed"
    assert run.data["out"] == {"x": "X", "y": "Y"}


def test_empty_collection_completes_at_once_and_nonempty_list_output_is_an_error() -> None:
    prog = program(around(mi(collection="things")))
    run = BpmnRun.start(prog, {"things": []})
    assert run.status == "completed" and run.data["out"] == [] and "a" not in run.trace
    bad = BpmnRun.start(prog, {"things": [1], "out": [9]})
    assert (bad.status, bad.error_at) == ("error", "a")
    missing = BpmnRun.start(prog, {})
    assert (missing.status, missing.error_at) == ("error", "a")


def test_an_instance_without_its_output_item_is_an_error() -> None:
    run = BpmnRun.start(program(around(mi(cardinality="1"))))
    run.complete("a", {"other": 1})
    assert (run.status, run.error_at) == ("error", "a")


def test_completion_condition_cancels_the_other_instances() -> None:
    prog = program(around(mi(cardinality="3", completion="result == 'stop'")))
    run = BpmnRun.start(prog)
    run.complete("a", {"result": "go"})
    assert len(run.ready()) == 2
    run.complete("a", {"result": "stop"})
    assert run.status == "completed"
    assert run.data["out"] == ["go", "stop"]
    assert run.ready() == []


def test_without_output_collection_instance_data_is_merged_back() -> None:
    prog = program(around(mi(cardinality="n", output=None)))
    run = BpmnRun.start(prog, {"n": 2})
    run.complete("a", {"seen_0": True})
    run.complete("a", {"seen_1": True})
    assert run.status == "completed"
    assert run.data["seen_0"] and run.data["seen_1"]


def test_multi_instance_sub_process_body() -> None:
    inner = (
        '<bpmn:startEvent id="s2"/><bpmn:userTask id="work"/><bpmn:endEvent id="e2"/>'
        + flow("g1", "s2", "work")
        + flow("g2", "work", "e2")
    )
    body = mi(collection="things", kind="subProcess", body=inner)
    run = BpmnRun.start(program(around(body)), {"things": ["p", "q"]})
    assert [t.node for t in run.ready()] == ["work", "work"]
    assert ready_items(run) == ["p", "q"]
    run.complete("work", {"result": 1})
    run.complete("work", {"result": 2})
    assert run.status == "completed"
    assert run.data["out"] == [1, 2]


def test_interrupting_boundary_cancels_every_instance() -> None:
    timer = (
        '<bpmn:boundaryEvent id="late" attachedToRef="a"><bpmn:timerEventDefinition>'
        '<bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition>'
        '</bpmn:boundaryEvent><bpmn:endEvent id="timeout"/>' + flow("f3", "late", "timeout")
    )
    run = BpmnRun.start(program(around(mi(cardinality="2"), timer)))
    assert len(run.ready()) == 2
    run.advance(timedelta(hours=2))
    assert run.status == "completed"
    assert run.ended_at == ["timeout"]
    assert run.ready() == []


def test_a_huge_loop_cardinality_fails_at_the_element_without_building_it() -> None:
    prog = program(around(mi(cardinality="n", output=None)))
    run = BpmnRun.start(prog, {"n": 10**9})
    assert (run.status, run.error_at) == ("error", "a")
    assert run.error is not None and "a:" in run.error and str(MAX_INSTANCES) in run.error
    assert run.ready() == []
    big = BpmnRun.start(prog, {"n": "1" * 40})
    assert (big.status, big.error_at) == ("error", "a")
    at_limit = BpmnRun.start(prog, {"n": MAX_INSTANCES})
    assert at_limit.status == "running" and len(at_limit.ready()) == MAX_INSTANCES


def test_a_collection_above_the_limit_fails_at_the_element() -> None:
    prog = program(around(mi(collection="things")))
    run = BpmnRun.start(prog, {"things": list(range(MAX_INSTANCES + 1))})
    assert (run.status, run.error_at) == ("error", "a")
    assert run.error is not None and str(MAX_INSTANCES) in run.error
    as_dict = BpmnRun.start(prog, {"things": {str(i): i for i in range(MAX_INSTANCES + 1)}})
    assert (as_dict.status, as_dict.error_at) == ("error", "a")


def test_created_instances_count_towards_the_step_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import flowlane.engine.bpmn as interpreter

    monkeypatch.setattr(interpreter, "MAX_STEPS", 50)
    prog = program(around(mi(cardinality="n", output=None)))
    assert len(BpmnRun.start(prog, {"n": 20}).ready()) == 20  # 2 + 20 + 20 steps
    run = BpmnRun.start(prog, {"n": 30})  # 2 + 30 created + 30 run: over 50
    assert (run.status, run.error_at) == ("error", "a")
    assert run.error is not None and "loop guard" in run.error


def test_state_is_json_and_resumes_mid_loop() -> None:
    prog = program(around(mi(sequential=True, cardinality="2")))
    run = BpmnRun.start(prog)
    run.complete("a", {"result": "first"})
    state = json.loads(json.dumps(run.state))
    resumed = BpmnRun(prog, state)
    resumed.complete("a", {"result": "second"})
    assert resumed.status == "completed"
    assert resumed.data["out"] == ["first", "second"]


def standard(condition: str | None, *, before: bool, maximum: int | None = None) -> str:
    attrs = f' testBefore="{str(before).lower()}"'
    if maximum is not None:
        attrs += f' loopMaximum="{maximum}"'
    cond = f"<bpmn:loopCondition>{condition}</bpmn:loopCondition>" if condition else ""
    return (
        f'<bpmn:userTask id="a"><bpmn:standardLoopCharacteristics{attrs}>{cond}'
        "</bpmn:standardLoopCharacteristics></bpmn:userTask>"
    )


def test_standard_loop_while_condition_holds_with_maximum() -> None:
    prog = program(around(standard("n &lt; 5", before=True, maximum=3)))
    run = BpmnRun.start(prog, {"n": 0})
    for i in range(3):
        assert len(run.ready()) == 1
        run.complete("a", {"n": i + 1})
    assert run.status == "completed" and run.trace.count("a") == 3
    skipped = BpmnRun.start(prog, {"n": 9})
    assert skipped.status == "completed" and "a" not in skipped.trace


def test_standard_loop_without_test_before_runs_once_at_least() -> None:
    prog = program(around(standard("n &lt; 2", before=False)))
    run = BpmnRun.start(prog, {"n": 9})
    assert len(run.ready()) == 1
    run.complete("a", {})
    assert run.status == "completed" and run.trace.count("a") == 1
    loop = BpmnRun.start(prog, {"n": 0})
    run_count = 0
    while loop.status == "running":
        run_count += 1
        loop.complete("a", {"n": run_count})
    assert run_count == 2 and loop.data["n"] == 2


IO_TASK = (
    '<bpmn:manualTask id="a"><bpmn:ioSpecification>'
    '<bpmn:dataInput id="in_1"/><bpmn:dataOutput id="out_1"/>'
    "</bpmn:ioSpecification></bpmn:manualTask>"
)


def test_io_specification_narrows_the_task_data() -> None:
    prog = program(around(IO_TASK))
    run = BpmnRun.start(prog, {"in_1": 1, "other": 2})
    assert run.ready()[0].data == {"in_1": 1}
    run.complete("a", {"out_1": 5, "extra": 6})
    assert run.status == "completed" and run.data == {"out_1": 5}
    no_input = BpmnRun.start(prog, {"other": 2})
    assert (no_input.status, no_input.error_at) == ("error", "a")
    assert "in_1" in (no_input.error or "")
    no_output = BpmnRun.start(prog, {"in_1": 1})
    no_output.complete("a", {})
    assert (no_output.status, no_output.error_at) == ("error", "a")
    assert "out_1" in (no_output.error or "")


DATA_OBJECTS = (
    '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
    '<bpmn:userTask id="write"><bpmn:dataOutputAssociation id="w">'
    "<bpmn:targetRef>ref_v</bpmn:targetRef></bpmn:dataOutputAssociation></bpmn:userTask>"
    '<bpmn:exclusiveGateway id="gw"/>'
    '<bpmn:userTask id="read"><bpmn:dataInputAssociation id="r">'
    "<bpmn:sourceRef>ref_v</bpmn:sourceRef></bpmn:dataInputAssociation></bpmn:userTask>"
    '<bpmn:endEvent id="no"/><bpmn:endEvent id="end"/>'
    '<bpmn:dataObjectReference id="ref_v" name="V" dataObjectRef="v"/>'
    '<bpmn:dataObject id="v"/>'
    + flow("f1", "start", "write")
    + flow("f2", "write", "gw")
    + flow("f3", "gw", "read", "v")
    + flow("f4", "gw", "no", "not v")
    + flow("f5", "read", "end")
    + "</bpmn:process>"
)


def test_data_objects_leave_task_data_and_conditions_read_them() -> None:
    run = BpmnRun.start(program(DATA_OBJECTS))
    run.complete("write", {"v": [1, 2]})
    (task,) = run.ready()
    assert task.node == "read" and task.data["v"] == [1, 2]
    assert data_objects(run) == {"v": [1, 2]}
    run.complete("read", {"seen": True})
    assert run.status == "completed" and run.ended_at == ["end"]
    assert "v" not in run.data and run.data["seen"] is True


def test_writing_a_data_object_without_a_value_is_an_error() -> None:
    run = BpmnRun.start(program(DATA_OBJECTS))
    run.complete("write", {})
    assert (run.status, run.error_at) == ("error", "write")


def test_an_association_to_something_else_is_an_import_error() -> None:
    body = around(
        '<bpmn:userTask id="a"><bpmn:dataOutputAssociation id="w">'
        "<bpmn:targetRef>nowhere</bpmn:targetRef></bpmn:dataOutputAssociation></bpmn:userTask>"
    )
    with pytest.raises(BpmnImportError, match="nowhere"):
        program(body)


DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="dm" name="d"
  namespace="x">
  <decision id="grade" name="Grade">
    <decisionTable id="t" hitPolicy="FIRST">
      <input id="i1" label="Score"><inputExpression id="e1"><text>score</text>
      </inputExpression></input>
      <output id="o1" name="grade"/>
      <output id="o2" name="meta.pass"/>
      <rule id="r1"><inputEntry id="a1"><text>&gt;= 90</text></inputEntry>
        <outputEntry id="b1"><text>"A"</text></outputEntry>
        <outputEntry id="c1"><text>true</text></outputEntry></rule>
      <rule id="r2"><inputEntry id="a2"><text>[50..90)</text></inputEntry>
        <outputEntry id="b2"><text>"B"</text></outputEntry>
        <outputEntry id="c2"><text>true</text></outputEntry></rule>
      <rule id="r3"><inputEntry id="a3"><text>-</text></inputEntry>
        <outputEntry id="b3"><text>"F"</text></outputEntry>
        <outputEntry id="c3"><text>false</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""


def rule_task(ref: str, result: str | None = None) -> str:
    extra = f' camunda:resultVariable="{result}"' if result else ""
    return f'<bpmn:businessRuleTask id="a" camunda:decisionRef="{ref}"{extra}/>'


def test_business_rule_task_writes_the_decision_outputs() -> None:
    decisions = {d.id: d for d in parse_dmn(DMN)}
    prog = program(around(rule_task("grade")), decisions=decisions)
    run = BpmnRun.start(prog, {"score": 95})
    assert run.status == "completed"
    assert run.data == {"score": 95, "grade": "A", "meta": {"pass": True}}
    assert run.completed == ["a"]
    assert BpmnRun.start(prog, {"score": 50}).data["grade"] == "B"
    assert BpmnRun.start(prog, {"score": 10}).data["grade"] == "F"


def test_business_rule_task_result_variable() -> None:
    decisions = {d.id: d for d in parse_dmn(DMN)}
    prog = program(around(rule_task("grade", "res")), decisions=decisions)
    run = BpmnRun.start(prog, {"score": 60})
    assert run.data["res"] == {"grade": "B", "meta.pass": True}


def test_a_missing_decision_is_an_import_error() -> None:
    with pytest.raises(BpmnImportError, match="nope"):
        program(around(rule_task("nope")))
