"""Tests of flowlane.expr: the whitelist, None-safety, dates, guards, caching, and a property."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flowlane.core.errors import ExpressionError, ValidationError
from flowlane.expr import (
    DEFAULT_NAMES,
    FUNCTIONS,
    Expression,
    Readable,
    compile_expression,
    compile_value,
    evaluate,
    is_expression_literal,
)

TZ = timezone(timedelta(hours=3))
NOW = datetime(2026, 3, 1, 10, 30, tzinfo=TZ)


class Record:
    """A fake engine object proxy: fields by name, equal to its id (like a link)."""

    def __init__(self, ident: str, /, **fields: Any) -> None:
        self.id = ident
        self.fields = fields
        self.reads: list[str] = []

    def flowlane_get(self, name: str) -> Any:
        self.reads.append(name)
        if name == "id":
            return self.id
        return self.fields.get(name)

    def save(self) -> None:  # pragma: no cover - must never be reachable
        raise AssertionError("expressions must not call methods")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return other.id == self.id
        return other == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def ev(source: str, **scope: Any) -> Any:
    return compile_expression(source).evaluate(scope)


# --- refused at compile time -----------------------------------------------------------

REFUSED = [
    ("foo", "name 'foo' is not allowed here; use one of: answer, counters, now, object, vars"),
    ("eval('1')", "function 'eval' is not allowed"),
    ("open('x')", "function 'open' is not allowed"),
    ("__import__('os')", "name '__import__' is private"),
    ("_secret", "name '_secret' is private"),
    ("object.__class__", "attribute '__class__' is private"),
    ("object._id", "attribute '_id' is private"),
    ("vars.x.__class__.__bases__", "attribute '__bases__' is private"),
    ("lambda: 1", "lambda is not allowed"),
    ("[x for x in vars]", "comprehensions are not allowed"),
    ("{x for x in vars}", "comprehensions are not allowed"),
    ("{x: 1 for x in vars}", "comprehensions are not allowed"),
    ("(x for x in vars)", "generator expressions are not allowed"),
    ("(x := 1)", "assignment expressions (:=) are not allowed"),
    ("f'{vars}'", "f-strings are not allowed"),
    ("[*vars.items]", "starred expressions (*x) are not allowed"),
    ("len(*vars.items)", "starred arguments are not allowed (in len(...))"),
    ("round(1.5, ndigits=1)", "keyword arguments are not allowed (in round(...))"),
    ("len(**vars)", "keyword arguments are not allowed (in len(...))"),
    ("{**vars}", "dict unpacking (**) is not allowed"),
    ("await vars.x", "await is not allowed"),
    ("(yield vars.x)", "yield is not allowed"),
    ("(yield from vars.x)", "yield is not allowed"),
    ("object.save()", "calling object.save is not allowed"),
    ("(len)(vars.x)", "calling (len) is not allowed"),
    ("vars.f(1)", "calling vars.f is not allowed"),
    ("len(vars)(1)", "calling len(vars) is not allowed"),
    ("len", "function 'len' must be called, as in len(...)"),
    ("days(1, 2)", "function 'days' takes 1 argument (2 given)"),
    ("today(1)", "function 'today' takes no arguments (1 given)"),
    ("date(2026, 3)", "function 'date' takes 1 or 3 arguments (2 given)"),
    ("min()", "function 'min' takes at least 1 argument (0 given)"),
    ("vars.x << 1", "operator '<<' is not allowed"),
    ("vars.x | 1", "operator '|' is not allowed"),
    ("vars.x & 1", "operator '&' is not allowed"),
    ("vars.x ^ 1", "operator '^' is not allowed"),
    ("vars.x @ vars.y", "operator '@' is not allowed"),
    ("~vars.x", "operator '~' is not allowed"),
    ("b'x'", "bytes literals are not allowed"),
    ("1j", "complex numbers are not allowed"),
    ("...", "the literal ... is not allowed"),
    ("'%s' % vars.x", "string formatting with '%' is not allowed"),
    ("vars.x is 1", "'is' and 'is not' only compare with None, True or False"),
    ("vars.x is vars.y", "'is' and 'is not' only compare with None, True or False"),
    ("vars.x ** 101", "exponent 101 is too large (max 100)"),
    ("2 ** 1000", "exponent 1000 is too large (max 100)"),
    ("99 ** 100", "result of ** would be larger than 10**100"),
    ("'a' * 10001", "repetition by 10001 is too large (max 10000)"),
    ("20000 * [1]", "repetition by 20000 is too large (max 10000)"),
    ("(1, 2) * 99999", "repetition by 99999 is too large (max 10000)"),
    ("a < = 3", "syntax error at column 5: invalid syntax"),
    ("vars.x +", "syntax error"),
    ("1)+(2", "syntax error: unbalanced parentheses"),
    ("vars.x\n+ (", "syntax error"),
    ("import os", "syntax error"),
    ("x = 1", "syntax error"),
    ("", "expression is empty"),
    ("   ", "expression is empty"),
    ("vars.x" + " + 1" * 40, "expression is nested too deeply (max 32)"),
    ("-" * 40 + "1", "expression is nested too deeply (max 32)"),
    ("vars" + ".a" * 40, "expression is nested too deeply (max 32)"),
    ("len(" * 40 + "1" + ")" * 40, "expression is nested too deeply (max 32)"),
    ("1 + " * 700 + "1", "expression is too long (2801 characters, max 2000)"),
]


@pytest.mark.parametrize(("source", "message"), REFUSED)
def test_refused_constructs_name_the_problem(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValidationError)
    assert caught.value.code == "invalid_expression"


def test_syntax_error_position_on_a_later_line() -> None:
    with pytest.raises(ExpressionError, match=r"syntax error at line 2, column \d+"):
        compile_expression("vars.x and\nvars.y == = 3")


def test_names_can_be_restricted() -> None:
    with pytest.raises(
        ExpressionError, match="name 'object' is not allowed here; use one of: a, b"
    ):
        compile_expression("object.x", names=["a", "b"])
    assert compile_expression("a + b", names=["a", "b"]).evaluate({"a": 1, "b": 2}) == 3


def test_non_text_is_refused() -> None:
    with pytest.raises(ExpressionError, match="must be text, not int"):
        compile_expression(3)  # type: ignore[arg-type]


def test_accepted_constructs() -> None:
    scope = {"vars": {"n": 7, "items": [1, 2, 3], "s": "Hello"}}
    cases: dict[str, Any] = {
        "vars.n + 1": 8,
        "vars.n - 10": -3,
        "vars.n * 2": 14,
        "vars.n / 2": 3.5,
        "vars.n // 2": 3,
        "vars.n % 4": 3,
        "vars.n ** 2": 49,
        "-vars.n": -7,
        "+vars.n": 7,
        "-3": -3,
        "not vars.n": False,
        "1 < vars.n <= 7": True,
        "1 < vars.n < 5": False,
        "vars.n in vars.items": False,
        "2 in vars.items": True,
        "4 not in vars.items": True,
        "vars.missing is None": True,
        "vars.n is not None": True,
        "vars.n if vars.n > 5 else 0": 7,
        "vars.n > 5 and vars.s or 'x'": "Hello",
        "vars.items[0]": 1,
        "vars.items[-1]": 3,
        "vars.items[1:]": [2, 3],
        "vars.s[::-1]": "olleH",
        "vars['n']": 7,
        "[1, 2.5, 'a', None, True]": [1, 2.5, "a", None, True],
        "(1, 2)": (1, 2),
        "{'a': vars.n}": {"a": 7},
        "{1, 2}": {1, 2},
        "len(vars.items)": 3,
        "min(vars.items)": 1,
        "max(3, vars.n, 5)": 7,
        "abs(-vars.n)": 7,
        "round(2.567, 2)": 2.57,
        "round(2.5)": 2,
        "lower(vars.s)": "hello",
        "upper(vars.s)": "HELLO",
        "str(vars.n)": "7",
        "int('42')": 42,
        "float('2.5')": 2.5,
        "bool(vars.items)": True,
        "vars.s + ' world'": "Hello world",
        "'ab' * 3": "ababab",
        "vars.n  # a comment": 7,
        "\n  vars.n > 1\n  and vars.n < 10\n": True,
    }
    for source, expected in cases.items():
        assert ev(source, **scope) == expected, source


# --- None-safety -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("object.client.phone", None),
        ("vars.missing.deeper['key'][0]", None),
        ("vars.items[10]", None),
        ("vars.items['x']", None),
        ("vars.text.upper", None),  # attributes of other values are not readable
        ("vars.n.real", None),
        ("vars['items'][1:2:0]", None),  # slice step 0
        ("vars.missing < 3", False),
        ("vars.missing > 3", False),
        ("vars.missing <= None", False),
        ("3 >= vars.missing", False),
        ("vars.text < 3", False),  # not comparable
        ("vars.missing == None", True),
        ("vars.missing != 3", True),
        ("1 in vars.missing", False),
        ("1 not in vars.missing", True),
        ("1 in vars.text", False),
        ("vars.missing + 1", None),
        ("1 - vars.missing", None),
        ("vars.missing * 2", None),
        ("vars.text * 'x'", None),
        ("vars.text + 1", None),
        ("-vars.text", None),
        ("+vars.text", None),
        ("vars.missing ** 2", None),
        ("vars.text ** 2", None),
        ("(-8) ** 0.5", None),  # complex results are not numbers here
        ("vars.n / 0", None),
        ("vars.n // 0", None),
        ("vars.n % 0", None),
        ("0 ** -1", None),
        ("vars.text % 2", None),
        ("len(vars.missing)", 0),
        ("len(vars.n)", None),
        ("lower(vars.missing)", None),
        ("upper(vars.missing)", None),
        ("str(vars.missing)", None),
        ("int(vars.text)", None),
        ("int(vars.missing)", None),
        ("float(vars.text)", None),
        ("abs(vars.missing)", None),
        ("round(vars.missing)", None),
        ("round(vars.text)", None),
        ("min([])", None),
        ("max([None, None])", None),
        ("min(vars.missing, 3)", 3),
        ("max(1, 'a')", None),
        ("bool(vars.missing)", False),
        ("days(vars.missing)", None),
        ("hours('3')", None),
        ("date(vars.missing)", None),
        ("date('not a date')", None),
        ("date(2026, 2, 30)", None),
        ("missing_root", None),
    ],
)
def test_missing_is_none_never_an_exception(source: str, expected: Any) -> None:
    scope = {"vars": {"items": [1, 2], "text": "abc", "n": 5}, "object": None}
    names = DEFAULT_NAMES | {"missing_root"}
    assert compile_expression(source, names=names).evaluate(scope) == expected


def test_missing_root_names_read_as_none() -> None:
    assert ev("object") is None
    assert compile_expression("answer.by").test({}) is False


def test_test_converts_to_bool() -> None:
    expression = compile_expression("vars.x")
    assert expression.test({"vars": {"x": None}}) is False
    assert expression.test({"vars": {"x": [1]}}) is True
    assert expression.test({"vars": {"x": 0}}) is False


# --- Readable proxies and links --------------------------------------------------------


def test_readable_fields_and_link_equality() -> None:
    boris = Record("boris", phone="+7 900", name="Boris")
    deal = Record("deal-1", manager=boris, amount=Decimal("1500.50"), status="in_work")
    assert isinstance(deal, Readable)
    scope = {"object": deal}
    assert ev("object.manager == 'boris'", **scope) is True
    assert ev("object.manager != 'anna'", **scope) is True
    assert ev("'boris' == object.manager", **scope) is True
    assert ev("object.manager.phone", **scope) == "+7 900"
    assert ev("object['manager']['name']", **scope) == "Boris"
    assert ev("object.amount > 1000", **scope) is True
    assert ev("object.missing", **scope) is None
    assert ev("object.save", **scope) is None  # a field read, never the method
    assert "save" in deal.reads


def test_readable_is_never_asked_for_private_names() -> None:
    record = Record("r1")
    assert ev("object[vars.key]", object=record, vars={"key": "__dict__"}) is None
    assert record.reads == []


def test_mapping_takes_precedence_and_dynamic_keys_work() -> None:
    scope = {"vars": {"key": "b", "data": {"a": 1, "b": 2, "_c": 3}}}
    assert ev("vars.data[vars.key]", **scope) == 2
    assert ev("vars.data['_c']", **scope) == 3  # mapping keys are data, not attributes
    assert ev("vars.data[[1]]", **scope) is None  # unhashable key


def test_plain_objects_expose_nothing() -> None:
    class Plain:
        secret = "x"

    assert ev("vars.obj.secret", vars={"obj": Plain()}) is None
    assert ev("vars.obj['secret']", vars={"obj": Plain()}) is None


# --- dates ------------------------------------------------------------------------------


def test_date_arithmetic() -> None:
    webinar = datetime(2026, 3, 10, 18, 0, tzinfo=TZ)
    scope = {"vars": {"webinar_at": webinar, "start": date(2026, 3, 5)}, "now": NOW}
    assert ev("vars.webinar_at - days(1)", **scope) == webinar - timedelta(days=1)
    assert ev("vars.webinar_at + hours(2) + minutes(30)", **scope) == webinar + timedelta(
        hours=2, minutes=30
    )
    assert ev("vars.start - days(3)", **scope) == date(2026, 3, 2)
    assert ev("now < vars.webinar_at - days(1)", **scope) is True
    assert ev("(vars.webinar_at - now).days", **scope) == 9
    assert ev("days(1.5)", **scope) == timedelta(days=1, hours=12)
    assert ev("days(2) > hours(47)", **scope) is True


def test_date_meets_datetime_as_midnight_in_its_zone() -> None:
    scope = {"vars": {"day": date(2026, 3, 1), "other": date(2026, 3, 2)}, "now": NOW}
    assert ev("vars.day < now", **scope) is True
    assert ev("now < vars.other", **scope) is True
    assert ev("now >= vars.day", **scope) is True
    assert ev("now <= vars.day", **scope) is False
    assert ev("now > vars.other", **scope) is False
    assert ev("now - vars.day", **scope) == timedelta(hours=10, minutes=30)
    assert ev("vars.other - now", **scope) == timedelta(hours=13, minutes=30)
    midnight = datetime.combine(date(2026, 3, 1), time(), tzinfo=TZ)
    assert ev("vars.day == vars.midnight", vars={**scope["vars"], "midnight": midnight})
    assert ev("vars.day != vars.midnight", vars={**scope["vars"], "midnight": midnight}) is False
    naive = datetime(2026, 3, 1, 9)
    assert ev("vars.naive < now", vars={"naive": naive}, now=NOW) is False  # not comparable


def test_date_parts() -> None:
    scope = {
        "now": NOW,
        "vars": {"d": date(2026, 3, 2), "t": time(9, 15), "span": timedelta(hours=26)},
    }
    assert ev("now.year * 10000 + now.month * 100 + now.day", **scope) == 20260301
    assert ev("(now.hour, now.minute, now.second)", **scope) == (10, 30, 0)
    assert ev("now.weekday", **scope) == 6  # Sunday; a value, not a method
    assert ev("vars.d.weekday", **scope) == 0
    assert ev("vars.d.hour", **scope) is None
    assert ev("vars.t.hour", **scope) == 9
    assert ev("(vars.span.days, vars.span.seconds)", **scope) == (1, 7200)
    assert ev("now.tzinfo", **scope) is None
    assert ev("now.date", **scope) is None
    assert ev("now.replace", **scope) is None
    assert ev("vars.span.total_seconds", **scope) is None


def test_today_and_date() -> None:
    assert ev("today()", now=NOW) == date(2026, 3, 1)
    assert ev("today()", now=date(2026, 1, 2)) == date(2026, 1, 2)
    assert ev("today()") is None
    assert ev("date(2026, 3, 1) == today()", now=NOW) is True
    assert ev("date('2026-03-01')") == date(2026, 3, 1)
    assert ev("date(' 2026-03-01T23:00:00+00:00 ')") == date(2026, 3, 1)
    assert ev("date(now)", now=NOW) == date(2026, 3, 1)
    assert ev("date(vars.d)", vars={"d": date(2025, 12, 31)}) == date(2025, 12, 31)
    assert ev("date(3)") is None
    assert ev("today() - days(1) < date(now)", now=NOW) is True
    assert ev("str(today())", now=NOW) == "2026-03-01"
    assert ev("str(now)", now=NOW) == "2026-03-01T10:30:00+03:00"
    expression = compile_expression("today() > vars.d")
    assert expression.names == {"now", "vars"}


def test_min_max_forms() -> None:
    scope = {"vars": {"a": 3, "b": None, "xs": (4, 2, None), "d": {"k": 1}}}
    assert ev("min(vars.a, vars.b, 5)", **scope) == 3
    assert ev("max(vars.xs)", **scope) == 4
    assert ev("min(vars.xs)", **scope) == 2
    assert ev("max('abc')", **scope) == "abc"  # text is one value, not a list of letters
    assert ev("max(vars.d)", **scope) == {"k": 1}
    assert ev("max(vars.b)", **scope) is None
    assert ev("min(days(1), hours(2))", **scope) == timedelta(hours=2)


def test_conversions() -> None:
    assert ev("int(2.9)") == 2
    assert ev("int(True)") == 1
    assert ev("float(3)") == 3.0
    assert ev("str(2.5) + '!'") == "2.5!"
    assert ev("lower(object)", object=Record("ID")) is not None
    assert ev("round(vars.x, 1)", vars={"x": Decimal("2.25")}) == Decimal("2.2")
    assert ev("days(vars.x)", vars={"x": Decimal("1.5")}) == timedelta(days=1.5)
    assert ev("days(10 ** 20)") is None
    assert ev("int('1' * 5000)") is None  # beyond the interpreter's digit limit


# --- runtime guards -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "scope", "message"),
    [
        ("vars.base ** vars.exp", {"base": 2, "exp": 101}, "exponent 101 is too large (max 100)"),
        ("vars.base ** 100", {"base": 10**5}, "result of ** would be larger than 10**100"),
        ("vars.base ** 2", {"base": 10**60}, "result of ** would be larger than 10**100"),
        ("vars.base ** 2", {"base": 1e60}, "result of ** would be larger than 10**100"),
        ("vars.s * vars.n", {"s": "ab", "n": 50_001}, "more than 100000 items"),
        ("vars.n * vars.s", {"s": [1, 2], "n": 50_001}, "more than 100000 items"),
        ("vars.s * 10000", {"s": "abcdefghijk"}, "more than 100000 items"),
        ("round(1.5, vars.n)", {"n": 10**9}, "round() takes at most 100 digits"),
        (
            "str([vars.s * 100000] * vars.n)",
            {"s": "x", "n": 100000},
            "longer than 1000000 characters",
        ),
        ("lower({'k': [vars.s * 100000] * 20})", {"s": "x"}, "longer than 1000000 characters"),
        ("now + days(10 ** 8)", {}, "cannot evaluate"),
        ("{vars.s: 1}", {"s": [1]}, "cannot evaluate"),
    ],
)
def test_runtime_guards_raise_expression_error(
    source: str, scope: dict[str, Any], message: str
) -> None:
    expression = compile_expression(source)
    with pytest.raises(ExpressionError) as caught:
        expression.evaluate({"vars": scope, "now": NOW})
    assert message in str(caught.value)
    assert source in str(caught.value)


def test_guards_leave_harmless_powers_and_repetition_alone() -> None:
    assert ev("vars.b ** 100", vars={"b": 10}) == 10**100
    assert ev("vars.b ** vars.e", vars={"b": 1, "e": 10**30}) == 1
    assert ev("vars.b ** vars.e", vars={"b": 0.5, "e": 200}) == 0.5**200
    assert ev("vars.b ** vars.e", vars={"b": 2, "e": -1000}) == 2.0**-1000
    assert ev("vars.b ** -1000", vars={"b": 2}) == 2.0**-1000
    assert ev("vars.s * vars.n", vars={"s": "ab", "n": 50_000}) == "ab" * 50_000
    assert ev("vars.s * -5", vars={"s": "ab"}) == ""
    assert ev("'ab' * 10000") == "ab" * 10000


# --- names and paths -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "names", "paths"),
    [
        ("object.client.phone", {"object"}, {("object", "client", "phone")}),
        ("counters.calls < 3", {"counters"}, {("counters", "calls")}),
        ("vars['x']", {"vars"}, {("vars", "x")}),
        ("vars['x'].y['z']", {"vars"}, {("vars", "x", "y", "z")}),
        ("now", {"now"}, {("now",)}),
        ("now - days(1) > vars.at", {"now", "vars"}, {("now",), ("vars", "at")}),
        ("vars.items[0].name", {"vars"}, {("vars", "items")}),
        ("vars.a[vars.k].b", {"vars"}, {("vars", "a"), ("vars", "k")}),
        ("object.a.b and object.a", {"object"}, {("object", "a", "b"), ("object", "a")}),
        ("(vars.a or object).b", {"vars", "object"}, {("vars", "a"), ("object",)}),
        ("today()", {"now"}, {("now",)}),
        ("len(answer.fields)", {"answer"}, {("answer", "fields")}),
        ("1 + 2", set(), set()),
    ],
)
def test_names_and_paths(source: str, names: set[str], paths: set[tuple[str, ...]]) -> None:
    expression = compile_expression(source)
    assert expression.names == names
    assert expression.paths == paths
    assert expression.source == source


# --- API helpers and caching ---------------------------------------------------------


def test_compiled_expressions_are_cached() -> None:
    first = compile_expression("vars.cache_me + 1")
    assert compile_expression("vars.cache_me + 1") is first
    assert compile_expression("vars.cache_me + 1", names=list(DEFAULT_NAMES)) is first
    assert compile_expression("vars.cache_me + 1", names=["vars"]) is not first
    assert isinstance(first, Expression)
    assert "vars.cache_me" in repr(first)


def test_evaluation_does_not_reparse(monkeypatch: pytest.MonkeyPatch) -> None:
    expression = compile_expression("counters.calls < 3 and vars.x == 'y'")

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(ast, "parse", no_parsing)
    for calls in range(5):
        assert expression.test({"counters": {"calls": calls}, "vars": {"x": "y"}}) is (calls < 3)


def test_expression_literals() -> None:
    assert is_expression_literal("=answer.by")
    assert not is_expression_literal("in_work")
    assert not is_expression_literal(0)
    assert not is_expression_literal(None)
    compiled = compile_value("=answer.by")
    assert compiled is not None
    assert compiled.source == "answer.by"
    assert compiled.evaluate({"answer": {"by": "boris"}}) == "boris"
    assert compile_value("in_work") is None
    assert compile_value(42) is None
    assert compile_value("=x", names=["x"]) is compile_expression("x", names=["x"])
    with pytest.raises(ExpressionError, match="expression is empty"):
        compile_value("=")


def test_evaluate_convenience() -> None:
    assert evaluate("counters.calls < 3", {"counters": {"calls": 2}}) is True
    assert evaluate("vars.a + vars.b", {"vars": {"a": 1}}) is None


def test_function_table_matches_the_spec() -> None:
    expected = "len min max abs round lower upper today days hours minutes date str int float bool"
    # ``datetime`` is ours: ISO text read in the account's zone (structured filters use it).
    assert set(FUNCTIONS) == {*expected.split(), "datetime"}


def test_datetime_reads_iso_text_in_the_zone_of_now() -> None:
    now = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Moscow"))
    got = evaluate("datetime('2026-03-02T09:30')", {"now": now})
    assert got == datetime(2026, 3, 2, 9, 30, tzinfo=ZoneInfo("Europe/Moscow"))
    assert evaluate("datetime('2026-03-02T06:30Z') < now", {"now": now}) is True
    assert evaluate("datetime('2026-03-02')", {"now": now}) == datetime(
        2026, 3, 2, tzinfo=ZoneInfo("Europe/Moscow")
    )
    assert evaluate("datetime('not a date')", {"now": now}) is None
    assert evaluate("datetime('2026-03-02T09:30')", {}) is None  # no zone to read it in
    assert evaluate("datetime(now)", {"now": now}) == now


def test_function_names_can_also_be_scope_names() -> None:
    expression = compile_expression("len(len) + 1", names=["len"])
    assert expression.evaluate({"len": [1, 2]}) == 3


def test_no_builtins_leak_into_the_compiled_code() -> None:
    # Names are resolved only from the scope; nothing else is reachable.
    expression = compile_expression("vars", names=["vars"])
    assert expression.evaluate({"vars": 1}) == 1
    assert expression.evaluate({}) is None


def test_utc_now_works_too() -> None:
    assert ev("today()", now=datetime(2026, 3, 1, 23, 30, tzinfo=UTC)) == date(2026, 3, 1)


@pytest.mark.parametrize(
    ("source", "expected"),
    [("true", True), ("false", False), ("null is None", True), ("vars.x == true", True)],
)
def test_yaml_style_lowercase_literals(source: str, expected: object) -> None:
    assert compile_expression(source).evaluate({"vars": {"x": True}}) is expected
