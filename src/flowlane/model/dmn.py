"""DMN 1.x decision tables (ADR 0012, "DMN"): parsed safely, compiled once, evaluated purely.

:func:`parse_dmn` reads a DMN 1.1–1.5 document with the same safe parser as BPMN
(:func:`flowlane.model.bpmn_graph.parse_xml_tree`: defusedxml, no DTD, no entities, no
external references), matching elements by local name in any DMN namespace (any prefix).
Each ``decision`` holding a ``decisionTable`` becomes a :class:`Decision`:

* inputs with their input expression (FEEL, or Python when the document or the expression
  says so); an empty input expression falls back to the input's label as the expression
  (SpiffWorkflow's rule, which the corpus relies on);
* outputs by name (a dotted name writes a nested value);
* rules: one unary-test cell per input (:mod:`flowlane.expr.feel`), one output entry per
  output (a FEEL expression; empty = ``None``);
* hit policies UNIQUE (default), FIRST, PRIORITY (by the outputs' ``outputValues`` order,
  else rule order), ANY, RULE ORDER, OUTPUT ORDER, COLLECT with SUM / MIN / MAX / COUNT.

Anything else (literal expressions, boxed contexts, decision services, required decisions)
is a :class:`DmnError` naming the element. :meth:`Decision.evaluate` returns the outputs as
a dict (single-hit policies; ``{}`` when no rule matches) or a dict of lists (multi-hit;
aggregated values for COLLECT with an aggregation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowlane.core.errors import ExpressionError, FlowlaneError, ValidationError
from flowlane.expr.compiler import Expression
from flowlane.expr.feel import UnaryTests, compile_feel, compile_unary_tests
from flowlane.expr.script import compile_python_expression, expression_problem
from flowlane.model.bpmn_graph import XmlNode, parse_xml_tree

DMN_NAMESPACE_PREFIXES = ("http://www.omg.org/spec/DMN/", "https://www.omg.org/spec/DMN/")
PYTHON_LANGUAGES = frozenset({"python", "text/x-python", "py"})
SINGLE_HIT = frozenset({"UNIQUE", "FIRST", "PRIORITY", "ANY"})
MULTI_HIT = frozenset({"RULE ORDER", "OUTPUT ORDER", "COLLECT"})
AGGREGATIONS = frozenset({"SUM", "MIN", "MAX", "COUNT"})


class DmnError(ValidationError):
    """A DMN file that cannot be used (unsafe, not DMN, or outside the supported subset)."""

    code = "dmn_invalid"


@dataclass(frozen=True)
class DmnInput:
    id: str
    label: str | None
    text: str
    expression: Expression


@dataclass(frozen=True)
class DmnOutput:
    id: str
    name: str
    label: str | None = None
    values: tuple[Any, ...] = ()
    """The ``outputValues`` list, in priority order (PRIORITY / OUTPUT ORDER)."""


@dataclass(frozen=True)
class DmnRule:
    id: str
    tests: tuple[UnaryTests, ...]
    outputs: tuple[Expression | None, ...]
    description: str | None = None


@dataclass(frozen=True)
class Decision:
    id: str
    name: str | None
    source: str
    hit_policy: str
    aggregation: str | None
    inputs: tuple[DmnInput, ...]
    outputs: tuple[DmnOutput, ...]
    rules: tuple[DmnRule, ...]

    def matching(self, variables: Mapping[str, Any]) -> list[DmnRule]:
        """The rules whose every input cell matches, in rule order."""
        values = [i.expression.evaluate(variables) for i in self.inputs]
        return [
            r
            for r in self.rules
            if all(t.matches(v, variables) for t, v in zip(r.tests, values, strict=True))
        ]

    def _row(self, rule: DmnRule, variables: Mapping[str, Any]) -> dict[str, Any]:
        return {
            o.name: (e.evaluate(variables) if e is not None else None)
            for o, e in zip(self.outputs, rule.outputs, strict=True)
        }

    def _priority(self, row: Mapping[str, Any]) -> tuple[int, ...]:
        keys: list[int] = []
        for o in self.outputs:
            if o.values:
                value = row.get(o.name)
                keys.append(o.values.index(value) if value in o.values else len(o.values))
        return tuple(keys)

    def evaluate(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The decision's result for ``variables`` (raises :class:`DmnError` on a hit-policy
        violation or an expression that cannot be evaluated)."""
        try:
            rules = self.matching(variables)
            rows = [self._row(r, variables) for r in rules]
        except ExpressionError as exc:
            raise DmnError(f"decision {self.id}: {exc.message}") from None
        policy = self.hit_policy
        if policy in SINGLE_HIT:
            if not rows:
                return {}
            if policy == "UNIQUE" and len(rows) > 1:
                ids = ", ".join(r.id for r in rules)
                raise DmnError(f"decision {self.id}: hit policy UNIQUE but rules {ids} match")
            if policy == "ANY" and any(r != rows[0] for r in rows[1:]):
                raise DmnError(f"decision {self.id}: hit policy ANY but the outputs differ")
            if policy == "PRIORITY":
                return min(rows, key=self._priority)
            return rows[0]
        if policy == "OUTPUT ORDER":
            rows = sorted(rows, key=self._priority)
        if policy == "COLLECT" and self.aggregation:
            return {
                o.name: _aggregate(self.aggregation, [r[o.name] for r in rows])
                for o in self.outputs
            }
        return {o.name: [r[o.name] for r in rows] for o in self.outputs}


