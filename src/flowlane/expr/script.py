"""Python-like conditions and a safe *statement* subset for imported BPMN (ADR 0012).

Diagrams written for SpiffWorkflow carry Python conditions (``x > 1``,
``choice == 'Yes'``) and script-task bodies (``u += v``, ``del(x)``). Nothing of them is
executed as host code: every expression is rewritten into flowlane's safe expression
language (:mod:`flowlane.expr.compiler`) and every statement is interpreted here.

* :func:`compile_python_expression` reads free variable names from the text (any name not
  called as a function), rewrites the safe Spiff forms ``x.upper()`` / ``x.lower()`` into
  ``upper(x)`` / ``lower(x)``, then compiles with exactly those names allowed.
* :func:`compile_script` accepts: assignment to names (``a = 1``, ``a = b = 1``, tuple
  unpacking ``a, b = 1, 2``) and to a key of a variable (``d['k'] = v``), augmented
  assignment (``x += 1``), ``del name`` / ``del(name)``, ``if`` / ``elif`` / ``else``,
  ``pass``, and expression statements calling ``print(...)`` (a no-op whose arguments are
  still checked) or a whitelisted function. Every right-hand side is a safe expression.
  Anything else — imports, loops, function definitions, attribute assignment, calls of
  methods or unknown functions — is refused with an :class:`ExpressionError` naming it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from flowlane.core.errors import ExpressionError
from flowlane.expr.check import ARITY, YAML_WORDS
from flowlane.expr.compiler import Expression, compile_expression
from flowlane.expr.runtime import check_size

MAX_SCRIPT_LENGTH = 20_000
MAX_EXPRESSION_LENGTH = 20_000
"""Longest text :func:`compile_python_expression` parses (its rewritten form must still fit
the checked language's own limit; FEEL's translation may be longer than its source)."""
MAX_STATEMENTS = 200
_METHODS = {"upper": "upper", "lower": "lower"}
"""``x.upper()`` → ``upper(x)``: safe method forms of the corpus."""

_AUG_OPERATORS: dict[type[ast.operator], ast.operator] = {
    ast.Add: ast.Add(),
    ast.Sub: ast.Sub(),
    ast.Mult: ast.Mult(),
    ast.Div: ast.Div(),
    ast.FloorDiv: ast.FloorDiv(),
    ast.Mod: ast.Mod(),
    ast.Pow: ast.Pow(),
}


class _Methods(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in _METHODS
            and not node.args
            and not node.keywords
        ):
            name = ast.Name(id=_METHODS[func.attr], ctx=ast.Load())
            call = ast.Call(func=name, args=[func.value], keywords=[])
            return ast.copy_location(call, node)
        return node


def free_names(tree: ast.AST) -> frozenset[str]:
    """The variable names an expression tree reads (not the functions it calls, nor the
    YAML words such as ``true``)."""
    called = {
        id(n.func)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    return frozenset(
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and id(n) not in called and n.id not in YAML_WORDS
    )


def _expression_of(tree: ast.expr) -> Expression:
    rewritten = _Methods().visit(tree)
    ast.fix_missing_locations(rewritten)
    source = ast.unparse(rewritten)
    return compile_expression(source, names=free_names(rewritten))


def compile_python_expression(source: str) -> Expression:
    """A Python condition or value as a checked flowlane expression (names = its free names)."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("expression is empty")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression is too long ({len(source)} characters, max {MAX_EXPRESSION_LENGTH})"
        )
    try:
        tree = ast.parse(f"(\n{source.strip()}\n)", mode="eval")
        return _expression_of(tree.body)
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("expression is nested too deeply") from None


def expression_problem(exc: BaseException) -> str:
    """What is wrong with an expression or script that failed to compile with ``exc``: an
    :class:`ExpressionError`'s message, or "nested too deeply" for a ``RecursionError`` /
    ``MemoryError`` of Python's parser (compile sites report both the same way)."""
    if isinstance(exc, ExpressionError):
        return exc.message
    return "the text is nested too deeply or too large to compile"


class ScriptError(ExpressionError):
    """A script failed while running (a name to delete is not defined, a bad unpacking)."""

    code = "script_failed"


def checked_value(value: Any) -> Any:
    """``value`` if it is small enough to keep as a variable, else a :class:`ScriptError`."""
    try:
        check_size(value)
    except ScriptError:
        raise
    except ExpressionError as exc:
        raise ScriptError(exc.message) from None
    return value


Op = Callable[[MutableMapping[str, Any]], None]


@dataclass(frozen=True)
class Script:
    """A checked script: run it on a variables dict (changed in place)."""

    source: str
    _ops: tuple[Op, ...] = field(repr=False, compare=False)

    def run(self, variables: MutableMapping[str, Any]) -> None:
        for op in self._ops:
            op(variables)


