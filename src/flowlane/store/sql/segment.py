"""Segments in SQL: conditions on objects compiled to a WHERE clause, plus a Python residual.

A condition is a safe expression (``object.status == 'new' and object.amount > 100``; a
structured filter is turned into one first, see :mod:`flowlane.model.segment`). Every
top-level ``and`` term is compiled on its own: a term that this module can express in SQL
with exactly the meaning the Python evaluator gives it becomes part of the WHERE clause; any
other term stays a *residual* that the store evaluates in Python on the rows SQL selected.
Which terms compile:

* comparisons (``== != < <= > >=``, chains) of an object field, or a field of a linked
  object (``object.client.email``), with a constant of a matching kind, or of two fields
  of the same kind; ``== None`` / ``!= None`` on any field;
* ``field in [constants]``, ``field not in [...]``, ``'text' in field`` (substring of a text
  field), ``'key' in field`` (a list of texts);
* a boolean field alone (``object.vip``, ``not object.vip``) and text / number / date fields
  as truth values;
* ``field ± days(n)`` / ``hours(n)`` compared with a constant, and ``now - field`` compared
  with a duration (rewritten so that the field stands alone and an index can serve it);
* ``and`` / ``or`` / ``not`` of compiled terms, constant sub-expressions (``now``, ``vars``,
  ``today()``, ``days(3)``) evaluated once in Python and bound as parameters.

Semantics follow the evaluator: a missing value is ``None``; an order comparison with
``None`` is false; ``not`` sees a comparison with ``None`` as false (so SQL's NULL is folded
to false before ``NOT``); text is compared by code point (``COLLATE "C"`` on PostgreSQL);
dates are ISO text, datetimes UTC ISO text with microseconds (see
:func:`encode_object_data`); a date compared with a datetime is taken at midnight in the
datetime's zone, as the evaluator aligns them.

Accessor SQL is written out as text with the JSON path inline (never a bound parameter), so
that the expression indexes made by :func:`index_statements` match the queries.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Numeric, and_, false, func, literal, literal_column, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from flowlane.core.errors import ExpressionError
from flowlane.engine.state import decode_value, encode_value
from flowlane.expr import compile_expression
from flowlane.expr.check import parse
from flowlane.expr.compiler import DEFAULT_NAMES
from flowlane.objects import FieldSpec, ObjectType, Schema

TEXT_TYPES = frozenset({"string", "text", "email", "phone", "enum"})
NUMBER_TYPES = frozenset({"integer", "number"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_LINK_DEPTH = 3
_FLIP = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE}


# ---- object data as stored ---------------------------------------------------------------


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def encode_object_data(value: Any) -> Any:
    """Object data as stored: like :func:`encode_value`, but datetimes as UTC text with
    microseconds, so that text order is time order and SQL can compare them."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} in object data")
        return {"$dt": _utc_text(value)}
    if isinstance(value, dict):
        return {k: encode_object_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_object_data(v) for v in value]
    return encode_value(value)


def decode_object_data(value: Any, tz: tzinfo) -> Any:
    """Inverse of :func:`encode_object_data`; datetimes come back in the account's zone."""
    return _localize(decode_value(value), tz)


def _localize(value: Any, tz: tzinfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz)
    if isinstance(value, dict):
        return {k: _localize(v, tz) for k, v in value.items()}
    if isinstance(value, list):
        return [_localize(v, tz) for v in value]
    return value


# ---- accessors -----------------------------------------------------------------------------


def _kind(spec: FieldSpec | None, name: str, otype: ObjectType) -> str | None:
    """The SQL kind of a field: text, link, number, bool, date, datetime, texts (a list of
    texts); ``None`` for what does not compile (files, passwords, other lists)."""
    if spec is None:
        return "text" if name == "stage" and otype.has_stages else None
    if spec.write_only:
        return None
    if spec.type in TEXT_TYPES or spec.dictionary_ref is not None:
        return "text"
    if spec.link_type is not None:
        return "link"
    if spec.type in NUMBER_TYPES:
        return "number"
    if spec.type == "boolean":
        return "bool"
    if spec.type in ("date", "datetime"):
        return spec.type
    if spec.type == "list" and spec.of is not None:
        item = _kind(spec.of, spec.of.name, otype)
        return "texts" if item in ("text", "link") else None
    return None