def _aggregate(how: str, values: list[Any]) -> Any:
    if how == "COUNT":
        return len(values)
    present = [v for v in values if v is not None]
    if not present:
        return None
    if how == "SUM":
        return sum(present)
    return min(present) if how == "MIN" else max(present)


def _is_dmn(node: XmlNode) -> bool:
    return node.ns.startswith(DMN_NAMESPACE_PREFIXES)


def _children(node: XmlNode, local: str) -> list[XmlNode]:
    return [c for c in node.children if c.local == local and _is_dmn(c)]


def _child(node: XmlNode, local: str) -> XmlNode | None:
    found = _children(node, local)
    return found[0] if found else None


def _text(node: XmlNode | None) -> str:
    if node is None:
        return ""
    text = _child(node, "text")
    return (text.all_text() if text is not None else "").strip()


class _Compiler:
    def __init__(self, source: str, language: str | None) -> None:
        self.source = source
        self.language = (language or "").strip().lower()

    def fail(self, element: str | None, message: str) -> DmnError:
        return DmnError(
            f"{self.source}: {element or '?'}: {message}",
            source=self.source,
            element=element or "",
        )

    def expression(self, text: str, language: str | None, element: str | None) -> Expression:
        lang = (language or self.language or "feel").strip().lower()
        try:
            if lang in PYTHON_LANGUAGES:
                return compile_python_expression(text)
            if "feel" in lang or lang in ("", "juel"):
                return compile_feel(text)
        except (ExpressionError, RecursionError, MemoryError) as exc:
            raise self.fail(element, f"expression {text!r}: {expression_problem(exc)}") from None
        raise self.fail(element, f"expression language {language!r} is not supported")

    def decision(self, node: XmlNode) -> Decision:
        did = node.get("id") or ""
        table = _child(node, "decisionTable")
        if table is None:
            raise self.fail(did, "only decision tables are supported")
        policy = (table.get("hitPolicy") or "UNIQUE").strip().upper().replace("_", " ")
        if policy not in SINGLE_HIT | MULTI_HIT:
            raise self.fail(did, f"hit policy {policy!r} is not supported")
        aggregation = (table.get("aggregation") or "").strip().upper() or None
        if aggregation is not None and (policy != "COLLECT" or aggregation not in AGGREGATIONS):
            raise self.fail(did, f"aggregation {aggregation!r} with hit policy {policy!r}")
        inputs = tuple(self.input(c) for c in _children(table, "input"))
        outputs = tuple(self.output(c) for c in _children(table, "output"))
        if not outputs:
            raise self.fail(did, "a decision table needs at least one output")
        rules = tuple(self.rule(c, len(inputs), len(outputs)) for c in _children(table, "rule"))
        return Decision(
            did, node.get("name"), self.source, policy, aggregation, inputs, outputs, rules
        )

    def input(self, node: XmlNode) -> DmnInput:
        iid = node.get("id") or ""
        expr = _child(node, "inputExpression")
        text = _text(expr)
        label = node.get("label")
        if not text:
            text = (label or "").strip()
            if not text:
                raise self.fail(iid, "an input needs an input expression or a label")
        language = expr.get("expressionLanguage") if expr is not None else None
        return DmnInput(iid, label, text, self.expression(text, language, iid))

    def output(self, node: XmlNode) -> DmnOutput:
        oid = node.get("id") or ""
        name = (node.get("name") or "").strip()
        if not name:
            raise self.fail(oid, "an output needs a name")
        values: tuple[Any, ...] = ()
        allowed = _child(node, "outputValues")
        if allowed is not None:
            text = _text(allowed)
            if text:
                try:
                    parsed = compile_feel(f"[{text}]").evaluate({})
                except (ExpressionError, RecursionError, MemoryError) as exc:
                    problem = expression_problem(exc)
                    raise self.fail(oid, f"outputValues {text!r}: {problem}") from None
                values = tuple(parsed or ())
        return DmnOutput(oid, name, node.get("label"), values)

    def rule(self, node: XmlNode, n_inputs: int, n_outputs: int) -> DmnRule:
        rid = node.get("id") or ""
        entries = _children(node, "inputEntry")
        outs = _children(node, "outputEntry")
        if len(entries) != n_inputs or len(outs) != n_outputs:
            raise self.fail(
                rid,
                f"a rule needs {n_inputs} input and {n_outputs} output entries "
                f"({len(entries)} and {len(outs)} given)",
            )
        tests: list[UnaryTests] = []
        for e in entries:
            try:
                tests.append(compile_unary_tests(_text(e)))
            except (ExpressionError, RecursionError, MemoryError) as exc:
                problem = expression_problem(exc)
                raise self.fail(e.get("id") or rid, f"input entry: {problem}") from None
        outputs: list[Expression | None] = []
        for o in outs:
            text = _text(o)
            language = o.get("expressionLanguage")
            outputs.append(self.expression(text, language, o.get("id") or rid) if text else None)
        description = _child(node, "description")
        return DmnRule(
            rid,
            tuple(tests),
            tuple(outputs),
            description.all_text().strip() if description is not None else None,
        )


