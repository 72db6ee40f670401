"""The ``expect: statistics`` key of scenario files (docs/formats-extensions.md), through the
simulator: straight, round-tripped and on SQLite (the ``run_scenario`` fixture)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tests.support import RunScenario, assert_ok, scenario

from flowlane.model.scenario import ScenarioFile

ASK = """
key: take
name: take the order
object: order
task: {assign: object_manager, executors: [user:boris], supervisors: [user:maria]}
blocks:
  start: {type: start, next: q}
  q: {type: question, title: "Take {{ object.number }}?", options: {yes: done}}
  done: {type: end, outcome: positive}
"""

PREP = """
  - create: {type: user, id: maria, data: {name: Maria, email: maria@shop.example,
                                            role: manager}}
  - create: {type: user, id: ivan, data: {name: Ivan, email: ivan@shop.example,
                                           role: manager}}
  - create: {type: order, id: o2, data: {number: A-2, status: new, manager: boris}}
  - start: {process: take, object: o1, by: olga}
  - advance: 1d
  - start: {process: take, object: o2, by: olga}
"""


def test_statistics_and_a_supervisors_reassignment(run_scenario: RunScenario) -> None:
    steps = (
        PREP
        + """
  - expect:
      statistics:
        process: take
        by: maria
        rows:
          - {assignee: boris, status: open, day: 2026-03-02, count: 1}
          - {assignee: boris, status: open, day: "2026-03-03", count: 1}
        total: 2
  - reassign: {process: take, from: boris, to: maria, by: ivan}
  - expect:
      refused: "ivan (manager) may not reassign tasks of take"
      statistics: {process: take, assignee: boris, total: 2}
  - reassign: {process: take, from: boris, to: ivan, by: maria}
  - expect:
      statistics:
        process: take
        created_to: "2026-03-03T00:00:00"
        rows: [{assignee: ivan, status: open, day: 2026-03-02, count: 1}]
  - answer: {block: q, object: o1, option: "yes", by: ivan}
  - reassign: {process: take, to: null, by: maria}
  - expect:
      statistics:
        process: take
        rows:
          - {assignee: ivan, status: answered, day: 2026-03-02, count: 1}
          - {status: open, day: 2026-03-03, count: 1}
  - expect:
      statistics: {process: take, assignee: null, object: o2, open: true, total: 1}
  - expect:
      statistics: {process: take, status: answered, object: o2, rows: [], total: 0}
"""
    )
    assert_ok(run_scenario({"take": ASK}, scenario(steps)))


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        (
            "{process: take, total: 3}",
            "step 7: expect statistics: of take: total: expected 3, found 2",
        ),
        (
            "{process: take, rows: [{assignee: boris, status: open, day: 2026-03-02, count: 2}]}",
            "expect statistics: of take: rows: expected [{assignee: boris, status: open, "
            "day: 2026-03-02, count: 2}], found [{assignee: boris, status: open, "
            "day: 2026-03-02, count: 1}, {assignee: boris, status: open, day: 2026-03-03, "
            "count: 1}]",
        ),
        (
            "{process: take, by: ivan, total: 2}",
            "of take: refused: ivan may not see the task statistics of process 'take'",
        ),
        ("{process: nothing, total: 0}", "of nothing: refused: process 'nothing' is not"),
    ],
)
def test_statistics_that_do_not_hold(run_scenario: RunScenario, expect: str, message: str) -> None:
    result = run_scenario({"take": ASK}, scenario(PREP + f"  - expect: {{statistics: {expect}}}\n"))
    assert not result.ok
    assert message in (result.message or "")


def test_statistics_keys_are_checked() -> None:
    base = {"name": "t", "clock": "2026-03-02T10:00:00+03:00"}
    bad_rows = [
        {"process": "take", "rows": [{"status": "open", "day": "2026-03-02", "count": 0}]},
        {"process": "take", "rows": [{"status": "open", "day": "yesterday", "count": 1}]},
        {"process": "take", "created_from": "noon"},
        {"process": "take", "total": -1},
        {"process": "take", "from": "boris"},
    ]
    for statistics in bad_rows:
        with pytest.raises(ValidationError):
            ScenarioFile.model_validate({**base, "steps": [{"expect": {"statistics": statistics}}]})
