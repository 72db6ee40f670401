"""``flowlane init``: create the database or upgrade it to the newest schema.

Prints ``database <url without password> at revision <rev>`` and exits 0; prints the
reason and exits 1 if the database cannot be reached or upgraded.
"""

from __future__ import annotations

import typer

from flowlane.store.sql.engine import display_url, make_engine
from flowlane.store.sql.migrate import DatabaseError, upgrade


def init_command(
    db: str | None = typer.Option(
        None,
        "--db",
        envvar="FLOWLANE_DB",
        help="Database URL: sqlite:///path.db (default sqlite:///flowlane.db) or "
        "postgresql://user@host/dbname.",
    ),
) -> None:
    """Create the database, or upgrade it to the newest schema (safe to run again)."""
    try:
        engine = make_engine(db)
    except DatabaseError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    try:
        revision = upgrade(engine)
    except DatabaseError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    typer.echo(f"database {display_url(db)} at revision {revision}")
