"""``make_engine(url)``: a SQLAlchemy engine configured for flowlane's two dialects.

SQLite connections run in WAL mode with a 5 s busy timeout, enforce foreign keys, and open
every transaction with ``BEGIN IMMEDIATE`` so that a transaction that will write takes the
write lock up front instead of failing with "database is locked" when it upgrades from a
read. PostgreSQL URLs use the psycopg 3 driver.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError

from flowlane.core.errors import FlowlaneError

DEFAULT_URL = "sqlite:///flowlane.db"
"""The embedded default: ``flowlane.db`` in the current directory."""

# SQLite's default busy timeout in Python's sqlite3 is 5 s too; set it explicitly because
# other drivers and the sqlite3 shell default to 0 (fail at once).
SQLITE_BUSY_TIMEOUT_MS = 5000


class DatabaseError(FlowlaneError):
    """The database cannot be reached or used, or a migration failed; nothing was changed."""

    code = "database"
    retryable = True


def normalize_url(url: str | None) -> str:
    """``url`` with the default filled in and ``postgresql://`` mapped to psycopg 3."""
    url = url or DEFAULT_URL
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def display_url(url: str | None) -> str:
    """``url`` (or the default) as shown to people: without its password."""
    parsed = make_url(url or DEFAULT_URL)
    # URL.set(password=None) means "keep the password"; build the URL again without it.
    shown = URL.create(
        parsed.drivername,
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
    return shown.render_as_string(hide_password=False)


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default :data:`DEFAULT_URL`). The caller disposes of it."""
    url = normalize_url(url)
    try:
        scheme = make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise DatabaseError(f"not a database URL: {url!r} ({exc})") from exc
    if scheme not in ("sqlite", "postgresql"):
        raise DatabaseError(
            f"unsupported database {scheme!r}: use sqlite:///path.db or "
            "postgresql://user@host/dbname"
        )
    # A PostgreSQL server that restarted leaves dead connections in the pool: test each one
    # before use (one round trip) so that workers reconnect instead of failing a batch.
    engine = create_engine(url, pool_pre_ping=url.startswith("postgresql"))
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    # The SQLAlchemy recipe for SQLite transactions: turn off pysqlite's own implicit BEGIN
    # (isolation_level=None) and emit our own BEGIN IMMEDIATE whenever SQLAlchemy begins.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
