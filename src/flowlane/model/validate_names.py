"""What validation shares: the checker's context, and the checks of names and texts.

:class:`Checker` holds one process with what it can be resolved against (the schema, the
recipe's templates, processes and forms) and collects the located diagnostics. The helpers
here check what many parameters have in common: expressions and the names they read
(counters, variables, fields of the object type, one link deep), ``"=expr"`` values nested in
parameters, Jinja templates, durations, assignments, object types, stages and groups.

Whatever cannot be resolved is an error inside a recipe (``in_recipe`` with the resource
given) and a warning otherwise: outside a recipe only the built-in types are known.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from flowlane.core.duration import parse_duration
from flowlane.core.errors import DurationError, ExpressionError, ValidationError
from flowlane.expr import compile_expression, is_expression_literal
from flowlane.model.diagnostic import Diagnostic
from flowlane.model.form import form_link_problems
from flowlane.model.process import ProcessFile
from flowlane.model.render import template_name_problems, template_problem, template_refs
from flowlane.model.template import Template
from flowlane.objects import ObjectType, Schema, field_from_dict, value_problem

ASSIGN_WORDS = (
    "object_manager",
    "personal_manager",
    "executors",
    "answer.by",
    "client",
    "object",
    "none",
)
_ASSIGN_HELP = (
    "use object_manager, personal_manager, executors, answer.by, user:<id>, none or an =expression"
)
_ALWAYS_FIELDS = ("id", "type")


@dataclass
class Checker:
    """One process being validated, what it is resolved against, and what was found."""

    spec: ProcessFile
    source: str
    schema: Schema
    in_recipe: bool
    schema_known: bool
    templates: Mapping[str, Template] | None = None
    processes: Mapping[str, ProcessFile] | None = None
    forms: Collection[str] | None = None
    declared_vars: frozenset[str] = frozenset()
    otype: ObjectType | None = None
    found: list[Diagnostic] = field(default_factory=list)

    def error(self, block: str, message: str) -> None:
        self.found.append(Diagnostic(self.source, block, message))

    def warn(self, block: str, message: str) -> None:
        self.found.append(Diagnostic(self.source, block, message, "warning"))

    def report(self, block: str, message: str, *, error: bool) -> None:
        (self.error if error else self.warn)(block, message)

    def known(self, resource: object) -> bool:
        """Whether a missing name in ``resource`` is an error (a recipe gave it) or a warning."""
        return self.in_recipe and resource is not None


# ---- expressions and the names they read ------------------------------------------------


def check_expression(
    ck: Checker, block: str, param: str, source: object, *, otype: ObjectType | None
) -> None:
    """An always-expression parameter (``if``, ``until``, ``entry``, ``where``)."""
    if not isinstance(source, str):
        ck.error(block, f"{param}: an expression must be text, not {source!r}")
        return
    try:
        expression = compile_expression(source)
    except ExpressionError as exc:
        ck.error(block, f"{param}: invalid expression {source!r}: {exc.message}")
        return
    for path in sorted(expression.paths):
        if len(path) >= 2 and path[0] in _PATH_CHECKS:
            _PATH_CHECKS[path[0]](ck, block, param, path, otype)


def check_values(
    ck: Checker, block: str, param: str, value: Any, *, otype: ObjectType | None
) -> None:
    """Every ``"=expr"`` string in ``value`` (nested mappings and lists included)."""
    if is_expression_literal(value):
        check_expression(ck, block, param, value[1:], otype=otype)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_values(ck, block, f"{param}.{key}" if param else str(key), item, otype=otype)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_values(ck, block, f"{param}[{index}]", item, otype=otype)


def _counter_path(
    ck: Checker, block: str, param: str, path: tuple[str, ...], otype: ObjectType | None
) -> None:
    if path[1] not in ck.spec.counters:
        ck.error(block, f"{param}: {unknown_counter(path[1])}")


def unknown_counter(name: str) -> str:
    return f"unknown counter '{name}' (declare it in 'counters:')"


def _vars_path(
    ck: Checker, block: str, param: str, path: tuple[str, ...], otype: ObjectType | None
) -> None:
    name = path[1]
    if name in ck.declared_vars:
        return
    if ck.known(ck.processes):
        ck.error(block, f"{param}: unknown variable '{name}' (declare it in 'variables:')")
    else:
        ck.warn(
            block,
            f"{param}: variable '{name}' is not in 'variables:' "
            "(what parent processes pass is not known outside a recipe)",
        )


def _object_path(
    ck: Checker, block: str, param: str, path: tuple[str, ...], otype: ObjectType | None
) -> None:
    if otype is None:
        return  # an unknown type is reported once, where it is named
    problem = field_problem(otype, path[1])
    if problem:
        ck.error(block, f"{param}: {problem} ({'.'.join(path[:2])})")
        return
    spec = otype.field(path[1])
    target = ck.schema.types.get(spec.link_type or "") if spec is not None else None
    if target is not None and len(path) >= 3:
        problem = field_problem(target, path[2])
        if problem:
            ck.error(block, f"{param}: {problem} ({'.'.join(path[:3])})")


_PATH_CHECKS = {"counters": _counter_path, "vars": _vars_path, "object": _object_path}


def field_problem(otype: ObjectType, name: str) -> str | None:
    """Why ``name`` is not a field of ``otype`` (``id``, ``type``, and ``stage`` if staged)."""
    if name in _ALWAYS_FIELDS or otype.field(name) is not None:
        return None
    return f"type '{otype.key}' has no field '{name}'"


# ---- other parameters ---------------------------------------------------------------------


def check_template(
    ck: Checker, block: str, param: str, text: str | None, *, extra: frozenset[str] = frozenset()
) -> None:
    """A title, text, script, subject or body: Jinja2 that must parse and reads only names in
    scope (:data:`~flowlane.model.render.TEMPLATE_NAMES` and ``extra``), known filters and
    tests, and fields that exist (see :func:`check_template_paths`)."""
    problem = template_problem(text)
    if problem:
        ck.error(block, f"{param}: {problem}")
        return
    for line in template_name_problems(text, extra):
        ck.error(block, f"{param}: {line}")
    check_template_paths(ck, block, param, text)
    if isinstance(ck.forms, Mapping) and ck.in_recipe:
        for line in form_link_problems(text, ck.forms):
            ck.error(block, f"{param}: {line}")


_ANSWER_KEYS = ("option", "fields", "by")


def check_template_paths(ck: Checker, block: str, param: str, text: str | None) -> None:
    """The attribute chains a template reads: ``object.<field>`` (one link deep) of the
    process's type, ``recipient.<field>`` and ``answer.by.<field>`` of users,
    ``vars.<name>`` declared, ``counters.<name>`` declared, ``answer.<option|fields|by>``.
    Anything else (``now``, ``answer.fields``, deeper links) is not checked."""
    refs = template_refs(text) if text and "{" in text else None
    if refs is None:
        return
    user = ck.schema.types.get("user")
    for path in sorted(refs.paths):
        head = path[0]
        if head in _PATH_CHECKS:
            _PATH_CHECKS[head](ck, block, param, path, ck.otype)
        elif head == "recipient":
            _object_path(ck, block, param, path, user)
        elif head == "answer" and path[1] not in _ANSWER_KEYS:
            keys = ", ".join(_ANSWER_KEYS)
            ck.error(block, f"{param}: answer has no '{path[1]}' ({keys})")
        elif head == "answer" and path[1] == "by" and len(path) > 2:
            _object_path(ck, block, param, ("answer.by", *path[2:]), user)


def check_duration(ck: Checker, block: str, param: str, text: str | None) -> None:
    if text is None:
        return
    try:
        parse_duration(text)
    except DurationError as exc:
        ck.error(block, f"{param}: {exc.message}")


def check_assign(ck: Checker, block: str, param: str, value: str | None) -> None:
    """An ``assign``: a known word, ``user:<id>``, or an ``=expression``."""
    if value is None or value in ASSIGN_WORDS or value.startswith("user:"):
        return
    if is_expression_literal(value):
        check_expression(ck, block, param, value[1:], otype=ck.otype)
        return
    ck.error(block, f"{param}: unknown assignment {value!r} ({_ASSIGN_HELP})")


def check_fields(ck: Checker, block: str, param: str, fields: Mapping[str, Any]) -> None:
    """Inputs or variables written in objects.yaml field syntax."""
    schema = ck.schema if ck.schema_known else None
    for name, data in fields.items():
        try:
            field_from_dict(name, data, schema=schema)
        except ValidationError as exc:
            for line in exc.fields.get("problems") or [exc.message]:
                ck.error(block, f"{param}: {line}")


def resolve_type(ck: Checker, block: str, param: str, key: str) -> ObjectType | None:
    """The object type ``key``; reports it when the schema has no such type."""
    otype = ck.schema.types.get(key)
    if otype is not None:
        return otype
    prefix = f"{param}: " if param else ""
    if ck.schema_known:
        ck.error(block, f"{prefix}unknown object type '{key}'")
    else:
        ck.warn(block, f"{prefix}object type '{key}' is not built in: not checked outside a recipe")
    return None


def check_stage(ck: Checker, block: str, param: str, stage: str, otype: ObjectType) -> None:
    if not otype.has_stages:
        ck.error(block, f"{param}: type '{otype.key}' has no stages")
    elif stage not in otype.all_stages:
        stages = ", ".join(otype.all_stages)
        ck.error(block, f"{param}: stage '{stage}' does not exist on type '{otype.key}' ({stages})")


def check_groups(ck: Checker, block: str, param: str, groups: str | list[str] | None) -> None:
    names = [] if groups is None else [groups] if isinstance(groups, str) else groups
    for name in names:
        if is_expression_literal(name):
            check_expression(ck, block, param, name[1:], otype=ck.otype)
        elif not ck.schema_known:
            ck.warn(block, f"{param}: group '{name}' is not checked outside a recipe")
        elif name not in ck.schema.groups:
            declared = ", ".join(ck.schema.groups) or "none declared"
            ck.error(block, f"{param}: group '{name}' does not exist (groups: {declared})")


def check_data(
    ck: Checker, block: str, param: str, data: Mapping[str, Any], otype: ObjectType | None
) -> None:
    """Field values written to an object (``set``, ``create.data``): fields that exist and
    literal values that fit them."""
    if otype is None:
        return
    for name, value in data.items():
        if name in _ALWAYS_FIELDS:
            ck.error(block, f"{param}: field '{name}' cannot be set")
            continue
        problem = field_problem(otype, name)
        spec = otype.field(name)
        if problem or spec is None:
            ck.error(block, f"{param}: {problem}")
            continue
        if value is None or is_expression_literal(value):
            continue
        reason = value_problem(spec, value, schema=ck.schema, tz=UTC)
        if reason:
            ck.error(block, f"{param}.{name}: {reason}")
