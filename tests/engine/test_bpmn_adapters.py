"""bpmn-engine front ends and conventions on the standard-BPMN interpreter (ADR 0012):
JavaScript conditions and scripts, ``${...}`` placeholders, ``task_mode: pass``, implicit
starts, called processes that cannot run, the inclusive join's activation rule."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from flowlane.engine.bpmn import BpmnRun
from flowlane.model.bpmn_compile import (
    BpmnImportError,
    BpmnProgram,
    CompileOptions,
    compile_bpmn,
    expression_family,
    script_family,
)
from flowlane.model.bpmn_graph import check_set, parse_bpmn

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">'
)
ENGINE = {"task_mode": "pass", "expressions": "javascript"}


def program(*bodies: str, process: str = "p", **options: object) -> BpmnProgram:
    graphs = [
        parse_bpmn(f"{HEAD}{body}</bpmn:definitions>", source=f"f{i}.bpmn")
        for i, body in enumerate(bodies)
    ]
    bpmn = check_set(graphs)
    assert bpmn.problems == ()
    return compile_bpmn(bpmn, process, CompileOptions(**options))  # type: ignore[arg-type]


def flow(fid: str, source: str, target: str, condition: str | None = None, lang: str = "") -> str:
    if condition is None:
        return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}"/>'
    language = f' language="{lang}"' if lang else ""
    return (
        f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}">'
        f"<bpmn:conditionExpression{language}>{condition}</bpmn:conditionExpression>"
        "</bpmn:sequenceFlow>"
    )


def script(sid: str, text: str, fmt: str = "JavaScript") -> str:
    return (
        f'<bpmn:scriptTask id="{sid}" scriptFormat="{fmt}">'
        f"<bpmn:script><![CDATA[{text}]]></bpmn:script></bpmn:scriptTask>"
    )


def timer(kind: str, text: str) -> str:
    return (
        f"<bpmn:timerEventDefinition><bpmn:{kind}>{text}</bpmn:{kind}></bpmn:timerEventDefinition>"
    )


LOOP = (
    '<bpmn:process id="p" isExecutable="true">'
    '<bpmn:startEvent id="start"/>'
    + script("next", "next();")
    + '<bpmn:exclusiveGateway id="gw" default="out"/>'
    + script("iterate", "variables.input += 1;\nnext();")
    + '<bpmn:endEvent id="end"/>'
    + flow("f1", "start", "next")
    + flow("f2", "next", "gw")
    + flow("again", "gw", "iterate", "this.variables.input &lt; 2", "JavaScript")
    + flow("f4", "iterate", "next")
    + flow("out", "gw", "end")
    + "</bpmn:process>"
)


def test_javascript_conditions_and_scripts_loop() -> None:
    run = BpmnRun.start(program(LOOP, **ENGINE), {"input": 0})
    assert run.status == "completed"
    assert run.trace.count("next") == 3
    assert run.trace.count("iterate") == 2
    assert run.data == {"input": 2}
    assert run.ended_at == ["end"]


def test_the_javascript_state_stays_json() -> None:
    run = BpmnRun.start(program(LOOP, **ENGINE), {"input": 0})
    state = run.state
    assert json.loads(json.dumps(state)) == state


def test_a_callback_condition_without_language_attribute_in_a_javascript_import() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true">'
        '<bpmn:exclusiveGateway id="gw" default="no"/>'
        '<bpmn:endEvent id="yes_end"/><bpmn:endEvent id="no_end"/>'
        + flow("yes", "gw", "yes_end", "next(null, !environment.variables.stop);", "javascript")
        + flow("no", "gw", "no_end")
        + "</bpmn:process>"
    )
    prog = program(body, **ENGINE)
    assert BpmnRun.start(prog, {}).ended_at == ["yes_end"]
    assert BpmnRun.start(prog, {"stop": True}).ended_at == ["no_end"]


def test_placeholder_conditions_and_timers() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true">'
        '<bpmn:startEvent id="start"/>'
        '<bpmn:intermediateCatchEvent id="wait">'
        + timer("timeDuration", "${environment.variables.delay}")
        + "</bpmn:intermediateCatchEvent>"
        '<bpmn:intermediateCatchEvent id="fixed">'
        + timer("timeDuration", "PT1M")
        + "</bpmn:intermediateCatchEvent>"
        '<bpmn:exclusiveGateway id="gw" default="other"/>'
        '<bpmn:endEvent id="flag_end"/><bpmn:endEvent id="other_end"/>'
        + flow("f1", "start", "wait")
        + flow("f2", "wait", "fixed")
        + flow("f3", "fixed", "gw")
        + flow("flag", "gw", "flag_end", "${environment.variables.flag}")
        + flow("other", "gw", "other_end")
        + "</bpmn:process>"
    )
    prog = program(body, task_mode="pass", expressions="placeholder")
    run = BpmnRun.start(prog, {"delay": "PT10S", "flag": True})
    run.advance(timedelta(seconds=9))
    assert run.status == "running" and "wait" not in run.trace
    run.advance(timedelta(seconds=1))
    assert "wait" in run.trace and "fixed" not in run.trace
    run.advance(timedelta(minutes=1))
    assert run.status == "completed"
    assert run.ended_at == ["flag_end"]


def test_a_script_that_never_calls_next_waits_with_its_boundaries_armed() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true">'
        + script("check", "this.variables.seen = true;\nif (variables.input !== 2) next();")
        + '<bpmn:boundaryEvent id="late" attachedToRef="check">'
        + timer("timeDuration", "PT5S")
        + "</bpmn:boundaryEvent>"
        '<bpmn:endEvent id="end"/>'
        '<bpmn:endEvent id="timed_out"><bpmn:terminateEventDefinition/></bpmn:endEvent>'
        + flow("f1", "check", "end")
        + flow("f2", "late", "timed_out")
        + "</bpmn:process>"
    )
    prog = program(body, **ENGINE)
    quick = BpmnRun.start(prog, {"input": 1})
    assert quick.status == "completed" and quick.ended_at == ["end"]
    stuck = BpmnRun.start(prog, {"input": 2})
    assert stuck.status == "running"
    assert stuck.ready() == [] and "check" not in stuck.trace
    stuck.advance(timedelta(seconds=5))
    assert stuck.status == "completed"
    assert stuck.ended_at == ["timed_out"]
    assert "check" not in stuck.completed


def test_an_uncaught_script_error_stops_the_run_at_the_task() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true">'
        + script("check", 'if (!variables.input) next(new Error("Input is missing")); next();')
        + "</bpmn:process>"
    )
    run = BpmnRun.start(program(body, **ENGINE), {})
    assert run.status == "error"
    assert run.error_at == "check"
    assert "Input is missing" in (run.error or "")


def test_javascript_outside_the_subset_is_an_import_error_by_id() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true">'
        + script("bad", "var x = require('fs'); next();")
        + script("groovy", "x = 1", "groovy")
        + '<bpmn:exclusiveGateway id="gw"/>'
        '<bpmn:endEvent id="end"/>'
        + flow("f1", "bad", "gw")
        + flow("cond", "gw", "end", "console.log(1)", "JavaScript")
        + "</bpmn:process>"
    )
    with pytest.raises(BpmnImportError) as caught:
        program(body, **ENGINE)
    problems = {p.element: p.reason for p in caught.value.problems}
    assert "declarations" in problems["bad"]
    assert "groovy" in problems["groovy"]
    assert "not a variable" in problems["cond"]


def test_expression_languages() -> None:
    assert expression_family("JavaScript", "python") == "javascript"
    assert expression_family(None, "javascript") == "placeholder"
    assert expression_family(None, "placeholder") == "placeholder"
    assert expression_family("", None) == "python"
    assert expression_family("python", "javascript") == "python"
    assert expression_family("groovy", "python") is None
    assert script_family(None, "javascript") == "javascript"
    assert script_family("", "python") == "python"
    assert script_family("text/javascript", "python") == "javascript"
    assert script_family("groovy", "javascript") is None


def test_task_mode_pass_and_implicit_starts() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true">'
        '<bpmn:task id="a"/>'
        '<bpmn:serviceTask id="svc"/>'
        '<bpmn:subProcess id="sub">'
        '<bpmn:task id="inner"/><bpmn:userTask id="ask"/>'
        "</bpmn:subProcess>" + flow("f1", "a", "sub") + "</bpmn:process>"
    )
    prog = program(body, task_mode="pass")
    run = BpmnRun.start(prog)
    # every node without an incoming flow starts; bpmn:task and serviceTask complete
    assert {"a", "svc", "inner"} <= set(run.completed)
    assert [t.node for t in run.ready()] == ["ask"]
    run.complete("ask")
    assert run.status == "completed"
    assert run.completed[-1] == "sub"
    waiting = BpmnRun.start(program(body, task_mode="wait"))
    assert sorted(t.node for t in waiting.ready()) == ["a"]


CALLER = (
    '<bpmn:process id="p" isExecutable="true">'
    '<bpmn:userTask id="pick"/>'
    '<bpmn:exclusiveGateway id="gw" default="skip"/>'
    '<bpmn:callActivity id="call" calledElement="broken"/>'
    '<bpmn:endEvent id="end"/>'
    + flow("f1", "pick", "gw")
    + flow("go", "gw", "call", "go == True")
    + flow("skip", "gw", "end")
    + flow("f2", "call", "end")
    + "</bpmn:process>"
)
BROKEN = (
    '<bpmn:process id="broken" isExecutable="true">'
    + script("s", "record.log(sa_session)", "python")
    + "</bpmn:process>"
)


def test_a_called_process_that_cannot_run_fails_only_when_called() -> None:
    prog = program(CALLER, BROKEN)
    assert "broken" not in prog.definitions
    (problem,) = prog.unavailable["broken"]
    assert problem.element == "s"
    run = BpmnRun.start(prog)
    run.complete("pick", {"go": False})
    assert run.status == "completed"
    run = BpmnRun.start(prog)
    run.complete("pick", {"go": True})
    assert run.status == "error"
    assert run.error_at == "call"
    assert "broken" in (run.error or "") and "s (scriptTask)" in (run.error or "")


def test_the_started_process_must_still_compile() -> None:
    with pytest.raises(BpmnImportError) as caught:
        program(CALLER, BROKEN, process="broken")
    assert [p.element for p in caught.value.problems] == ["s"]


def test_inclusive_join_fires_when_pending_tokens_also_reach_a_filled_flow() -> None:
    # split → 'repeat' and 'choice'; choice Yes → 'yes' → 'repeat'; No → 'no';
    # 'repeat' and 'no' → inclusive join → 'done' (BPMN 13.3.2)
    body = (
        '<bpmn:process id="p" isExecutable="true">'
        '<bpmn:startEvent id="start"/>'
        '<bpmn:parallelGateway id="split"/>'
        '<bpmn:userTask id="repeat"/><bpmn:userTask id="choice"/>'
        '<bpmn:exclusiveGateway id="gw"/>'
        '<bpmn:userTask id="yes"/><bpmn:userTask id="no"/>'
        '<bpmn:inclusiveGateway id="join"/>'
        '<bpmn:userTask id="done"/><bpmn:endEvent id="end"/>'
        + flow("f1", "start", "split")
        + flow("f2", "split", "repeat")
        + flow("f3", "split", "choice")
        + flow("f4", "choice", "gw")
        + flow("y", "gw", "yes", "choice == 'Yes'")
        + flow("n", "gw", "no", "choice == 'No'")
        + flow("f5", "yes", "repeat")
        + flow("r", "repeat", "join")
        + flow("nj", "no", "join")
        + flow("f6", "join", "done")
        + flow("f7", "done", "end")
        + "</bpmn:process>"
    )
    prog = program(body)
    run = BpmnRun.start(prog)
    run.complete("repeat")
    assert sorted(t.node for t in run.ready()) == ["choice", "done"]
    blocked = BpmnRun.start(prog)
    blocked.complete("choice", {"choice": "No"})
    blocked.complete("repeat")
    assert sorted(t.node for t in blocked.ready()) == ["no"]
    blocked.complete("no")
    assert [t.node for t in blocked.ready()] == ["done"]
