"""Semantic validation of process files and recipes (FORMATS.md "Validation").

Parsing (:mod:`flowlane.model.recipe`) already reports invalid YAML, unknown keys and block
types. This module checks the rest, each problem located as ``file:block: message`` (an empty
block for the file itself):

* :func:`validate_process` — one parsed process against what it can be resolved with;
* :func:`validate_recipe` — every process of a loaded recipe, plus the recipe's templates
  (the parse problems stay in ``recipe.problems``);
* :func:`validate_files` — ``flowlane process validate FILE...``: parse each file and resolve
  it from its recipe folder when it lies in one, else against the built-in types only.

The structure (start block, exits, reachability, loops) is checked here; the parameters of
each block type in :mod:`flowlane.model.validate_blocks`; names, expressions and templates
in :mod:`flowlane.model.validate_names`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from flowlane.core.errors import ValidationError
from flowlane.model.bpmn_process import problems as bpmn_problems
from flowlane.model.diagnostic import Diagnostic
from flowlane.model.form import FormSpec, form_link_problems, form_problems
from flowlane.model.process import (
    ForEachBlock,
    LaunchSettings,
    OperationBlock,
    ProcessFile,
    SubprocessBlock,
    block_waits,
    exits_of,
)
from flowlane.model.recipe import Recipe, load_process_file, load_recipe
from flowlane.model.render import template_name_problems, template_problem
from flowlane.model.segment import to_expression
from flowlane.model.template import Template
from flowlane.model.validate_blocks import check_block
from flowlane.model.validate_names import (
    Checker,
    check_assign,
    check_duration,
    check_expression,
    check_fields,
    check_stage,
    check_template,
    resolve_type,
)
from flowlane.objects import Schema, build_schema

_EVENT = re.compile(r"(?P<kind>form|webhook|keyword):(?P<key>.+)|email")
_EVENT_KEY = re.compile(r"\S+")
_KEYWORD = re.compile(r"[\w-]+")
"""A keyword is one word: letters (any script), digits, ``_`` and ``-``."""
_LAUNCH_PAIRS = (("stage", "stage"), ("event", "event"), ("every", "periodic"))


def validate_process(
    spec: ProcessFile,
    *,
    source: str,
    schema: Schema | None,
    templates: Mapping[str, Template] | None,
    processes: Mapping[str, ProcessFile] | None,
    in_recipe: bool,
    forms: Collection[str] | None = None,
) -> list[Diagnostic]:
    """Every semantic problem of one parsed process, file-level ones first, then by block.

    ``schema`` None means only the built-in types are known. Inside a recipe
    (``in_recipe``) names that the given schema, templates, processes or forms lack are
    errors; outside one, or when a resource is not given, they are warnings.
    """
    ck = Checker(
        spec=spec,
        source=source,
        schema=schema if schema is not None else build_schema(None),
        in_recipe=in_recipe,
        schema_known=in_recipe and schema is not None,
        templates=templates,
        processes=processes,
        forms=forms,
        declared_vars=_declared_vars(spec, processes),
    )
    ck.otype = resolve_type(ck, "", "", spec.object)
    _check_settings(ck)
    _check_launch(ck)
    if spec.bpmn is not None:
        if spec.blocks:
            ck.error("", "a BPMN process ('bpmn') has no 'blocks': the diagram is the process")
        for element, problem in bpmn_problems(spec.bpmn):
            ck.error(element, problem)
        for element, task in spec.bpmn.tasks.items():
            check_assign(ck, element, "bpmn.tasks.assign", task.assign)
        return sorted(ck.found, key=lambda d: d.block)
    _check_structure(ck)
    for bid, block in spec.blocks.items():
        check_block(ck, bid, block)
    order = {bid: i for i, bid in enumerate(spec.blocks)}
    return sorted(ck.found, key=lambda d: order.get(d.block, -1))


def validate_recipe(recipe: Recipe) -> list[Diagnostic]:
    """Every process of ``recipe`` checked against the recipe, and its templates parsed.

    The recipe's parse problems (``recipe.problems``) are not repeated here.
    """
    out: list[Diagnostic] = []
    for key, spec in recipe.processes.items():
        out += validate_process(
            spec,
            source=recipe.sources.get(key, f"{key}.yaml"),
            schema=recipe.schema,
            templates=recipe.templates,
            processes=recipe.processes,
            in_recipe=True,
            forms=recipe.forms,
        )
    out += _template_problems(recipe)
    out += _form_problems(recipe)
    return out


def _form_problems(recipe: Recipe) -> list[Diagnostic]:
    """Each form checked against the recipe's schema (``forms/<key>.yaml: fields.x: ...``)."""
    schema = recipe.schema if recipe.schema is not None else build_schema(None)
    return [
        Diagnostic(recipe.form_sources.get(key, f"forms/{key}.yaml"), "", problem)
        for key, form in recipe.forms.items()
        for problem in form_problems(form, schema)
    ]