def accessor_sql(dialect: str, column: str, name: str, kind: str) -> str:
    """SQL text reading field ``name`` of kind ``kind`` from the JSON column ``column``."""
    if dialect == "postgresql":
        # Cast only JSON of the kind: the index covers every type's field of this name.
        if kind == "number":
            return (
                f"(CASE WHEN jsonb_typeof({column} -> '{name}') = 'number' "
                f"THEN ({column} ->> '{name}')::numeric END)"
            )
        if kind == "bool":
            return (
                f"(CASE WHEN jsonb_typeof({column} -> '{name}') = 'boolean' "
                f"THEN ({column} ->> '{name}')::boolean END)"
            )
        if kind in ("date", "datetime"):
            tag = "$d" if kind == "date" else "$dt"
            return f"(({column} -> '{name}' ->> '{tag}') COLLATE \"C\")"
        return f"(({column} ->> '{name}') COLLATE \"C\")"
    if kind in ("date", "datetime"):
        tag = "$d" if kind == "date" else "$dt"
        return f'json_extract({column}, \'$."{name}"."{tag}"\')'
    return f"json_extract({column}, '$.\"{name}\"')"


def _raw_sql(dialect: str, column: str, name: str) -> str:
    """SQL text that is NULL exactly when the field is missing or null."""
    if dialect == "postgresql":
        return f"({column} ->> '{name}')"
    return f"json_extract({column}, '$.\"{name}\"')"


def index_statements(
    dialect: str, type_key: str, schema: Schema, names: set[str]
) -> list[tuple[str, str]]:
    """``(index name, CREATE INDEX statement)`` for the fields of ``type_key`` that conditions
    compare."""
    otype = schema.types.get(type_key)
    out: list[tuple[str, str]] = []
    if otype is None:
        return out
    for name in sorted(names):
        kind = _kind(otype.field(name), name, otype)
        if kind is None or kind == "texts" or not _NAME.match(name):
            continue
        index = f"ix_objects_{type_key}_{name}"[:63]
        if not _NAME.match(index):
            continue
        out.append(
            (
                index,
                f"CREATE INDEX IF NOT EXISTS {index} ON objects "
                f"(type, {accessor_sql(dialect, 'data', name, kind)})",
            )
        )
    return out


# ---- compiled segments ----------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A condition on objects of one type: ``where`` for SQL (``None``: every object of the
    type), ``residual`` for Python on the selected rows (``None``: nothing left)."""

    where: ColumnElement[bool] | None
    residual: str | None
    fields: frozenset[str]
    """Fields of the type the SQL part compares (worth an expression index)."""


class _Unsupported(Exception):
    """This term has no SQL form with the evaluator's meaning: it stays in Python."""


@dataclass(frozen=True)
class _Field:
    kind: str
    sql: ColumnElement[Any]
    null: ColumnElement[bool]


@dataclass(frozen=True)
class _Const:
    value: Any


def compile_segment(
    source: str | None,
    *,
    type_key: str,
    schema: Schema,
    scope: Mapping[str, Any],
    dialect: str,
    column: str = "objects.data",
    id_column: str = "objects.id",
) -> Segment:
    """Compile a condition on objects of ``type_key`` (see the module docstring)."""
    if source is None or not source.strip():
        return Segment(None, None, frozenset())
    tree = parse(source, DEFAULT_NAMES).tree.body
    compiler = _Compiler(schema, type_key, scope, dialect, column, id_column)
    compiled: list[ColumnElement[bool]] = []
    residual: list[str] = []
    for term in _conjuncts(tree):
        try:
            compiled.append(compiler.condition(term))
        except _Unsupported:
            residual.append(f"({ast.unparse(term)})")
    where = and_(*compiled) if compiled else None
    return Segment(where, " and ".join(residual) or None, frozenset(compiler.fields))


def _conjuncts(node: ast.expr) -> Iterator[ast.expr]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        for value in node.values:
            yield from _conjuncts(value)
    else:
        yield node


