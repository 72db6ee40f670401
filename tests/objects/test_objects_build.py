"""build_schema and field_from_dict: built-ins, merging, located errors, JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowlane.core.errors import ValidationError
from flowlane.objects import (
    FIELD_TYPES,
    FieldSpec,
    ObjectsFile,
    build_schema,
    builtin_types,
    field_from_dict,
)

# The objects.yaml of FORMATS.md "Recipe folder", as loaded.
FORMATS_EXAMPLE: dict[str, Any] = {
    "types": {
        "order": {
            "fields": {
                "status": {
                    "type": "enum",
                    "values": [
                        "new",
                        "in_work",
                        "not_confirmed",
                        "delayed",
                        "awaiting_payment",
                        "paid",
                        "cancelled",
                        "false",
                    ],
                },
                "amount": {"type": "number"},
                "paid_amount": {"type": "number", "default": 0},
                "cancel_reason": {"type": "enum", "dictionary": "cancel_reasons"},
            }
        },
        "event": {
            "label": "Event",
            "stages": ["new", "preparation", "registration", "materials", "feedback"],
            "success": "held",
            "failure": "cancelled",
            "fields": {
                "kind": {"type": "link", "to": "dictionary:event_type"},
                "start": {"type": "datetime"},
                "seats": {"type": "integer"},
            },
        },
    },
    "dictionaries": {
        "event_type": ["offline", "online", "hybrid"],
        "cancel_reasons": ["too_expensive", "changed_mind", "other"],
    },
    "groups": ["watch-only", "with-homework"],
}


def problems_of(data: Any, source: str = "objects.yaml") -> list[str]:
    with pytest.raises(ValidationError) as info:
        build_schema(data, source=source)
    lines = info.value.message.split("\n")
    assert info.value.fields["problems"] == lines
    assert "pydantic" not in info.value.message.lower()
    assert "Input should" not in info.value.message
    return lines


def one_type(fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"types": {"event": {"fields": fields, **extra}}, **_dicts()}


def _dicts() -> dict[str, Any]:
    return {"dictionaries": {"event_type": ["offline", "online"]}}


# ---- built-ins ---------------------------------------------------------------------------------


def test_builtins_only_when_no_file() -> None:
    schema = build_schema(None)
    assert set(schema.types) == {"user", "order", "purchase", "call"}
    assert schema.dictionaries == {}
    assert schema.groups == ()
    assert all(t.builtin and not t.has_stages for t in schema.types.values())
    assert build_schema({}) == schema


def test_builtin_fields_match_formats() -> None:
    types = builtin_types()
    shape = {k: {n: f.type for n, f in t.fields.items()} for k, t in types.items()}
    assert shape == {
        "user": {
            "name": "string",
            "email": "email",
            "phone": "phone",
            "role": "enum",
            "groups": "list",
            "permissions": "list",
            "personal_manager": "link",
            "birthday": "date",
            "password": "password",
        },
        "order": {
            "number": "string",
            "status": "string",
            "amount": "number",
            "paid_amount": "number",
            "client": "link",
            "manager": "link",
        },
        "purchase": {
            "number": "string",
            "status": "string",
            "client": "link",
            "manager": "link",
            "offer": "string",
            "starts": "datetime",
            "expires": "datetime",
        },
        "call": {
            "client": "link",
            "manager": "link",
            "phone": "phone",
            "direction": "string",
            "result": "string",
            "at": "datetime",
        },
    }
    user = types["user"]
    assert user.fields["role"].values == ("owner", "admin", "manager", "employee", "client")
    assert user.fields["role"].default == "client"
    assert user.fields["personal_manager"].link_type == "user"
    assert user.fields["password"].write_only
    assert types["order"].fields["paid_amount"].default == 0
    for key in ("order", "purchase", "call"):
        assert types[key].fields["client"].to == "user"
        assert types[key].fields["manager"].to == "user"


def test_builtin_types_are_fresh_copies() -> None:
    first = builtin_types()
    first["user"].fields.pop("name")
    assert "name" in builtin_types()["user"].fields


# ---- the FORMATS example and merging -----------------------------------------------------------


def test_formats_example_builds() -> None:
    schema = build_schema(FORMATS_EXAMPLE)
    event = schema.types["event"]
    assert event.label == "Event"
    assert not event.builtin
    assert event.stages == ("new", "preparation", "registration", "materials", "feedback")
    assert event.final_stages == ("held", "cancelled")
    assert event.all_stages[-2:] == ("held", "cancelled")
    assert event.has_stages
    assert event.fields["kind"].dictionary_ref == "event_type"
    assert event.fields["kind"].link_type is None
    assert schema.groups == ("watch-only", "with-homework")
    assert schema.dictionaries["event_type"] == ["offline", "online", "hybrid"]


def test_declared_builtin_type_adds_and_replaces_fields() -> None:
    order = build_schema(FORMATS_EXAMPLE).types["order"]
    assert order.builtin
    assert order.label == "Order"
    # replaced: status is now an enum; added: cancel_reason; kept: the rest
    assert order.fields["status"].type == "enum"
    assert order.fields["status"].values is not None
    assert "false" in order.fields["status"].values
    assert order.fields["cancel_reason"].dictionary_ref == "cancel_reasons"
    assert order.fields["client"].to == "user"
    assert list(order.fields)[:6] == [
        "number",
        "status",
        "amount",
        "paid_amount",
        "client",
        "manager",
    ]


def test_builtin_type_may_get_label_and_stages() -> None:
    schema = build_schema({"types": {"order": {"label": "Deal", "stages": ["a", "b"]}}})
    order = schema.types["order"]
    assert (order.label, order.stages, order.builtin) == ("Deal", ("a", "b"), True)
    assert "amount" in order.fields


def test_custom_type_label_defaults_to_key() -> None:
    schema = build_schema({"types": {"review": {"fields": {"rating": {"type": "integer"}}}}})
    assert schema.types["review"].label == "review"
    assert not schema.types["review"].has_stages


def test_empty_yaml_bodies_read_as_empty() -> None:
    schema = build_schema(
        {"types": {"note": None, "task2": {"fields": None}}, "dictionaries": None, "groups": None}
    )
    assert schema.types["note"].fields == {}
    assert schema.types["task2"].fields == {}


def test_links_between_declared_types_in_any_order() -> None:
    schema = build_schema(
        {
            "types": {
                "registration": {"fields": {"event": {"type": "link", "to": "event"}}},
                "event": {"fields": {"owner": {"type": "link", "to": "user"}}},
            }
        }
    )
    assert schema.types["registration"].fields["event"].link_type == "event"


def test_list_item_forms() -> None:
    schema = build_schema(
        one_type(
            {
                "tags": {"type": "list", "of": "string"},
                "kinds": {"type": "list", "of": {"type": "link", "to": "dictionary:event_type"}},
            }
        )
    )
    fields = schema.types["event"].fields
    assert fields["tags"].of == FieldSpec("tags", "string")
    kinds = fields["kinds"].of
    assert kinds is not None
    assert kinds.dictionary_ref == "event_type"


def test_stage_pseudo_field() -> None:
    event = build_schema(FORMATS_EXAMPLE).types["event"]
    stage = event.field("stage")
    assert stage is not None
    assert stage.values == event.all_stages
    assert event.field("seats") == event.fields["seats"]
    assert event.field("nope") is None
    assert "stage" not in event.fields
    assert build_schema(None).types["order"].field("stage") is None


# ---- located errors ------------------------------------------------------------------------------


def test_unknown_key_in_field_is_located() -> None:
    data = one_type({"seats": {"type": "integer", "lenght": 3}})
    assert problems_of(data) == ["objects.yaml:types.event.fields.seats: unknown key 'lenght'"]


def test_source_is_used_as_given() -> None:
    data = one_type({"seats": {"type": "integer", "lenght": 3}})
    assert problems_of(data, source="recipes/x/objects.yaml") == [
        "recipes/x/objects.yaml:types.event.fields.seats: unknown key 'lenght'"
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"colour": 1}, "objects.yaml: unknown key 'colour'"),
        ([1, 2], "objects.yaml: expected a mapping, not [1, 2]"),
        ({"types": {"e": {"colour": 1}}}, "objects.yaml:types.e: unknown key 'colour'"),
        ({"types": {"e": {"fields": {"x": {}}}}}, "objects.yaml:types.e.fields.x: "
         "missing required key 'type'"),
        ({"types": {"e": {"fields": {"x": {"type": "integr"}}}}},
         "objects.yaml:types.e.fields.x.type: 'integr' is not a field type ("
         + ", ".join(FIELD_TYPES) + ")"),
        ({"types": {"e": {"fields": {"x": {"type": "list", "of": "integr"}}}}},
         "objects.yaml:types.e.fields.x.of: 'integr' is not a field type ("
         + ", ".join(FIELD_TYPES) + ")"),
        ({"types": {"e": {"fields": {"x": {"type": "list", "of": {"type": "string", "y": 1}}}}}},
         "objects.yaml:types.e.fields.x.of: unknown key 'y'"),
        ({"types": {"e": {"fields": {"x": {"type": "list", "of": 5}}}}},
         "objects.yaml:types.e.fields.x.of: expected a mapping, not 5"),
        ({"types": {"e": {"fields": {"x": {"type": "string", "label": 3}}}}},
         "objects.yaml:types.e.fields.x.label: expected text, not 3"),
        ({"types": {"e": {"fields": {"x": {"type": "string", "required": "yes"}}}}},
         "objects.yaml:types.e.fields.x.required: expected true or false, not 'yes'"),
        ({"types": {"e": {"stages": "new"}}},
         "objects.yaml:types.e.stages: expected a list, not 'new'"),
        ({"types": {"e": {"stages": ["new", 2]}}},
         "objects.yaml:types.e.stages[1]: expected text, not 2"),
        ({"types": {"e": "thing"}}, "objects.yaml:types.e: expected a mapping, not 'thing'"),
        ({"types": {1: {}}}, "objects.yaml:types: the key 1 must be text"),
        ({"dictionaries": {"d": "abc"}}, "objects.yaml:dictionaries.d: expected a list, not 'abc'"),
        ({"groups": [True]}, "objects.yaml:groups[0]: expected text, not True"),
    ],
)  # fmt: skip
def test_shape_errors(data: Any, expected: str) -> None:
    assert problems_of(data) == [expected]


def test_several_shape_errors_are_all_reported() -> None:
    data = {"types": {"e": {"colour": 1, "fields": {"x": {"type": "string", "y": 2}}}}, "z": 0}
    assert set(problems_of(data)) == {
        "objects.yaml: unknown key 'z'",
        "objects.yaml:types.e: unknown key 'colour'",
        "objects.yaml:types.e.fields.x: unknown key 'y'",
    }


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        ({"type": "enum"}, "an enum needs 'values' or 'dictionary'"),
        ({"type": "enum", "values": []}, "an enum needs at least one value"),
        ({"type": "enum", "values": ["a", "b", "a"]}, "value 'a' is listed twice"),
        ({"type": "enum", "values": ["a"], "dictionary": "event_type"},
         "an enum takes 'values' or 'dictionary', not both"),
        ({"type": "enum", "dictionary": "nope"}, "dictionary 'nope' does not exist"),
        ({"type": "link"}, "a link needs 'to' (an object type or dictionary:<key>)"),
        ({"type": "link", "to": "nope"}, "link to unknown type 'nope'"),
        ({"type": "link", "to": "dictionary:nope"}, "dictionary 'nope' does not exist"),
        ({"type": "link", "to": "dictionary:"}, "'to: dictionary:' names no dictionary"),
        ({"type": "list"}, "a list needs 'of' (the item type)"),
        ({"type": "list", "of": {"type": "link", "to": "nope"}},
         "list items: link to unknown type 'nope'"),
        ({"type": "string", "values": ["a"]}, "'values' is only for enum fields"),
        ({"type": "string", "dictionary": "event_type"}, "'dictionary' is only for enum fields"),
        ({"type": "integer", "to": "user"}, "'to' is only for link fields"),
        ({"type": "string", "of": "string"}, "'of' is only for list fields"),
        ({"type": "integer", "default": "many"}, "default: 'many' is not an integer"),
        ({"type": "enum", "values": ["a"], "default": "b"}, "default: 'b' is not one of a"),
        ({"type": "link", "to": "dictionary:event_type", "default": "hybrid"},
         "default: 'hybrid' is not in dictionary event_type (offline, online)"),
        ({"type": "list", "of": "integer", "default": 1}, "default: 1 is not a list"),
    ],
)  # fmt: skip
def test_field_errors_are_located(field: dict[str, Any], problem: str) -> None:
    assert problems_of(one_type({"seats": field})) == [f"objects.yaml:event.seats: {problem}"]


@pytest.mark.parametrize("name", ["id", "type", "stage"])
def test_reserved_field_names(name: str) -> None:
    assert problems_of(one_type({name: {"type": "string"}})) == [
        f"objects.yaml:event.{name}: '{name}' is a reserved name"
    ]


def test_reserved_names_on_builtin_types_too() -> None:
    assert problems_of({"types": {"user": {"fields": {"id": {"type": "string"}}}}}) == [
        "objects.yaml:user.id: 'id' is a reserved name"
    ]


@pytest.mark.parametrize(
    ("spec", "problems"),
    [
        ({"stages": ["a", "b", "a"]}, ["stage 'a' is listed twice"]),
        (
            {"stages": ["a", "b"], "success": "b"},
            ["success stage 'b' must not be among the stages"],
        ),
        ({"stages": ["a"], "failure": "a"}, ["failure stage 'a' must not be among the stages"]),
        ({"stages": ["a"], "success": "z", "failure": "z"}, ["success and failure are both 'z'"]),
        ({"success": "held"}, ["'success' needs 'stages'"]),
        ({"failure": "lost"}, ["'failure' needs 'stages'"]),
    ],
)
def test_stage_errors(spec: dict[str, Any], problems: list[str]) -> None:
    assert problems_of({"types": {"event": spec}}) == [f"objects.yaml:event: {p}" for p in problems]


def test_dictionary_and_group_duplicates() -> None:
    data = {"dictionaries": {"d": ["x", "y", "x"]}, "groups": ["g", "g"]}
    assert problems_of(data) == [
        "objects.yaml:dictionaries.d: value 'x' is listed twice",
        "objects.yaml:groups: group 'g' is listed twice",
    ]


def test_all_semantic_problems_are_collected_in_order() -> None:
    data = {
        "types": {
            "event": {
                "stages": ["a", "a"],
                "fields": {"kind": {"type": "enum"}, "id": {"type": "string"}},
            },
            "order": {"fields": {"manager": {"type": "link", "to": "staff"}}},
        }
    }
    assert problems_of(data) == [
        "objects.yaml:event.id: 'id' is a reserved name",
        "objects.yaml:event: stage 'a' is listed twice",
        "objects.yaml:event.kind: an enum needs 'values' or 'dictionary'",
        "objects.yaml:order.manager: link to unknown type 'staff'",
    ]


# ---- field_from_dict ----------------------------------------------------------------------------


def test_field_from_dict() -> None:
    spec = field_from_dict("pay_date", {"type": "datetime", "label": "Expected payment date"})
    assert spec == FieldSpec("pay_date", "datetime", label="Expected payment date")
    tags = field_from_dict("tags", {"type": "list", "of": "string", "required": True})
    assert tags.of == FieldSpec("tags", "string")
    assert tags.required


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "datetime", "lable": "x"}, "field 'at': unknown key 'lable'"),
        ({"type": "colour"}, "field 'at': type: 'colour' is not a field type"),
        ({"type": "enum"}, "field 'at': an enum needs 'values' or 'dictionary'"),
        ({"label": "x"}, "field 'at': missing required key 'type'"),
    ],
)
def test_field_from_dict_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        field_from_dict("at", data)
    assert info.value.message.startswith(message)
    assert info.value.fields["field"] == "at"


def test_field_from_dict_checks_references_only_with_a_schema() -> None:
    data = {"type": "enum", "dictionary": "event_type", "default": "webinar"}
    assert field_from_dict("kind", data).dictionary == "event_type"
    schema = build_schema(_dicts())
    with pytest.raises(ValidationError, match="'webinar' is not in dictionary event_type"):
        field_from_dict("kind", data, schema=schema)
    with pytest.raises(ValidationError, match="link to unknown type 'venue'"):
        field_from_dict("place", {"type": "link", "to": "venue"}, schema=schema)


# ---- JSON Schema ------------------------------------------------------------------------------


def test_json_schema() -> None:
    schema = ObjectsFile.model_json_schema()
    json.dumps(schema)  # serialisable as is
    assert set(schema["properties"]) == {"types", "dictionaries", "groups"}
    assert schema["additionalProperties"] is False
    field = schema["$defs"]["FieldSpecModel"]
    assert field["additionalProperties"] is False
    assert set(field["properties"]) == {
        "type",
        "label",
        "values",
        "dictionary",
        "to",
        "of",
        "default",
        "required",
    }
    assert field["properties"]["type"]["enum"] == list(FIELD_TYPES)
    assert field["required"] == ["type"]
    type_spec = schema["$defs"]["TypeSpec"]
    assert set(type_spec["properties"]) == {
        "label",
        "stages",
        "success",
        "failure",
        "fields",
        "card",
    }
    assert type_spec["additionalProperties"] is False
    # `of` is a type name or a nested field spec
    of_text = json.dumps(field["properties"]["of"])
    assert "#/$defs/FieldSpecModel" in of_text
    assert '"string"' in of_text


def test_model_parses_formats_example() -> None:
    parsed = ObjectsFile.model_validate(FORMATS_EXAMPLE)
    assert parsed.types["event"].success == "held"
    assert parsed.types["order"].fields["paid_amount"].default == 0


def test_card_fields_are_kept_checked_and_stored() -> None:
    """``card``: the fields a kanban card shows, in order; stored and read back with the type."""
    from flowlane.objects.build import load_type, type_spec

    data = {
        "types": {
            "event": {
                "stages": ["new", "open"],
                "card": ["title", "start", "owner"],
                "fields": {
                    "title": {"type": "string"},
                    "start": {"type": "datetime"},
                    "owner": {"type": "link", "to": "user"},
                },
            }
        }
    }
    event = build_schema(data).types["event"]
    assert event.card == ("title", "start", "owner")
    assert load_type("event", type_spec(event)) == event
    assert build_schema(None).types["user"].card == ()
    bad = {
        "types": {
            "event": {
                "card": ["title", "nope", "title", "secret"],
                "fields": {"title": {"type": "string"}, "secret": {"type": "password"}},
            }
        }
    }
    assert problems_of(bad) == [
        "objects.yaml:event.card: field 'title' is listed twice",
        "objects.yaml:event.card: 'nope' is not a field of event",
        "objects.yaml:event.card: 'secret' is a password: a card never shows it",
    ]