def parse_dmn(data: str | bytes, *, source: str = "decision.dmn") -> tuple[Decision, ...]:
    """The decision tables of one DMN document (see the module docstring)."""
    try:
        root = parse_xml_tree(data, source=source)
    except FlowlaneError as exc:
        raise DmnError(str(exc)) from None
    if root.local != "definitions" or not _is_dmn(root):
        raise DmnError(
            f"{source}: not a DMN document: the root element is {root.tag!r}, not dmn:definitions"
        )
    compiler = _Compiler(source, root.get("expressionLanguage"))
    return tuple(compiler.decision(c) for c in _children(root, "decision"))


def load_dmn(path: str | Path) -> tuple[Decision, ...]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DmnError(f"{p}: cannot read: {exc.strerror or exc}") from None
    return parse_dmn(data, source=str(p))


def load_dmn_files(paths: Iterable[str | Path]) -> dict[str, Decision]:
    """Every decision of the files by id (an id defined twice is an error)."""
    found: dict[str, Decision] = {}
    for p in paths:
        for d in load_dmn(p):
            if d.id in found:
                raise DmnError(
                    f"{d.source}: decision {d.id!r} also defined in {found[d.id].source}"
                )
            found[d.id] = d
    return found


def is_dmn_file(path: str | Path) -> bool:
    """Whether a deployment file is DMN (by its extension)."""
    return Path(path).suffix.lower() == ".dmn"
