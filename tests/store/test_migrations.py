"""Migrations create exactly the tables of ``flowlane.store.sql.tables``, on both dialects."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import typer
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError
from typer.testing import CliRunner

from flowlane.cli.init import init_command
from flowlane.store.sql import tables
from flowlane.store.sql.engine import display_url, make_engine, normalize_url
from flowlane.store.sql.migrate import DatabaseError, current, upgrade

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HEAD = "0006"
EXPECTED_TABLES = {
    "matched",
    "sequences",
    "process_versions",
    "objects",
    "instances",
    "tasks",
    "jobs",
    "subscriptions",
    "outbox",
    "history",
    "incidents",
    "entered",
    "approvals",
    "process_status",
    "dictionary_values",
    "object_types",
    "deployed_types",
    "object_dictionaries",
    "account_groups",
    "task_counts",
    "account_settings",
    "form_submissions",
    "used_links",
    "sink_mails",
    "inbound_messages",
    "auth_sessions",
    "api_tokens",
    "login_failures",
}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'flowlane.db'}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    admin = create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"flowlane_test_{uuid.uuid4().hex}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} does not answer: {exc.orig}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, tables.metadata))


def _check_upgrade(engine: Engine) -> None:
    assert current(engine) is None
    assert upgrade(engine) == HEAD
    assert set(inspect(engine).get_table_names()) == EXPECTED_TABLES | {"alembic_version"}
    assert _schema_diff(engine) == []
    # A second upgrade is a no-op.
    assert upgrade(engine) == HEAD
    assert current(engine) == HEAD
    assert _schema_diff(engine) == []


def test_metadata_holds_the_expected_tables() -> None:
    assert set(tables.metadata.tables) == EXPECTED_TABLES


def test_upgrade_empty_sqlite_matches_metadata(sqlite_engine: Engine) -> None:
    _check_upgrade(sqlite_engine)


def test_upgrade_empty_postgresql_matches_metadata(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        _check_upgrade(engine)
        with engine.connect() as conn:
            data_type = conn.execute(
                text(
                    "SELECT data_type FROM information_schema.columns"
                    " WHERE table_name = 'objects' AND column_name = 'data'"
                )
            ).scalar_one()
        assert data_type == "jsonb"
    finally:
        engine.dispose()


def test_sqlite_pragmas(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 5000


def test_sqlite_transactions_take_the_write_lock_at_begin(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    upgrade(sqlite_engine)
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("SELECT 1")  # a read only: BEGIN IMMEDIATE still locks
        other = sqlite3.connect(tmp_path / "flowlane.db", timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


def test_sqlite_enforces_foreign_keys(sqlite_engine: Engine) -> None:
    upgrade(sqlite_engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    row = {
        "id": "i9.t1",
        "instance_id": "i9",
        "process": "p",
        "block": "b",
        "kind": "question",
        "status": "open",
        "closed": False,
        "priority": "normal",
        "created_at": now,
        "data": {},
    }
    with pytest.raises(IntegrityError), sqlite_engine.begin() as conn:
        conn.execute(insert(tables.tasks).values(row))


def test_timestamps_come_back_aware_in_utc(sqlite_engine: Engine) -> None:
    upgrade(sqlite_engine)
    at = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with sqlite_engine.begin() as conn:
        conn.execute(insert(tables.approvals).values(process="p", by="ann", at=at))
        stored = conn.execute(select(tables.approvals.c.at)).scalar_one()
    assert stored == at
    assert stored.tzinfo == UTC
    with pytest.raises(StatementError, match="naive"), sqlite_engine.begin() as conn:
        conn.execute(
            insert(tables.approvals).values(process="q", by="ann", at=datetime(2026, 1, 1))
        )


def test_urls() -> None:
    assert normalize_url(None) == "sqlite:///flowlane.db"
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert display_url("postgresql://u:secret@h:5432/db") == "postgresql://u@h:5432/db"
    assert display_url(None) == "sqlite:///flowlane.db"


def test_unreachable_database_is_a_database_error() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/nothing")
    try:
        with pytest.raises(DatabaseError):
            upgrade(engine)
    finally:
        engine.dispose()


def _cli() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.command("init")(init_command)
    return app


def test_init_command_creates_and_reports(sqlite_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(_cli(), ["--db", sqlite_url])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"database {sqlite_url} at revision {HEAD}"
    again = runner.invoke(_cli(), [], env={"FLOWLANE_DB": sqlite_url})
    assert again.exit_code == 0, again.output
    assert again.output.strip() == f"database {sqlite_url} at revision {HEAD}"


def test_init_command_hides_the_password_and_fails_cleanly() -> None:
    result = CliRunner().invoke(_cli(), ["--db", "postgresql://u:secret@127.0.0.1:1/x"])
    assert result.exit_code == 1
    assert "error: cannot upgrade the database" in result.output
    assert "secret" not in result.output


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_0003_stores_object_datetimes_as_utc_text(
    kind: str, sqlite_url: str, request: pytest.FixtureRequest
) -> None:
    """Objects written before 0003 kept their offsets; the upgrade rewrites them to UTC text
    (what segments compare), leaving every other value as it was."""
    from alembic import command

    from flowlane.store.sql.migrate import alembic_config

    url = sqlite_url if kind == "sqlite" else request.getfixturevalue("pg_database")
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            command.upgrade(alembic_config(c), "0002")
        at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
        old = {
            "start": {"$dt": "2026-03-02T13:00:00+03:00"},
            "day": {"$d": "2026-03-02"},
            "log": [{"$dt": "2026-03-02T10:00:00.5+00:00"}],
            "name": "$dt in a text",
        }
        with engine.begin() as c:
            for i in range(3):
                c.execute(
                    insert(tables.objects).values(
                        id=f"e{i}", type="event", data=old, created_at=at, updated_at=at
                    )
                )
        assert upgrade(engine) == HEAD
        with engine.connect() as c:
            stored = c.execute(select(tables.objects.c.data).where(tables.objects.c.id == "e1"))
            data = stored.scalar_one()
        assert data == {
            "start": {"$dt": "2026-03-02T10:00:00.000000+00:00"},
            "day": {"$d": "2026-03-02"},
            "log": [{"$dt": "2026-03-02T10:00:00.500000+00:00"}],
            "name": "$dt in a text",
        }
    finally:
        engine.dispose()
