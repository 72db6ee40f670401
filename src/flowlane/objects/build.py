"""Build a :class:`Schema` from an already loaded ``objects.yaml`` (or a field spec from a
process file), checking everything the pydantic models cannot.

Contract:

* :func:`build_schema` returns the built-in types merged with the declared ones (a declared
  built-in type adds fields and may set label and stages; a declared field replaces the
  built-in one), or raises one ``ValidationError`` with every problem, one per line, each
  located as ``<source>:<where>: <problem>`` (``fields["problems"]`` holds the lines).
  ``<where>`` is ``<type>.<field>`` or ``<type>`` for the semantic checks, and the key path
  (``types.event.fields.seats``) for shape errors found by the models. Pydantic's own texts
  never reach the user.
* :func:`field_from_dict` does the same for one field written in objects.yaml syntax
  (process variables, task inputs); its messages are ``field '<name>': <problem>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any

from pydantic import ValidationError as PydanticError

from flowlane.core.errors import ValidationError
from flowlane.objects.file import FIELD_TYPES, FieldSpecModel, ObjectsFile, TypeSpec
from flowlane.objects.record import value_problem
from flowlane.objects.types import (
    RESERVED_FIELDS,
    FieldSpec,
    ObjectType,
    Schema,
    builtin_types,
)

# The keys of a field spec that belong to one field type only.
_ONLY_FOR: tuple[tuple[str, str], ...] = (
    ("values", "enum"),
    ("dictionary", "enum"),
    ("to", "link"),
    ("of", "list"),
)
_UNION_TAGS = frozenset({"name", "spec"})


# ---- pydantic errors -> located messages -------------------------------------------------------


def _loc_text(loc: Iterable[Any]) -> str:
    out = ""
    previous: Any = None
    for part in loc:
        if previous == "of" and part in _UNION_TAGS:
            previous = part
            continue  # the tag of the `of` union (type name or nested spec)
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
        previous = part
    return out


def _input_text(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_EXPECTED = {
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _pydantic_problem(err: Mapping[str, Any]) -> tuple[str, str]:
    """``(where, message)`` for one pydantic error, in flowlane's words."""
    loc = list(err["loc"])
    kind = err["type"]
    if kind in ("extra_forbidden", "missing"):
        where = _loc_text(loc[:-1])
        key = loc[-1]
        text = "unknown key" if kind == "extra_forbidden" else "missing required key"
        return where, f"{text} {key!r}"
    value = err.get("input")
    if loc and loc[-1] == "[key]":
        return _loc_text(loc[:-2]), f"the key {_input_text(value)} must be text"
    where = _loc_text(loc)
    if kind == "literal_error":
        return where, f"{_input_text(value)} is not a field type ({', '.join(FIELD_TYPES)})"
    expected = _EXPECTED.get(kind)
    if expected is not None:
        return where, f"expected {expected}, not {_input_text(value)}"
    return where, f"invalid value {_input_text(value)}"


def _pydantic_problems(exc: PydanticError) -> list[tuple[str, str]]:
    return [_pydantic_problem(err) for err in exc.errors()]


# ---- field checks --------------------------------------------------------------------------------


def _spec(name: str, model: FieldSpecModel) -> FieldSpec:
    of: FieldSpec | None = None
    if isinstance(model.of, str):
        of = FieldSpec(name, model.of)
    elif model.of is not None:
        of = _spec(name, model.of)
    return FieldSpec(
        name=name,
        type=model.type,
        label=model.label,
        values=tuple(model.values) if model.values is not None else None,
        dictionary=model.dictionary,
        to=model.to,
        of=of,
        default=model.default,
        required=model.required,
    )


def _enum_problems(spec: FieldSpec, dictionaries: Mapping[str, Any] | None) -> list[str]:
    if spec.values is None and spec.dictionary is None:
        return ["an enum needs 'values' or 'dictionary'"]
    if spec.values is not None and spec.dictionary is not None:
        return ["an enum takes 'values' or 'dictionary', not both"]
    if spec.values is not None:
        if not spec.values:
            return ["an enum needs at least one value"]
        return [f"value {v!r} is listed twice" for v in _duplicates(spec.values)]
    if dictionaries is not None and spec.dictionary not in dictionaries:
        return [f"dictionary {spec.dictionary!r} does not exist"]
    return []


def _link_problems(
    spec: FieldSpec, types: Iterable[str] | None, dictionaries: Mapping[str, Any] | None
) -> list[str]:
    if not spec.to:
        return ["a link needs 'to' (an object type or dictionary:<key>)"]
    ref = spec.dictionary_ref
    if ref is not None:
        if not ref:
            return [f"'to: {spec.to}' names no dictionary"]
        if dictionaries is not None and ref not in dictionaries:
            return [f"dictionary {ref!r} does not exist"]
    elif types is not None and spec.to not in types:
        return [f"link to unknown type {spec.to!r}"]
    return []


