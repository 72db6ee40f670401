"""Property tests of flowlane.expr: random expressions built from allowed pieces, evaluated
in random scopes, never raise anything but ExpressionError."""

from __future__ import annotations

import ast
import contextlib
from datetime import timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlane.core.errors import ExpressionError
from flowlane.expr import DEFAULT_NAMES, FUNCTIONS, compile_expression

TZ = timezone(timedelta(hours=3))


class Record:
    """A fake engine object proxy (a Readable) with fields by name."""

    def __init__(self, ident: str, /, **fields: Any) -> None:
        self.id = ident
        self.fields = fields

    def flowlane_get(self, name: str) -> Any:
        return self.id if name == "id" else self.fields.get(name)

    def __eq__(self, other: object) -> bool:
        return other == self.id or (isinstance(other, Record) and other.id == self.id)

    def __hash__(self) -> int:
        return hash(self.id)


_ATTRIBUTES = ["a", "b", "x", "year", "day", "days", "weekday", "hour", "client", "id"]
_BINARY = [ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow]
_COMPARE = [ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is]
_UNARY = [ast.USub, ast.UAdd, ast.Not]

_constants = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
)


def _load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def _extend(children: st.SearchStrategy[ast.expr]) -> st.SearchStrategy[ast.expr]:
    lists = st.lists(children, min_size=1, max_size=3)
    functions = sorted(FUNCTIONS)
    return st.one_of(
        st.builds(
            lambda v, a: ast.Attribute(v, a, ast.Load()), children, st.sampled_from(_ATTRIBUTES)
        ),
        st.builds(lambda v, k: ast.Subscript(v, k, ast.Load()), children, children),
        st.builds(
            lambda v, lo, hi: ast.Subscript(v, ast.Slice(lo, hi), ast.Load()),
            children,
            children,
            children,
        ),
        st.builds(
            lambda left, op, right: ast.BinOp(left, op(), right),
            children,
            st.sampled_from(_BINARY),
            children,
        ),
        st.builds(lambda op, o: ast.UnaryOp(op(), o), st.sampled_from(_UNARY), children),
        st.builds(
            lambda left, ops, rs: ast.Compare(left, [op() for op in ops], rs[: len(ops)] or [left]),
            children,
            st.lists(st.sampled_from(_COMPARE), min_size=1, max_size=2),
            lists,
        ),
        st.builds(lambda vs: ast.BoolOp(ast.And(), vs + vs[:1]), lists),
        st.builds(lambda vs: ast.BoolOp(ast.Or(), vs + vs[:1]), lists),
        st.builds(ast.IfExp, children, children, children),
        st.builds(lambda vs: ast.List(vs, ast.Load()), lists),
        st.builds(lambda vs: ast.Tuple(vs, ast.Load()), lists),
        st.builds(ast.Set, lists),
        st.builds(lambda ks, vs: ast.Dict(ks, vs[: len(ks)] + ks[len(vs) :]), lists, lists),
        st.builds(
            lambda f, args: ast.Call(_load(f), args, []),
            st.sampled_from(functions),
            st.lists(children, max_size=3),
        ),
    )


_expressions = st.recursive(
    st.one_of(
        st.builds(ast.Constant, _constants), st.sampled_from(sorted(DEFAULT_NAMES)).map(_load)
    ),
    _extend,
    max_leaves=16,
)

_scalars = st.one_of(
    _constants,
    st.dates(),
    st.datetimes(timezones=st.just(TZ)),
    st.datetimes(),
    st.timedeltas(),
    st.decimals(allow_nan=True, allow_infinity=True),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.tuples(children, children),
        st.dictionaries(st.sampled_from(_ATTRIBUTES), children, max_size=3),
        st.builds(
            lambda fields: Record("r", **fields),
            st.dictionaries(st.sampled_from(_ATTRIBUTES), children, max_size=3),
        ),
    ),
    max_leaves=8,
)
_scopes = st.fixed_dictionaries({name: _values for name in sorted(DEFAULT_NAMES)})


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(tree=_expressions, scope=_scopes)
def test_random_allowed_expressions_only_raise_expression_error(
    tree: ast.expr, scope: dict[str, Any]
) -> None:
    source = ast.unparse(ast.fix_missing_locations(tree))
    try:
        expression = compile_expression(source)
    except ExpressionError:
        return
    with contextlib.suppress(ExpressionError):
        expression.evaluate(scope)
        expression.test(scope)


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(source=st.text(max_size=40))
def test_arbitrary_text_compiles_or_raises_expression_error(source: str) -> None:
    try:
        expression = compile_expression(source)
    except ExpressionError:
        return
    with contextlib.suppress(ExpressionError):
        expression.evaluate({})
