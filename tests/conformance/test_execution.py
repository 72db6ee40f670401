"""The scenario files run on the standard-BPMN interpreter (ADR 0012, stage 1).

Every scenario file whose diagram compiles is run; the corpus files listed in
:data:`EXPECTED_PASS` must pass (a regression fails the suite). Keep the list honest: add a
file when it starts passing (``python -m tests.conformance.run_rows`` shows the outcomes).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conformance.run_rows import run_file, scenario_files, scenarios_by_file

EXPECTED_PASS = frozenset(
    {
        "bpmn-engine/bound-error-and-timer.bpmn",
        "bpmn-engine/boundary-non-interupting-timer.bpmn",
        "bpmn-engine/boundary-timeout.bpmn",
        "bpmn-engine/call-activity.bpmn",
        "bpmn-engine/issue-163.bpmn",
        "bpmn-engine/lanes.bpmn",
        "bpmn-engine/loop.bpmn",
        "bpmn-engine/multiple-endEvents.bpmn",
        "bpmn-engine/one-or-the-other.bpmn",
        "bpmn-engine/sub-process.bpmn",
        "bpmn-engine/task-multiple-inbound.bpmn",
        "bpmn-engine/timer-event.bpmn",
        "bpmn-engine/timers.bpmn",
        "spiff/bpmn/Test-Workflows/Action-Management.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Message-Interrupts-SP.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Message-Interrupts.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Message-Non-Interrupt-SP.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Message-Non-Interrupt.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Messages.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Nested-Subprocesses.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Parallel-Join-Long-Inclusive.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Parallel-Looping-After-Join.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Parallel-Multiple-Splits-And-Joins.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Parallel-One-Path-Ends.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Parallel-Through-Same-Task.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Parallel.camunda.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Test-Workflows.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Timer-Intermediate.bpmn20.xml",
        "spiff/bpmn/boundary.bpmn",
        "spiff/bpmn/boundary_timer_on_task.bpmn",
        "spiff/bpmn/call_activity_end_event.bpmn",
        "spiff/bpmn/call_activity_with_error.bpmn",
        "spiff/bpmn/collaboration.bpmn",
        "spiff/bpmn/conditional_event.bpmn",
        "spiff/bpmn/data_object_gateway.bpmn",
        "spiff/bpmn/event-gateway.bpmn",
        "spiff/bpmn/event-subprocess.bpmn",
        "spiff/bpmn/exclusive_gateway_no_default.bpmn",
        "spiff/bpmn/gateway_loop_input.bpmn",
        "spiff/bpmn/inclusive_gateway.bpmn",
        "spiff/bpmn/io_spec_on_task.bpmn",
        "spiff/bpmn/io_spec_parent.bpmn",
        "spiff/bpmn/multiple-start-parallel.bpmn",
        "spiff/bpmn/multiple-start.bpmn",
        "spiff/bpmn/multiple-throw.bpmn",
        "spiff/bpmn/parallel_multiinstance_cardinality.bpmn",
        "spiff/bpmn/parallel_multiinstance_loop_input.bpmn",
        "spiff/bpmn/sequential_multiinstance_cardinality.bpmn",
        "spiff/bpmn/sequential_multiinstance_loop_input.bpmn",
        "spiff/bpmn/standard_loop.bpmn",
        "spiff/bpmn/start_event_split.bpmn",
        "spiff/bpmn/timer-non-interrupt-boundary.bpmn",
        "spiff/bpmn/timer.bpmn",
        "spiff/bpmn/transaction.bpmn",
        "spiff/bpmn/uncaught_escalation.bpmn",
        "spiff/camunda/ExclusiveGatewayIfElseAndDecision.bpmn",
        "spiff/camunda/message_test.bpmn",
        "spiff/camunda/subWorkflowComplex.bpmn",
        "spiff/spiff/error_event_payload.bpmn",
        "spiff/spiff/escalation_event_payload.bpmn",
        "spiff/spiff/signal_event_payload.bpmn",
    }
)


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: str(p.relative_to(p.parents[1])))
def test_scenario_file_runs(path: Path, corpus: Path) -> None:
    outcome = run_file(path, corpus)
    assert outcome.status in {"pass", "fail", "not-yet", "unsupported"}
    crashed = [(name, m) for name, m in outcome.cases if m and m.startswith("crashed")]
    assert crashed == [], crashed
    if outcome.file in EXPECTED_PASS:
        assert outcome.status == "pass", f"{outcome.file}: {outcome.reason}"


def test_every_expected_pass_has_a_scenario_file() -> None:
    assert sorted(EXPECTED_PASS - set(scenarios_by_file())) == []
