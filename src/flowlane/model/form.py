"""Public form files ``forms/<key>.yaml`` (docs/formats-extensions.md "Forms").

Contract:

* :class:`FormSpec` parses one form file (shape only; unknown keys are errors).
* :func:`form_inputs` resolves the form against a schema: every visible and hidden input
  with the :class:`~flowlane.objects.FieldSpec` its value is coerced with (the target type's
  field, with the form's label / required laid over it, or the form's own spec for
  ``vars``-only inputs).
* :func:`form_problems` lists what is wrong with a parsed form against a schema, each
  problem naming the parameter (``fields.rating: ...``). A recipe's forms are checked by
  :func:`flowlane.model.validate.validate_recipe`.

Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, timedelta
from typing import Any, Literal

from jinja2 import Environment, TemplateSyntaxError, nodes
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from flowlane.core.duration import parse_duration
from flowlane.core.errors import DurationError, ValidationError
from flowlane.objects import FieldSpec, Schema, field_from_dict, value_problem
from flowlane.objects.file import FieldTypeName

#: Field types a visitor can type or pick on a public form.
VISIBLE_TYPES = frozenset(
    {"string", "text", "integer", "number", "boolean", "date", "datetime", "email", "phone"}
    | {"enum", "link"}
)
#: Names an input may not have: fields no form sets, and the form's own posted names.
RESERVED = frozenset({"id", "type", "stage", "consent", "object"})
CONSENT = "consent"
"""The posted name of the consent checkbox."""
_PARSER = Environment(autoescape=False)
"""Parses templates to find ``form_link`` calls (nothing is rendered with it)."""


def _drop_nulls(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if v is not None}
    return data


class FormField(BaseModel):
    """One input: objects.yaml field syntax, every key optional for a field of the target
    type (its spec is used), plus ``vars``, ``help`` and, for hidden inputs, ``query``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FieldTypeName | None = Field(
        default=None, description="The field type; for a field of the target type, its type."
    )
    label: str | None = Field(default=None, description="Shown next to the input.")
    help: str | None = Field(default=None, description="A hint shown under the input.")
    values: list[str] | None = Field(default=None, description="enum only: the allowed values.")
    dictionary: str | None = Field(default=None, description="enum only: a dictionary's values.")
    to: str | None = Field(default=None, description="link only: an object type or dictionary.")
    required: StrictBool | None = Field(
        default=None, description="A value must be given (default: as the target field says)."
    )
    vars: StrictBool = Field(
        default=False,
        description="The value only goes to the event data (`form:<key>`), not to the object.",
    )
    query: str | None = Field(
        default=None, description="hidden only: the URL query parameter (default: the name)."
    )

    @model_validator(mode="before")
    @classmethod
    def _empty(cls, data: Any) -> Any:
        return {} if data is None else _drop_nulls(data)


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(description="The consent statement shown next to the checkbox.")
    required: StrictBool = Field(default=True, description="The form is refused without it.")


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(default=5, ge=1, description="Submissions allowed per address ...")
    per: str = Field(default="10m", description="... within this duration.")


class SetFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    set: dict[str, Any] = Field(default_factory=dict, description="Field values to write.")


