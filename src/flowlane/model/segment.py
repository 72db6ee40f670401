"""Structured filters: the GetCourse condition builder (field, operator, value, and / or).

A filter is written either as a safe expression (``"object.status == 'new'"``) or as a
structure, which is turned into the same kind of expression so that one compiler serves both
(SQL in :mod:`flowlane.store.sql.segment`, Python in :mod:`flowlane.expr`)::

    where:
      all:
        - {field: status, op: eq, value: new}
        - any:
            - {field: amount, op: gt, value: 100}
            - {field: client.email, op: empty}
        - not: {field: stage, op: in, value: [held, cancelled]}
        - {field: created, op: within_last, value: 7d}

``field`` is a field of the object (``client.email`` reads through a link). A ``value`` that
starts with ``=`` is an expression (``"=today() - days(3)"``); ISO 8601 text given for a date
or datetime field is read as a date or date-time (without an offset: in the account's zone).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter
from pydantic import ValidationError as PydanticError

from flowlane.core.duration import parse_duration
from flowlane.core.errors import ValidationError
from flowlane.objects import ObjectType, Schema

Operator = Literal[
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "starts_with",
    "empty",
    "not_empty",
    "between",
    "within_last",
    "within_next",
    "older_than",
]

_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_NO_VALUE = frozenset({"empty", "not_empty"})
_DURATION_OPS = frozenset({"within_last", "within_next", "older_than"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TEXT_TYPES = frozenset({"string", "text", "email", "phone", "enum", "link"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Rule(_Strict):
    """One condition: ``field`` ``op`` ``value``."""

    field: str
    op: Operator = "eq"
    value: Any = None


class AllOf(_Strict):
    """Every filter holds (and)."""

    all: list[Filter] = Field(min_length=1)


class AnyOf(_Strict):
    """Some filter holds (or)."""

    any: list[Filter] = Field(min_length=1)


class NotOf(_Strict):
    """The filter does not hold."""

    not_: Filter = Field(alias="not")


def _filter_kind(value: Any) -> str | None:
    """Which kind of filter a value is, by its keys (so errors name the right one)."""
    if isinstance(value, str):
        return "expression"
    for model, tag in ((Rule, "rule"), (AllOf, "all"), (AnyOf, "any"), (NotOf, "not")):
        if isinstance(value, model):
            return tag
    if isinstance(value, dict):
        for key in ("all", "any", "not"):
            if key in value:
                return key
        return "rule"
    return None


Filter = Annotated[
    Annotated[str, Tag("expression")]
    | Annotated[Rule, Tag("rule")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")],
    Discriminator(
        _filter_kind,
        custom_error_type="filter",
        custom_error_message="a filter is an expression or a mapping with field, all, any or not",
    ),
]
_TAGS = frozenset({"expression", "rule", "all", "any", "not"})


def to_expression(node: Filter, otype: ObjectType | None, schema: Schema | None = None) -> str:
    """The safe expression a filter means. Raises ``ValidationError`` naming the field or
    operator that is wrong (unknown field of ``otype``, a value that does not fit)."""
    if isinstance(node, str):
        return node
    if isinstance(node, AllOf):
        return " and ".join(f"({to_expression(n, otype, schema)})" for n in node.all)
    if isinstance(node, AnyOf):
        return " or ".join(f"({to_expression(n, otype, schema)})" for n in node.any)
    if isinstance(node, NotOf):
        return f"not ({to_expression(node.not_, otype, schema)})"
    return _rule(node, otype, schema)


def _rule(rule: Rule, otype: ObjectType | None, schema: Schema | None) -> str:
    names = rule.field.split(".")
    if not all(_NAME.match(n) and not n.startswith("_") for n in names):
        raise ValidationError(f"filter field {rule.field!r} is not a field name")
    ftype = _field_type(names, otype, schema)
    subject = "object." + ".".join(names)
    where = f"filter on {rule.field!r} ({rule.op})"
    if rule.op in _NO_VALUE:
        return _empty(rule, subject, ftype, where)
    if rule.op in _DURATION_OPS:
        return _relative(rule, subject, ftype, where)
    if rule.op in _COMPARE:
        return f"{subject} {_COMPARE[rule.op]} {_value(rule.value, ftype, where)}"
    if rule.op in ("in", "not_in", "contains", "not_contains"):
        return _membership(rule, subject, ftype, where)
    if rule.op == "starts_with":
        if not isinstance(rule.value, str) or rule.value.startswith("="):
            raise ValidationError(f"{where}: value must be text")
        return f"{subject}[:{len(rule.value)}] == {rule.value!r}"
    # between
    if not isinstance(rule.value, list) or len(rule.value) != 2:
        raise ValidationError(f"{where}: value must be a list of two values [from, to]")
    low, high = (_value(v, ftype, where) for v in rule.value)
    return f"{low} <= {subject} <= {high}"


def _empty(rule: Rule, subject: str, ftype: str | None, where: str) -> str:
    if rule.value is not None:
        raise ValidationError(f"{where}: takes no value")
    empty = f"({subject} == None or {subject} == '')"
    if ftype == "list":
        empty = f"len({subject}) == 0"
    elif ftype is not None and ftype not in _TEXT_TYPES:
        empty = f"{subject} == None"
    return empty if rule.op == "empty" else f"not ({empty})"


def _membership(rule: Rule, subject: str, ftype: str | None, where: str) -> str:
    if rule.op in ("in", "not_in"):
        if not isinstance(rule.value, list) or not rule.value:
            raise ValidationError(f"{where}: value must be a non-empty list")
        items = ", ".join(_value(v, ftype, where) for v in rule.value)
        return f"{subject} {'in' if rule.op == 'in' else 'not in'} [{items}]"
    item_type = "string" if ftype in (None, "list") else ftype
    needle = _value(rule.value, item_type, where)
    return f"{needle} {'in' if rule.op == 'contains' else 'not in'} {subject}"


def _field_type(names: list[str], otype: ObjectType | None, schema: Schema | None) -> str | None:
    """The declared type of the (last) field, ``None`` when not known; unknown fields of a
    known type are errors."""
    current = otype
    ftype: str | None = None
    for i, name in enumerate(names):
        if current is None:
            return None
        if name in ("id", "type"):
            ftype = "string"
        else:
            spec = current.field(name)
            if spec is None:
                raise ValidationError(
                    f"filter field {'.'.join(names)!r}: {current.key} has no field {name!r}"
                )
            ftype = spec.type
            if i < len(names) - 1:
                if spec.link_type is None:
                    raise ValidationError(
                        f"filter field {'.'.join(names)!r}: {name!r} is not a link to an object"
                    )
                current = schema.types.get(spec.link_type) if schema is not None else None
    return ftype


def _value(value: Any, ftype: str | None, where: str) -> str:
    """A value as expression text; ``=`` text is an expression, ISO text of date fields a date."""
    if isinstance(value, str) and value.startswith("="):
        return f"({value[1:]})"
    if isinstance(value, str) and ftype in ("date", "datetime"):
        try:
            (date if ftype == "date" else datetime).fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                f"{where}: {value!r} is not an ISO 8601 {ftype} (e.g. 2026-03-02"
                f"{'T10:00' if ftype == 'datetime' else ''})"
            ) from None
        function = "date" if ftype == "date" else "datetime"
        return f"{function}({value!r})"
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    raise ValidationError(f"{where}: value {value!r} is not text, a number, a boolean or null")


def _relative(rule: Rule, subject: str, ftype: str | None, where: str) -> str:
    if not isinstance(rule.value, str):
        raise ValidationError(f"{where}: value must be a duration such as 7d or 12h")
    try:
        span = parse_duration(rule.value)
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc}") from None
    if ftype == "date":
        if span % timedelta(days=1):
            raise ValidationError(f"{where}: a date field takes whole days, not {rule.value!r}")
        base, delta = "today()", f"days({span // timedelta(days=1)})"
    else:
        seconds = span.total_seconds()
        base = "now"
        delta = f"minutes({seconds / 60!r})" if seconds % 60 else f"minutes({int(seconds // 60)})"
    if rule.op == "within_last":
        return f"{base} - {delta} <= {subject} <= {base}"
    if rule.op == "within_next":
        return f"{base} <= {subject} <= {base} + {delta}"
    return f"{subject} < {base} - {delta}"


def parse_filter(raw: Any) -> Filter:
    """A filter from plain data (a mapping as read from YAML or JSON, or expression text);
    ``ValidationError`` saying where it is malformed."""
    if isinstance(raw, str | Rule | AllOf | AnyOf | NotOf):
        return raw
    try:
        parsed: Filter = _FILTER.validate_python(raw)
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(_path(first["loc"]))
        raise ValidationError(f"filter {where}: {first['msg']}".replace(" :", ":")) from None
    return parsed


def _path(loc: tuple[int | str, ...]) -> list[str]:
    """An error's location without the union's tags (``all.all.0.rule.op`` → ``all.0.op``)."""
    out: list[str] = []
    for i, part in enumerate(loc):
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if part in _TAGS and (part in ("expression", "rule") or nxt == part):
            continue
        out.append(str(part))
    return out


def filter_expression(where: Any, type_key: str, schema: Schema | None) -> str | None:
    """:func:`to_expression` for a filter on objects of ``type_key`` (``None`` stays ``None``);
    plain data is parsed first (:func:`parse_filter`)."""
    if where is None:
        return None
    where = parse_filter(where)
    otype = schema.types.get(type_key) if schema is not None else None
    return to_expression(where, otype, schema)


for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild()
_FILTER: TypeAdapter[Filter] = TypeAdapter(Filter)