def validate_files(paths: Iterable[Path]) -> list[Diagnostic]:
    """``flowlane process validate``: each file parsed, then checked against its recipe
    folder (the parent of ``processes/`` holding ``recipe.yaml`` or ``objects.yaml``) or,
    outside one, against the built-in types."""
    recipes: dict[Path, Recipe] = {}
    out: list[Diagnostic] = []
    for path in paths:
        spec, problems = load_process_file(path)
        out += problems
        if spec is None:
            continue
        root = recipe_root(path)
        if root is None:
            out += validate_process(
                spec, source=str(path), schema=None, templates=None, processes=None, in_recipe=False
            )
            continue
        key = root.resolve()
        if key not in recipes:
            recipes[key] = load_recipe(root)
            out += _context_problems(recipes[key])
        out += _validate_in_recipe(spec, path, recipes[key])
    return out


def recipe_root(path: Path) -> Path | None:
    """The recipe folder of a process file in its ``processes/`` folder, else None."""
    folder = path.parent if path.parent.name == "processes" else path.absolute().parent
    root = folder.parent
    if folder.name != "processes":
        return None
    if (root / "recipe.yaml").is_file() or (root / "objects.yaml").is_file():
        return root
    return None


def _validate_in_recipe(spec: ProcessFile, path: Path, recipe: Recipe) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    other = recipe.sources.get(spec.key)
    if other is not None and Path(other).resolve() != path.resolve():
        out.append(Diagnostic(str(path), "", f"process key '{spec.key}' is used by {other} too"))
    processes = {**recipe.processes, spec.key: spec}
    return out + validate_process(
        spec,
        source=str(path),
        schema=recipe.schema,
        templates=recipe.templates,
        processes=processes,
        in_recipe=True,
        forms=recipe.forms,
    )


def _context_problems(recipe: Recipe) -> list[Diagnostic]:
    """The recipe's problems that change how its processes resolve: objects and templates."""
    objects = recipe.root / "objects.yaml"
    templates = recipe.root / "templates"
    return [
        p for p in recipe.problems if Path(p.file) == objects or Path(p.file).parent == templates
    ] + _template_problems(recipe)


def _template_problems(recipe: Recipe) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for name, template in recipe.templates.items():
        found = sorted((recipe.root / "templates").glob(f"{name}.*"))
        source = str(found[0]) if found else name
        for param in ("subject", "body"):
            problem = template_problem(getattr(template, param))
            if problem:
                out.append(Diagnostic(source, "", f"{param}: {problem}"))
                continue
            for line in template_name_problems(getattr(template, param)):
                out.append(Diagnostic(source, "", f"{param}: {line}"))
            for line in form_link_problems(getattr(template, param), recipe.forms):
                out.append(Diagnostic(source, "", f"{param}: {line}"))
    return out


# ---- the process itself: settings, variables, counters, launch ----------------------------


def _declared_vars(
    spec: ProcessFile, processes: Mapping[str, ProcessFile] | None
) -> frozenset[str]:
    """``variables``, names set by ``create.as`` / ``generate_password.as``, and what any
    parent in the recipe passes in the ``vars`` of its subprocess or for_each blocks."""
    names = set(spec.variables)
    for block in spec.blocks.values():
        if isinstance(block, OperationBlock) and block.create is not None and block.create.as_:
            names.add(block.create.as_)
        if isinstance(block, OperationBlock) and block.generate_password is not None:
            names.add(block.generate_password.as_)
    for parent in (processes or {}).values():
        for block in parent.blocks.values():
            if isinstance(block, SubprocessBlock | ForEachBlock) and block.process == spec.key:
                names.update(block.vars)
    return frozenset(names)


def _check_settings(ck: Checker) -> None:
    spec = ck.spec
    check_fields(ck, "", "variables", spec.variables)
    for name in sorted({c for c in spec.counters if spec.counters.count(c) > 1}):
        ck.error("", f"counters: counter '{name}' is declared twice")
    if spec.task is not None:
        check_template(ck, "", "task.title", spec.task.title)
        check_assign(ck, "", "task.assign", spec.task.assign)
        check_duration(ck, "", "task.reaction", spec.task.reaction)


def _check_launch(ck: Checker) -> None:
    launch = ck.spec.launch
    if launch is None:
        return
    if ck.spec.draft:
        ck.error("", "a draft process has no 'launch': other processes start it")
    for param, on in _LAUNCH_PAIRS:
        given = getattr(launch, param) is not None
        if given and launch.on != on:
            ck.error("", f"'launch.{param}' goes only with 'on: {on}'")
        elif not given and launch.on == on:
            ck.error("", f"'on: {on}' needs 'launch.{param}'")
    check_duration(ck, "", "launch.every", launch.every)
    _check_conditions(ck, launch)
    if launch.stage is not None and ck.otype is not None:
        check_stage(ck, "", "launch.stage", launch.stage, ck.otype)
    if launch.event is not None:
        _check_event(ck, launch.event)


