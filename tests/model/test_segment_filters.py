"""Structured filters (the condition builder) become safe expressions; malformed ones are
refused naming the field, operator or place."""

from __future__ import annotations

from typing import Any

import pytest

from flowlane.core.errors import ValidationError
from flowlane.expr import compile_expression
from flowlane.model.segment import filter_expression, parse_filter
from flowlane.objects import Schema, build_schema


def _schema() -> Schema:
    return build_schema(
        {
            "types": {
                "event": {
                    "label": "Event",
                    "fields": {
                        "title": {"type": "string"},
                        "born": {"type": "date"},
                        "start": {"type": "datetime"},
                        "seats": {"type": "integer"},
                        "tags": {"type": "list", "of": "string"},
                        "owner": {"type": "link", "to": "user"},
                    },
                }
            }
        }
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"field": "title", "value": "A"}, "object.title == 'A'"),
        ({"field": "seats", "op": "ge", "value": 10}, "object.seats >= 10"),
        ({"field": "seats", "op": "in", "value": [1, 2]}, "object.seats in [1, 2]"),
        ({"field": "seats", "op": "between", "value": [1, 9]}, "1 <= object.seats <= 9"),
        ({"field": "title", "op": "contains", "value": "x"}, "'x' in object.title"),
        ({"field": "tags", "op": "not_contains", "value": "vip"}, "'vip' not in object.tags"),
        ({"field": "title", "op": "starts_with", "value": "Ab"}, "object.title[:2] == 'Ab'"),
        ({"field": "title", "op": "empty"}, "(object.title == None or object.title == '')"),
        ({"field": "seats", "op": "not_empty"}, "not (object.seats == None)"),
        ({"field": "tags", "op": "empty"}, "len(object.tags) == 0"),
        ({"field": "born", "op": "lt", "value": "2026-03-01"}, "object.born < date('2026-03-01')"),
        (
            {"field": "born", "op": "within_last", "value": "7d"},
            "today() - days(7) <= object.born <= today()",
        ),
        (
            {"field": "start", "op": "older_than", "value": "1h30m"},
            "object.start < now - minutes(90)",
        ),
        (
            {"field": "start", "op": "ge", "value": "=now - days(1)"},
            "object.start >= (now - days(1))",
        ),
        (
            {"field": "owner.email", "op": "empty"},
            "(object.owner.email == None or object.owner.email == '')",
        ),
    ],
)
def test_rules_become_expressions(rule: dict[str, Any], expected: str) -> None:
    got = filter_expression(rule, "event", _schema())
    assert got == expected
    compile_expression(got)  # and they are valid expressions


def test_all_any_not_nest() -> None:
    got = filter_expression(
        {
            "all": [
                {"field": "seats", "op": "gt", "value": 1},
                {
                    "not": {
                        "any": [{"field": "title", "value": "a"}, {"field": "title", "value": "b"}]
                    }
                },
            ]
        },
        "event",
        _schema(),
    )
    assert got == "(object.seats > 1) and (not ((object.title == 'a') or (object.title == 'b')))"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"field": "colour", "value": 1}, "event has no field 'colour'"),
        ({"field": "title.x", "value": 1}, "'title' is not a link to an object"),
        ({"field": "_private", "value": 1}, "is not a field name"),
        ({"field": "born", "value": "garbage"}, "'garbage' is not an ISO 8601 date"),
        ({"field": "start", "op": "lt", "value": "soon"}, "is not an ISO 8601 datetime"),
        ({"field": "seats", "op": "in", "value": 3}, "value must be a non-empty list"),
        ({"field": "seats", "op": "between", "value": [1]}, "a list of two values"),
        ({"field": "seats", "op": "empty", "value": 1}, "takes no value"),
        ({"field": "born", "op": "within_last", "value": "12h"}, "takes whole days"),
        ({"field": "start", "op": "within_next", "value": "soon"}, "not a duration"),
        ({"field": "seats", "value": {"a": 1}}, "is not text, a number, a boolean or null"),
        ({"field": "seats", "op": "like", "value": 1}, "filter op: Input should be"),
        ({"all": [{"field": "seats", "op": "like"}]}, "filter all.0.op: Input should be"),
        ({"all": []}, "filter all: List should have at least 1 item"),
        (42, "a filter is an expression or a mapping"),
    ],
)
def test_malformed_filters_are_refused_naming_the_place(raw: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(".", r"\.")):
        filter_expression(raw, "event", _schema())


def test_expression_text_passes_through() -> None:
    assert parse_filter("object.seats > 1") == "object.seats > 1"
    assert filter_expression(None, "event", _schema()) is None
