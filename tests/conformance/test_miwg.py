"""The OMG MIWG reference models (issue 10): every file of the manifest parses with
:mod:`flowlane.model.bpmn_graph`, its element counts equal the manifest's "Elements:" list,
every reference resolves (C.9.0 → C.9.2 → C.9.1 loaded together), ids are unique and the
round trip ``parse(to_xml(parse(x))) == parse(x)`` holds."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from tests.conformance.conftest import CORPUS

from flowlane.model.bpmn_graph import (
    BPMN_NS,
    check_graph,
    element_counts,
    load_bpmn,
    load_bpmn_files,
    parse_bpmn,
    to_xml,
)

ROW = re.compile(r"^\| `(miwg/[^`]+\.bpmn)` \| .*?Elements: (.*?) \| .* \|$")
ITEM = re.compile(r"^(?P<kind>[A-Za-z-]+(?:\([a-z,-]+\))?)×(?P<n>\d+)$")


def _manifest() -> dict[str, Counter[str]]:
    """The "Elements:" list of each MIWG row (``boundaryEvent(message,non-interrupting)×1``)."""
    path = CORPUS / "MANIFEST.md"
    if not path.is_file():
        return {}
    rows: dict[str, Counter[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m is None:
            continue
        counts: Counter[str] = Counter()
        for item in re.split(r",\s+(?=[A-Za-z-]+(?:\([^)]*\))?×)", m[2]):
            parsed = ITEM.match(item.strip())
            assert parsed is not None, f"{m[1]}: cannot read {item!r}"
            counts[parsed["kind"]] = int(parsed["n"])
        rows[m[1]] = counts
    return rows


MANIFEST = _manifest()
FILES = sorted(MANIFEST)
VOCABULARY = {kind for counts in MANIFEST.values() for kind in counts}
"""The kinds the manifest counts (it leaves out e.g. category, globalTask, resource)."""
C9 = ("miwg/C.9.0.bpmn", "miwg/C.9.1.bpmn", "miwg/C.9.2.bpmn")


def test_the_manifest_lists_21_models(corpus: Path) -> None:
    assert len(FILES) == 21
    assert sorted(p.name for p in (corpus / "miwg").glob("*.bpmn")) == [Path(f).name for f in FILES]


@pytest.mark.parametrize("file", FILES)
def test_element_counts_match_the_manifest(corpus: Path, file: str) -> None:
    graph = load_bpmn(corpus / file)
    got = Counter({k: v for k, v in element_counts(graph).items() if k in VOCABULARY and v})
    assert got == MANIFEST[file]


@pytest.mark.parametrize("file", FILES)
def test_references_resolve_and_ids_are_unique(corpus: Path, file: str) -> None:
    group = [corpus / f for f in C9] if file in C9 else [corpus / file]
    loaded = load_bpmn_files(group)
    assert [str(p) for p in loaded.problems] == []
    ids = [n.get("id") for n in loaded.graphs[0].root.walk() if n.ns == BPMN_NS and n.get("id")]
    if file not in C9:
        assert len(ids) == len(set(ids))


@pytest.mark.parametrize("file", FILES)
def test_round_trip(corpus: Path, file: str) -> None:
    graph = load_bpmn(corpus / file)
    xml = to_xml(graph)
    again = parse_bpmn(xml, source=str(corpus / file))
    assert again == graph
    assert again.definitions == graph.definitions
    assert to_xml(again) == xml
    # vendor namespaces survive the export verbatim
    vendor = Counter(n.tag for n in graph.root.walk() if n.ns and "omg.org" not in n.ns)
    assert Counter(n.tag for n in again.root.walk() if n.ns and "omg.org" not in n.ns) == vendor


def test_c9_calls_resolve_across_the_three_files(corpus: Path) -> None:
    loaded = load_bpmn_files([corpus / f for f in C9])
    calls = {c.called_element: Path(c.resolved_file or "").name for c in loaded.calls}
    assert calls == {"ManualCheck": "C.9.2.bpmn", "requestDocument_en": "C.9.1.bpmn"}
    found = loaded.callee("requestDocument_en")
    assert found is not None and found[1].is_executable is True


def test_a_file_alone_reports_its_unresolved_call(corpus: Path) -> None:
    problems = check_graph(load_bpmn(corpus / "miwg/C.9.0.bpmn"))
    assert [(p.element, p.attribute, p.value) for p in problems] == [
        ("Activity_ManualCheck", "calledElement", "ManualCheck")
    ]


def test_names_keep_their_line_breaks(corpus: Path) -> None:
    graph = load_bpmn(corpus / "miwg/A.2.1.bpmn")
    names = {n.name for _, n in graph.walk_nodes()}
    assert "Gateway\r\n(Split Flow)" in names
    assert "Gateway\n(Merge Flows)" in names
    again = parse_bpmn(to_xml(graph))
    assert {n.name for _, n in again.walk_nodes()} == names


def test_prefixes_do_not_matter(corpus: Path) -> None:
    semantic = load_bpmn(corpus / "miwg/C.2.0.bpmn")  # semantic: prefix, non-BPMN default ns
    assert len(semantic.definitions.processes) == 4
    bpmn2 = load_bpmn(corpus / "miwg/C.9.0.bpmn")  # bpmn2: prefix
    assert sum(1 for _, n in bpmn2.walk_nodes() if n.is_event_subprocess) == 2


def test_a21_defaults_on_activities(corpus: Path) -> None:
    graph = load_bpmn(corpus / "miwg/A.2.1.bpmn")
    nodes = {n.name: n for _, n in graph.walk_nodes()}
    flows = {f.id: f for p in graph.definitions.processes for f in p.body.flows}
    for task in ("Task 2", "Task 4"):
        default = nodes[task].default
        assert default is not None and flows[default].source == nodes[task].id
    conditional = [f for f in flows.values() if f.source == nodes["Task 2"].id and f.condition]
    assert [f.condition.text.strip() for f in conditional if f.condition] == ["true"]


def test_c91_timers(corpus: Path) -> None:
    graph = load_bpmn(corpus / "miwg/C.9.1.bpmn")
    boundaries = [n for _, n in graph.walk_nodes() if n.kind == "boundaryEvent"]
    timers = sorted(
        (n.cancel_activity, t.kind, t.expression.text.strip())
        for n in boundaries
        for e in n.event_definitions
        for t in e.timers
    )
    assert timers == [(False, "cycle", "R6/P1D"), (True, "duration", "P7D")]
