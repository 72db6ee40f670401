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
        "bpmn-engine/call-activity.bpmn",
        "bpmn-engine/issue-163.bpmn",
        "spiff/bpmn/Test-Workflows/Message-Interrupts-SP.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Message-Non-Interrupt-SP.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Nested-Subprocesses.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Parallel-Join-Long-Inclusive.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Parallel-Looping-After-Join.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Parallel-Multiple-Splits-And-Joins.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Parallel-One-Path-Ends.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Parallel.camunda.bpmn20.xml",
        "spiff/bpmn/Test-Workflows/Timer-Intermediate.bpmn20.xml",
        "spiff/bpmn/boundary.bpmn",
        "spiff/bpmn/boundary_timer_on_task.bpmn",
        "spiff/bpmn/call_activity_end_event.bpmn",
        "spiff/bpmn/call_activity_with_error.bpmn",
        "spiff/bpmn/exclusive_gateway_no_default.bpmn",
        "spiff/bpmn/inclusive_gateway.bpmn",
        "spiff/bpmn/io_spec_parent.bpmn",
        "spiff/bpmn/timer-non-interrupt-boundary.bpmn",
        "spiff/bpmn/timer.bpmn",
        "spiff/camunda/subWorkflowComplex.bpmn",
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
