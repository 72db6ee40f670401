"""Compiling checked expressions into Python functions, and the public entry points.

An expression is parsed and checked once (:mod:`flowlane.expr.check`), then rewritten so
that every attribute access, subscript, arithmetic operator, comparison and function call
becomes a call of a helper from :mod:`flowlane.expr.runtime`; ``and``/``or``/``not`` and
``x if c else y`` stay native. The result is compiled into one small function::

    def _fl_expression(_fl_scope):
        counters = _fl_scope.get('counters')
        return _fl_less(_fl_get(counters, 'calls'), 3)

whose globals hold only the helpers (no builtins), so evaluating never walks an AST.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from flowlane.core.errors import ExpressionError
from flowlane.expr import runtime
from flowlane.expr.check import parse

DEFAULT_NAMES = frozenset({"object", "vars", "counters", "answer", "now"})
"""The names in scope of process expressions (FORMATS: object, vars, counters, answer, now)."""

_SCOPE = "_fl_scope"
_FUNCTION = "_fl_expression"

_BINARY_HELPERS: dict[type[ast.operator], str] = {
    ast.Add: "_fl_add",
    ast.Sub: "_fl_subtract",
    ast.Mult: "_fl_multiply",
    ast.Div: "_fl_divide",
    ast.FloorDiv: "_fl_floor_divide",
    ast.Mod: "_fl_modulo",
    ast.Pow: "_fl_power",
}
_COMPARE_HELPERS: dict[type[ast.cmpop], str] = {
    ast.Eq: "_fl_equal",
    ast.NotEq: "_fl_not_equal",
    ast.Lt: "_fl_less",
    ast.LtE: "_fl_less_equal",
    ast.Gt: "_fl_greater",
    ast.GtE: "_fl_greater_equal",
    ast.In: "_fl_contains",
    ast.NotIn: "_fl_not_contains",
}

_GLOBALS: dict[str, Any] = {
    "__builtins__": {},
    "_fl_get": runtime.get_attribute,
    "_fl_item": runtime.get_item,
    "_fl_slice": slice,
    "_fl_add": runtime.add,
    "_fl_subtract": runtime.subtract,
    "_fl_multiply": runtime.multiply,
    "_fl_divide": runtime.divide,
    "_fl_floor_divide": runtime.floor_divide,
    "_fl_modulo": runtime.modulo,
    "_fl_power": runtime.power,
    "_fl_negative": runtime.negative,
    "_fl_positive": runtime.positive,
    "_fl_equal": runtime.equal,
    "_fl_not_equal": runtime.not_equal,
    "_fl_less": runtime.less,
    "_fl_less_equal": runtime.less_equal,
    "_fl_greater": runtime.greater,
    "_fl_greater_equal": runtime.greater_equal,
    "_fl_contains": runtime.contains,
    "_fl_not_contains": runtime.not_contains,
    **{f"_fl_fn_{name}": function for name, function in runtime.FUNCTIONS.items()},
}

# Errors a value from the scope can still provoke inside Python (overflow, invalid
# Decimal operations, unhashable keys in a literal, ...): reported as ExpressionError.
_EVALUATION_ERRORS = (ArithmeticError, ValueError, TypeError, LookupError, RecursionError)


@dataclass(frozen=True, slots=True)
class Expression:
    """A checked, compiled expression; evaluate it any number of times.

    ``names`` are the root names it reads (``today()`` reads ``now``); ``paths`` the
    longest statically known access paths from a root name: ``object.client.phone`` gives
    ``("object", "client", "phone")``, ``vars['x']`` gives ``("vars", "x")``, a bare name
    ``now`` gives ``("now",)``; a computed or non-text key ends a path.
    """

    source: str
    names: frozenset[str]
    paths: frozenset[tuple[str, ...]]
    _run: Callable[[Mapping[str, Any]], Any] = field(repr=False, compare=False)

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        """The value of the expression; names missing from ``scope`` read as ``None``.

        Raises :class:`ExpressionError` only when a runtime guard trips (huge power or
        repetition) or a value cannot be computed at all (e.g. a date out of range).
        """
        try:
            return self._run(scope)
        except ExpressionError as exc:
            message = f"{exc.message} (in {self.source!r})"
            raise ExpressionError(message, source=self.source) from None
        except _EVALUATION_ERRORS as exc:
            raise ExpressionError(
                f"cannot evaluate {self.source!r}: {type(exc).__name__}: {exc}",
                source=self.source,
            ) from exc

    def test(self, scope: Mapping[str, Any]) -> bool:
        """The expression's value as a condition: its truth, ``None`` being ``False``."""
        return bool(self.evaluate(scope))


def _load(name: str) -> ast.Name:
    """The AST of reading the variable ``name``."""
    return ast.Name(id=name, ctx=ast.Load())


def _helper(name: str, *args: ast.expr) -> ast.Call:
    """The AST of calling the injected helper ``name`` with positional ``args``."""
    return ast.Call(func=_load(name), args=list(args), keywords=[])


