"""The SQL store: one schema for SQLite and PostgreSQL, its engine factory and migrations."""

from __future__ import annotations

from datetime import tzinfo

from sqlalchemy import Engine, func, select, text

from flowlane.core.errors import Refused
from flowlane.model.form import FormSpec
from flowlane.model.template import Template
from flowlane.objects import Schema
from flowlane.store.sql import tables
from flowlane.store.sql.engine import display_url, make_engine
from flowlane.store.sql.migrate import upgrade
from flowlane.store.sql.store import JobQueue, SqlStore


def is_empty(engine: Engine) -> bool:
    """No process, object or instance stored yet."""
    with engine.connect() as c:
        return all(
            c.execute(select(func.count()).select_from(table)).scalar_one() == 0
            for table in (tables.process_versions, tables.objects, tables.instances)
        )


def wipe(engine: Engine) -> None:
    """Delete every row flowlane stored (the schema stays). For tests and simulations."""
    with engine.begin() as c:
        for table in reversed(tables.metadata.sorted_tables):
            c.execute(table.delete())
        if c.dialect.name == "postgresql":
            c.execute(text("ALTER SEQUENCE flowlane_seq RESTART"))


def open_store(
    url: str | None,
    schema: Schema,
    *,
    tz: tzinfo | None = None,
    templates: dict[str, Template] | None = None,
    forms: dict[str, FormSpec] | None = None,
    require_empty: bool = False,
    reset: bool = False,
    id_block: int = 1,
) -> SqlStore:
    """A :class:`SqlStore` on ``url`` (created or upgraded first).

    ``reset`` deletes everything stored; ``require_empty`` refuses a database that holds
    processes, objects or instances already (so that a simulation never mixes with real data).
    ``id_block``: see :class:`SqlStore` (simulations keep 1: ids exactly as in memory).
    """
    engine = make_engine(url)
    try:
        upgrade(engine)
        if reset:
            wipe(engine)
        elif require_empty and not is_empty(engine):
            raise Refused(
                f"database {display_url(url)} is not empty: pass --reset to delete everything "
                "in it, or give an empty database"
            )
        return SqlStore(engine, schema, tz=tz, templates=templates, forms=forms, id_block=id_block)
    except BaseException:
        engine.dispose()
        raise


__all__ = ["JobQueue", "SqlStore", "is_empty", "make_engine", "open_store", "upgrade", "wipe"]
