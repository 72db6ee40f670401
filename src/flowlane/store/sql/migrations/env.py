"""Alembic environment: runs migrations on the connection ``flowlane.store.sql.migrate`` passes.

There is no offline (SQL script) mode and no alembic.ini: the config is built in code.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from flowlane.core.errors import FlowlaneError
from flowlane.store.sql.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters tables by copying them; autogenerate must emit batch operations there.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if context.is_offline_mode() or not isinstance(_connection, Connection):
    raise FlowlaneError("flowlane migrations run only through flowlane.store.sql.migrate")
_run(_connection)
