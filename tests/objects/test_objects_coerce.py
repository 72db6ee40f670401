"""coerce_value: every field type with good and bad values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flowlane.core.errors import ValidationError
from flowlane.objects import FIELD_TYPES, FieldSpec, Schema, build_schema, coerce_value

MSK = ZoneInfo("Europe/Moscow")


@pytest.fixture
def schema() -> Schema:
    return build_schema(
        {
            "dictionaries": {"event_type": ["offline", "online", "hybrid"]},
            "groups": ["watch-only"],
        }
    )


def ok(spec: FieldSpec, value: Any, schema: Schema) -> Any:
    return coerce_value(spec, value, schema=schema, tz=MSK)


def bad(spec: FieldSpec, value: Any, schema: Schema) -> str:
    with pytest.raises(ValidationError) as info:
        coerce_value(spec, value, schema=schema, tz=MSK)
    assert info.value.fields["field"] == spec.name
    assert info.value.message.startswith(f"field '{spec.name}': ")
    return info.value.message


@pytest.mark.parametrize("kind", ["string", "text"])
@pytest.mark.parametrize(
    ("value", "expected"), [("hello", "hello"), ("", ""), (12, "12"), (1.5, "1.5")]
)
def test_text_good(schema: Schema, kind: str, value: Any, expected: str) -> None:
    assert ok(FieldSpec("title", kind), value, schema) == expected


@pytest.mark.parametrize("value", [True, ["a"], {"a": 1}, date(2026, 1, 1)])
def test_text_bad(schema: Schema, value: Any) -> None:
    assert "is not text" in bad(FieldSpec("title", "string"), value, schema)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5), (-3, -3), (4.0, 4), ("12", 12), (" +7 ", 7), ("1e3", 1000), (Decimal("8"), 8)],
)
def test_integer_good(schema: Schema, value: Any, expected: int) -> None:
    result = ok(FieldSpec("seats", "integer"), value, schema)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "value", [True, False, 4.5, "many", "4.5", "", float("nan"), float("inf"), "nan", [1]]
)
def test_integer_bad(schema: Schema, value: Any) -> None:
    assert "is not an integer" in bad(FieldSpec("seats", "integer"), value, schema)


def test_integer_message_names_field_and_value(schema: Schema) -> None:
    assert bad(FieldSpec("seats", "integer"), "many", schema) == (
        "field 'seats': 'many' is not an integer"
    )


@pytest.mark.parametrize(
    ("value", "expected", "kind"),
    [
        (5, 5, int),
        (2.5, 2.5, float),
        ("12", 12, int),
        ("12.50", 12.5, float),
        ("-0.5", -0.5, float),
        (Decimal("3"), 3, int),
        (Decimal("3.25"), 3.25, float),
        (Fraction(1, 4), 0.25, float),
    ],
)
def test_number_good(schema: Schema, value: Any, expected: Any, kind: type) -> None:
    result = ok(FieldSpec("amount", "number"), value, schema)
    assert result == expected
    assert type(result) is kind


@pytest.mark.parametrize("value", [True, "ten", "1,5", "", [1], float("nan"), float("-inf")])
def test_number_bad(schema: Schema, value: Any) -> None:
    message = bad(FieldSpec("amount", "number"), value, schema)
    assert "number" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("False", False), (" TRUE ", True)],
)
def test_boolean_good(schema: Schema, value: Any, expected: bool) -> None:
    assert ok(FieldSpec("vip", "boolean"), value, schema) is expected


@pytest.mark.parametrize("value", ["yes", "no", 1, 0, "", "on"])
def test_boolean_bad(schema: Schema, value: Any) -> None:
    assert "is not true or false" in bad(FieldSpec("vip", "boolean"), value, schema)


def test_date_good(schema: Schema) -> None:
    spec = FieldSpec("birthday", "date")
    assert ok(spec, "2026-03-02", schema) == date(2026, 3, 2)
    assert ok(spec, date(2026, 3, 2), schema) == date(2026, 3, 2)
    assert ok(spec, datetime(2026, 3, 2, 10, 0), schema) == date(2026, 3, 2)
    # an aware date-time is read in the account's zone: 22:30 UTC is the next day in Moscow
    assert ok(spec, datetime(2026, 3, 2, 22, 30, tzinfo=UTC), schema) == date(2026, 3, 3)


@pytest.mark.parametrize("value", ["02.03.2026", "2026-13-01", "tomorrow", 20260302, True])
def test_date_bad(schema: Schema, value: Any) -> None:
    assert "is not a date" in bad(FieldSpec("birthday", "date"), value, schema)


def test_datetime_good(schema: Schema) -> None:
    spec = FieldSpec("start", "datetime")
    aware = ok(spec, "2026-03-02T10:00:00+03:00", schema)
    assert aware == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert aware.utcoffset() == timedelta(hours=3)
    naive = ok(spec, "2026-03-02T10:00", schema)
    assert naive.tzinfo is MSK
    assert naive == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert ok(spec, "2026-03-02T07:00:00Z", schema) == naive
    assert ok(spec, datetime(2026, 3, 2, 10, 0), schema) == naive
    other = datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    kept = ok(spec, other, schema)
    assert kept == other and kept.tzinfo is MSK  # the same instant, in the account's zone
    midnight = ok(spec, date(2026, 3, 2), schema)
    assert midnight == datetime(2026, 3, 2, tzinfo=MSK)


@pytest.mark.parametrize("value", ["soon", "2026-03-02T25:00", 1700000000, True, ["x"]])
def test_datetime_bad(schema: Schema, value: Any) -> None:
    assert "is not a date-time" in bad(FieldSpec("start", "datetime"), value, schema)


@pytest.mark.parametrize("value", ["anna@example.com", " a.b+c@shop.example.org "])
def test_email_good(schema: Schema, value: str) -> None:
    assert ok(FieldSpec("email", "email"), value, schema) == value.strip()


@pytest.mark.parametrize(
    "value",
    [
        "anna",
        "anna@example",
        "@example.com",
        "a@b@example.com",
        "anna@.com",
        "anna@example.",
        "an na@example.com",
        5,
    ],
)
def test_email_bad(schema: Schema, value: Any) -> None:
    assert "is not an email address" in bad(FieldSpec("email", "email"), value, schema)


@pytest.mark.parametrize(
    "value", ["+491701234567", "+7 (495) 123-45-67", "12345", "8-800-555-35-35", 491701234567]
)
def test_phone_good(schema: Schema, value: Any) -> None:
    assert ok(FieldSpec("phone", "phone"), value, schema) == str(value)


@pytest.mark.parametrize(
    "value", ["1234", "1" * 21, "call me", "+49 170 abc", "49+170123", "", 12.5, True]
)
def test_phone_bad(schema: Schema, value: Any) -> None:
    assert "is not a phone number" in bad(FieldSpec("phone", "phone"), value, schema)


def test_phone_digit_count_is_explained(schema: Schema) -> None:
    assert "4 digits, not 5 to 20" in bad(FieldSpec("phone", "phone"), "12-34", schema)


def test_enum_values(schema: Schema) -> None:
    spec = FieldSpec("status", "enum", values=("new", "paid", "false"))
    assert ok(spec, "paid", schema) == "paid"
    assert ok(spec, "false", schema) == "false"
    assert bad(spec, "gone", schema) == "field 'status': 'gone' is not one of new, paid, false"
    assert "is not one of" in bad(spec, False, schema)


def test_enum_with_dictionary(schema: Schema) -> None:
    spec = FieldSpec("kind", "enum", dictionary="event_type")
    assert ok(spec, "online", schema) == "online"
    assert bad(spec, "webinar", schema) == (
        "field 'kind': 'webinar' is not in dictionary event_type (offline, online, hybrid)"
    )


def test_link_to_dictionary(schema: Schema) -> None:
    spec = FieldSpec("kind", "link", to="dictionary:event_type")
    assert ok(spec, "hybrid", schema) == "hybrid"
    assert bad(spec, "webinar", schema) == (
        "field 'kind': 'webinar' is not in dictionary event_type (offline, online, hybrid)"
    )
    assert "is not in dictionary" in bad(spec, 3, schema)


def test_unknown_dictionary_is_refused(schema: Schema) -> None:
    spec = FieldSpec("kind", "link", to="dictionary:nope")
    assert bad(spec, "x", schema) == "field 'kind': dictionary nope does not exist"


def test_link_to_type(schema: Schema) -> None:
    spec = FieldSpec("manager", "link", to="user")
    assert ok(spec, "boris", schema) == "boris"
    assert ok(spec, {"id": "boris", "name": "Boris"}, schema) == "boris"
    assert ok(spec, SimpleNamespace(id="boris"), schema) == "boris"
    assert ok(spec, 42, schema) == "42"
    for value in ("", {"name": "Boris"}, True, 1.5, ["boris"]):
        assert "is not an id of a user" in bad(spec, value, schema)


def test_link_without_target(schema: Schema) -> None:
    assert "missing 'to'" in bad(FieldSpec("x", "link"), "a", schema)


def test_list(schema: Schema) -> None:
    spec = FieldSpec("seats", "list", of=FieldSpec("seats", "integer"))
    assert ok(spec, [1, "2", 3.0], schema) == [1, 2, 3]
    assert ok(spec, (1,), schema) == [1]
    assert ok(spec, [], schema) == []
    assert bad(spec, 5, schema) == "field 'seats': 5 is not a list"
    assert bad(spec, "1,2", schema) == "field 'seats': '1,2' is not a list"
    assert bad(spec, [1, "x"], schema) == "field 'seats': item 2: 'x' is not an integer"
    assert bad(spec, [1, None], schema) == "field 'seats': item 2 is empty"


def test_list_of_dictionary_links_and_nested_lists(schema: Schema) -> None:
    kinds = FieldSpec("kinds", "list", of=FieldSpec("kinds", "link", to="dictionary:event_type"))
    assert ok(kinds, ["online", "offline"], schema) == ["online", "offline"]
    assert "item 1: 'x' is not in dictionary event_type" in bad(kinds, ["x"], schema)
    grid = FieldSpec("grid", "list", of=FieldSpec("grid", "list", of=FieldSpec("grid", "number")))
    assert ok(grid, [[1, 2.5], []], schema) == [[1, 2.5], []]
    assert bad(grid, [[1], ["a"]], schema) == "field 'grid': item 2: item 1: 'a' is not a number"


def test_list_without_item_type(schema: Schema) -> None:
    assert "missing 'of'" in bad(FieldSpec("tags", "list"), ["a"], schema)


def test_file(schema: Schema) -> None:
    spec = FieldSpec("contract", "file")
    assert ok(spec, "files/contract.pdf", schema) == "files/contract.pdf"
    assert "is not a file reference" in bad(spec, 7, schema)


def test_password_never_echoes_the_value(schema: Schema) -> None:
    spec = FieldSpec("password", "password")
    assert ok(spec, "s3cret!", schema) == "s3cret!"
    for value in ("", 123456):
        message = bad(spec, value, schema)
        assert message == "field 'password': a password must be non-empty text"
        assert "123456" not in message


@pytest.mark.parametrize("kind", FIELD_TYPES)
def test_none_clears_unless_required(schema: Schema, kind: str) -> None:
    assert ok(FieldSpec("f", kind), None, schema) is None
    required = FieldSpec("f", kind, required=True)
    assert bad(required, None, schema) == "field 'f': a value is required"


def test_unknown_field_type(schema: Schema) -> None:
    assert bad(FieldSpec("f", "colour"), "red", schema) == "field 'f': unknown field type 'colour'"


def test_long_values_are_shortened_in_messages(schema: Schema) -> None:
    message = bad(FieldSpec("seats", "integer"), "x" * 500, schema)
    assert len(message) < 120
    assert message.endswith("... is not an integer")