class _Compiler:
    def __init__(
        self,
        schema: Schema,
        type_key: str,
        scope: Mapping[str, Any],
        dialect: str,
        column: str,
        id_column: str,
    ) -> None:
        self.schema = schema
        self.type_key = type_key
        self.scope = scope
        self.dialect = dialect
        self.column = column
        self.id_column = id_column
        self.fields: set[str] = set()
        self.aliases = 0
        now = scope.get("now")
        self.tz = now.tzinfo if isinstance(now, datetime) else UTC

    # -- conditions (never NULL where it matters: NOT folds NULL to false first) --

    def condition(self, node: ast.expr) -> ColumnElement[bool]:
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(v) for v in node.values]
            return and_(*parts) if isinstance(node.op, ast.And) else or_(*parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not_(func.coalesce(self.condition(node.operand), false()))
        if isinstance(node, ast.Compare):
            return self._compare_chain(node)
        operand = self.operand(node)
        if isinstance(operand, _Const):
            return true() if operand.value else false()
        return self._truth(operand)

    def _truth(self, f: _Field) -> ColumnElement[bool]:
        if f.kind == "bool":
            return f.sql == true()
        if f.kind in ("text", "link"):
            return and_(f.sql.is_not(None), f.sql != "")
        if f.kind == "number":
            return and_(f.sql.is_not(None), f.sql != 0)
        if f.kind in ("date", "datetime"):
            return not_(f.null)
        raise _Unsupported

    def _compare_chain(self, node: ast.Compare) -> ColumnElement[bool]:
        parts = []
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            parts.append(self._compare(left, op, right))
            left = right
        return and_(*parts)

    def _compare(self, left_node: ast.expr, op: ast.cmpop, right_node: ast.expr) -> Any:
        if isinstance(op, ast.In | ast.NotIn):
            found = self._contains(left_node, right_node)
            return found if isinstance(op, ast.In) else not_(func.coalesce(found, false()))
        if isinstance(op, ast.Is | ast.IsNot):
            raise _Unsupported
        rewritten = self._rewrite_arithmetic(left_node, op, right_node)
        if rewritten is not None:
            left_node, op, right_node = rewritten
        left = self.operand(left_node)
        right = self.operand(right_node)
        if isinstance(left, _Const) and isinstance(right, _Const):
            raise _Unsupported  # a constant comparison: the evaluator decides (rare)
        if isinstance(left, _Const):
            left, right = right, left
            op = _FLIP.get(type(op), type(op))()
        assert isinstance(left, _Field)
        if isinstance(right, _Field):
            return self._field_field(left, op, right)
        return self._field_const(left, op, right.value)

    def _field_field(self, a: _Field, op: ast.cmpop, b: _Field) -> ColumnElement[bool]:
        same = a.kind == b.kind or {a.kind, b.kind} <= {"text", "link"}
        if not same or a.kind == "texts":
            raise _Unsupported
        if isinstance(op, ast.Eq):
            return or_(func.coalesce(a.sql == b.sql, false()), and_(a.null, b.null))
        if isinstance(op, ast.NotEq):
            return not_(or_(func.coalesce(a.sql == b.sql, false()), and_(a.null, b.null)))
        if a.kind == "link" or b.kind == "link":
            raise _Unsupported  # a linked object has no order
        return _order(op, a.sql, b.sql)

    def _field_const(self, f: _Field, op: ast.cmpop, value: Any) -> ColumnElement[bool]:
        if value is None:
            if isinstance(op, ast.Eq):
                return f.null
            if isinstance(op, ast.NotEq):
                return not_(f.null)
            return false()  # an order comparison with None is false
        if f.kind == "date" and isinstance(value, datetime):
            return self._date_vs_moment(f, op, value)
        if f.kind == "datetime" and isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, time(), tzinfo=self.tz)
        bound = self._bind(f.kind, value)
        if isinstance(op, ast.Eq):
            equal: ColumnElement[bool] = f.sql == bound
            return equal
        if isinstance(op, ast.NotEq):
            return not_(func.coalesce(f.sql == bound, false()))
        if f.kind == "link":
            raise _Unsupported
        return _order(op, f.sql, bound)

    def _date_vs_moment(self, f: _Field, op: ast.cmpop, moment: datetime) -> ColumnElement[bool]:
        """A date field against a datetime: the date counts as midnight in its zone."""
        if moment.tzinfo is None:
            raise _Unsupported
        day = moment.date()
        at_midnight = moment == datetime.combine(day, time(), tzinfo=moment.tzinfo)
        text = day.isoformat()
        if isinstance(op, ast.Eq):
            return f.sql == text if at_midnight else false()
        if isinstance(op, ast.NotEq):
            return not_(func.coalesce(f.sql == text, false())) if at_midnight else true()
        if isinstance(op, ast.Lt):
            return f.sql < text if at_midnight else f.sql <= text
        if isinstance(op, ast.LtE):
            return f.sql <= text
        if isinstance(op, ast.Gt):
            return f.sql > text
        if isinstance(op, ast.GtE):
            return f.sql >= text if at_midnight else f.sql > text
        raise _Unsupported

    def _bind(self, kind: str, value: Any) -> Any:
        """A constant as a parameter for a field of ``kind``; refuses mismatched kinds."""
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        is_day = isinstance(value, date) and not isinstance(value, datetime)
        if kind in ("text", "link") and isinstance(value, str):
            if "\x00" in value:  # PostgreSQL text cannot hold it
                raise _Unsupported
            return value
        if kind == "number" and is_number:
            if self.dialect == "postgresql":  # exact: a float as the decimal it prints as
                exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
                return literal(exact, Numeric())
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                raise _Unsupported  # beyond SQLite's integers
            return literal(value)
        if kind == "bool" and isinstance(value, bool):
            return literal(value, Boolean())
        if kind == "date" and is_day:
            return value.isoformat()
        if kind == "datetime" and isinstance(value, datetime) and value.tzinfo is not None:
            # In the zone of the stored values Python compares wall clocks: a time that a
            # daylight saving change skips or repeats has no single instant to compare with.
            if value.replace(fold=0).utcoffset() != value.replace(fold=1).utcoffset():
                raise _Unsupported
            try:
                return _utc_text(value)
            except OverflowError as exc:
                raise _Unsupported from exc
        raise _Unsupported

    def _contains(self, item_node: ast.expr, container_node: ast.expr) -> ColumnElement[bool]:
        item = self.operand(item_node)
        container = self.operand(container_node)
        if isinstance(item, _Field) and isinstance(container, _Const):
            values = container.value
            if not isinstance(values, list | tuple) or not values:
                raise _Unsupported
            if any(v is None for v in values):
                raise _Unsupported
            if item.kind == "date" and any(isinstance(v, datetime) for v in values):
                raise _Unsupported
            return item.sql.in_([self._bind(item.kind, v) for v in values])
        if isinstance(item, _Const) and isinstance(container, _Field):
            if not isinstance(item.value, str):
                raise _Unsupported
            if container.kind == "text":
                self._bind("text", item.value)  # refuses what SQL text cannot hold
                if self.dialect == "postgresql":
                    return func.strpos(container.sql, item.value) > 0
                return func.instr(container.sql, item.value) > 0
            if container.kind == "texts":
                return self._list_has(container, item.value)
        raise _Unsupported

    def _list_has(self, f: _Field, value: str) -> ColumnElement[bool]:
        # ``f.sql`` of a list is its raw JSON path expression (see ``_field``).
        if self.dialect == "postgresql":
            return f.sql.op("@>")(func.jsonb_build_array(literal_column(_quote(value))))
        return literal_column(
            f"EXISTS (SELECT 1 FROM json_each({f.sql}) WHERE json_each.type = 'text' "
            f"AND json_each.value = {_quote(value)})"
        )

    # -- arithmetic rewrites --

    def _rewrite_arithmetic(
        self, left: ast.expr, op: ast.cmpop, right: ast.expr
    ) -> tuple[ast.expr, ast.cmpop, ast.expr] | None:
        """``field ± d OP c`` → ``field OP c ∓ d``; ``c - field OP d`` → ``field OP' c - d``."""
        if not isinstance(op, ast.Lt | ast.LtE | ast.Gt | ast.GtE | ast.Eq | ast.NotEq):
            return None
        for a, b, flipped in ((left, right, False), (right, left, True)):
            if not isinstance(a, ast.BinOp) or not isinstance(a.op, ast.Add | ast.Sub):
                continue
            the_op = _FLIP.get(type(op), type(op))() if flipped else op
            try:
                other = self._constant(b)
            except _Unsupported:
                return None
            result = self._solve(a, the_op, other)
            if result is not None:
                return result
        return None

    def _solve(
        self, node: ast.BinOp, op: ast.cmpop, other: Any
    ) -> tuple[ast.expr, ast.cmpop, ast.expr] | None:
        field_node, const_node, field_first = node.left, node.right, True
        if not self._is_field(field_node):
            field_node, const_node, field_first = node.right, node.left, False
            if not self._is_field(field_node):
                return None
        try:
            c = self._constant(const_node)
        except _Unsupported:
            return None
        f = self._field(field_node)
        moment = f.kind in ("date", "datetime")
        if not moment:
            return None
        if isinstance(node.op, ast.Add) or field_first:
            # field + c, c + field, field - c: compared with a moment ``other``
            if not isinstance(c, timedelta) or not self._same_kind(f.kind, other):
                return None
            if f.kind == "date" and (c.seconds or c.microseconds):
                return None
            shift = c if isinstance(node.op, ast.Add) else -c
            try:
                return field_node, op, _value_node(other - shift)
            except OverflowError:
                return None
        # c - field compared with a duration ``other``: field OP' c - other
        if not isinstance(other, timedelta) or not self._same_kind(f.kind, c):
            return None
        if f.kind == "date" and (other.seconds or other.microseconds):
            return None
        try:
            return field_node, _FLIP.get(type(op), type(op))(), _value_node(c - other)
        except OverflowError:
            return None

    def _same_kind(self, kind: str, value: Any) -> bool:
        if kind == "datetime":
            return isinstance(value, datetime) and value.tzinfo is self.tz
        return isinstance(value, date) and not isinstance(value, datetime)

    # -- operands --

    def operand(self, node: ast.expr) -> _Field | _Const:
        if self._is_field(node):
            return self._field(node)
        return _Const(self._constant(node))

    def _constant(self, node: ast.expr) -> Any:
        if _reads_object(node):
            raise _Unsupported
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, _Value):
            return node.held
        try:
            return compile_expression(ast.unparse(node)).evaluate(self.scope)
        except ExpressionError as exc:
            raise _Unsupported from exc

    def _is_field(self, node: ast.expr) -> bool:
        return _path(node) is not None

    def _field(self, node: ast.expr) -> _Field:
        path = _path(node)
        if path is None or len(path) > MAX_LINK_DEPTH + 1:
            raise _Unsupported
        table = self.id_column.rsplit(".", 1)[0]
        return self._read(self.type_key, self.column, table, path, top=True)

    def _read(self, type_key: str, column: str, table: str, path: list[str], top: bool) -> _Field:
        """Field ``path[0]`` of the object in ``table`` (``column`` its data); links followed."""
        otype = self.schema.types.get(type_key)
        name = path[0]
        if otype is None or not _NAME.match(name):
            raise _Unsupported
        spec = otype.field(name)
        if name in ("id", "type") and spec is None:
            if len(path) > 1:
                raise _Unsupported
            sql: ColumnElement[Any] = literal_column(_collate(self.dialect, f"{table}.{name}"))
            return _Field("text", sql, sql.is_(None))
        kind = _kind(spec, name, otype)
        if kind is None:
            raise _Unsupported
        if len(path) == 1:
            if top:
                self.fields.add(name)
            null = literal_column(_raw_sql(self.dialect, column, name)).is_(None)
            if kind == "texts":
                raw = (
                    f"({column} -> '{name}')"
                    if self.dialect == "postgresql"
                    else f"{column}, '$.\"{name}\"'"
                )
                return _Field(kind, literal_column(raw), null)
            return _Field(
                kind, literal_column(accessor_sql(self.dialect, column, name, kind)), null
            )
        if kind != "link" or spec is None or spec.link_type is None:
            raise _Unsupported
        # Follow the link: the rest reads the linked object in a scalar subquery.
        self.aliases += 1
        alias = f"fl_l{self.aliases}"
        inner = self._read(spec.link_type, f"{alias}.data", alias, path[1:], top=False)
        if inner.kind == "texts":
            raise _Unsupported
        key = _raw_sql(self.dialect, column, name)
        sub: ColumnElement[Any] = literal_column(
            f"(SELECT {inner.sql} FROM objects {alias} WHERE {alias}.id = {key})"
        )
        return _Field(inner.kind, sub, sub.is_(None))


