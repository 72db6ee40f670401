"""Standard BPMN processes as deployable flowlane processes (ADR 0012 "Hosting").

A process file with ``bpmn:`` (:class:`~flowlane.model.process.BpmnSource`) names a diagram;
:func:`read_documents` puts the diagram's text into the process (the recipe loader does
this, so every deployed version carries its own diagram), :func:`compile_source` compiles it
with :func:`~flowlane.model.bpmn_compile.compile_bpmn` into a :class:`HostedBpmn`: the
program plus how each user / manual task becomes a flowlane task (the process file's
``bpmn.tasks`` settings, else the element's ``flowlane:`` attributes). :func:`problems`
lists what keeps a diagram from running, by element id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowlane.core.errors import FlowlaneError
from flowlane.model.bpmn import FLOWLANE_NS
from flowlane.model.bpmn_compile import (
    BpmnImportError,
    BpmnProgram,
    CompileOptions,
    compile_bpmn,
    executable_processes,
)
from flowlane.model.bpmn_graph import BpmnGraph, check_set, parse_bpmn
from flowlane.model.dmn import Decision, DmnError, is_dmn_file, parse_dmn
from flowlane.model.process import BpmnSource, BpmnTask


@dataclass(frozen=True)
class HostedBpmn:
    """What the engine needs to run a BPMN process: the program and the task settings."""

    program: BpmnProgram
    tasks: dict[str, BpmnTask] = field(default_factory=dict)


def read_documents(source: BpmnSource, folder: Path) -> BpmnSource:
    """``source`` with ``documents`` read from ``file``, ``also`` and ``decisions`` (relative
    to ``folder``).

    Raises :class:`FlowlaneError` naming a file that cannot be read."""
    names = [n for n in [source.file, *source.also, *source.decisions] if n]
    docs = dict(source.documents)
    for name in names:
        path = folder / name
        try:
            docs[name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FlowlaneError(f"bpmn: cannot read {name}: {exc}") from exc
    return source.model_copy(update={"documents": docs})


def _graphs(source: BpmnSource) -> list[BpmnGraph]:
    if not source.documents:
        raise FlowlaneError(
            "bpmn: no diagram: name its file (read by the recipe loader) or give "
            "bpmn.documents (file name: XML text)"
        )
    order = [n for n in [source.file, *source.also] if n in source.documents]
    order += [n for n in source.documents if n not in order]
    return [parse_bpmn(source.documents[n], source=n) for n in order if not _is_dmn(source, n)]


def _is_dmn(source: BpmnSource, name: str) -> bool:
    return name in source.decisions or is_dmn_file(name)


def _decisions(source: BpmnSource) -> dict[str, Decision]:
    """The decisions of the DMN documents by id. Raises :class:`DmnError` naming the file
    and the element (``fields``: ``source``, ``element``)."""
    missing = [n for n in source.decisions if n not in source.documents]
    if missing:
        raise DmnError(f"bpmn.decisions: {missing[0]} is not in bpmn.documents", source=missing[0])
    found: dict[str, Decision] = {}
    for name, text in source.documents.items():
        if not _is_dmn(source, name):
            continue
        for d in parse_dmn(text, source=name):
            if d.id in found:
                raise DmnError(
                    f"{name}: {d.id}: decision also defined in {found[d.id].source}",
                    source=name,
                    element=d.id,
                )
            found[d.id] = d
    return found


def _attr_tasks(graphs: list[BpmnGraph]) -> dict[str, BpmnTask]:
    """Task settings from ``flowlane:title`` / ``text`` / ``assign`` / ``options`` attributes."""
    out: dict[str, BpmnTask] = {}
    prefix = f"{{{FLOWLANE_NS}}}"
    for g in graphs:
        for proc in g.definitions.processes:
            for node in proc.body.walk_nodes():
                attrs = {k[len(prefix) :]: v for k, v in node.attrs if k.startswith(prefix)}
                if not attrs:
                    continue
                options = [o.strip() for o in attrs.get("options", "").split(",") if o.strip()]
                out[node.id] = BpmnTask(
                    title=attrs.get("title"),
                    text=attrs.get("text"),
                    assign=attrs.get("assign") or attrs.get("assignee"),
                    options=options,
                )
    return out


def compile_source(source: BpmnSource) -> HostedBpmn:
    """Compile the diagram with the decisions of its DMN documents. Raises
    :class:`BpmnImportError` (unsupported elements by id), :class:`DmnError` (a DMN document
    that cannot be used, naming the file and element) or :class:`FlowlaneError` (unreadable
    XML, broken references, an ambiguous process)."""
    graphs = _graphs(source)
    bset = check_set(graphs)
    if bset.problems:
        raise FlowlaneError("bpmn: " + "; ".join(str(p) for p in bset.problems))
    options = CompileOptions(
        task_mode=source.task_mode,
        expressions=source.expressions,
        parallel_join=source.parallel_join,
    )
    program = compile_bpmn(bset, source.process, options, _decisions(source))
    tasks = _attr_tasks(graphs)
    tasks.update(source.tasks)
    return HostedBpmn(program, tasks)


def problems(source: BpmnSource) -> list[tuple[str, str]]:
    """What keeps the diagram from running, as (element id or "", problem)."""
    try:
        hosted = compile_source(source)
    except BpmnImportError as exc:
        return [(p.element, f"{p.kind}: {p.reason}") for p in exc.problems]
    except DmnError as exc:
        return [(str(exc.fields.get("element") or ""), str(exc))]
    except FlowlaneError as exc:
        return [("", str(exc))]
    out: list[tuple[str, str]] = []
    nodes = {nid for d in hosted.program.definitions.values() for nid, n in d.nodes.items()}
    for tid in source.tasks:
        if tid not in nodes:
            out.append((tid, "bpmn.tasks names no element of the diagram"))
    return out


def diagram_of(spec: dict[str, Any]) -> str | None:
    """The main diagram (XML text) of a process file's data with ``bpmn.documents``: the
    document named by ``bpmn.file``, else the first one that is not DMN; None for a process
    of blocks."""
    raw = spec.get("bpmn")
    if not isinstance(raw, dict):
        return None
    docs = raw.get("documents") or {}
    if not isinstance(docs, dict):
        return None
    main = raw.get("file")
    if isinstance(main, str) and isinstance(docs.get(main), str):
        return str(docs[main])
    decisions = raw.get("decisions") or []
    for name, text in docs.items():
        if isinstance(text, str) and name not in decisions and not is_dmn_file(name):
            return text
    return None


def standard_process(
    xml: str,
    *,
    file: str,
    process: str | None = None,
    key: str | None = None,
    object_type: str = "user",
    task_mode: str = "wait",
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A process file (as data) for a standard BPMN diagram saved as ``file`` next to it
    (``flowlane bpmn import --standard``), and what keeps the diagram from running
    (element id, problem) — empty when it compiles."""
    source = BpmnSource.model_validate(
        {"file": file, "process": process, "task_mode": task_mode, "documents": {file: xml}}
    )
    found = problems(source)
    name = Path(file).stem
    pid = process
    try:
        graph = parse_bpmn(xml, source=file)
        procs = executable_processes(graph)
        chosen = next((p for p in procs if p.id == process), None) if process else None
        if chosen is None and len(procs) == 1:
            chosen = procs[0]
        if chosen is not None:
            pid = chosen.id
            name = chosen.name or chosen.id
    except FlowlaneError:
        pass
    slug = re.sub(r"[^a-z0-9]+", "-", (key or pid or Path(file).stem).lower()).strip("-")
    data: dict[str, Any] = {
        "key": slug or "process",
        "name": name,
        "object": object_type,
        "bpmn": {"file": file, **({"process": pid} if pid else {})},
    }
    if task_mode != "wait":
        data["bpmn"]["task_mode"] = task_mode
    return data, found


__all__ = [
    "HostedBpmn",
    "compile_source",
    "diagram_of",
    "problems",
    "read_documents",
    "standard_process",
]
