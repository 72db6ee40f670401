"""The standard-BPMN interpreter (ADR 0012, stage 1) on small inline diagrams."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from flowlane.core.errors import ExpressionError, ValidationError
from flowlane.engine.bpmn import BpmnRun
from flowlane.expr.script import compile_script
from flowlane.model.bpmn_compile import BpmnImportError, BpmnProgram, CompileOptions, compile_bpmn
from flowlane.model.bpmn_graph import check_set, parse_bpmn

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">'
)


def program(*bodies: str, process: str = "p", **options: object) -> BpmnProgram:
    graphs = [
        parse_bpmn(f"{HEAD}{body}</bpmn:definitions>", source=f"f{i}.bpmn")
        for i, body in enumerate(bodies)
    ]
    bpmn = check_set(graphs)
    assert bpmn.problems == ()
    return compile_bpmn(bpmn, process, CompileOptions(**options))  # type: ignore[arg-type]


def flow(fid: str, source: str, target: str, condition: str | None = None) -> str:
    if condition is None:
        return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}"/>'
    return (
        f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}">'
        f"<bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>"
    )


def script(sid: str, text: str, fmt: str = "python") -> str:
    return (
        f'<bpmn:scriptTask id="{sid}" scriptFormat="{fmt}">'
        f"<bpmn:script>{text}</bpmn:script></bpmn:scriptTask>"
    )


GATEWAY = (
    '<bpmn:process id="p" isExecutable="true">'
    '<bpmn:startEvent id="start"/>'
    '<bpmn:exclusiveGateway id="gw"/>'
    '<bpmn:userTask id="big"/><bpmn:userTask id="small"/>'
    '<bpmn:endEvent id="end"/>'
    + flow("f1", "start", "gw")
    + flow("f2", "gw", "big", "x &gt; 1")
    + flow("f3", "gw", "small", "x &lt; 1")
    + flow("f4", "big", "end")
    + flow("f5", "small", "end")
    + "</bpmn:process>"
)


def test_exclusive_gateway_without_match_is_an_error_at_the_gateway() -> None:
    run = BpmnRun.start(program(GATEWAY), {"x": 1})
    assert (run.status, run.error_at) == ("error", "gw")
    assert run.ended_at == []
    ok = BpmnRun.start(program(GATEWAY), {"x": 2})
    assert [t.node for t in ok.ready()] == ["big"]
    ok.complete("big", {"y": 3})
    assert ok.status == "completed"
    assert ok.data == {"x": 2, "y": 3}
    assert ok.completed == ["big"] and ok.ended_at == ["end"]


def test_parallel_join_waits_for_two_flows_from_one_source() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true">'
        '<bpmn:startEvent id="start"/>'
        '<bpmn:parallelGateway id="split"/><bpmn:parallelGateway id="join"/>'
        '<bpmn:userTask id="after"/><bpmn:endEvent id="end"/>'
        + flow("f1", "start", "split")
        + flow("a", "split", "join")
        + flow("b", "split", "join")
        + flow("f2", "join", "after")
        + flow("f3", "after", "end")
        + "</bpmn:process>"
    )
    run = BpmnRun.start(program(body))
    assert [t.node for t in run.ready()] == ["after"]
    assert run.trace.count("join") == 1
    run.complete("after")
    assert run.status == "completed" and run.ended_at == ["end"]


LOOP_JOIN = (
    '<bpmn:process id="p" isExecutable="true">'
    '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="join"/>'
    '<bpmn:exclusiveGateway id="more" default="done"/>'
    + script("again", "n += 1")
    + '<bpmn:endEvent id="end"/>'
    + flow("f1", "start", "join")
    + flow("f2", "join", "more")
    + flow("loop", "more", "again", "n &lt; 2")
    + flow("back", "again", "join")
    + flow("done", "more", "end")
    + "</bpmn:process>"
)


def test_a_parallel_join_on_a_loop_waits_when_strict_and_fires_when_reachable() -> None:
    """BPMN's parallel join waits for every incoming flow: the loop's way back can never get a
    token first, so it waits for good. Spiff's rule (``parallel_join: reachable``) fires it once
    no other token can reach the empty flow."""
    strict = BpmnRun.start(program(LOOP_JOIN), {"n": 0})
    assert strict.status == "running" and strict.ended_at == [] and strict.ready() == []
    loose = BpmnRun.start(program(LOOP_JOIN, parallel_join="reachable"), {"n": 0})
    assert loose.status == "completed" and loose.ended_at == ["end"]
    assert loose.data["n"] == 2 and loose.trace.count("join") == 3
    with pytest.raises(ValidationError):
        CompileOptions(parallel_join="sometimes")


def test_terminate_inside_a_sub_process_ends_only_the_sub_process() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true">'
        '<bpmn:startEvent id="start"/>'
        '<bpmn:subProcess id="sub">'
        '<bpmn:startEvent id="s_start"/><bpmn:parallelGateway id="s_split"/>'
        '<bpmn:userTask id="s_wait"/>'
        '<bpmn:endEvent id="s_term"><bpmn:terminateEventDefinition/></bpmn:endEvent>'
        + flow("g1", "s_start", "s_split")
        + flow("g2", "s_split", "s_wait")
        + flow("g3", "s_split", "s_term")
        + "</bpmn:subProcess>"
        '<bpmn:userTask id="after"/><bpmn:endEvent id="end"/>'
        + flow("f1", "start", "sub")
        + flow("f2", "sub", "after")
        + flow("f3", "after", "end")
        + "</bpmn:process>"
    )
    run = BpmnRun.start(program(body))
    assert run.status == "running"
    assert [t.node for t in run.ready()] == ["after"]  # s_wait was cancelled
    assert run.ended_at == ["s_term"]
    run.complete("after")
    assert run.status == "completed" and run.ended_at == ["s_term", "end"]
    assert "s_wait" not in run.completed


CALLEE = (
    '<bpmn:process id="callee" isExecutable="true">'
    '<bpmn:startEvent id="c_start"/>'
    + script("c_script", "c = a + 1\ndel(b)")
    + '<bpmn:endEvent id="c_end"/>'
    + flow("c1", "c_start", "c_script")
    + flow("c2", "c_script", "c_end")
    + "</bpmn:process>"
)
CALLER = (
    '<bpmn:process id="p" isExecutable="true">'
    '<bpmn:startEvent id="start"/>'
    + script("set", "a, b = 1, 2")
    + '<bpmn:callActivity id="call" calledElement="callee"/>'
    '<bpmn:endEvent id="end"/>'
    + flow("f1", "start", "set")
    + flow("f2", "set", "call")
    + flow("f3", "call", "end")
    + "</bpmn:process>"
)


def test_call_activity_copies_all_variables_and_takes_the_child_s_back() -> None:
    run = BpmnRun.start(program(CALLER, CALLEE))
    assert run.status == "completed"
    assert run.data == {"a": 1, "c": 2}  # the child's deletion of b propagates
    assert run.completed == ["set", "c_script", "call"]


def test_call_activity_with_io_specification_passes_only_declared_ids() -> None:
    callee = (
        '<bpmn:process id="callee" isExecutable="true">'
        '<bpmn:ioSpecification><bpmn:dataInput id="a"/><bpmn:dataOutput id="out"/>'
        "<bpmn:inputSet/><bpmn:outputSet/></bpmn:ioSpecification>"
        '<bpmn:startEvent id="c_start"/>'
        + script("c_script", "out = a * 10\nseen_b = b")
        + '<bpmn:endEvent id="c_end"/>'
        + flow("c1", "c_start", "c_script")
        + flow("c2", "c_script", "c_end")
        + "</bpmn:process>"
    )
    run = BpmnRun.start(program(CALLER, callee))
    assert run.status == "completed"
    assert run.data == {"a": 1, "b": 2, "out": 10}
    missing = BpmnRun.start(program(CALLER.replace("a, b = 1, 2", "b = 2"), callee))
    assert (missing.status, missing.error_at) == ("error", "call")
    assert "'a'" in (missing.error or "")


def test_script_errors_stop_the_instance_at_the_script() -> None:
    run = BpmnRun.start(program(CALLER.replace("a, b = 1, 2", "a = 1"), CALLEE))
    assert (run.status, run.error_at) == ("error", "c_script")
    assert "'b' is not defined" in (run.error or "")


@pytest.mark.parametrize(
    "text",
    [
        "import os",
        "__import__('os').system('true')",
        "open('/etc/passwd')",
        "x = eval('1')",
        "for i in items: pass",
        "obj.attr = 1",
        "def f(): pass",
        "x = (lambda: 1)()",
        "x = [i for i in y]",
        "x = y.__class__",
    ],
)
def test_script_subset_refuses_anything_unsafe(text: str) -> None:
    with pytest.raises(ExpressionError):
        compile_script(text)
    body = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        + script("bad", text.replace("'", "&apos;").replace("<", "&lt;"))
        + flow("f1", "start", "bad")
        + "</bpmn:process>"
    )
    with pytest.raises(BpmnImportError) as info:
        program(body)
    assert [(p.element, p.kind) for p in info.value.problems] == [("bad", "scriptTask")]
    assert "safe subset" in str(info.value)


def test_script_subset_runs_assignments_if_and_del() -> None:
    s = compile_script(
        "x = 1\ny, z = x + 1, 'a'.upper()\nif y > 1:\n    x += 10\nelse:\n    x = 0\ndel(z)"
    )
    data: dict[str, object] = {}
    s.run(data)
    assert data == {"x": 11, "y": 2}


def test_print_is_a_no_op_whose_values_are_still_checked() -> None:
    """``print(f"...")`` prints nothing; its arguments and an f-string's values must be safe
    expressions (anything else is refused when the script is compiled)."""
    data: dict[str, object] = {"x": 2}
    compile_script('print(f"x is {x + 1:>3}", x)').run(data)
    assert data == {"x": 2}
    with pytest.raises(ExpressionError):
        compile_script("print(f\"{__import__('os')}\")")
    with pytest.raises(ExpressionError):
        compile_script("print(x.__class__)")


def test_unsupported_elements_are_all_listed_by_id() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true">'
        '<bpmn:startEvent id="start"/>'
        '<bpmn:complexGateway id="cx"/>'
        '<bpmn:businessRuleTask id="rule"/>'
        + script("js", "console.log(1); next();", fmt="JavaScript")
        + flow("f1", "start", "cx")
        + flow("f2", "cx", "rule", "a === 1")
        + "</bpmn:process>"
    ).replace("<bpmn:conditionExpression>", '<bpmn:conditionExpression language="JavaScript">')
    with pytest.raises(BpmnImportError) as info:
        program(body)
    assert {p.element for p in info.value.problems} == {"cx", "rule", "js", "f2"}


def test_state_is_json_and_resumes() -> None:
    run = BpmnRun.start(program(GATEWAY), {"x": 0})
    state = json.loads(json.dumps(run.state))
    again = BpmnRun(program(GATEWAY), state)
    again.complete("small")
    assert again.status == "completed" and again.data == {"x": 0}


def test_interrupting_timer_boundary_cancels_the_task() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true">'
        '<bpmn:startEvent id="start"/><bpmn:userTask id="work"/>'
        '<bpmn:boundaryEvent id="late" attachedToRef="work"><bpmn:timerEventDefinition>'
        '<bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition>'
        "</bpmn:boundaryEvent>"
        '<bpmn:endEvent id="end"/><bpmn:endEvent id="timeout"/>'
        + flow("f1", "start", "work")
        + flow("f2", "work", "end")
        + flow("f3", "late", "timeout")
        + "</bpmn:process>"
    )
    run = BpmnRun.start(program(body))
    run.advance(timedelta(minutes=59))
    assert [t.node for t in run.ready()] == ["work"]
    run.advance(timedelta(minutes=1))
    assert run.status == "completed" and run.ended_at == ["timeout"]
    assert "work" not in run.completed
