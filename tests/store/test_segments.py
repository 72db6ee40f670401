"""Segments: a condition on objects selects exactly the same objects in SQL as in Python.

The property test draws random conditions (comparisons of every field kind with constants of
matching and of mismatched kinds, ``None``, ``in``, substrings, list membership, links, date
arithmetic, ``and`` / ``or`` / ``not``) and random structured filters, and compares what
SQLite and PostgreSQL select with what the Python evaluator (the memory store) selects, on
the same random objects. Conditions drawn from the SQL-able part of the language must also
compile without a Python residual: the database really does the work.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from sqlalchemy.dialects import postgresql, sqlite
from tests.pg import fresh_database

from flowlane.engine.context import ObjectRecord
from flowlane.model.segment import Filter, to_expression
from flowlane.objects import Schema, build_schema, validate_record
from flowlane.store.base import Store
from flowlane.store.memory import MemoryStore
from flowlane.store.sql import open_store
from flowlane.store.sql.segment import compile_segment, index_statements

TZ = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 3, 2, 10, 30, tzinfo=TZ)
SCOPE: dict[str, Any] = {"now": NOW, "vars": {"limit": 50, "kinds": ["a", "b"]}}
SCHEMA_DATA = {
    "types": {
        "thing": {
            "label": "Thing",
            "stages": ["new", "work"],
            "success": "done",
            "failure": "lost",
            "fields": {
                "name": {"type": "string"},
                "kind": {"type": "enum", "values": ["a", "b", "c"]},
                "amount": {"type": "number"},
                "count": {"type": "integer"},
                "vip": {"type": "boolean"},
                "born": {"type": "date"},
                "at": {"type": "datetime"},
                "owner": {"type": "link", "to": "user"},
                "color": {"type": "link", "to": "dictionary:colors"},
                "tags": {"type": "list", "of": "string"},
            },
        },
        # fields named like thing's, holding text: SQL on things must never cast these
        "deal": {
            "label": "Deal",
            "fields": {
                "amount": {"type": "string"},
                "count": {"type": "string"},
                "vip": {"type": "string"},
            },
        },
    },
    "dictionaries": {"colors": ["red", "green", "blue"]},
}
TEXTS = ["", "a", "b", "ab", "Ab", "ä", "яблоко", "x'y", "a b", "z", "50%", "a_b", "c:\\d"]
NUMBERS = [-3, 0, 1, 2, 2.5, 10, 49.99, 50, 100, 1e6]
DAYS = [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3), date(2025, 12, 31)]
MOMENTS = [
    datetime(2026, 3, 2, 10, 30, tzinfo=TZ),
    datetime(2026, 3, 2, 0, 0, tzinfo=TZ),
    datetime(2026, 3, 1, 23, 59, 59, 500, tzinfo=TZ),
    datetime(2026, 3, 2, 7, 30, tzinfo=UTC),
    datetime(2026, 3, 5, 12, 0, tzinfo=TZ),
]


def _schema() -> Schema:
    return build_schema(SCHEMA_DATA)


def _objects(schema: Schema) -> list[ObjectRecord]:
    rnd = random.Random(20261123)
    users = []
    for i in range(6):
        data = {"name": rnd.choice(TEXTS[1:]), "email": f"u{i}@example.com"}
        if i % 3 == 0:
            del data["name"]
        users.append(ObjectRecord(f"u{i}", "user", data))
    things = []
    pools: dict[str, list[Any]] = {
        "name": TEXTS,
        "kind": ["a", "b", "c"],
        "amount": NUMBERS,
        "count": [-1, 0, 1, 2, 3, 50],
        "vip": [True, False],
        "born": DAYS,
        "at": MOMENTS,
        "owner": ["u0", "u1", "u2", "u3", "u4", "u5", "u9"],
        "color": ["red", "green", "blue"],
        "tags": [[], ["a"], ["a", "b"], ["vip", "x'y"], ["b"], ["50%", "a_b", ":x"]],
        "stage": ["new", "work", "done", "lost"],
    }
    for i in range(80):
        data = {k: rnd.choice(v) for k, v in pools.items() if rnd.random() < 0.8}
        data.setdefault("stage", "new")
        things.append(ObjectRecord(f"t{i:03d}", "thing", data))
    otype = schema.types["thing"]
    for rec in things:  # the values are valid ones (the link to u9 is checked elsewhere)
        clean = validate_record(otype, rec.data, schema=schema, tz=TZ, partial=False)
        rec.data.clear()
        rec.data.update(clean)
    deals = [
        ObjectRecord(f"d{i}", "deal", {"amount": text, "count": text, "vip": text})
        for i, text in enumerate(["lots", "maybe", "", "1e999"])
    ]
    return users + things + deals


class _Stores(dict[str, Store]):
    """The three stores (a short repr for hypothesis' failure reports)."""

    def __repr__(self) -> str:
        return "<stores: memory, sqlite, postgresql>"


def _load(store: Store, records: list[ObjectRecord]) -> None:
    with store.transaction():
        for rec in records:
            store.put_object(ObjectRecord(rec.id, rec.type, dict(rec.data)), NOW)


@pytest.fixture(scope="module")
def stores(
    pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Store]]:
    records = _objects(_schema())
    memory = MemoryStore(_schema(), tz=TZ)
    path = tmp_path_factory.mktemp("segments") / "s.db"
    lite = open_store(f"sqlite:///{path}", _schema(), tz=TZ, reset=True)
    with fresh_database(pg_admin_url) as url:
        pg = open_store(url, _schema(), tz=TZ, reset=True)
        made = _Stores(memory=memory, sqlite=lite, postgresql=pg)
        for store in made.values():
            _load(store, records)
        try:
            yield made
        finally:
            lite.close()
            pg.close()


