"""``make conformance``: the BPMN conformance table ``docs/CONFORMANCE.md`` (issue 10).

Reads the corpus's ``MANIFEST.md`` (``$FLOWLANE_CONFORMANCE``, else ``tests/conformance/corpus``
next to the repository) and judges every file it lists:

* MIWG models (parse-only): pass when the file parses, its element counts equal the
  manifest's "Elements:" list, every reference resolves (C.9.0 / C.9.1 / C.9.2 loaded
  together), ids are unique and the round trip ``parse(to_xml(parse(x))) == parse(x)`` holds.
* SpiffWorkflow and bpmn-engine diagrams (executable): every file is parsed with
  :mod:`flowlane.model.bpmn_graph` (and its references checked with the files it is deployed
  with), then its scenario file (``tests/conformance/scenarios/``, run by
  ``tests/conformance/run_rows.py`` on the standard-BPMN interpreter of ADR 0012) decides:
  "pass" when every case passes; "fail" with the first mismatch, or with the elements the
  compiler does not support yet; "unsupported" when the scenario file says the expected
  outcome needs arbitrary host code (Python introspection or libraries). A row without a
  scenario file yet is "fail". Support files (called processes, the DMN table) have no
  expectation of their own and are listed as "support".

``python tools/conformance.py`` writes the table; ``--check`` exits 1 when the file differs
(``tests/conformance/test_table.py`` runs the same comparison).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ``python tools/conformance.py``: the harness lives in tests/
    sys.path.insert(0, str(ROOT))

from tests.conformance.run_rows import run_file, scenarios_by_file  # noqa: E402

from flowlane.core.errors import ValidationError  # noqa: E402
from flowlane.model.bpmn_graph import (  # noqa: E402
    BpmnGraph,
    FlowNode,
    check_set,
    element_counts,
    load_bpmn,
    parse_bpmn,
    parse_xml_tree,
    to_xml,
)

TABLE = ROOT / "docs" / "CONFORMANCE.md"

ROW = re.compile(
    r"^\| `(?P<file>[^`]+)` \| (?P<source>.*?) \| (?P<elements>.*?) \| (?P<expect>.*) \|$"
)

GROUPS = (
    "miwg/C.9.*.bpmn",
    "spiff/bpmn/call_activity_*.bpmn",
    "spiff/bpmn/io_spec*.bpmn",
    "spiff/bpmn/Test-Workflows/*.bpmn20.xml",
    "bpmn-engine/*signal*.bpmn",
)
"""Files deployed together (the manifest's convention 6 and its cross-file rows)."""

SUPPORT = {
    "spiff/bpmn/call_activity_call_activity.bpmn": "called by call_activity_end_event/_with_error",
    "spiff/bpmn/io_spec.bpmn": "called by io_spec_parent",
    "spiff/bpmn/Test-Workflows/Scripts.bpmn20.xml": "called by the Test-Workflows driver only",
    "spiff/bpmn/Test-Workflows/Nested-Sub-level1.bpmn20.xml": "called by Nested-Subprocesses",
    "spiff/bpmn/Test-Workflows/Nested-Sub-level2.bpmn20.xml": "called by Nested-Sub-level1",
    "spiff/bpmn/Test-Workflows/CallActivity-Escalation-Test-Sub.bpmn20.xml": (
        "called by CallActivity-Escalation-Test"
    ),
    "spiff/camunda/dmn/test_integer_decision.dmn": (
        "decision table of ExclusiveGatewayIfElseAndDecision"
    ),
    "bpmn-engine/send-signal.bpmn": "second definition of the signals.bpmn scenario",
}
"""Rows without an expectation of their own: exercised through the row named."""

UNSUPPORTED = {
    "spiff/bpmn/Test-Workflows/CallActivity-Escalation-Test.bpmn20.xml": (
        "the called process tests `'should_escalate' in vars() or ... in globals()` "
        "(Python introspection)"
    ),
    "spiff/bpmn/timer-date-start.bpmn": (
        "its script computes the date with Python's datetime API "
        "(`(datetime.now() + timedelta(seconds=0.05)).isoformat()`)"
    ),
    "spiff/bpmn/timer-cycle.bpmn": (
        "the outcome is counted by a host-injected Python function "
        "(`print('...%d' % custom_function())`)"
    ),
    "spiff/bpmn/timer-cycle-start.bpmn": (
        "the outcome is counted by a host-injected Python function (`custom_function()`)"
    ),
    "bpmn-engine/signals.bpmn": (
        "the expected output (`spotPrice: 110`) is the result of a host JavaScript service: "
        "serviceTask 'Get spot price' calls `${environment.services.getSpotPrice}`, a "
        "function of the upstream test reading the price the admin stored"
    ),
}
"""Executable rows whose expected outcome needs arbitrary host code (counted as not passing)."""


@dataclass(frozen=True)
class Row:
    section: str
    file: str
    elements: str


@dataclass(frozen=True)
class Result:
    row: Row
    status: str
    """pass, fail, unsupported or support."""
    reason: str
    parses: bool


def corpus_dir() -> Path:
    return Path(os.environ.get("FLOWLANE_CONFORMANCE", ROOT / "tests" / "conformance" / "corpus"))


def manifest_rows(corpus: Path) -> list[Row]:
    rows: list[Row] = []
    for line in (corpus / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m is None or "/" not in m["file"] or m["file"].endswith("/"):
            continue
        rows.append(Row(m["file"].split("/")[0], m["file"], m["elements"]))
    return rows


def manifest_counts(elements: str) -> Counter[str]:
    """The "Elements:" list of a MIWG row: ``endEvent(none)×1, task×3`` → counts."""
    _, found, listed = elements.partition("Elements: ")
    counts: Counter[str] = Counter()
    if not found:
        return counts
    for part in re.split(r",\s+(?=[A-Za-z-]+(?:\([^)]*\))?×)", listed.strip()):
        kind, _, number = part.rpartition("×")
        counts[kind.strip()] = int(number)
    return counts


def _group_of(corpus: Path, file: str) -> list[Path]:
    for pattern in GROUPS:
        if Path(file).match(pattern) and Path(file).parent == Path(pattern).parent:
            return sorted(corpus.glob(pattern))
    return [corpus / file]


def _rel(corpus: Path, text: str) -> str:
    return text.replace(f"{corpus}/", "")


def _miwg(corpus: Path, row: Row, vocabulary: set[str]) -> Result:
    path = corpus / row.file
    try:
        graph = load_bpmn(path)
    except ValidationError as exc:
        return Result(row, "fail", f"does not parse: {_rel(corpus, str(exc))}", False)
    want = +manifest_counts(row.elements)
    got = Counter({k: v for k, v in element_counts(graph).items() if k in vocabulary and v})
    if got != want:
        diff = ", ".join(
            f"{k} {got.get(k, 0)} (manifest {want.get(k, 0)})"
            for k in sorted(set(got) | set(want))
            if got.get(k, 0) != want.get(k, 0)
        )
        return Result(row, "fail", f"element counts differ: {diff}", True)
    group = [load_bpmn(p) if p != path else graph for p in _group_of(corpus, row.file)]
    problems = [p for p in check_set(group).problems if p.file == str(path)]
    if problems:
        return Result(row, "fail", _rel(corpus, str(problems[0])), True)
    if parse_bpmn(to_xml(graph), source=str(path)) != graph:
        return Result(row, "fail", "round trip changes the model", True)
    total = sum(want.values())
    together = (
        " (loaded with " + ", ".join(p.name for p in _group_of(corpus, row.file) if p != path) + ")"
        if len(group) > 1
        else ""
    )
    return Result(
        row, "pass", f"{total} elements counted, references resolve{together}, round trip", True
    )


NODE_FEATURES = {
    "transaction": "transactions with cancel",
    "subProcess": "embedded sub-processes",
    "adHocSubProcess": "ad-hoc sub-processes",
    "inclusiveGateway": "inclusive gateways",
    "eventBasedGateway": "event-based gateways",
    "complexGateway": "complex gateways",
    "businessRuleTask": "DMN decision tables",
    "sendTask": "message send / receive tasks",
    "receiveTask": "message send / receive tasks",
    "callActivity": "call activities with BPMN data semantics",
}
"""Element kinds beyond the native blocks of DESIGN.md §4 (or with other semantics)."""
EVENT_FEATURES = ("message", "signal", "error", "escalation", "compensate", "link")


def _node_features(n: FlowNode) -> Iterable[str]:
    kinds = [e.kind for e in n.event_definitions]
    if n.kind == "boundaryEvent":
        how = "" if n.cancel_activity else "non-interrupting "
        yield f"{how}{'/'.join(kinds) or 'none'} boundary events"
    if n.is_event_subprocess:
        yield "event sub-processes"
    elif n.kind in NODE_FEATURES:
        yield NODE_FEATURES[n.kind]
    if len(kinds) > 1:
        yield "multiple / parallel-multiple events"
    start = "start " if n.kind == "startEvent" else ""
    for e in n.event_definitions:
        if e.kind in EVENT_FEATURES:
            yield f"{e.kind} events"
        for t in e.timers:
            if t.kind != "duration" or start:
                yield f"timer {t.kind} {start}events"
    if n.loop is not None:
        yield "standard loops" if n.loop.kind == "standard" else "multi-instance"
    if n.io is not None:
        yield "ioSpecification data mapping"


def _features(graphs: Iterable[BpmnGraph]) -> list[str]:
    """What the diagrams use beyond the native blocks of DESIGN.md §4, in order of appearance."""
    found: dict[str, None] = {}
    for g in graphs:
        d = g.definitions
        if any(sum(1 for pt in c.participants if pt.process_ref) > 1 for c in d.collaborations):
            found["several processes in one instance (collaboration)"] = None
        for _, n in g.walk_nodes():
            found.update(dict.fromkeys(_node_features(n)))
        if any(s.data for p in d.processes for s in p.body.walk_scopes()):
            found["data objects"] = None
    return list(found)


def _executable(corpus: Path, row: Row, scenarios: dict[str, Path]) -> Result:
    path = corpus / row.file
    try:
        if path.suffix == ".dmn":
            parse_xml_tree(path.read_bytes(), source=str(path))
            graphs: list[BpmnGraph] = []
        else:
            graphs = [load_bpmn(p) for p in _group_of(corpus, row.file)]
    except ValidationError as exc:
        return Result(row, "fail", f"does not parse: {_rel(corpus, str(exc))}", False)
    problems = [p for p in check_set(graphs).problems if p.file == str(path)]
    parsed = "parses" + (f", but {_rel(corpus, str(problems[0]))}" if problems else "")
    if row.file in SUPPORT:
        return Result(row, "support", f"{parsed}; {SUPPORT[row.file]}", True)
    scenario = scenarios.get(row.file)
    if scenario is not None:
        outcome = run_file(scenario, corpus)
        status = {"pass": "pass", "unsupported": "unsupported"}.get(outcome.status, "fail")
        return Result(row, status, f"{parsed}; {_rel(corpus, outcome.reason)}", True)
    if row.file in UNSUPPORTED:
        return Result(row, "unsupported", f"{parsed}; {UNSUPPORTED[row.file]}", True)
    mine = [g for g in graphs if g.source == str(path)]
    needs = _features(mine)
    language = "JavaScript / `${...}`" if row.section == "bpmn-engine" else "Python"
    extra = f"; also {', '.join(needs)}" if needs else ""
    return Result(
        row,
        "fail",
        f"{parsed}; no scenario file yet ({language} expressions{extra})",
        True,
    )


def evaluate(corpus: Path) -> list[Result]:
    rows = manifest_rows(corpus)
    vocabulary = {k for r in rows for k in manifest_counts(r.elements)}
    results: list[Result] = []
    scenarios = scenarios_by_file()
    for row in rows:
        if row.section == "miwg" and row.file.endswith(".xsd"):
            ok = (corpus / row.file).is_file()
            results.append(
                Result(row, "support", "XML Schema imported by C.1.1 (not BPMN); present", ok)
            )
        elif row.section == "miwg":
            results.append(_miwg(corpus, row, vocabulary))
        else:
            results.append(_executable(corpus, row, scenarios))
    return results


def render(results: list[Result]) -> str:
    miwg = [r for r in results if r.row.section == "miwg" and r.status != "support"]
    execs = [r for r in results if r.row.section != "miwg" and r.status != "support"]
    others = [r for r in results if r.row.section != "miwg"]
    parsed = sum(1 for r in others if r.parses)

    def count(rs: list[Result], status: str) -> int:
        return sum(1 for r in rs if r.status == status)

    lines = [
        "# BPMN conformance",
        "",
        "Generated by `make conformance` (`tools/conformance.py`) from the corpus's",
        "`MANIFEST.md`; `tests/conformance/test_table.py` fails when this file is out of date.",
        "Statuses: **pass**; **fail** — what is missing; **unsupported** — the expected outcome",
        "needs arbitrary host code (counted as not passing); **support** — a file with no",
        "expectation of its own, exercised through the row named (not counted).",
        "",
        f"**Summary:** MIWG {count(miwg, 'pass')}/{len(miwg)} pass (parse, element counts, "
        f"references, ids, round trip); executable rows {count(execs, 'pass')}/{len(execs)} pass "
        f"({count(execs, 'fail')} fail, {count(execs, 'unsupported')} unsupported; support files "
        "not counted) — executable rows run their scenario files on the standard-BPMN "
        "interpreter (ADR 0012, stage 1); "
        f"Spiff / bpmn-engine files that parse: {parsed}/{len(others)}.",
        "",
    ]
    titles = {
        "miwg": "MIWG reference models (parse-only)",
        "spiff": "SpiffWorkflow diagrams (executable, Python expressions)",
        "bpmn-engine": "bpmn-engine diagrams (executable, JavaScript expressions)",
    }
    for section, title in titles.items():
        lines += [f"## {title}", "", "| File | Status | Reason |", "|---|---|---|"]
        for r in results:
            if r.row.section == section:
                reason = r.reason.replace("|", "\\|").replace("\n", " ")
                lines.append(f"| `{r.row.file}` | {r.status} | {reason} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the table is stale")
    parser.add_argument("--corpus", type=Path, default=None)
    args = parser.parse_args(argv)
    corpus = args.corpus or corpus_dir()
    if not (corpus / "MANIFEST.md").is_file():
        print(f"no conformance corpus at {corpus} (set FLOWLANE_CONFORMANCE)", file=sys.stderr)
        return 2
    text = render(evaluate(corpus))
    if args.check:
        current = TABLE.read_text(encoding="utf-8") if TABLE.is_file() else ""
        if current != text:
            print(f"{TABLE} is out of date: run make conformance", file=sys.stderr)
            return 1
        return 0
    TABLE.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