class LinkSettings(BaseModel):
    """How signed links to an update form behave."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expires: str = Field(default="30d", description="A link is valid this long after issue.")
    single_use: StrictBool = Field(default=True, description="A link may be submitted once.")
    on_open: SetFields | None = Field(default=None, description="Written when a link is opened.")
    on_submit: SetFields | None = Field(
        default=None, description="Written with the submitted values."
    )

    @model_validator(mode="before")
    @classmethod
    def _empty(cls, data: Any) -> Any:
        return {} if data is None else _drop_nulls(data)


class FormSpec(BaseModel):
    """A public form: what it shows, what it writes, how it is protected."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="flowlane form")

    title: str | None = Field(default=None, description="The page title (default: the key).")
    description: str | None = Field(default=None, description="Text above the inputs.")
    type: str | None = Field(
        default=None,
        description="The object type a submission creates (or, `mode: update`, changes); "
        "without it the form only fires its event.",
    )
    mode: Literal["create", "update"] = Field(
        default="create",
        description="`update`: opened only through a signed link naming the object.",
    )
    fields: dict[str, FormField] = Field(default_factory=dict, description="Visible inputs.")
    hidden: dict[str, FormField] = Field(
        default_factory=dict, description="Inputs filled from the URL query (e.g. an event id)."
    )
    consent: Consent | None = Field(default=None, description="A consent checkbox.")
    honeypot: str = Field(
        default="website", description="An input hidden from people; a filled one is a bot."
    )
    rate_limit: RateLimit = Field(default_factory=RateLimit, description="Per address.")
    success: str = Field(
        default="Thank you! We have received your answer.",
        description="Shown after a submission.",
    )
    link: LinkSettings | None = Field(
        default=None, description="`mode: update` only: signed link settings."
    )
    event: StrictBool = Field(default=True, description="Fire `form:<key>` on a submission.")

    @model_validator(mode="before")
    @classmethod
    def _empty(cls, data: Any) -> Any:
        return _drop_nulls(data)

    @property
    def link_settings(self) -> LinkSettings:
        return self.link or LinkSettings()


@dataclass(frozen=True)
class FormInput:
    """One resolved input: ``spec`` coerces the posted value; ``to_object`` says whether the
    value is written to the object (else it only goes to the event data)."""

    name: str
    spec: FieldSpec
    label: str
    help: str | None
    hidden: bool
    to_object: bool
    query: str


def duration_of(text: str) -> timedelta:
    """A form's duration parameter (``rate_limit.per``, ``link.expires``)."""
    return parse_duration(text)


def _own_spec(name: str, field: FormField, schema: Schema | None) -> FieldSpec:
    data = field.model_dump(exclude_none=True, exclude={"vars", "help", "query", "required"})
    data["required"] = bool(field.required)
    return field_from_dict(name, data, schema=schema)


def _resolve(
    name: str, field: FormField, schema: Schema, type_key: str | None, *, hidden: bool
) -> tuple[FormInput | None, list[str]]:
    where = f"{'hidden' if hidden else 'fields'}.{name}"
    if name in RESERVED:
        return None, [f"{where}: the name '{name}' is reserved"]
    if field.query is not None and not hidden:
        return None, [f"{where}: 'query' is only for hidden inputs"]
    otype = schema.types.get(type_key or "")
    target = otype.fields.get(name) if otype is not None else None
    problems: list[str] = []
    if target is None:
        if otype is not None and not field.vars:
            return None, [
                f"{where}: type '{otype.key}' has no field '{name}' "
                "(an input that only goes to the event data needs 'vars: true')"
            ]
        if field.type is None:
            return None, [f"{where}: an input that is not a field of the type needs 'type'"]
        try:
            spec = _own_spec(name, field, schema)
        except ValidationError as exc:
            lines = exc.fields.get("problems") or [exc.message]
            return None, [f"{where}: {line}" for line in lines]
    else:
        own = field.model_dump(exclude_none=True, exclude={"vars", "help", "query", "label"})
        own.pop("required", None)
        if own.get("type", target.type) != target.type:
            problems.append(
                f"{where}: type '{own['type']}' differs from the field's type '{target.type}'"
            )
        for key in sorted(set(own) - {"type"}):
            problems.append(f"{where}: '{key}' comes from the field of type '{type_key}'")
        spec = replace(
            target,
            required=field.required if field.required is not None else target.required,
        )
    if not hidden and spec.type not in VISIBLE_TYPES:
        problems.append(f"{where}: a {spec.type} field cannot be filled on a public form")
    if not hidden and spec.link_type is not None:
        problems.append(
            f"{where}: a link to objects cannot be picked on a public form (make it hidden)"
        )
    label = field.label or spec.label or name.replace("_", " ").capitalize()
    item = FormInput(
        name=name,
        spec=replace(spec, label=label),
        label=label,
        help=field.help,
        hidden=hidden,
        to_object=target is not None and not field.vars,
        query=field.query or name,
    )
    return item, problems