def _select(store: Store, where: str) -> list[str]:
    with store.transaction():
        return store.select_objects("thing", where, SCOPE)


def _same_everywhere(stores: dict[str, Store], where: str) -> list[str]:
    expected = _select(stores["memory"], where)
    for name in ("sqlite", "postgresql"):
        assert _select(stores[name], where) == expected, f"{name}: {where}"
        with stores[name].transaction():
            count = stores[name].count_objects("thing", where, SCOPE)
        assert count == len(expected), f"{name} count: {where}"
    return expected


def _residual(where: str) -> list[str | None]:
    schema = _schema()
    return [
        compile_segment(where, type_key="thing", schema=schema, scope=SCOPE, dialect=d).residual
        for d in ("sqlite", "postgresql")
    ]


# ---- random conditions -------------------------------------------------------------------

FIELD_VALUES: dict[str, list[str]] = {
    "name": [repr(t) for t in TEXTS],
    "kind": ["'a'", "'b'", "'c'", "'d'"],
    "color": ["'red'", "'blue'", "'pink'"],
    "stage": ["'new'", "'done'", "'work'"],
    "id": ["'t001'", "'t050'", "'u1'"],
    "owner": ["'u1'", "'u3'", "'u9'"],
    "amount": [repr(n) for n in NUMBERS] + ["vars.limit"],
    "count": ["0", "1", "2", "3.5", "vars.limit"],
    "vip": ["True", "False"],
    "born": ["today()", "date(2026, 3, 1)", "date('2026-03-03')", "now", "now - hours(11)"],
    "at": ["now", "today()", "now - days(1)", "datetime('2026-03-02T00:00')", "date(2026, 3, 5)"],
    "owner.name": [repr(t) for t in TEXTS[:5]],
    "owner.email": ["'u1@example.com'", "'u3@example.com'"],
}
MISMATCHED = ["'2'", "2", "True", "now", "today()", "'red'", "1.5"]
COMPARE = ["==", "!=", "<", "<=", ">", ">="]


IN_VALUES = {
    **FIELD_VALUES,
    # ``in`` compares with plain ``==``: a date never equals a datetime there
    "born": ["today()", "date(2026, 3, 1)", "date('2026-03-03')"],
    "at": ["now", "now - days(1)", "datetime('2026-03-02T00:00')"],
}


@st.composite
def comparisons(draw: st.DrawFn, sql_only: bool) -> str:
    name = draw(st.sampled_from(sorted(FIELD_VALUES)))
    subject = f"object.{name}"
    choice = draw(st.integers(0, 9))
    if choice <= 4:
        return draw(_compare(name, sql_only))
    if choice == 5:
        return f"{subject} {draw(st.sampled_from(['==', '!=']))} None"
    if choice == 6:
        values = draw(st.lists(st.sampled_from(IN_VALUES[name]), min_size=1, max_size=3))
        op = draw(st.sampled_from(["in", "not in"]))
        return f"{subject} {op} [{', '.join(values)}]"
    if choice == 7:
        needle = draw(st.sampled_from(["'a'", "''", "'b'", "'vip'", "'x\\'y'"]))
        target = draw(st.sampled_from(["name", "tags", "owner.name"]))
        return f"{needle} {draw(st.sampled_from(['in', 'not in']))} object.{target}"
    if choice == 8:
        field = draw(st.sampled_from(["vip", "name", "amount", "born", "at", "count"]))
        return f"{draw(st.sampled_from(['', 'not ']))}object.{field}"
    return draw(_arithmetic())