def field_problems(
    spec: FieldSpec,
    *,
    types: Iterable[str] | None = None,
    dictionaries: Mapping[str, Any] | None = None,
) -> list[str]:
    """Problems of one field spec (without its location). References to types and
    dictionaries are checked only when ``types`` / ``dictionaries`` are given."""
    problems = [
        f"'{key}' is only for {kind} fields"
        for key, kind in _ONLY_FOR
        if getattr(spec, key) is not None and spec.type != kind
    ]
    if spec.type == "enum":
        problems += _enum_problems(spec, dictionaries)
    elif spec.type == "link":
        problems += _link_problems(spec, list(types) if types is not None else None, dictionaries)
    elif spec.type == "list":
        if spec.of is None:
            problems.append("a list needs 'of' (the item type)")
        else:
            item = field_problems(spec.of, types=types, dictionaries=dictionaries)
            problems += [f"list items: {p}" for p in item]
    return problems


def _duplicates(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    twice: list[str] = []
    for v in values:
        if v in seen and v not in twice:
            twice.append(v)
        seen.add(v)
    return twice


def field_from_dict(
    name: str, data: Mapping[str, Any], *, schema: Schema | None = None
) -> FieldSpec:
    """A :class:`FieldSpec` from objects.yaml field syntax, or ``ValidationError`` naming
    the field. With ``schema`` given, its types and dictionaries are checked too."""
    try:
        model = FieldSpecModel.model_validate(data)
    except PydanticError as exc:
        lines = [
            f"field '{name}': {where + ': ' if where else ''}{text}"
            for where, text in _pydantic_problems(exc)
        ]
        raise ValidationError("\n".join(lines), field=name, problems=lines) from None
    spec = _spec(name, model)
    problems = field_problems(
        spec,
        types=schema.types if schema is not None else None,
        dictionaries=schema.dictionaries if schema is not None else None,
    )
    if not problems and schema is not None and spec.default is not None:
        reason = value_problem(spec, spec.default, schema=schema, tz=UTC)
        problems += [f"default: {reason}"] if reason else []
    if problems:
        lines = [f"field '{name}': {p}" for p in problems]
        raise ValidationError("\n".join(lines), field=name, problems=lines)
    return spec


# ---- the schema ----------------------------------------------------------------------------------


class _Builder:
    """Collects located problems while turning an :class:`ObjectsFile` into a Schema."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def problem(self, where: str, text: str) -> None:
        if not self.source:  # one type given to a service: `<type>.<field>: <problem>`
            self.problems.append(f"{where}: {text}" if where else text)
            return
        self.problems.append(
            f"{self.source}:{where}: {text}" if where else f"{self.source}: {text}"
        )

    def fail(self) -> ValidationError:
        return ValidationError(
            "\n".join(self.problems), source=self.source, problems=list(self.problems)
        )

    def type_(self, key: str, spec: TypeSpec, base: ObjectType | None) -> ObjectType:
        fields = dict(base.fields) if base is not None else {}
        for name, model in spec.fields.items():
            if name in RESERVED_FIELDS:
                self.problem(f"{key}.{name}", f"'{name}' is a reserved name")
                continue
            fields[name] = _spec(name, model)
        self.stages(key, spec)
        for name in _duplicates(spec.card):
            self.problem(f"{key}.card", f"field {name!r} is listed twice")
        for name in spec.card:
            if name not in fields:
                self.problem(f"{key}.card", f"{name!r} is not a field of {key}")
            elif name in fields and fields[name].write_only:
                self.problem(f"{key}.card", f"{name!r} is a password: a card never shows it")
        return ObjectType(
            key=key,
            label=spec.label or (base.label if base is not None else key),
            fields=fields,
            stages=tuple(spec.stages),
            success=spec.success,
            failure=spec.failure,
            builtin=base is not None,
            card=tuple(spec.card if spec.card else (base.card if base is not None else ())),
        )

    def stages(self, key: str, spec: TypeSpec) -> None:
        for stage in _duplicates(spec.stages):
            self.problem(key, f"stage {stage!r} is listed twice")
        finals = [(w, s) for w, s in (("success", spec.success), ("failure", spec.failure)) if s]
        for which, stage in finals:
            if not spec.stages:
                self.problem(key, f"'{which}' needs 'stages'")
            elif stage in spec.stages:
                self.problem(key, f"{which} stage {stage!r} must not be among the stages")
        if spec.success is not None and spec.success == spec.failure:
            self.problem(key, f"success and failure are both {spec.success!r}")

    def fields(self, otype: ObjectType, declared: Iterable[str], schema: Schema) -> None:
        for name in declared:
            spec = otype.fields.get(name)
            if spec is None:
                continue
            found = field_problems(spec, types=schema.types, dictionaries=schema.dictionaries)
            if not found and spec.default is not None:
                reason = value_problem(spec, spec.default, schema=schema, tz=UTC)
                found += [f"default: {reason}"] if reason else []
            for text in found:
                self.problem(f"{otype.key}.{name}", text)

    def lists(self, parsed: ObjectsFile) -> None:
        for key, values in parsed.dictionaries.items():
            for value in _duplicates(values):
                self.problem(f"dictionaries.{key}", f"value {value!r} is listed twice")
        for group in _duplicates(parsed.groups):
            self.problem("groups", f"group {group!r} is listed twice")


def build_schema(data: Mapping[str, Any] | None, *, source: str = "objects.yaml") -> Schema:
    """The account's :class:`Schema` from a loaded objects.yaml (``None``: built-ins only).

    Raises ``ValidationError`` listing every problem as ``<source>:<where>: <problem>``.
    """
    builder = _Builder(source)
    try:
        parsed = ObjectsFile.model_validate({} if data is None else data)
    except PydanticError as exc:
        for where, text in _pydantic_problems(exc):
            builder.problem(where, text)
        raise builder.fail() from None
    builder.lists(parsed)
    types = builtin_types()
    for key, spec in parsed.types.items():
        types[key] = builder.type_(key, spec, types.get(key))
    schema = Schema(
        types=types,
        dictionaries={k: list(v) for k, v in parsed.dictionaries.items()},
        groups=tuple(parsed.groups),
    )
    for key, spec in parsed.types.items():
        builder.fields(types[key], spec.fields, schema)
    if builder.problems:
        raise builder.fail()
    return schema


# ---- one type: services and stored specs -------------------------------------------------------


def build_type(key: str, data: Mapping[str, Any] | None, *, schema: Schema) -> ObjectType:
    """One object type from objects.yaml syntax for one type (``label``, ``stages``,
    ``success``, ``failure``, ``fields``), checked exactly as :func:`build_schema` checks a
    declared type: against ``schema``'s types (and ``key`` itself, for links to its own
    kind) and dictionaries. A built-in ``key`` extends the built-in type.

    Raises ``ValidationError`` listing every problem as ``<type>.<field>: <problem>``
    (``fields["problems"]``).
    """
    builder = _Builder("")
    try:
        spec = TypeSpec.model_validate({} if data is None else data)
    except PydanticError as exc:
        for where, text in _pydantic_problems(exc):
            builder.problem(f"{key}.{where}" if where else key, text)
        raise builder.fail() from None
    otype = builder.type_(key, spec, builtin_types().get(key))
    trial = Schema(
        types={**schema.types, key: otype},
        dictionaries=schema.dictionaries,
        groups=schema.groups,
    )
    builder.fields(otype, spec.fields, trial)
    if builder.problems:
        raise builder.fail()
    return otype


def load_type(key: str, data: Mapping[str, Any]) -> ObjectType:
    """A type as stored by :func:`type_spec` (already checked when it was stored: links and
    dictionaries are not looked up again). ``ValidationError`` if the spec is malformed."""
    builder = _Builder(f"stored type {key}")
    try:
        spec = TypeSpec.model_validate(data)
    except PydanticError as exc:
        for where, text in _pydantic_problems(exc):
            builder.problem(where, text)
        raise builder.fail() from None
    otype = builder.type_(key, spec, builtin_types().get(key))
    if builder.problems:
        raise builder.fail()
    return otype


def field_spec(spec: FieldSpec) -> dict[str, Any]:
    """``spec`` in objects.yaml field syntax (only the keys that are set)."""
    out: dict[str, Any] = {"type": spec.type}
    if spec.label is not None:
        out["label"] = spec.label
    if spec.values is not None:
        out["values"] = list(spec.values)
    if spec.dictionary is not None:
        out["dictionary"] = spec.dictionary
    if spec.to is not None:
        out["to"] = spec.to
    if spec.of is not None:
        out["of"] = field_spec(spec.of)
    if spec.default is not None:
        out["default"] = spec.default
    if spec.required:
        out["required"] = True
    return out


def type_spec(otype: ObjectType) -> dict[str, Any]:
    """``otype`` in objects.yaml syntax for one type, every field listed (built-in ones
    too): :func:`load_type` gives the same type back."""
    out: dict[str, Any] = {"label": otype.label}
    if otype.stages:
        out["stages"] = list(otype.stages)
    if otype.success is not None:
        out["success"] = otype.success
    if otype.failure is not None:
        out["failure"] = otype.failure
    out["fields"] = {name: field_spec(spec) for name, spec in otype.fields.items()}
    if otype.card:
        out["card"] = list(otype.card)
    return out
