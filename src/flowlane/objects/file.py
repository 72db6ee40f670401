"""The ``objects.yaml`` file as pydantic models: the parse step and the published JSON Schema.

Contract:

* ``ObjectsFile.model_validate(data)`` accepts exactly the shape of FORMATS.md "Recipe
  folder": ``types``, ``dictionaries``, ``groups``; every model forbids unknown keys.
* A section or a type written with an empty body in YAML (``types:``, ``event:``) reads as
  empty, not as an error.
* These models check shape only. References (dictionaries, link targets), reserved names,
  stage rules and defaults are checked by :func:`flowlane.objects.build_schema`, which also
  turns pydantic's errors into located messages.
* ``ObjectsFile.model_json_schema()`` is what ``flowlane schema objects`` publishes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictBool, Tag, model_validator

FieldTypeName = Literal[
    "string",
    "text",
    "integer",
    "number",
    "boolean",
    "date",
    "datetime",
    "email",
    "phone",
    "enum",
    "link",
    "list",
    "file",
    "password",
]

#: Every field type, in the order FORMATS.md lists them (``password`` is write-only).
FIELD_TYPES: tuple[str, ...] = get_args(FieldTypeName)


def _item_tag(value: Any) -> str:
    """Which form ``of`` is written in: a type name (text) or a nested field spec."""
    return "name" if isinstance(value, str) else "spec"


def _drop_nulls(data: Any) -> Any:
    """``key:`` with an empty YAML body means "not given"."""
    if isinstance(data, Mapping):
        return {k: v for k, v in data.items() if v is not None}
    return data


class FieldSpecModel(BaseModel):
    """One field: ``{type, label, values, dictionary, to, of, default, required}``."""

    model_config = ConfigDict(extra="forbid", title="Field")

    type: FieldTypeName = Field(description="The field type.")
    label: str | None = Field(default=None, description="Shown in forms and on cards.")
    values: list[str] | None = Field(
        default=None, description="enum only: the allowed values (or use `dictionary`)."
    )
    dictionary: str | None = Field(
        default=None, description="enum only: take the allowed values from this dictionary."
    )
    to: str | None = Field(
        default=None,
        description="link only: an object type key, or `dictionary:<key>` for a dictionary value.",
    )
    of: (
        Annotated[
            Annotated[FieldTypeName, Tag("name")] | Annotated[FieldSpecModel, Tag("spec")],
            Discriminator(_item_tag),
        ]
        | None
    ) = Field(
        default=None,
        description="list only: the item type, as a type name or a nested field spec.",
    )
    default: Any = Field(default=None, description="The value a new object gets.")
    required: StrictBool = Field(default=False, description="A value must always be present.")


class TypeSpec(BaseModel):
    """An object type: label, stage pipeline (with final ``success`` / ``failure``), fields."""

    model_config = ConfigDict(extra="forbid", title="ObjectType")

    label: str | None = Field(default=None, description="Display name of the type.")
    stages: list[str] = Field(
        default_factory=list, description="The stage pipeline; a new object starts in the first."
    )
    success: str | None = Field(default=None, description="Final stage: the success outcome.")
    failure: str | None = Field(default=None, description="Final stage: the failure outcome.")
    fields: dict[str, FieldSpecModel] = Field(
        default_factory=dict,
        description="Fields by name; on a built-in type a declared field replaces the built-in.",
    )
    card: list[str] = Field(
        default_factory=list,
        description="The fields a kanban card and the object list show, in this order; the "
        "first is the card's title (default: name, title... first, then the others by name).",
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_parts(cls, data: Any) -> Any:
        return _drop_nulls(data)


class ObjectsFile(BaseModel):
    """``objects.yaml``: object types, dictionaries (editable later) and user groups."""

    model_config = ConfigDict(extra="forbid", title="flowlane objects.yaml")

    types: dict[str, TypeSpec] = Field(
        default_factory=dict, description="Custom types and extensions of the built-in ones."
    )
    dictionaries: dict[str, list[str]] = Field(
        default_factory=dict, description="Editable lists of values, by key."
    )
    groups: list[str] = Field(default_factory=list, description="User group keys.")

    @model_validator(mode="before")
    @classmethod
    def _empty_parts(cls, data: Any) -> Any:
        data = _drop_nulls(data)
        if isinstance(data, dict) and isinstance(data.get("types"), Mapping):
            data["types"] = {k: {} if v is None else v for k, v in data["types"].items()}
        return data
