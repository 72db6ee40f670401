"""Record validation: coerce field values to their declared types, check whole records and
stage moves. Pure: no I/O, no clock (the zone for naive date-times is passed in).

Contract:

* :func:`coerce_value` returns the value in its stored form or raises
  ``ValidationError("field '<name>': <reason>", field=<name>)``. ``None`` clears a field and
  is accepted unless the field is ``required``. Password values never appear in messages.
* :func:`validate_record` checks a whole create (``partial=False``) or update
  (``partial=True``) and returns the coerced dict, or raises one ``ValidationError`` listing
  every problem (``fields["problems"]``); nothing is half-applied.
* :func:`check_stage_move` raises ``Refused`` for a move the stage rules of FORMATS.md refuse.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from flowlane.core.errors import Refused, ValidationError
from flowlane.objects.types import FieldSpec, ObjectType, Schema

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_INTEGER_TEXT = re.compile(r"[+-]?\d+")
_PHONE = re.compile(r"\+?[0-9 ()\-]+")
_SHOW_MAX = 60


class _Bad(Exception):
    """A value does not fit its field; ``reason`` is the user-facing text (no field name)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Ctx:
    schema: Schema
    tz: tzinfo


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | Decimal | Fraction) and not isinstance(value, bool)


# ---- scalar coercers: (spec, value, ctx) -> stored value, or raise _Bad ------------------------


def _text(spec: FieldSpec, value: Any, ctx: _Ctx) -> str:
    if isinstance(value, str):
        if "\x00" in value:  # no database stores it in text, and no person types it
            raise _Bad("text must not contain NUL characters")
        return value
    if _is_real(value):
        return str(value)
    raise _Bad(f"{_show(value)} is not text")


def _email(spec: FieldSpec, value: Any, ctx: _Ctx) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{_show(value)} is not an email address")
    text = value.strip()
    local, at, domain = text.partition("@")
    ok = (
        at == "@"
        and local != ""
        and "@" not in domain
        and "." in domain
        and not domain.startswith(".")
        and not domain.endswith(".")
        and not any(c.isspace() for c in text)
    )
    if not ok:
        raise _Bad(f"{_show(value)} is not an email address")
    return text


def _phone(spec: FieldSpec, value: Any, ctx: _Ctx) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _PHONE.fullmatch(text.strip()):
        raise _Bad(f"{_show(value)} is not a phone number")
    digits = sum(c.isdigit() for c in text)
    if not 5 <= digits <= 20:
        raise _Bad(f"{_show(value)} is not a phone number (it has {digits} digits, not 5 to 20)")
    return text.strip()


def _parse_decimal(value: Any) -> Decimal | None:
    """A finite number from a number or numeric text; ``None`` if it is neither."""
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value.strip()):
            return None
        value = value.strip()
    elif not _is_real(value):
        return None
    try:
        number = (
            Decimal(value.numerator) / Decimal(value.denominator)
            if isinstance(value, Fraction)
            else Decimal(value)
        )
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _integer(spec: FieldSpec, value: Any, ctx: _Ctx) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _parse_decimal(value)
    if number is None or number != number.to_integral_value():
        raise _Bad(f"{_show(value)} is not an integer")
    return int(number)


def _number(spec: FieldSpec, value: Any, ctx: _Ctx) -> int | float:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad(f"{_show(value)} is not a finite number")
        return value
    number = _parse_decimal(value)
    if number is None:
        raise _Bad(f"{_show(value)} is not a number")
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(number)
    if not isinstance(value, str) and number == number.to_integral_value():
        return int(number)
    return float(number)


def _boolean(spec: FieldSpec, value: Any, ctx: _Ctx) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _Bad(f"{_show(value)} is not true or false")