def form_inputs(form: FormSpec, schema: Schema) -> list[FormInput]:
    """Visible then hidden inputs of a valid form (see :func:`form_problems`)."""
    out: list[FormInput] = []
    for hidden, group in ((False, form.fields), (True, form.hidden)):
        for name, field in group.items():
            item, _ = _resolve(name, field, schema, form.type, hidden=hidden)
            if item is not None:
                out.append(item)
    return out


def _duration_problem(param: str, text: str) -> list[str]:
    try:
        if duration_of(text) <= timedelta(0):
            return [f"{param}: the duration must be positive"]
    except DurationError as exc:
        return [f"{param}: {exc.message}"]
    return []


def _set_problems(param: str, values: dict[str, Any], form: FormSpec, schema: Schema) -> list[str]:
    otype = schema.types.get(form.type or "")
    if otype is None:
        return []
    out: list[str] = []
    for name, value in values.items():
        spec = otype.field(name)
        if spec is None or name in ("id", "type"):
            out.append(f"{param}: type '{otype.key}' has no field '{name}' to set")
            continue
        reason = value_problem(spec, value, schema=schema, tz=UTC)
        if reason:
            out.append(f"{param}.{name}: {reason}")
    return out


def form_problems(form: FormSpec, schema: Schema) -> list[str]:
    """Every problem of ``form`` against ``schema``, each naming its parameter."""
    out: list[str] = []
    if form.type is not None and form.type not in schema.types:
        out.append(f"type: unknown object type '{form.type}'")
    if form.mode == "update" and form.type is None:
        out.append("mode: an update form needs 'type' (the type of the object a link names)")
    if form.link is not None and form.mode != "update":
        out.append("link: signed link settings go only with 'mode: update'")
    names: set[str] = set()
    for hidden, group in ((False, form.fields), (True, form.hidden)):
        for name, field in group.items():
            if name in names:
                out.append(f"hidden.{name}: '{name}' is a visible input too")
            names.add(name)
            out += _resolve(name, field, schema, form.type, hidden=hidden)[1]
    if form.honeypot in names or form.honeypot in RESERVED:
        out.append(f"honeypot: '{form.honeypot}' is the name of an input")
    out += _duration_problem("rate_limit.per", form.rate_limit.per)
    if form.link is not None:
        out += _duration_problem("link.expires", form.link.expires)
        for param in ("on_open", "on_submit"):
            block: SetFields | None = getattr(form.link, param)
            if block is not None:
                out += _set_problems(f"link.{param}.set", block.set, form, schema)
    return out


def form_link_problems(source: str | None, forms: Mapping[str, FormSpec]) -> list[str]:
    """The ``form_link('<key>')`` calls of a template whose literal key names no link form
    of ``forms`` (a key computed at run time is not checked)."""
    if not source or "form_link" not in source:
        return []
    try:
        ast = _PARSER.parse(source)
    except TemplateSyntaxError:
        return []  # reported as a syntax problem by the template checks
    out: list[str] = []
    for call in ast.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name == "form_link"):
            continue
        if not call.args:
            out.append("form_link() needs the form key, e.g. form_link('review')")
            continue
        arg = call.args[0]
        if not isinstance(arg, nodes.Const) or not isinstance(arg.value, str):
            continue
        form = forms.get(arg.value)
        if form is None:
            known = ", ".join(k for k, f in sorted(forms.items()) if f.mode == "update")
            out.append(
                f"form_link: form '{arg.value}' does not exist (link forms: {known or 'none'})"
            )
        elif form.mode != "update":
            out.append(f"form_link: form '{arg.value}' is not a link form (it needs mode: update)")
    return out
