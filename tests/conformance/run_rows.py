"""Run the conformance scenario files (``tests/conformance/scenarios/**.yaml``) on the
standard-BPMN interpreter (ADR 0012, stage 1; the harness hosts :class:`BpmnRun` directly).

One scenario file per corpus file::

    file: spiff/bpmn/exclusive_gateway_no_default.bpmn
    load_with: []                      # other corpus files (globs allowed) loaded together
    process: NoDefaultGateway          # optional if the file has one executable process
    options: {task_mode: wait, choice_convention: false, expressions: python}
    unsupported: null                  # or the reason (host code needed): not run
    cases:
      - name: ...
        data: {x: 1}
        steps: [{complete: {task: Id, data: {}}}, {message: {name: M}}, {signal: {name: S}},
                {advance: PT1H}, {advance_to_next_timer: 1}]
        expect: {status: error, error_at: Id, completed: [...], completed_contains: [...],
                 not_completed: [...], ended_at: [...], waiting: [...], data: {...},
                 counts: {Id: 2}}

:func:`run_file` answers ``pass``, ``fail`` (the first mismatch), ``not-yet`` (the diagram
does not compile: the unsupported elements) or ``unsupported`` (the file says so).
``python -m tests.conformance.run_rows [files]`` prints the outcome of each file.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from flowlane.core.duration import parse_duration
from flowlane.core.errors import FlowlaneError
from flowlane.engine.bpmn import BpmnRun, deep_merge
from flowlane.model.bpmn_compile import BpmnImportError, BpmnProgram, CompileOptions, compile_bpmn
from flowlane.model.bpmn_graph import load_bpmn_files
from flowlane.model.dmn import is_dmn_file, load_dmn_files

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
CORPUS = HERE / "corpus"
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    file: str
    """The corpus file the scenario is about."""
    status: str
    """``pass``, ``fail``, ``not-yet`` or ``unsupported``."""
    reason: str
    scenario: str = ""
    cases: tuple[tuple[str, str | None], ...] = field(default=())
    """(case name, mismatch or None)."""


def scenario_files(root: Path = SCENARIOS) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_scenario(path: Path) -> dict[str, Any]:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(spec, dict) or "file" not in spec:
        raise ValueError(f"{path}: not a scenario file (no 'file')")
    return spec


def scenarios_by_file(root: Path = SCENARIOS) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in scenario_files(root):
        try:
            found[str(load_scenario(p)["file"])] = p
        except (ValueError, yaml.YAMLError):
            continue
    return found


def _paths(corpus: Path, spec: dict[str, Any]) -> list[Path]:
    paths = [corpus / spec["file"]]
    for extra in spec.get("load_with") or []:
        matched = sorted(corpus.glob(extra)) if any(c in extra for c in "*?[") else [corpus / extra]
        paths.extend(p for p in matched if p not in paths)
    return paths


def compile_scenario(spec: dict[str, Any], corpus: Path = CORPUS) -> BpmnProgram:
    opts = dict(spec.get("options") or {})
    options = CompileOptions(
        task_mode=str(opts.get("task_mode", "wait")),
        choice_convention=bool(opts.get("choice_convention", False)),
        parallel_join=str(opts.get("parallel_join", "strict")),
        expressions=str(opts.get("expressions", "python")),
    )
    paths = _paths(corpus, spec)
    bpmn = load_bpmn_files([p for p in paths if not is_dmn_file(p)])
    decisions = load_dmn_files([p for p in paths if is_dmn_file(p)])
    return compile_bpmn(bpmn, spec.get("process"), options, decisions)


def _activities(program: BpmnProgram) -> set[str]:
    """Tasks of every kind (sub-processes and call activities count only when listed)."""
    return {
        n.id
        for d in program.definitions.values()
        for n in d.nodes.values()
        if n.is_activity and n.kind not in ("subProcess", "callActivity")
    }


def _ids(program: BpmnProgram, refs: list[Any]) -> list[str]:
    """Expected references as node ids (a name stands for the node of that name)."""
    ids = {i for d in program.definitions.values() for i in d.nodes}
    names = {n.name: n.id for d in program.definitions.values() for n in d.nodes.values()}
    out: list[str] = []
    for r in refs:
        if isinstance(r, dict) and "name" in r:
            out.append(names.get(r["name"], str(r["name"])))
        elif str(r) in ids or str(r) not in names:
            out.append(str(r))
        else:
            out.append(names[str(r)])
    return out


def _current_data(run: BpmnRun) -> dict[str, Any]:
    if run.status == "completed":
        return run.data
    merged: dict[str, Any] = {}
    for t in run.tokens():
        deep_merge(merged, t["data"])
    return merged


def _step(run: BpmnRun, step: dict[str, Any]) -> str | None:
    if not isinstance(step, dict) or len(step) != 1:
        return f"bad step {step!r}"
    ((kind, arg),) = step.items()
    if kind == "complete":
        task = arg["task"]
        ref = task["name"] if isinstance(task, dict) else str(task)
        try:
            run.complete(ref, arg.get("data") or {}, replace=bool(arg.get("replace", False)))
        except FlowlaneError as exc:
            return f"complete {ref!r}: {exc} (ready: {[t.node for t in run.ready()]})"
    elif kind == "message":
        run.message(str(arg["name"]), arg.get("data") or {})
    elif kind == "signal":
        name = arg["name"] if isinstance(arg, dict) else arg
        run.signal(str(name), (arg.get("data") if isinstance(arg, dict) else None) or {})
    elif kind == "advance":
        run.advance(parse_duration(str(arg)))
    elif kind == "advance_to_next_timer":
        for _ in range(int(arg or 1)):
            run.advance_to_next_timer()
    else:
        return f"unknown step {kind!r}"
    return None


def _status(run: BpmnRun) -> str:
    return "waiting" if run.status == "running" else run.status


def _subset(want: Any, got: Any) -> bool:
    if isinstance(want, dict) and isinstance(got, dict):
        return all(k in got and _subset(v, got[k]) for k, v in want.items())
    return bool(want == got)


def _check_outcome(run: BpmnRun, expect: dict[str, Any]) -> str | None:
    if "status" in expect and _status(run) != expect["status"]:
        extra = f" ({run.error_at}: {run.error})" if run.status == "error" else ""
        ready = [t.node for t in run.ready()]
        return f"status {_status(run)}{extra}, expected {expect['status']} (ready: {ready})"
    if "error_at" in expect and run.error_at != expect["error_at"]:
        return f"error at {run.error_at!r} ({run.error}), expected {expect['error_at']!r}"
    return None


def _check_trace(program: BpmnProgram, run: BpmnRun, expect: dict[str, Any]) -> str | None:
    trace = run.trace
    if "completed" in expect:
        want = _ids(program, list(expect["completed"]))
        keep = set(want) | _activities(program)
        got = [x for x in trace if x in keep]
        if got != want:
            return f"completed {got}, expected {want}"
    for x in _ids(program, list(expect.get("completed_contains") or [])):
        if x not in trace:
            return f"{x} did not complete (trace: {trace})"
    for x in _ids(program, list(expect.get("not_completed") or [])):
        if x in trace:
            return f"{x} completed but should not have"
    for node, count in (expect.get("counts") or {}).items():
        (nid,) = _ids(program, [node])
        if trace.count(nid) != int(count):
            return f"{nid} completed {trace.count(nid)}x, expected {count}x"
    if "ended_at" in expect:
        want_ends = Counter(_ids(program, list(expect["ended_at"] or [])))
        # end events of the process run, and of called processes only when listed
        keep = set(want_ends) | set(program.entry.nodes)
        ended = [x for x in run.ended_at if x in keep]
        if Counter(ended) != want_ends:
            return f"ended at {ended}, expected {sorted(want_ends.elements())}"
    return None


def _check_waiting(program: BpmnProgram, run: BpmnRun, expect: dict[str, Any]) -> str | None:
    if "waiting" not in expect:
        return None
    want = Counter(_ids(program, list(expect["waiting"] or [])))
    ready = [t.node for t in run.ready()]
    events = [t for t in run.tokens() if t["wait"] in ("timer", "message", "signal")]
    catches = [t["node"] for t in events]
    plain = [t["node"] for t in events if "owner" not in t]
    if want not in (Counter(ready), Counter(ready + plain), Counter(ready + catches)):
        return f"waiting {ready + plain}, expected {sorted(want.elements())}"
    return None


def check(program: BpmnProgram, run: BpmnRun, expect: dict[str, Any]) -> str | None:
    """The first mismatch between the run and ``expect``, or None."""
    problem = (
        _check_outcome(run, expect)
        or _check_trace(program, run, expect)
        or _check_waiting(program, run, expect)
    )
    if problem is None and "data" in expect:
        got_data = _current_data(run)
        if not _subset(expect["data"], got_data):
            problem = f"data {got_data}, expected (subset) {expect['data']}"
    return problem


def run_case(program: BpmnProgram, case: dict[str, Any], start: datetime = START) -> str | None:
    now = case.get("now")
    moment = datetime.fromisoformat(str(now)) if now else start
    run = BpmnRun.start(program, dict(case.get("data") or {}), moment)
    for index, step in enumerate(case.get("steps") or []):
        if run.status != "running":
            return f"step {index + 1} {step!r}: the instance is already {run.status}" + (
                f" ({run.error_at}: {run.error})" if run.status == "error" else ""
            )
        problem = _step(run, step)
        if problem:
            return f"step {index + 1}: {problem}"
    return check(program, run, dict(case.get("expect") or {}))


def run_file(path: Path, corpus: Path = CORPUS) -> Outcome:
    spec = load_scenario(path)
    file = str(spec["file"])
    rel = path.relative_to(SCENARIOS) if path.is_relative_to(SCENARIOS) else path
    if spec.get("unsupported"):
        return Outcome(file, "unsupported", str(spec["unsupported"]), str(rel))
    try:
        program = compile_scenario(spec, corpus)
    except BpmnImportError as exc:
        listed = "; ".join(str(p) for p in exc.problems)
        return Outcome(file, "not-yet", f"not yet supported: {listed}", str(rel))
    except FlowlaneError as exc:
        return Outcome(file, "fail", f"does not compile: {exc}", str(rel))
    results: list[tuple[str, str | None]] = []
    for i, case in enumerate(spec.get("cases") or []):
        name = str(case.get("name") or f"case {i + 1}")
        try:
            results.append((name, run_case(program, case)))
        except Exception as exc:  # a harness or engine crash is a failure of this case
            results.append((name, f"crashed: {type(exc).__name__}: {exc}"))
    if not results:
        return Outcome(file, "fail", "no cases", str(rel))
    failed = [(n, m) for n, m in results if m is not None]
    if failed:
        n, m = failed[0]
        return Outcome(
            file,
            "fail",
            f"{len(failed)}/{len(results)} cases fail; '{n}': {m}",
            str(rel),
            tuple(results),
        )
    return Outcome(file, "pass", f"{len(results)} cases pass", str(rel), tuple(results))


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or scenario_files()
    for p in paths:
        o = run_file(p)
        print(f"{o.status:12} {o.file}: {o.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
