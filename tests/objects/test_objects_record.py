"""validate_record, dictionaries edited later, and the stage move rules."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flowlane.core.errors import FlowlaneError, Refused, ValidationError
from flowlane.objects import (
    FieldSpec,
    ObjectType,
    Schema,
    build_schema,
    check_stage_move,
    coerce_value,
    validate_record,
)

MSK = ZoneInfo("Europe/Moscow")

OBJECTS: dict[str, Any] = {
    "types": {
        "order": {
            "fields": {
                "status": {"type": "enum", "values": ["new", "in_work", "paid", "false"]},
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
                "title": {"type": "string", "required": True},
                "registrations": {"type": "integer", "default": 0},
                "tags": {"type": "list", "of": "string", "default": ["new"]},
                "responsible": {"type": "link", "to": "user"},
            },
        },
    },
    "dictionaries": {
        "event_type": ["offline", "online", "hybrid"],
        "cancel_reasons": ["too_expensive", "changed_mind", "other"],
    },
    "groups": ["watch-only", "with-homework"],
}


@pytest.fixture
def schema() -> Schema:
    return build_schema(OBJECTS)


def create(schema: Schema, type_key: str, data: dict[str, Any]) -> dict[str, Any]:
    return validate_record(schema.types[type_key], data, schema=schema, tz=MSK)


def update(
    schema: Schema, type_key: str, data: dict[str, Any], current: str | None = None
) -> dict[str, Any]:
    return validate_record(
        schema.types[type_key], data, schema=schema, tz=MSK, partial=True, current_stage=current
    )


def refused(call: Any, *args: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        call(*args, **kwargs)
    return info.value


# ---- create ----------------------------------------------------------------------------------


def test_create_user_like_the_scenario_fixtures(schema: Schema) -> None:
    anna = create(
        schema, "user", {"name": "Anna", "email": "anna@example.com", "phone": "+491701234567"}
    )
    assert anna == {
        "name": "Anna",
        "email": "anna@example.com",
        "phone": "+491701234567",
        "role": "client",
    }
    boris = create(
        schema, "user", {"name": "Boris", "email": "boris@shop.example", "role": "manager"}
    )
    assert boris["role"] == "manager"


def test_create_order_applies_defaults_and_converts(schema: Schema) -> None:
    order = create(
        schema,
        "order",
        {"number": "A-1", "status": "new", "client": "anna", "manager": "boris", "amount": "100"},
    )
    assert order == {
        "number": "A-1",
        "status": "new",
        "client": "anna",
        "manager": "boris",
        "amount": 100,
        "paid_amount": 0,
    }


def test_create_staged_object_starts_in_first_stage(schema: Schema) -> None:
    event = create(
        schema, "event", {"title": "Launch", "kind": "online", "start": "2026-03-10T18:00"}
    )
    assert event["stage"] == "new"
    assert event["start"] == datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    assert event["registrations"] == 0
    assert event["tags"] == ["new"]


def test_create_in_a_given_stage(schema: Schema) -> None:
    assert create(schema, "event", {"title": "x", "stage": "registration"})["stage"] == (
        "registration"
    )
    assert create(schema, "event", {"title": "x", "stage": "held"})["stage"] == "held"


def test_defaults_are_not_shared_between_records(schema: Schema) -> None:
    first = create(schema, "event", {"title": "a"})
    first["tags"].append("x")
    assert create(schema, "event", {"title": "b"})["tags"] == ["new"]
    assert schema.types["event"].fields["tags"].default == ["new"]


def test_explicit_value_wins_over_default(schema: Schema) -> None:
    assert create(schema, "order", {"paid_amount": 5})["paid_amount"] == 5
    assert create(schema, "order", {"paid_amount": None})["paid_amount"] is None


def test_required_on_create(schema: Schema) -> None:
    error = refused(create, schema, "event", {"kind": "online"})
    assert error.message == "field 'title': a value is required"
    assert error.fields["field"] == "title"
    error = refused(create, schema, "event", {"title": None})
    assert error.message == "field 'title': a value is required"


def test_unknown_field_is_refused(schema: Schema) -> None:
    error = refused(create, schema, "order", {"colour": "red"})
    assert error.message == "field 'colour' does not exist on type 'order'"
    assert error.fields["field"] == "colour"


def test_non_text_field_name(schema: Schema) -> None:
    assert refused(update, schema, "order", {1: "x"}).message == (
        "field 1 does not exist on type 'order'"
    )


@pytest.mark.parametrize("name", ["id", "type"])
def test_id_and_type_are_not_settable(schema: Schema, name: str) -> None:
    assert refused(create, schema, "order", {name: "x"}).message == f"field '{name}' cannot be set"
    assert refused(update, schema, "order", {name: "x"}).message == f"field '{name}' cannot be set"


def test_stage_only_on_staged_types(schema: Schema) -> None:
    error = refused(create, schema, "order", {"stage": "new"})
    assert error.message == "field 'stage' does not exist on type 'order' (it has no stages)"


def test_unknown_stage_is_refused(schema: Schema) -> None:
    error = refused(create, schema, "event", {"title": "x", "stage": "archive"})
    assert error.message == (
        "field 'stage': stage 'archive' does not exist on type 'event' (stages: new, "
        "preparation, registration, materials, feedback, held, cancelled)"
    )
    assert error.fields["field"] == "stage"


def test_stage_cannot_be_cleared(schema: Schema) -> None:
    assert refused(update, schema, "event", {"stage": None}).message == (
        "field 'stage': a value is required"
    )


def test_every_problem_is_reported_and_nothing_is_returned(schema: Schema) -> None:
    data = {"kind": "webinar", "seats": "many", "colour": 1, "title": "x"}
    before = copy.deepcopy(data)
    error = refused(create, schema, "event", data)
    assert error.fields["problems"] == [
        "field 'kind': 'webinar' is not in dictionary event_type (offline, online, hybrid)",
        "field 'seats': 'many' is not an integer",
        "field 'colour' does not exist on type 'event'",
    ]
    assert error.message == "; ".join(error.fields["problems"])
    assert error.fields["field"] == "kind"
    assert data == before


def test_data_must_be_a_mapping(schema: Schema) -> None:
    with pytest.raises(ValidationError, match="must be a mapping"):
        validate_record(schema.types["order"], ["x"], schema=schema, tz=MSK)  # type: ignore[arg-type]


def test_enum_and_dictionary_fields_on_builtin_type(schema: Schema) -> None:
    assert create(schema, "order", {"status": "false", "cancel_reason": "other"})["status"] == (
        "false"
    )
    error = refused(update, schema, "order", {"cancel_reason": "weather"})
    assert error.message == (
        "field 'cancel_reason': 'weather' is not in dictionary cancel_reasons "
        "(too_expensive, changed_mind, other)"
    )


# ---- update ------------------------------------------------------------------------------------


def test_update_returns_only_the_changes(schema: Schema) -> None:
    assert update(schema, "order", {"amount": "12.5"}) == {"amount": 12.5}
    assert update(schema, "event", {"seats": 3}) == {"seats": 3}


def test_update_may_clear_optional_not_required(schema: Schema) -> None:
    assert update(schema, "event", {"seats": None}) == {"seats": None}
    assert refused(update, schema, "event", {"title": None}).message == (
        "field 'title': a value is required"
    )


def test_update_moves_stage_by_the_rules(schema: Schema) -> None:
    assert update(schema, "event", {"stage": "preparation"}, current="registration") == {
        "stage": "preparation"
    }
    assert update(schema, "event", {"stage": "held"}, current="feedback") == {"stage": "held"}
    error = refused(update, schema, "event", {"stage": "new"}, current="held")
    assert error.message == "field 'stage': event is in final stage 'held'"


def test_links_are_reduced_to_ids(schema: Schema) -> None:
    assert update(schema, "event", {"responsible": {"id": "boris"}}) == {"responsible": "boris"}


# ---- user groups -------------------------------------------------------------------------------


def test_user_groups_must_be_known(schema: Schema) -> None:
    assert create(schema, "user", {"groups": ["watch-only"]})["groups"] == ["watch-only"]
    error = refused(update, schema, "user", {"groups": ["with-homework", "vip"]})
    assert error.message == (
        "field 'groups': unknown group 'vip' (groups: watch-only, with-homework)"
    )
    assert error.fields["field"] == "groups"
    assert refused(update, schema, "user", {"groups": "watch-only"}).message == (
        "field 'groups': 'watch-only' is not a list"
    )


def test_user_groups_without_declared_groups() -> None:
    bare = build_schema(None)
    error = refused(validate_record, bare.types["user"], {"groups": ["a"]}, schema=bare, tz=MSK)
    assert error.message == "field 'groups': unknown group 'a' (groups: none are declared)"


def test_user_other_fields(schema: Schema) -> None:
    user = create(schema, "user", {"birthday": "1990-05-17", "password": "pw", "role": "admin"})
    assert user["birthday"] == date(1990, 5, 17)
    assert user["password"] == "pw"
    error = refused(update, schema, "user", {"role": "boss", "password": ""})
    assert error.fields["problems"] == [
        "field 'role': 'boss' is not one of owner, admin, manager, employee, client",
        "field 'password': a password must be non-empty text",
    ]


# ---- dictionaries edited later -------------------------------------------------------------------


def test_dictionary_values_added_later_are_accepted(schema: Schema) -> None:
    with pytest.raises(ValidationError):
        update(schema, "event", {"kind": "webinar"})
    assert schema.add_dictionary_value("event_type", "webinar") is True
    assert update(schema, "event", {"kind": "webinar"}) == {"kind": "webinar"}
    assert schema.dictionaries["event_type"] == ["offline", "online", "hybrid", "webinar"]
    enum = FieldSpec("kind", "enum", dictionary="event_type")
    assert coerce_value(enum, "webinar", schema=schema, tz=MSK) == "webinar"


def test_adding_a_known_value_changes_nothing(schema: Schema) -> None:
    assert schema.add_dictionary_value("event_type", "online") is False
    assert schema.dictionaries["event_type"] == ["offline", "online", "hybrid"]


def test_adding_to_unknown_dictionary_or_bad_value(schema: Schema) -> None:
    with pytest.raises(ValidationError, match="dictionary 'nope' does not exist"):
        schema.add_dictionary_value("nope", "x")
    with pytest.raises(ValidationError, match="non-empty text"):
        schema.add_dictionary_value("event_type", "")
    with pytest.raises(ValidationError, match="non-empty text"):
        schema.add_dictionary_value("event_type", 5)  # type: ignore[arg-type]


def test_dictionary_additions_stay_with_their_schema(schema: Schema) -> None:
    copied = copy.deepcopy(schema)
    copied.add_dictionary_value("event_type", "webinar")
    assert "webinar" not in schema.dictionaries["event_type"]
    assert "webinar" not in build_schema(OBJECTS).dictionaries["event_type"]


# ---- stage moves ---------------------------------------------------------------------------------


@pytest.fixture
def event(schema: Schema) -> ObjectType:
    return schema.types["event"]


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (None, "new"),
        (None, "feedback"),
        ("new", "preparation"),
        ("registration", "preparation"),  # a guard moves the event back
        ("new", "held"),
        ("feedback", "cancelled"),
        ("held", "held"),  # staying in a final stage is no move
    ],
)
def test_allowed_moves(event: ObjectType, current: str | None, target: str) -> None:
    check_stage_move(event, current, target)


def test_unknown_stage_move(event: ObjectType) -> None:
    with pytest.raises(Refused) as info:
        check_stage_move(event, "new", "x")
    assert info.value.message == (
        "stage 'x' does not exist on type 'event' (stages: new, preparation, registration, "
        "materials, feedback, held, cancelled)"
    )


@pytest.mark.parametrize(("current", "target"), [("held", "new"), ("cancelled", "held")])
def test_no_move_out_of_a_final_stage(event: ObjectType, current: str, target: str) -> None:
    with pytest.raises(Refused) as info:
        check_stage_move(event, current, target)
    assert info.value.message == f"event is in final stage '{current}'"


def test_type_without_stages(schema: Schema) -> None:
    with pytest.raises(Refused) as info:
        check_stage_move(schema.types["order"], None, "new")
    assert info.value.message == "type 'order' has no stages"


def test_refusals_are_flowlane_errors(event: ObjectType) -> None:
    with pytest.raises(FlowlaneError):
        check_stage_move(event, "held", "new")