@st.composite
def _compare(draw: st.DrawFn, name: str, sql_only: bool) -> str:
    subject = f"object.{name}"
    op = draw(st.sampled_from(COMPARE))
    if name == "owner" and op not in ("==", "!="):
        op = "=="
    value = draw(st.sampled_from(FIELD_VALUES[name]))
    if not sql_only and draw(st.booleans()):
        value = draw(st.sampled_from(MISMATCHED))
    if draw(st.booleans()):
        return f"{value} {_flip(op)} {subject}"
    return f"{subject} {op} {value}"


@st.composite
def _arithmetic(draw: st.DrawFn) -> str:
    shift = draw(st.sampled_from(["days(1)", "days(3)", "hours(5)", "minutes(90)"]))
    field = draw(st.sampled_from(["at", "born"]))
    if field == "born" and "days" not in shift:
        shift = "days(2)"
    form = draw(st.integers(0, 2))
    op = draw(st.sampled_from(COMPARE))
    base = "now" if field == "at" else "today()"
    if form == 0:
        return f"object.{field} {draw(st.sampled_from(['-', '+']))} {shift} {op} {base}"
    if form == 1:
        return f"{base} - object.{field} {op} {shift}"
    return f"{base} {op} {shift} + object.{field}"


def _flip(op: str) -> str:
    return {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)


def conditions(sql_only: bool) -> st.SearchStrategy[str]:
    leaf = comparisons(sql_only)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from([" and ", " or "]), inner).map(
                lambda t: f"({t[0]}){t[1]}({t[2]})"
            ),
            inner.map(lambda c: f"not ({c})"),
        ),
        max_leaves=4,
    )


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=conditions(sql_only=True))
def test_sql_able_conditions_select_the_same_objects(stores: dict[str, Store], where: str) -> None:
    _same_everywhere(stores, where)
    assert _residual(where) == [None, None], where


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=conditions(sql_only=False))
def test_any_condition_selects_the_same_objects(stores: dict[str, Store], where: str) -> None:
    """Mismatched kinds and anything else SQL cannot say stay in Python: same result."""
    _same_everywhere(stores, where)


# ---- structured filters --------------------------------------------------------------------

RULES: list[dict[str, Any]] = [
    {"field": "kind", "op": "eq", "value": "a"},
    {"field": "kind", "op": "in", "value": ["a", "c"]},
    {"field": "kind", "op": "not_in", "value": ["a"]},
    {"field": "amount", "op": "gt", "value": 10},
    {"field": "amount", "op": "between", "value": [0, 50]},
    {"field": "count", "op": "le", "value": "=vars.limit"},
    {"field": "name", "op": "contains", "value": "a"},
    {"field": "name", "op": "starts_with", "value": "a"},
    {"field": "name", "op": "empty"},
    {"field": "name", "op": "not_empty"},
    {"field": "tags", "op": "contains", "value": "vip"},
    {"field": "tags", "op": "empty"},
    {"field": "vip", "op": "eq", "value": True},
    {"field": "born", "op": "lt", "value": "2026-03-02"},
    {"field": "born", "op": "within_last", "value": "2d"},
    {"field": "at", "op": "ge", "value": "2026-03-02T00:00"},
    {"field": "at", "op": "within_last", "value": "12h"},
    {"field": "at", "op": "within_next", "value": "3d"},
    {"field": "at", "op": "older_than", "value": "1h"},
    {"field": "owner.name", "op": "eq", "value": "a"},
    {"field": "owner.email", "op": "empty"},
    {"field": "stage", "op": "in", "value": ["new", "work"]},
    {"field": "color", "op": "ne", "value": "red"},
]


def filters() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.sampled_from(RULES),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
            inner.map(lambda x: {"not": x}),
        ),
        max_leaves=5,
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=filters())
def test_structured_filters_select_the_same_objects(stores: dict[str, Store], raw: Any) -> None:
    schema = _schema()
    where = to_expression(TypeAdapter(Filter).validate_python(raw), schema.types["thing"], schema)
    _same_everywhere(stores, where)