class _Rewriter(ast.NodeTransformer):
    """Rewrites a checked tree into helper calls (see the module docstring)."""

    def __init__(self) -> None:
        self._temporaries = 0

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        value = self.visit(node.value)
        return ast.copy_location(_helper("_fl_get", value, ast.Constant(node.attr)), node)

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        value = self.visit(node.value)
        key = self.visit(node.slice)
        return ast.copy_location(_helper("_fl_item", value, key), node)

    def visit_Slice(self, node: ast.Slice) -> ast.AST:
        parts = [
            ast.Constant(None) if part is None else self.visit(part)
            for part in (node.lower, node.upper, node.step)
        ]
        return ast.copy_location(_helper("_fl_slice", *parts), node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        helper = _BINARY_HELPERS[type(node.op)]
        call = _helper(helper, self.visit(node.left), self.visit(node.right))
        return ast.copy_location(call, node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return ast.copy_location(ast.UnaryOp(op=ast.Not(), operand=operand), node)
        value = operand.value if isinstance(operand, ast.Constant) else None
        if isinstance(value, int | float) and not isinstance(value, bool):  # fold -3, +2.5
            return ast.copy_location(
                ast.Constant(-value if isinstance(node.op, ast.USub) else value), node
            )
        helper = "_fl_negative" if isinstance(node.op, ast.USub) else "_fl_positive"
        return ast.copy_location(_helper(helper, operand), node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        assert isinstance(node.func, ast.Name)  # guaranteed by the checker
        name = node.func.id
        args = [self.visit(arg) for arg in node.args]
        if name == "today":
            args = [_load(_SCOPE)]
        elif name == "datetime":
            args = [_load(_SCOPE), *args]
        return ast.copy_location(_helper(f"_fl_fn_{name}", *args), node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        # ``a < b < c`` becomes ``less(a, (t := b)) and less(t, c)``: each operand is
        # evaluated once and the chain still short-circuits.
        left = self.visit(node.left)
        pairs: list[ast.expr] = []
        last = len(node.ops) - 1
        for index, (op, comparator) in enumerate(zip(node.ops, node.comparators, strict=True)):
            right: ast.expr = self.visit(comparator)
            if index < last:
                temporary = f"_fl_t{self._temporaries}"
                self._temporaries += 1
                right = ast.NamedExpr(target=ast.Name(id=temporary, ctx=ast.Store()), value=right)
                next_left: ast.expr = _load(temporary)
            else:
                next_left = right
            pairs.append(self._pair(op, left, right))
            left = next_left
        result = pairs[0] if len(pairs) == 1 else ast.BoolOp(op=ast.And(), values=pairs)
        return ast.copy_location(result, node)

    @staticmethod
    def _pair(op: ast.cmpop, left: ast.expr, right: ast.expr) -> ast.expr:
        """One comparison: native for ``is``/``is not``, else a None-safe helper call."""
        if isinstance(op, ast.Is | ast.IsNot):
            return ast.Compare(left=left, ops=[op], comparators=[right])
        return _helper(_COMPARE_HELPERS[type(op)], left, right)


def _build(tree: ast.Expression, names: frozenset[str], source: str) -> Callable[..., Any]:
    """Compile a checked tree into ``f(scope)``, binding each of ``names`` from the scope."""
    body = _Rewriter().visit(tree.body)
    statements: list[ast.stmt] = [
        ast.Assign(
            targets=[ast.Name(id=name, ctx=ast.Store())],
            value=ast.Call(
                func=ast.Attribute(value=_load(_SCOPE), attr="get", ctx=ast.Load()),
                args=[ast.Constant(name)],
                keywords=[],
            ),
        )
        for name in sorted(names)
    ]
    statements.append(ast.Return(value=body))
    function = ast.FunctionDef(
        name=_FUNCTION,
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=_SCOPE)],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        ),
        body=statements,
        decorator_list=[],
        returns=None,
        type_comment=None,
    )
    module = ast.fix_missing_locations(ast.Module(body=[function], type_ignores=[]))
    label = source if len(source) <= 60 else source[:57] + "..."
    code = compile(module, filename=f"<expression {label}>", mode="exec")
    namespace = dict(_GLOBALS)
    exec(code, namespace)  # defines the function only; runs nothing from the expression
    result: Callable[..., Any] = namespace[_FUNCTION]
    return result


@functools.lru_cache(maxsize=4096)
def _compile_cached(source: str, names: frozenset[str]) -> Expression:
    """Check and compile once per ``(source, names)``; failures are not cached."""
    checked = parse(source, names)
    run = _build(checked.tree, checked.names & names, source)
    return Expression(source, checked.names, checked.paths, run)


def compile_expression(source: str, *, names: Collection[str] = DEFAULT_NAMES) -> Expression:
    """Parse, check and compile ``source``; only ``names`` may be read.

    Raises :class:`ExpressionError` naming the problem. Results are cached by
    ``(source, names)``, so compiling the same text again is cheap and gives the same object.
    """
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be text, not {type(source).__name__}")
    return _compile_cached(source, frozenset(names))


def evaluate(source: str, scope: Mapping[str, Any]) -> Any:
    """Compile ``source`` with the default names (cached) and evaluate it in ``scope``."""
    return compile_expression(source).evaluate(scope)


def is_expression_literal(value: object) -> TypeGuard[str]:
    """Whether a file value is an expression: text starting with ``=`` (``"=answer.by"``)."""
    return isinstance(value, str) and value.startswith("=")


def compile_value(value: object, *, names: Collection[str] = DEFAULT_NAMES) -> Expression | None:
    """The compiled expression of an ``"=expr"`` value; ``None`` for any literal value."""
    if is_expression_literal(value):
        return compile_expression(value[1:], names=names)
    return None
