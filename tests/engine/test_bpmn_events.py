"""Events and exceptions of the standard-BPMN interpreter (ADR 0012, stages 2 and 4) on small
inline diagrams: errors, escalations, signals, messages, event starts, event sub-processes,
event-based gateways, conditional events, timer cycles, transactions and collaborations."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

from flowlane.engine.bpmn import BpmnRun
from flowlane.model.bpmn_compile import BpmnProgram, CompileOptions, compile_bpmn
from flowlane.model.bpmn_events import parse_cycle
from flowlane.model.bpmn_graph import check_set, parse_bpmn

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
    ' xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"'
    ' xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d">'
)


def program(*bodies: str, process: str = "p") -> BpmnProgram:
    graphs = [
        parse_bpmn(f"{HEAD}{body}</bpmn:definitions>", source=f"f{i}.bpmn")
        for i, body in enumerate(bodies)
    ]
    bpmn = check_set(graphs)
    assert bpmn.problems == ()
    return compile_bpmn(bpmn, process, CompileOptions())


def flow(fid: str, source: str, target: str, condition: str | None = None) -> str:
    if condition is None:
        return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}"/>'
    return (
        f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}">'
        f"<bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>"
    )


def chain(prefix: str, *nodes: str) -> str:
    pairs = enumerate(itertools.pairwise(nodes))
    return "".join(flow(f"{prefix}{i}", a, b) for i, (a, b) in pairs)


ERRORS = (
    '<bpmn:error id="err1" errorCode="E1"><bpmn:extensionElements>'
    "<spiffworkflow:payloadExpression>reason</spiffworkflow:payloadExpression>"
    "<spiffworkflow:variableName>why</spiffworkflow:variableName>"
    "</bpmn:extensionElements></bpmn:error>"
    '<bpmn:error id="err2" errorCode="E2"/>'
    '<bpmn:escalation id="x1" escalationCode="X1"/>'
    '<bpmn:signal id="sig" name="go"/>'
    '<bpmn:message id="m1" name="ping"/><bpmn:message id="m2" name="pong"/>'
)


def sub_throwing(end: str) -> str:
    """Process p: start → sub (start → work → gateway: bad → ``end``, else → ok) → done."""
    return (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:subProcess id="sub"><bpmn:startEvent id="s0"/><bpmn:userTask id="work"/>'
        '<bpmn:exclusiveGateway id="gw" default="fok"/><bpmn:endEvent id="ok"/>'
        f"{end}"
        + chain("sf", "s0", "work", "gw")
        + flow("fok", "gw", "ok")
        + flow("fbad", "gw", "throw", "bad")
        + "</bpmn:subProcess>"
        '<bpmn:endEvent id="done"/>' + chain("pf", "start", "sub", "done")
    )


def test_error_end_is_caught_by_the_boundary_with_its_code_and_payload() -> None:
    body = (
        sub_throwing(
            '<bpmn:endEvent id="throw"><bpmn:errorEventDefinition errorRef="err1"/></bpmn:endEvent>'
        )
        + '<bpmn:boundaryEvent id="any" attachedToRef="sub"><bpmn:errorEventDefinition/>'
        "</bpmn:boundaryEvent>"
        '<bpmn:boundaryEvent id="catch" attachedToRef="sub">'
        '<bpmn:errorEventDefinition errorRef="err1"/></bpmn:boundaryEvent>'
        '<bpmn:endEvent id="caught"/><bpmn:endEvent id="other"/>'
        + flow("c1", "catch", "caught")
        + flow("c2", "any", "other")
        + "</bpmn:process>"
        + ERRORS
    )
    run = BpmnRun.start(program(body), {"n": 1})
    run.complete("work", {"bad": True, "reason": "broken"})
    assert run.status == "completed"
    assert "catch" in run.trace and "any" not in run.trace
    assert run.ended_at == ["caught"]  # the error end itself is no normal end
    assert run.data == {"n": 1, "why": "broken"}  # the sub-process data is not merged back
    ok = BpmnRun.start(program(body), {})
    ok.complete("work", {"bad": False})
    assert ok.ended_at == ["ok", "done"]


def test_error_without_code_goes_to_the_catch_all_and_uncaught_errors_fail() -> None:
    end = '<bpmn:endEvent id="throw"><bpmn:errorEventDefinition errorRef="err2"/></bpmn:endEvent>'
    caught = (
        sub_throwing(end) + '<bpmn:boundaryEvent id="only1" attachedToRef="sub">'
        '<bpmn:errorEventDefinition errorRef="err1"/></bpmn:boundaryEvent>'
        '<bpmn:boundaryEvent id="any" attachedToRef="sub"><bpmn:errorEventDefinition/>'
        '</bpmn:boundaryEvent><bpmn:endEvent id="other"/>'
        + flow("c1", "any", "other")
        + "</bpmn:process>"
        + ERRORS
    )
    run = BpmnRun.start(program(caught), {})
    run.complete("work", {"bad": True})
    assert run.status == "completed" and "any" in run.trace and "only1" not in run.trace
    uncaught = sub_throwing(end) + "</bpmn:process>" + ERRORS
    failed = BpmnRun.start(program(uncaught), {})
    failed.complete("work", {"bad": True})
    assert (failed.status, failed.error_at) == ("error", "throw")


def test_an_uncaught_escalation_is_reported_and_the_run_goes_on() -> None:
    end = (
        '<bpmn:endEvent id="throw"><bpmn:escalationEventDefinition escalationRef="x1"/>'
        "</bpmn:endEvent>"
    )
    run = BpmnRun.start(program(sub_throwing(end) + "</bpmn:process>" + ERRORS), {})
    run.complete("work", {"bad": True})
    assert run.status == "completed"
    assert run.state["escalations"] == [{"code": "X1", "at": "throw"}]
    assert run.ended_at == ["done"]


def test_non_interrupting_escalation_boundary_lets_the_sub_process_finish() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:subProcess id="sub"><bpmn:startEvent id="s0"/>'
        '<bpmn:intermediateThrowEvent id="esc"><bpmn:escalationEventDefinition escalationRef="x1"/>'
        '</bpmn:intermediateThrowEvent><bpmn:userTask id="work"/><bpmn:endEvent id="s9"/>'
        + chain("sf", "s0", "esc", "work", "s9")
        + "</bpmn:subProcess>"
        '<bpmn:boundaryEvent id="b" attachedToRef="sub" cancelActivity="false">'
        '<bpmn:escalationEventDefinition escalationRef="x1"/></bpmn:boundaryEvent>'
        '<bpmn:userTask id="handle"/><bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>'
        + chain("pf", "start", "sub", "e1")
        + chain("bf", "b", "handle", "e2")
        + "</bpmn:process>"
        + ERRORS
    )
    run = BpmnRun.start(program(body), {})
    assert sorted(t.node for t in run.ready()) == ["handle", "work"]
    run.complete("handle")
    run.complete("work")
    assert run.status == "completed"
    assert sorted(run.ended_at) == ["e1", "e2", "s9"]


def test_an_error_crosses_a_call_activity_to_its_boundary() -> None:
    caller = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:callActivity id="call" calledElement="child"/><bpmn:endEvent id="end"/>'
        '<bpmn:boundaryEvent id="b" attachedToRef="call">'
        '<bpmn:errorEventDefinition errorRef="err1"/></bpmn:boundaryEvent>'
        '<bpmn:endEvent id="failed"/>'
        + chain("pf", "start", "call", "end")
        + flow("bf", "b", "failed")
        + "</bpmn:process>"
        + ERRORS
    )
    child = (
        '<bpmn:process id="child"><bpmn:startEvent id="c0"/><bpmn:userTask id="inner"/>'
        '<bpmn:endEvent id="boom"><bpmn:errorEventDefinition errorRef="err1"/></bpmn:endEvent>'
        + chain("cf", "c0", "inner", "boom")
        + "</bpmn:process>"
        + ERRORS
    )
    run = BpmnRun.start(program(caller, child), {})
    run.complete("inner", {"reason": "no"})
    assert run.status == "completed"
    assert run.ended_at == ["failed"]
    assert run.data["why"] == "no"


def test_interrupting_error_event_sub_process_replaces_the_scope() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:parallelGateway id="fork"/><bpmn:userTask id="slow"/>'
        '<bpmn:endEvent id="boom"><bpmn:errorEventDefinition errorRef="err1"/></bpmn:endEvent>'
        '<bpmn:userTask id="fast"/><bpmn:endEvent id="e1"/>'
        + chain("a", "start", "fork", "fast", "boom")
        + chain("b", "fork", "slow", "e1")
        + '<bpmn:subProcess id="esp" triggeredByEvent="true">'
        '<bpmn:startEvent id="es"><bpmn:errorEventDefinition errorRef="err1"/></bpmn:startEvent>'
        '<bpmn:userTask id="recover"/><bpmn:endEvent id="ee"/>'
        + chain("c", "es", "recover", "ee")
        + "</bpmn:subProcess></bpmn:process>"
        + ERRORS
    )
    run = BpmnRun.start(program(body), {})
    assert sorted(t.node for t in run.ready()) == ["fast", "slow"]
    run.complete("fast", {"reason": "r"})
    assert [t.node for t in run.ready()] == ["recover"]  # 'slow' was cancelled
    assert run.ready()[0].data["why"] == "r"
    run.complete("recover")
    assert run.status == "completed"
    assert "slow" not in run.completed and "esp" in run.trace


def test_non_interrupting_message_event_sub_process_runs_beside_the_scope() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:userTask id="main"/><bpmn:endEvent id="end"/>'
        + chain("a", "start", "main", "end")
        + '<bpmn:subProcess id="esp" triggeredByEvent="true">'
        '<bpmn:startEvent id="es" isInterrupting="false">'
        '<bpmn:messageEventDefinition messageRef="m1"/></bpmn:startEvent>'
        '<bpmn:userTask id="side"/><bpmn:endEvent id="ee"/>'
        + chain("c", "es", "side", "ee")
        + "</bpmn:subProcess></bpmn:process>"
        + ERRORS
    )
    run = BpmnRun.start(program(body), {})
    assert run.message("ping", {"k": 1})
    assert run.message("ping", {"k": 2})  # still armed: a second instance
    assert sorted(t.node for t in run.ready()) == ["main", "side", "side"]
    run.complete("main")
    assert run.status == "running"  # the event sub-processes are part of the scope
    run.complete("side")
    run.complete("side")
    assert run.status == "completed"
    assert run.state["tokens"] == {}  # nothing listens any more


def test_timer_event_sub_process_and_signal_throw_in_the_same_run() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:userTask id="main"/><bpmn:endEvent id="end"/>'
        + chain("a", "start", "main", "end")
        + '<bpmn:subProcess id="esp" triggeredByEvent="true">'
        '<bpmn:startEvent id="es"><bpmn:timerEventDefinition><bpmn:timeDuration>"PT1H"'
        "</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:startEvent>"
        '<bpmn:intermediateThrowEvent id="shout"><bpmn:signalEventDefinition signalRef="sig"/>'
        '</bpmn:intermediateThrowEvent><bpmn:endEvent id="ee"/>'
        + chain("c", "es", "shout", "ee")
        + "</bpmn:subProcess></bpmn:process>"
        + ERRORS
    )
    run = BpmnRun.start(program(body), {})
    run.advance(timedelta(minutes=59))
    assert [t.node for t in run.ready()] == ["main"]
    run.advance(timedelta(minutes=1))
    assert run.status == "completed"  # interrupting: 'main' was cancelled
    assert run.ended_at == ["ee"] and "shout" in run.trace


def test_a_thrown_signal_reaches_a_catch_and_a_boundary_with_its_payload() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:parallelGateway id="fork"/>'
        '<bpmn:intermediateCatchEvent id="wait"><bpmn:signalEventDefinition signalRef="sig"/>'
        '</bpmn:intermediateCatchEvent><bpmn:userTask id="long"/>'
        '<bpmn:boundaryEvent id="stop" attachedToRef="long">'
        '<bpmn:signalEventDefinition signalRef="sig"/></bpmn:boundaryEvent>'
        '<bpmn:userTask id="first"/>'
        '<bpmn:intermediateThrowEvent id="shout"><bpmn:signalEventDefinition signalRef="go2"/>'
        "</bpmn:intermediateThrowEvent>"
        '<bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/><bpmn:endEvent id="e3"/>'
        '<bpmn:endEvent id="e4"/>'
        + chain("a", "start", "fork", "wait", "e1")
        + chain("b", "fork", "long", "e2")
        + chain("c", "fork", "first", "shout", "e3")
        + flow("g", "stop", "e4")
        + "</bpmn:process>"
        '<bpmn:signal id="sig" name="go"/>'
        '<bpmn:signal id="go2" name="go"><bpmn:extensionElements>'
        "<spiffworkflow:payloadExpression>{'v': v}</spiffworkflow:payloadExpression>"
        "<spiffworkflow:variableName>got</spiffworkflow:variableName>"
        "</bpmn:extensionElements></bpmn:signal>"
    )
    run = BpmnRun.start(program(body), {})
    run.complete("first", {"v": 7})
    assert run.status == "completed"
    assert sorted(run.ended_at) == ["e1", "e3", "e4"]
    assert "long" not in run.completed
    assert run.data["got"] == {"v": 7}


def test_message_starts_single_multiple_and_parallel() -> None:
    def starts(defs: str, parallel: bool = False) -> BpmnProgram:
        pm = ' parallelMultiple="true"' if parallel else ""
        return program(
            '<bpmn:process id="p" isExecutable="true">'
            f'<bpmn:startEvent id="s"{pm}>{defs}</bpmn:startEvent>'
            '<bpmn:startEvent id="s2"><bpmn:signalEventDefinition signalRef="sig"/>'
            '</bpmn:startEvent><bpmn:userTask id="t"/><bpmn:endEvent id="end"/>'
            + flow("f1", "s", "t")
            + flow("f2", "s2", "t")
            + flow("f3", "t", "end")
            + "</bpmn:process>"
            + ERRORS
        )

    both = '<bpmn:messageEventDefinition messageRef="m1"/>'
    both += '<bpmn:messageEventDefinition messageRef="m2"/>'
    any_of = BpmnRun.start(starts(both), {})
    assert any_of.status == "running" and any_of.ready() == []
    assert any_of.message("pong", {"a": 1})
    assert [t.node for t in any_of.ready()] == ["t"]
    assert any_of.signal("go") == 0  # the other start was withdrawn
    any_of.complete("t")
    assert any_of.status == "completed" and any_of.trace.count("s2") == 0

    all_of = BpmnRun.start(starts(both, parallel=True), {})
    all_of.message("ping", {"a": 1})
    assert all_of.ready() == []
    all_of.message("pong", {"b": 2})
    assert [(t.node, t.data) for t in all_of.ready()] == [("t", {"a": 1, "b": 2})]

    by_signal = BpmnRun.start(starts(both), {})
    assert by_signal.signal("go") == 1
    assert [t.node for t in by_signal.ready()] == ["t"]
    assert not by_signal.message("ping")


def test_event_based_gateway_takes_the_first_event() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:eventBasedGateway id="gw"/>'
        '<bpmn:intermediateCatchEvent id="msg"><bpmn:messageEventDefinition messageRef="m1"/>'
        "</bpmn:intermediateCatchEvent>"
        '<bpmn:intermediateCatchEvent id="late"><bpmn:timerEventDefinition>'
        '<bpmn:timeDuration>"PT1M"</bpmn:timeDuration></bpmn:timerEventDefinition>'
        '</bpmn:intermediateCatchEvent><bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>'
        + chain("a", "start", "gw", "msg", "e1")
        + chain("b", "gw", "late", "e2")
        + "</bpmn:process>"
        + ERRORS
    )
    run = BpmnRun.start(program(body), {})
    assert sorted(run.waiting()) == ["late", "msg"]
    run.message("ping")
    assert run.status == "completed" and run.ended_at == ["e1"]
    assert run.next_timer() is None
    timed = BpmnRun.start(program(body), {})
    timed.advance(timedelta(minutes=1))
    assert timed.ended_at == ["e2"] and "msg" not in timed.trace


def test_conditional_catch_and_boundary_fire_when_the_data_allows() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:parallelGateway id="fork"/><bpmn:userTask id="a"/><bpmn:userTask id="b"/>'
        '<bpmn:intermediateCatchEvent id="when"><bpmn:conditionalEventDefinition>'
        "<bpmn:condition>ready == True</bpmn:condition></bpmn:conditionalEventDefinition>"
        "</bpmn:intermediateCatchEvent>"
        '<bpmn:boundaryEvent id="cut" attachedToRef="b"><bpmn:conditionalEventDefinition>'
        "<bpmn:condition>stop == True</bpmn:condition></bpmn:conditionalEventDefinition>"
        "</bpmn:boundaryEvent>"
        '<bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/><bpmn:endEvent id="e3"/>'
        + chain("x", "start", "fork", "a", "when", "e1")
        + chain("y", "fork", "b", "e2")
        + flow("z", "cut", "e3")
        + "</bpmn:process>"
    )
    run = BpmnRun.start(program(body), {"ready": False, "stop": False})
    run.complete("a", {"ready": True})
    assert "when" in run.trace and run.ended_at == ["e1"]
    assert [t.node for t in run.ready()] == ["b"]
    interrupted = BpmnRun.start(program(body), {"ready": False, "stop": True})
    assert interrupted.ended_at == ["e3"] and [t.node for t in interrupted.ready()] == ["a"]


def test_timer_cycle_boundary_fires_its_repetitions() -> None:
    assert parse_cycle("R3/PT10H") == (3, 36000.0)
    assert parse_cycle("R/PT1M") == (None, 60.0)
    assert parse_cycle("every hour") is None
    body = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:userTask id="work"/><bpmn:endEvent id="end"/>'
        '<bpmn:boundaryEvent id="tick" attachedToRef="work" cancelActivity="false">'
        "<bpmn:timerEventDefinition><bpmn:timeCycle>R2/PT1M</bpmn:timeCycle>"
        '</bpmn:timerEventDefinition></bpmn:boundaryEvent><bpmn:endEvent id="t9"/>'
        + chain("a", "start", "work", "end")
        + flow("b", "tick", "t9")
        + "</bpmn:process>"
    )
    run = BpmnRun.start(program(body), {})
    run.advance(timedelta(seconds=59))
    assert run.trace.count("tick") == 0
    run.advance(timedelta(minutes=10))
    assert run.trace.count("tick") == 2 and run.next_timer() is None
    assert [t.node for t in run.ready()] == ["work"]


def test_transaction_cancel_end_leaves_by_the_cancel_boundary() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:transaction id="tx"><bpmn:startEvent id="t0"/><bpmn:userTask id="pay"/>'
        '<bpmn:exclusiveGateway id="gw" default="tok"/><bpmn:endEvent id="t9"/>'
        '<bpmn:endEvent id="abort"><bpmn:cancelEventDefinition/></bpmn:endEvent>'
        + chain("tf", "t0", "pay", "gw")
        + flow("tok", "gw", "t9")
        + flow("tno", "gw", "abort", "cancel")
        + "</bpmn:transaction>"
        '<bpmn:boundaryEvent id="cancelled" attachedToRef="tx"><bpmn:cancelEventDefinition/>'
        '</bpmn:boundaryEvent><bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>'
        + chain("pf", "start", "tx", "e1")
        + flow("cf", "cancelled", "e2")
        + "</bpmn:process>"
    )
    run = BpmnRun.start(program(body), {})
    run.complete("pay", {"cancel": True})
    assert run.status == "completed" and run.ended_at == ["e2"]
    assert "tx" not in run.completed
    ok = BpmnRun.start(program(body), {})
    ok.complete("pay", {"cancel": False})
    assert ok.ended_at == ["t9", "e1"] and "tx" in ok.completed


def test_a_script_failure_is_caught_by_an_error_boundary_on_the_script() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:scriptTask id="calc"><bpmn:script>a, b = y</bpmn:script></bpmn:scriptTask>'
        '<bpmn:boundaryEvent id="oops" attachedToRef="calc"><bpmn:errorEventDefinition/>'
        '</bpmn:boundaryEvent><bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>'
        + chain("a", "start", "calc", "e1")
        + flow("b", "oops", "e2")
        + "</bpmn:process>"
    )
    run = BpmnRun.start(program(body), {})
    assert run.status == "completed" and run.ended_at == ["e2"]
    fine = BpmnRun.start(program(body), {"y": [1, 2]})
    assert fine.ended_at == ["e1"]


COLLAB = (
    '<bpmn:collaboration id="c"><bpmn:participant id="pa" processRef="asker"/>'
    '<bpmn:participant id="pb" processRef="answerer"/></bpmn:collaboration>'
    '<bpmn:process id="asker" isExecutable="true"><bpmn:startEvent id="a0"/>'
    '<bpmn:userTask id="ask"/>'
    '<bpmn:intermediateThrowEvent id="send"><bpmn:messageEventDefinition messageRef="m1"'
    ' camunda:expression="question"/></bpmn:intermediateThrowEvent>'
    '<bpmn:intermediateCatchEvent id="reply"><bpmn:messageEventDefinition messageRef="m2"/>'
    '</bpmn:intermediateCatchEvent><bpmn:endEvent id="a9"/>'
    + chain("af", "a0", "ask", "send", "reply", "a9")
    + "</bpmn:process>"
    '<bpmn:process id="answerer" isExecutable="true">'
    '<bpmn:startEvent id="b0"><bpmn:messageEventDefinition messageRef="m1"/></bpmn:startEvent>'
    '<bpmn:userTask id="answer"/>'
    '<bpmn:endEvent id="b9"><bpmn:messageEventDefinition messageRef="m2"'
    ' camunda:expression="text" camunda:resultVariable="answer_text"/></bpmn:endEvent>'
    + chain("bf", "b0", "answer", "b9")
    + "</bpmn:process>"
    + ERRORS
)


def test_a_collaboration_runs_its_participants_and_passes_messages_by_name() -> None:
    run = BpmnRun.start(program(COLLAB, process="c"), {})
    assert [t.node for t in run.ready()] == ["ask"]
    run.complete("ask", {"question": "why?"})
    assert [t.node for t in run.ready()] == ["answer"]
    run.complete("answer", {"text": "because"})
    assert run.status == "completed"
    assert sorted(run.ended_at) == ["a9", "b9"]
    assert run.data["answer_text"] == "because"
    json.loads(json.dumps(run.state))  # the whole state stays JSON


def test_a_second_message_starts_a_new_participant_instance() -> None:
    run = BpmnRun.start(program(COLLAB, process="c"), {})
    run.complete("ask", {"question": "one"})
    assert run.message("ping")  # answered by a fresh instance of 'answerer'
    assert [t.node for t in run.ready()] == ["answer", "answer"]
    state = json.loads(json.dumps(run.state))
    resumed = BpmnRun(program(COLLAB, process="c"), state)
    resumed.complete("answer", {"text": "a"})
    resumed.complete("answer", {"text": "b"})
    assert resumed.status == "completed"
    assert resumed.state.get("outbox") == [
        {"message": "pong", "from": "b9", "payload": {"answer_text": "b"}}
    ]


def test_non_interrupting_escalation_event_sub_process_catches_an_intermediate_throw() -> None:
    body = (
        '<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:intermediateThrowEvent id="esc"><bpmn:escalationEventDefinition escalationRef="x1"/>'
        '</bpmn:intermediateThrowEvent><bpmn:userTask id="main"/><bpmn:endEvent id="end"/>'
        + chain("a", "start", "esc", "main", "end")
        + '<bpmn:subProcess id="esp" triggeredByEvent="true">'
        '<bpmn:startEvent id="es" isInterrupting="false">'
        '<bpmn:escalationEventDefinition escalationRef="x1"/></bpmn:startEvent>'
        '<bpmn:userTask id="notify"/><bpmn:endEvent id="ee"/>'
        + chain("c", "es", "notify", "ee")
        + "</bpmn:subProcess></bpmn:process>"
        + ERRORS
    )
    run = BpmnRun.start(program(body), {})
    assert sorted(t.node for t in run.ready()) == ["main", "notify"]
    assert "escalations" not in run.state  # it was caught
    run.complete("notify")
    run.complete("main")
    assert run.status == "completed" and sorted(run.ended_at) == ["ee", "end"]
