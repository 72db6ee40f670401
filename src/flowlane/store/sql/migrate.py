"""Create or upgrade a flowlane database: ``upgrade(engine)`` and ``current(engine)``.

Alembic is configured in code (no alembic.ini): the scripts ship inside the package, in
``migrations/``, and run on a connection handed to ``migrations/env.py``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from flowlane.store.sql.engine import DatabaseError

__all__ = ["DatabaseError", "alembic_config", "current", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")

# Any constant works; it keeps concurrent upgrades on one PostgreSQL database in line
# (several workers may start at once). SQLite serializes them with BEGIN IMMEDIATE.
_PG_UPGRADE_LOCK = 0x666C6F776C616E65  # "flowlane"


def alembic_config(connection: Connection | None = None) -> Config:
    """The Alembic config for flowlane's migrations, bound to ``connection`` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> str:
    """Create the schema in an empty database or upgrade it to the newest revision.

    Runs in one transaction; returns the revision the database is at afterwards.
    Upgrading a database that is already current changes nothing.
    """
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_UPGRADE_LOCK}
                )
            command.upgrade(alembic_config(connection), "head")
            revision = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot upgrade the database: {exc}") from exc
    if revision is None:
        raise DatabaseError("the database has no revision after upgrading")
    return revision


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None if flowlane never created it."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot read the database revision: {exc}") from exc