def _describe(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


_MISSING = object()


def set_checked(container: Any, key: Any, value: Any, whole: Any = None) -> None:
    """``container[key] = value`` (a dict or list), undone with a :class:`ScriptError` when
    the value or the container (``whole``, the variable holding it, when given) would grow
    too big (see :func:`check_size`)."""
    checked_value(value)
    previous = container.get(key, _MISSING) if isinstance(container, dict) else container[key]
    container[key] = value
    try:
        checked_value(container if whole is None else whole)
    except ScriptError:
        if previous is _MISSING:
            del container[key]
        else:
            container[key] = previous
        raise


def _key_target(holder: str, key: Expression) -> Callable[[MutableMapping[str, Any], Any], None]:
    """``holder[key] = value``: a text key of a dict, or an index inside a list."""

    def to_key(v: MutableMapping[str, Any], value: Any) -> None:
        container = v.get(holder)
        k = key.evaluate(v)
        if isinstance(container, dict):
            if not isinstance(k, str):
                raise ScriptError(
                    f"cannot set a key of {holder}: a key must be text, not {type(k).__name__}"
                )
            set_checked(container, k, value)
        elif (
            isinstance(container, list)
            and isinstance(k, int)
            and -len(container) <= k < len(container)
        ):
            set_checked(container, k, value)
        else:
            raise ScriptError(f"cannot set {holder}[{k!r}]: {holder} is not a dict or list")

    return to_key


def _assign_target(target: ast.expr) -> Callable[[MutableMapping[str, Any], Any], None]:
    if isinstance(target, ast.Name):
        name = target.id
        if name.startswith("_"):
            raise ExpressionError(f"name '{name}' is private")

        def to_name(v: MutableMapping[str, Any], value: Any) -> None:
            v[name] = checked_value(value)

        return to_name
    if isinstance(target, ast.Tuple | ast.List):
        parts = [_assign_target(t) for t in target.elts]

        def unpack(v: MutableMapping[str, Any], value: Any) -> None:
            if not isinstance(value, tuple | list) or len(value) != len(parts):
                raise ScriptError(f"cannot unpack {value!r} into {len(parts)} names")
            for part, item in zip(parts, value, strict=True):
                part(v, item)

        return unpack
    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
        return _key_target(target.value.id, _expression_of(target.slice))
    raise ExpressionError(f"assigning to {_describe(target)} is not allowed in a script")


def _assign(node: ast.Assign) -> Op:
    value = _expression_of(node.value)
    targets = [_assign_target(t) for t in node.targets]

    def assign(v: MutableMapping[str, Any]) -> None:
        result = value.evaluate(v)
        for t in targets:
            t(v, result)

    return assign


def _augment(node: ast.AugAssign) -> Op:
    if not isinstance(node.target, ast.Name):
        raise ExpressionError(f"augmented assignment to {_describe(node.target)} is not allowed")
    op = _AUG_OPERATORS.get(type(node.op))
    if op is None:
        raise ExpressionError(f"operator {type(node.op).__name__} is not allowed in a script")
    expression = _expression_of(
        ast.BinOp(left=ast.Name(id=node.target.id, ctx=ast.Load()), op=op, right=node.value)
    )
    store = _assign_target(node.target)

    def augment(v: MutableMapping[str, Any]) -> None:
        store(v, expression.evaluate(v))

    return augment


def _delete(node: ast.Delete) -> Op:
    names: list[str] = []
    for t in node.targets:
        if not isinstance(t, ast.Name):
            raise ExpressionError(f"del {_describe(t)} is not allowed; delete a name")
        names.append(t.id)

    def delete(v: MutableMapping[str, Any]) -> None:
        for name in names:
            if name not in v:
                raise ScriptError(f"name '{name}' is not defined")
            del v[name]

    return delete


def _branch(node: ast.If) -> Op:
    test = _expression_of(node.test)
    body = tuple(_statement(s) for s in node.body)
    orelse = tuple(_statement(s) for s in node.orelse)

    def branch(v: MutableMapping[str, Any]) -> None:
        for op in body if test.test(v) else orelse:
            op(v)

    return branch


def _nothing(v: MutableMapping[str, Any]) -> None:
    return None


def _printed(node: ast.expr) -> list[ast.expr]:
    """The expressions ``print`` evaluates for an argument: an f-string's values, else the
    argument itself."""
    if isinstance(node, ast.JoinedStr):
        return [part.value for part in node.values if isinstance(part, ast.FormattedValue)]
    return [node]


def _expression_statement(node: ast.Expr) -> Op:
    value = node.value
    if isinstance(value, ast.Constant):
        return _nothing
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and not value.keywords:
        if value.func.id == "print":
            # print is a no-op; its arguments are still checked and evaluated (an error in
            # them is an error of the script). An f-string's values are checked one by one.
            arguments = [_expression_of(e) for a in value.args for e in _printed(a)]
        elif value.func.id in ARITY:
            arguments = [_expression_of(value)]
        else:
            raise ExpressionError(f"calling {value.func.id}() is not allowed in a script")

        def evaluate(v: MutableMapping[str, Any]) -> None:
            for a in arguments:
                a.evaluate(v)

        return evaluate
    raise ExpressionError(
        f"the statement {_describe(node)!r} has no effect or is not allowed in a script"
    )


_STATEMENTS: dict[type[ast.stmt], Callable[[Any], Op]] = {
    ast.Assign: _assign,
    ast.AugAssign: _augment,
    ast.Delete: _delete,
    ast.If: _branch,
    ast.Expr: _expression_statement,
    ast.Pass: lambda node: _nothing,
}


def _statement(node: ast.stmt) -> Op:
    compile_one = _STATEMENTS.get(type(node))
    if compile_one is None:
        raise ExpressionError(
            f"{type(node).__name__} statements are not allowed in a script "
            f"(only assignments, del, if, pass and print): {_describe(node)!r}"
        )
    return compile_one(node)


def compile_script(source: str) -> Script:
    """Check and compile a script body; raises :class:`ExpressionError` naming what is refused."""
    if not isinstance(source, str):
        raise ExpressionError("a script must be text")
    if len(source) > MAX_SCRIPT_LENGTH:
        raise ExpressionError(f"script is too long ({len(source)} characters)")
    lines = source.splitlines()
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    text = "\n".join(x[indent:] for x in lines)
    try:
        tree = ast.parse(text, mode="exec")
        count = sum(1 for n in ast.walk(tree) if isinstance(n, ast.stmt))
        if count > MAX_STATEMENTS:
            raise ExpressionError(f"script has too many statements ({count}, max {MAX_STATEMENTS})")
        return Script(source, tuple(_statement(s) for s in tree.body))
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error at line {exc.lineno}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("script is nested too deeply") from None