# ---- examples that pin the meaning -----------------------------------------------------------


def test_examples_select_what_python_means(stores: dict[str, Store]) -> None:
    vip_a = _same_everywhere(stores, "object.vip and object.kind == 'a'")
    assert vip_a and all(stores["memory"].get_object(o).data["vip"] for o in vip_a)  # type: ignore[union-attr]
    missing = _same_everywhere(stores, "object.amount == None")
    assert missing  # some objects have no amount
    assert set(_same_everywhere(stores, "object.amount != 2")) >= set(missing)  # None != 2
    assert not set(_same_everywhere(stores, "object.amount < 1e9")) & set(missing)
    # not over a comparison with None: None < 5 is false, so "not" holds
    assert set(_same_everywhere(stores, "not (object.amount < 5)")) >= set(missing)
    assert _same_everywhere(stores, "object.owner.name == None")  # no name, or owner u9 missing


@pytest.mark.parametrize(
    "where",
    [
        # numbers beyond SQLite's 64-bit integers
        "object.amount < 100000000000000000000",
        "object.count > -10 ** 20 and object.count in [1, 10 ** 20]",
        # constants whose shifted or UTC form is out of Python's date range
        "object.born + days(800000) > today()",
        "object.at > datetime('0001-01-01T00:00')",
        # text PostgreSQL cannot hold
        r"object.name != 'a\x00'",
        r"'\x00' not in object.name",
        r"object.kind in ['a', 'b\x00']",
        # needles that are patterns or placeholders elsewhere
        "'%' in object.name or '_' in object.name",
        r"'\\' in object.name",
        "':x' in object.tags or '50%' in object.tags or 'a_b' in object.tags",
        "'%(x)s' not in object.tags and '%' in object.name",
    ],
)
def test_constants_sql_cannot_hold_give_python_results(
    stores: dict[str, Store], where: str
) -> None:
    _same_everywhere(stores, where)


@pytest.mark.parametrize(
    "where",
    ["object.amount > 5", "not object.vip", "object.count == 1", "object.amount"],
)
def test_fields_of_other_types_with_the_same_name_are_never_cast(
    stores: dict[str, Store], where: str
) -> None:
    """Deals hold text in fields called amount, count, vip (numbers, booleans of things)."""
    assert _same_everywhere(stores, where)
    for name in ("sqlite", "postgresql"):
        with stores[name].transaction():
            assert stores[name].index_fields("thing", where)
        with stores[name].transaction():  # an index made, deals written afterwards
            stores[name].put_object(
                ObjectRecord("d9", "deal", {"amount": "x", "count": "y", "vip": "z"}), NOW
            )
    _same_everywhere(stores, where)


BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    "where",
    [
        # 02:30 on 29 March does not exist in Berlin: Python compares wall clocks
        "object.at > datetime('2026-03-29T02:30')",
        "object.at <= datetime('2026-03-29T02:30')",
        "object.at > now - days(1)",
        "now - object.at < hours(24)",
        "object.at + hours(24) > now",
        # 02:30 on 25 October happens twice
        "object.at == datetime('2026-10-25T02:30')",
        "object.at >= datetime('2026-10-25T02:30')",
        "object.at in [datetime('2026-10-25T02:30')]",
        "not (object.at < datetime('2026-10-25T02:30'))",
    ],
)
def test_datetimes_around_daylight_saving_changes(pg_admin_url: str, where: str) -> None:
    now = datetime(2026, 3, 30, 2, 30, tzinfo=BERLIN)
    scope: dict[str, Any] = {"now": now, "vars": {}}
    moments = [
        datetime(2026, 3, 29, 1, 50, tzinfo=BERLIN),
        datetime(2026, 3, 29, 3, 10, tzinfo=BERLIN),
        datetime(2026, 3, 29, 3, 40, tzinfo=BERLIN),
        datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN),
        datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN),
        datetime(2026, 10, 25, 2, 45, fold=1, tzinfo=BERLIN),
        datetime(2026, 10, 25, 3, 10, tzinfo=BERLIN),
    ]
    records = [ObjectRecord(f"t{i}", "thing", {"at": m}) for i, m in enumerate(moments)]
    results = []
    with fresh_database(pg_admin_url) as url:
        made = [
            MemoryStore(_schema(), tz=BERLIN),
            open_store("sqlite://", _schema(), tz=BERLIN, reset=True),
            open_store(url, _schema(), tz=BERLIN, reset=True),
        ]
        try:
            for store in made:
                _load(store, records)
                with store.transaction():
                    results.append(store.select_objects("thing", where, scope))
                with store.transaction():
                    assert store.count_objects("thing", where, scope) == len(results[0]), where
        finally:
            for store in made[1:]:
                store.close()  # type: ignore[attr-defined]
    assert results[1] == results[0], f"sqlite: {where}"
    assert results[2] == results[0], f"postgresql: {where}"