def _date(spec: FieldSpec, value: Any, ctx: _Ctx) -> date:
    if isinstance(value, datetime):
        return (value.astimezone(ctx.tz) if value.tzinfo is not None else value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _Bad(f"{_show(value)} is not a date (expected YYYY-MM-DD)")


def _datetime(spec: FieldSpec, value: Any, ctx: _Ctx) -> datetime:
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        raise _Bad(f"{_show(value)} is not a date-time (expected ISO 8601, e.g. 2026-03-02T10:00)")
    # Aware values are kept as the same instant in the account's zone: every stored moment
    # then reads alike (``.hour``, templates), whatever offset it was given with.
    return moment.astimezone(ctx.tz) if moment.tzinfo is not None else moment.replace(tzinfo=ctx.tz)


def _dictionary_key(name: str, value: Any, ctx: _Ctx) -> str:
    keys = ctx.schema.dictionaries.get(name)
    if keys is None:
        raise _Bad(f"dictionary {name} does not exist")
    if not isinstance(value, str) or value not in keys:
        raise _Bad(f"{_show(value)} is not in dictionary {name} ({', '.join(keys)})")
    return value


def _enum(spec: FieldSpec, value: Any, ctx: _Ctx) -> str:
    if spec.dictionary is not None:
        return _dictionary_key(spec.dictionary, value, ctx)
    values = spec.values or ()
    if not isinstance(value, str) or value not in values:
        raise _Bad(f"{_show(value)} is not one of {', '.join(values)}")
    return value


def _link(spec: FieldSpec, value: Any, ctx: _Ctx) -> str:
    ref = spec.dictionary_ref
    if ref is not None:
        return _dictionary_key(ref, value, ctx)
    if spec.link_type is None:
        raise _Bad("the link names no type (missing 'to')")
    oid: Any = value
    if isinstance(value, Mapping):
        oid = value.get("id")
    elif not isinstance(value, str | int) and hasattr(value, "id"):
        oid = value.id
    if isinstance(oid, int) and not isinstance(oid, bool):
        oid = str(oid)
    if not isinstance(oid, str) or not oid:
        raise _Bad(f"{_show(value)} is not an id of a {spec.link_type}")
    return oid


def _list(spec: FieldSpec, value: Any, ctx: _Ctx) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _Bad(f"{_show(value)} is not a list")
    if spec.of is None:
        raise _Bad("the list has no item type (missing 'of')")
    out: list[Any] = []
    for i, item in enumerate(value, start=1):
        if item is None:
            raise _Bad(f"item {i} is empty")
        try:
            out.append(_coerce(spec.of, item, ctx))
        except _Bad as bad:
            raise _Bad(f"item {i}: {bad.reason}") from None
    return out


def _file(spec: FieldSpec, value: Any, ctx: _Ctx) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{_show(value)} is not a file reference")
    return value


def _password(spec: FieldSpec, value: Any, ctx: _Ctx) -> str:
    if not isinstance(value, str) or not value:
        raise _Bad("a password must be non-empty text")
    return value


_COERCERS: dict[str, Callable[[FieldSpec, Any, _Ctx], Any]] = {
    "string": _text,
    "text": _text,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "email": _email,
    "phone": _phone,
    "enum": _enum,
    "link": _link,
    "list": _list,
    "file": _file,
    "password": _password,
}


def _coerce(spec: FieldSpec, value: Any, ctx: _Ctx) -> Any:
    if value is None:
        if spec.required:
            raise _Bad("a value is required")
        return None
    coercer = _COERCERS.get(spec.type)
    if coercer is None:
        raise _Bad(f"unknown field type {spec.type!r}")
    return coercer(spec, value, ctx)


def _error(name: str, reason: str) -> ValidationError:
    return ValidationError(f"field '{name}': {reason}", field=name)


def coerce_value(spec: FieldSpec, value: Any, *, schema: Schema, tz: tzinfo) -> Any:
    """``value`` converted to the stored form of ``spec``'s type, or ``ValidationError``.

    Text, email, phone, file, password -> ``str``; integer -> ``int``; number -> ``int`` or
    ``float``; boolean -> ``bool``; date -> ``date``; datetime -> aware ``datetime`` (naive
    ones are taken in ``tz``); enum and dictionary links -> one of the current keys; object
    links -> the id; list -> a list of coerced items. ISO and numeric text is accepted.
    """
    try:
        return _coerce(spec, value, _Ctx(schema, tz))
    except _Bad as bad:
        raise _error(spec.name, bad.reason) from None


def value_problem(spec: FieldSpec, value: Any, *, schema: Schema, tz: tzinfo) -> str | None:
    """The reason ``value`` does not fit ``spec`` (without the field name), or ``None``."""
    try:
        _coerce(spec, value, _Ctx(schema, tz))
    except _Bad as bad:
        return bad.reason
    return None


# ---- records -------------------------------------------------------------------------------------


def _stages_text(otype: ObjectType) -> str:
    return ", ".join(otype.all_stages)


def _stage_problem(otype: ObjectType, target: Any, current: str | None) -> str | None:
    if not otype.has_stages:
        return f"field 'stage' does not exist on type '{otype.key}' (it has no stages)"
    if target is None:
        return "field 'stage': a value is required"
    if not isinstance(target, str) or target not in otype.all_stages:
        return (
            f"field 'stage': stage {_show(target)} does not exist on type '{otype.key}' "
            f"(stages: {_stages_text(otype)})"
        )
    if current is not None:
        try:
            check_stage_move(otype, current, target)
        except Refused as exc:
            return f"field 'stage': {exc.message}"
    return None


def _field_problem(otype: ObjectType, name: Any, value: Any, ctx: _Ctx) -> tuple[str | None, Any]:
    if name in ("id", "type"):
        return f"field '{name}' cannot be set", None
    spec = otype.fields.get(name) if isinstance(name, str) else None
    if spec is None:
        return f"field {_quote(name)} does not exist on type '{otype.key}'", None
    try:
        return None, _coerce(spec, value, ctx)
    except _Bad as bad:
        return f"field '{name}': {bad.reason}", None


def _quote(name: Any) -> str:
    return f"'{name}'" if isinstance(name, str) else repr(name)


def _groups_problem(otype: ObjectType, out: Mapping[str, Any], schema: Schema) -> str | None:
    groups = out.get("groups")
    if otype.key != "user" or not isinstance(groups, list):
        return None
    unknown = [g for g in groups if g not in schema.groups]
    if not unknown:
        return None
    known = ", ".join(schema.groups) if schema.groups else "none are declared"
    return f"field 'groups': unknown group {_show(unknown[0])} (groups: {known})"


def _defaults(
    otype: ObjectType,
    given: Mapping[Any, Any],
    out: dict[str, Any],
    ctx: _Ctx,
    problems: list[tuple[str, str]],
) -> None:
    """On create: fill defaults, check required fields, start a staged object in its first
    stage."""
    for name, spec in otype.fields.items():
        if name in given:
            continue
        if spec.default is not None:
            try:
                out[name] = _coerce(spec, copy.deepcopy(spec.default), ctx)
            except _Bad as bad:
                problems.append((name, f"field '{name}': default: {bad.reason}"))
        elif spec.required:
            problems.append((name, f"field '{name}': a value is required"))
    if otype.has_stages and "stage" not in given:
        out["stage"] = otype.stages[0]


def validate_record(
    otype: ObjectType,
    data: Mapping[str, Any],
    *,
    schema: Schema,
    tz: tzinfo,
    partial: bool = False,
    current_stage: str | None = None,
) -> dict[str, Any]:
    """The coerced record for a create (``partial=False``) or the coerced changes of an
    update (``partial=True``); ``ValidationError`` listing every problem otherwise.

    Unknown fields, ``id`` and ``type`` are refused; ``stage`` only on staged types and only a
    known stage (with ``current_stage`` given, also the move rules of
    :func:`check_stage_move`). A create gets defaults, its required fields checked and, for a
    staged type, the first stage unless ``stage`` is given. A user's ``groups`` must be groups
    of the schema. The input is never modified.
    """
    if not isinstance(data, Mapping):
        raise ValidationError(f"{otype.key}: the data must be a mapping, not {_show(data)}")
    ctx = _Ctx(schema, tz)
    out: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, value in data.items():
        if name == "stage":
            problem = _stage_problem(otype, value, current_stage if partial else None)
            clean = value
        else:
            problem, clean = _field_problem(otype, name, value, ctx)
        if problem is None:
            out[name] = clean
        else:
            problems.append((str(name), problem))
    if not partial:
        _defaults(otype, data, out, ctx, problems)
    groups = _groups_problem(otype, out, schema)
    if groups is not None:
        problems.append(("groups", groups))
    if problems:
        texts = [text for _, text in problems]
        raise ValidationError("; ".join(texts), field=problems[0][0], problems=texts)
    return out


def check_stage_move(otype: ObjectType, current: str | None, target: str) -> None:
    """Refuse a stage move FORMATS.md does not allow: on a type without stages, to an unknown
    stage, or out of a final stage (staying in it is no move). ``current=None`` is a new
    object, which may start in any stage."""
    if not otype.has_stages:
        raise Refused(f"type '{otype.key}' has no stages", type=otype.key)
    if target not in otype.all_stages:
        raise Refused(
            f"stage {_show(target)} does not exist on type '{otype.key}' "
            f"(stages: {_stages_text(otype)})",
            type=otype.key,
            stage=target,
        )
    if current is not None and current in otype.final_stages and target != current:
        raise Refused(f"{otype.key} is in final stage '{current}'", type=otype.key, stage=current)


def link_problems(
    otype: ObjectType, data: Mapping[str, Any], lookup: Callable[[str], str | None]
) -> list[str]:
    """Link fields that name no object of their type. ``lookup(id)`` gives an object's type
    (None when there is no such object)."""
    out = []
    for name, value in data.items():
        spec = otype.fields.get(name)
        target = spec.link_type if spec is not None else None
        if target is None or value is None:
            continue
        if lookup(str(value)) != target:
            out.append(f"field '{name}': no {target} {str(value)!r}")
    return out