def _order(op: ast.cmpop, a: Any, b: Any) -> ColumnElement[bool]:
    ops: dict[type[ast.cmpop], Callable[[Any, Any], ColumnElement[bool]]] = {
        ast.Lt: lambda x, y: x < y,
        ast.LtE: lambda x, y: x <= y,
        ast.Gt: lambda x, y: x > y,
        ast.GtE: lambda x, y: x >= y,
    }
    chosen = ops.get(type(op))
    if chosen is None:
        raise _Unsupported
    return chosen(a, b)


def _collate(dialect: str, sql: str) -> str:
    return f'({sql} COLLATE "C")' if dialect == "postgresql" else sql


def _quote(value: str) -> str:
    if "\x00" in value:
        raise _Unsupported
    return "'" + value.replace("'", "''") + "'"


def _reads_object(node: ast.expr) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "object" for n in ast.walk(node))


def _path(node: ast.expr) -> list[str] | None:
    """``object.a.b`` / ``object['a']`` as ``['a', 'b']``; ``None`` for anything else."""
    names: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            names.append(node.slice.value)
            node = node.value
        elif isinstance(node, ast.Name) and node.id == "object":
            return names[::-1] if names else None
        else:
            return None


def _path_node(names: list[str]) -> ast.expr:
    node: ast.expr = ast.Name(id="object", ctx=ast.Load())
    for name in names:
        node = ast.Attribute(value=node, attr=name, ctx=ast.Load())
    return node


class _Value(ast.expr):
    """A constant computed during a rewrite (a date or datetime has no literal)."""

    _fields = ()

    def __init__(self, held: Any) -> None:
        super().__init__()
        self.held = held


def _value_node(value: Any) -> ast.expr:
    return _Value(value)