def test_residual_terms_are_evaluated_in_python(stores: dict[str, Store]) -> None:
    where = "object.kind == 'a' and lower(object.name) == 'ab'"
    sql, pg = _residual(where)
    assert sql == pg == "(lower(object.name) == 'ab')"
    _same_everywhere(stores, where)


def test_sql_for_both_dialects_reads_fields_in_place() -> None:
    schema = _schema()
    seg = compile_segment(
        "object.amount > 5 and object.owner.email == 'u1@example.com'",
        type_key="thing",
        schema=schema,
        scope=SCOPE,
        dialect="postgresql",
    )
    assert seg.where is not None
    text = str(seg.where.compile(dialect=postgresql.dialect()))
    assert "THEN (objects.data ->> 'amount')::numeric END) >" in text
    assert "FROM objects fl_l1 WHERE fl_l1.id = (objects.data ->> 'owner')" in text
    assert seg.fields == frozenset({"amount"})  # a link followed is not compared itself
    lite = compile_segment(
        "object.born < today()", type_key="thing", schema=schema, scope=SCOPE, dialect="sqlite"
    )
    assert lite.where is not None
    assert 'json_extract(objects.data, \'$."born"."$d"\') <' in str(
        lite.where.compile(dialect=sqlite.dialect())
    )


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_index_statements_use_the_query_expression(dialect: str) -> None:
    statements = index_statements(dialect, "thing", _schema(), {"amount", "tags", "nope"})
    assert [name for name, _ in statements] == ["ix_objects_thing_amount"]
    assert statements[0][1].startswith("CREATE INDEX IF NOT EXISTS ix_objects_thing_amount ON")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_index_fields_creates_an_index_the_database_uses(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'i.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("pg_database")
    )
    store = open_store(url, _schema(), tz=TZ, reset=True)
    try:
        _load(store, _objects(_schema()))
        with store.transaction():
            assert store.index_fields("thing", "object.kind == 'a' and object.count > 1") == [
                "count",
                "kind",
            ]
        with store.transaction():
            found = store.select_objects("thing", "object.kind == 'a'", SCOPE)
        assert found == _select_memory("object.kind == 'a'")
        plan = _plan(store, kind)
        assert "ix_objects_thing_kind" in plan, plan
    finally:
        store.close()


def _select_memory(where: str) -> list[str]:
    memory = MemoryStore(_schema(), tz=TZ)
    _load(memory, _objects(_schema()))
    return _select(memory, where)


def _plan(store: Any, kind: str) -> str:
    from sqlalchemy import text

    with store.engine.connect() as c:
        if kind == "sqlite":
            rows = c.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT id FROM objects WHERE type = 'thing' AND "
                    "json_extract(data, '$.\"kind\"') = 'a'"
                )
            ).all()
            return " ".join(str(r[-1]) for r in rows)
        c.execute(text("SET enable_seqscan = off"))
        rows = c.execute(
            text(
                "EXPLAIN SELECT id FROM objects WHERE type = 'thing' AND "
                "((data ->> 'kind') COLLATE \"C\") = 'a'"
            )
        ).all()
        return " ".join(str(r[0]) for r in rows)


def test_a_datetime_is_stored_as_utc_text_and_read_in_the_account_zone(
    stores: dict[str, Store],
) -> None:
    for name in ("sqlite", "postgresql"):
        with stores[name].transaction():
            moments = [
                rec.data["at"]
                for i in range(80)
                if (rec := stores[name].get_object(f"t{i:03d}")) is not None and "at" in rec.data
            ]
        assert moments and all(m.tzinfo is TZ for m in moments)
        # 07:30 UTC given for one of them: the same instant, in Moscow time
        assert datetime(2026, 3, 2, 10, 30, tzinfo=TZ) in moments
