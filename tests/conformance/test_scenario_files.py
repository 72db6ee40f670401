"""The scenario files of the executable conformance rows (issue 10), checked without running them.

``tests/conformance/scenarios/<source>/<path, / as __, no .bpmn>.yaml`` transcribes one executable
Spiff or bpmn-engine row of the corpus's ``MANIFEST.md`` (support files have none). Meaning of
the keys the runner relies on:

* ``steps`` run in order; a ``complete`` on a multi-instance task completes its first ready
  instance; a task is named by id, or ``{name: ...}``.
* ``expect.completed`` — every activity that completed, in order, called processes included
  (events only where listed); ``completed_contains`` / ``not_completed`` / ``counts`` — any flow
  node id (events included), at any depth (embedded sub-processes and called processes).
* ``expect.ended_at`` — the exact multiset of end events reached in the top-level scope of the
  started process (or of each process a collaboration starts).
* ``expect.waiting`` — the multiset of activities ready for the harness (an id once per ready
  instance); waiting catch events are not listed.
* ``expect.data`` — a subset of the final data.
* ``process`` may name a collaboration: its executable participants start as one instance.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from tools.conformance import SUPPORT, UNSUPPORTED, manifest_rows

from flowlane.model.bpmn_graph import BpmnGraph, load_bpmn

from .conftest import CORPUS

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
DURATION = re.compile(
    r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Options(_Strict):
    task_mode: Literal["wait", "pass"]
    choice_convention: bool
    expressions: Literal["python", "javascript", "placeholder", "feel"]
    parallel_join: Literal["strict", "reachable"] = "strict"


TaskRef = str | dict[Literal["name"], str]


class Complete(_Strict):
    task: TaskRef
    data: dict[str, Any]
    replace: bool = False


class Message(_Strict):
    name: str
    data: dict[str, Any] = {}


class Signal(_Strict):
    name: str


class Step(_Strict):
    complete: Complete | None = None
    message: Message | None = None
    signal: Signal | None = None
    advance: str | None = None
    advance_to_next_timer: int | None = None

    @model_validator(mode="after")
    def one_action(self) -> Step:
        set_ = [k for k, v in self.__dict__.items() if v is not None]
        if len(set_) != 1:
            raise ValueError(f"a step has exactly one action, got {set_}")
        if self.advance is not None and not DURATION.match(self.advance):
            raise ValueError(f"advance is an ISO-8601 duration: {self.advance!r}")
        if self.advance_to_next_timer is not None and self.advance_to_next_timer < 1:
            raise ValueError("advance_to_next_timer counts at least one timer")
        return self


class Expect(_Strict):
    status: Literal["completed", "waiting", "error", "cancelled"] | None = None
    error_at: str | None = None
    completed: list[str] | None = None
    completed_contains: list[str] | None = None
    not_completed: list[str] | None = None
    ended_at: list[str] | None = None
    waiting: list[str] | None = None
    data: dict[str, Any] | None = None
    counts: dict[str, int] | None = None

    @model_validator(mode="after")
    def error_needs_status(self) -> Expect:
        if self.error_at is not None and self.status != "error":
            raise ValueError("error_at goes with status: error")
        return self


class Case(_Strict):
    name: str
    data: dict[str, Any]
    steps: list[Step]
    expect: Expect


class Scenario(_Strict):
    file: str
    load_with: list[str]
    process: str | None = None
    options: Options
    unsupported: str | None
    host_names: list[str]
    notes: str
    cases: list[Case]

    @field_validator("unsupported")
    @classmethod
    def reason_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("unsupported needs a reason")
        return v

    @model_validator(mode="after")
    def cases_unless_unsupported(self) -> Scenario:
        if not self.cases and self.unsupported is None:
            raise ValueError("a supported row has cases")
        if len({c.name for c in self.cases}) != len(self.cases):
            raise ValueError("case names are unique")
        return self


def executable_rows() -> list[str]:
    """Spiff and bpmn-engine rows of the manifest, less the support files (no expectation)."""
    rows = manifest_rows(CORPUS)
    return [r.file for r in rows if r.section != "miwg" and r.file not in SUPPORT]


def scenario_path(file: str) -> Path:
    """``spiff/bpmn/Test-Workflows/Messages.bpmn20.xml`` →
    ``scenarios/spiff/bpmn__Test-Workflows__Messages.yaml``."""
    source, _, rest = file.partition("/")
    rest = re.sub(r"\.(bpmn20\.xml|bpmn)$", "", rest)
    return SCENARIOS / source / f"{rest.replace('/', '__')}.yaml"


def scenario_files() -> list[Path]:
    return sorted(SCENARIOS.glob("*/*.yaml"))


@cache
def graph(file: str) -> BpmnGraph:
    return load_bpmn(CORPUS / file)


def load(path: Path) -> Scenario:
    return Scenario.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def test_one_scenario_file_per_executable_row() -> None:
    rows = executable_rows()
    assert len(rows) == len(set(rows))
    want = {scenario_path(r) for r in rows}
    have = set(scenario_files())
    assert sorted(map(str, want - have)) == [], "rows without a scenario file"
    assert sorted(map(str, have - want)) == [], "scenario files without a row"


def test_unsupported_rows_are_the_tools_list() -> None:
    marked = {s.file for s in map(load, scenario_files()) if s.unsupported is not None}
    assert marked == set(UNSUPPORTED)


def _ids(graphs: list[BpmnGraph]) -> tuple[set[str], set[str], set[str]]:
    nodes = {n.id for g in graphs for _, n in g.walk_nodes()}
    names = {n.name for g in graphs for _, n in g.walk_nodes() if n.name}
    starts = {p.id for g in graphs for p in g.definitions.processes} | {
        c.id for g in graphs for c in g.definitions.collaborations
    }
    return nodes, names, starts


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scenario_file(path: Path) -> None:
    s = load(path)
    assert path == scenario_path(s.file), "file name follows the corpus path"
    assert (CORPUS / s.file).is_file()
    assert s.file not in s.load_with
    for other in s.load_with:
        assert (CORPUS / other).is_file(), other
    assert s.options.task_mode == ("wait" if s.file.startswith("spiff/") else "pass")
    assert s.options.choice_convention == s.file.startswith("spiff/bpmn/Test-Workflows/")
    # Spiff fires a parallel join once its empty flows cannot be reached (MANIFEST ⚠)
    assert s.options.parallel_join == ("reachable" if s.file.startswith("spiff/") else "strict")
    graphs = [graph(f) for f in [s.file, *s.load_with] if not f.endswith(".dmn")]
    nodes, names, starts = _ids(graphs)
    if s.process is None:
        own = [p for p in graph(s.file).definitions.processes if p.is_executable is not False]
        assert len(own) == 1, "process omitted only when the file has one executable process"
    else:
        assert s.process in starts, s.process

    def check(ref: TaskRef, where: str) -> None:
        if isinstance(ref, dict):
            assert ref["name"] in names, f"{where}: no element named {ref['name']!r}"
        else:
            assert ref in nodes, f"{where}: no element {ref!r}"

    for case in s.cases:
        for i, step in enumerate(case.steps):
            if step.complete is not None:
                check(step.complete.task, f"{case.name} step {i}")
        e = case.expect
        for key in ("completed", "completed_contains", "not_completed", "ended_at", "waiting"):
            for ref in getattr(e, key) or []:
                check(ref, f"{case.name} expect.{key}")
        for ref in e.counts or {}:
            check(ref, f"{case.name} expect.counts")
        if e.error_at is not None:
            check(e.error_at, f"{case.name} expect.error_at")