def _check_conditions(ck: Checker, launch: LaunchSettings) -> None:
    """``entry``, the ``where`` filter and the periodic window ``from`` / ``until``."""
    if launch.entry is not None:
        check_expression(ck, "", "launch.entry", launch.entry, otype=ck.otype)
    if launch.where is not None:
        try:
            where = to_expression(launch.where, ck.otype, ck.schema)
        except ValidationError as exc:
            ck.error("", f"launch.where: {exc}")
        else:
            check_expression(ck, "", "launch.where", where, otype=ck.otype)
    if (launch.from_ is not None or launch.until is not None) and launch.on != "periodic":
        ck.error("", "'launch.from' and 'launch.until' go only with 'on: periodic'")
    if launch.from_ is not None and launch.until is not None:
        start, end = (_aware(m) for m in (launch.from_, launch.until))
        if end <= start:
            ck.error("", "launch.until must be after launch.from")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _check_event(ck: Checker, event: str) -> None:
    match = _EVENT.fullmatch(event)
    if match is None:
        ck.error(
            "",
            f"launch.event: {event!r} is not form:<key>, webhook:<key>, email or keyword:<word>",
        )
    elif match["kind"] == "keyword" and not _KEYWORD.fullmatch(match["key"]):
        ck.error(
            "",
            f"launch.event: {event!r}: a keyword is one word "
            "(letters, digits, '_' and '-'; no spaces)",
        )
    elif not _EVENT_KEY.fullmatch(match["key"] or "email"):
        ck.error("", f"launch.event: {event!r}: the key after {match['kind']}: has no spaces")
    elif match["kind"] == "form" and not ck.known(ck.forms):
        ck.warn("", f"launch.event: form '{match['key']}' is not checked outside a recipe")
    elif match["kind"] == "form" and ck.forms is not None and match["key"] not in ck.forms:
        ck.error("", f"launch.event: form '{match['key']}' does not exist")
    elif match["kind"] == "form" and isinstance(ck.forms, Mapping):
        form = ck.forms[match["key"]]
        made = form.type if isinstance(form, FormSpec) else None
        if made is not None and made != ck.spec.object:
            ck.error(
                "",
                f"launch.event: form '{match['key']}' submits a {made}, "
                f"not a {ck.spec.object} (the process's object type)",
            )


# ---- structure: start, exits, reachability, loops -----------------------------------------


def _check_structure(ck: Checker) -> None:
    blocks = ck.spec.blocks
    starts = [bid for bid, b in blocks.items() if b.type == "start"]
    if not starts:
        ck.error("", "no start block (a block with 'type: start')")
    elif len(starts) > 1:
        ck.error("", f"more than one start block: {', '.join(starts)}")
    graph: dict[str, list[str]] = {}
    for bid, block in blocks.items():
        graph[bid] = []
        for label, target in exits_of(block):
            if target is None:
                ck.warn(bid, f"empty exit '{label}': that branch ends here")
            elif target not in blocks:
                ck.error(bid, f"exit '{label}' names no block '{target}'")
            elif target not in graph[bid]:
                graph[bid].append(target)
    if starts:
        reached = _reach(graph, starts)
        for bid in blocks:
            if bid not in reached:
                ck.error(bid, f"no path from '{starts[0]}' reaches this block")
    _check_loops(ck, graph)


def _reach(graph: Mapping[str, Iterable[str]], roots: Iterable[str]) -> set[str]:
    seen = set(roots)
    todo = deque(seen)
    while todo:
        for target in graph.get(todo.popleft(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _check_loops(ck: Checker, graph: Mapping[str, list[str]]) -> None:
    """Warn once per cycle of blocks none of which waits, on its first block in file order."""
    waits = {bid for bid, b in ck.spec.blocks.items() if block_waits(b)}
    busy = {bid: [t for t in ts if t not in waits] for bid, ts in graph.items() if bid not in waits}
    reverse: dict[str, list[str]] = {bid: [] for bid in busy}
    for bid, targets in busy.items():
        for target in targets:
            reverse[target].append(bid)
    done: set[str] = set()
    for bid in busy:
        if bid in done:
            continue
        component = _reach(busy, [bid]) & _reach(reverse, [bid])
        done |= component
        if len(component) > 1 or bid in busy[bid]:
            path = " -> ".join(_shortest_cycle(busy, bid, component))
            ck.warn(
                bid,
                f"cycle without a waiting block: {path}; "
                f"the loop guard stops it after {ck.spec.loop_limit} blocks",
            )


def _shortest_cycle(graph: Mapping[str, list[str]], first: str, within: set[str]) -> list[str]:
    """``first -> ... -> first`` through blocks of ``within``, as short as any."""
    parent: dict[str, str] = {}
    todo = deque([first])
    while todo:
        bid = todo.popleft()
        for target in graph[bid]:
            if target == first:
                path = [bid]
                while path[-1] != first:
                    path.append(parent[path[-1]])
                return [*reversed(path), first]
            if target in within and target not in parent:
                parent[target] = bid
                todo.append(target)
    return [first, first]  # pragma: no cover - ``within`` is a strongly connected component
