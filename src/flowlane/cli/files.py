"""``flowlane files gc``: delete attachment files no task names any more (ADR 0008).

Files become orphans when a process dies between writing a request's attachment and its
commit (a staged ``.part`` file) or when a restart deletes the tasks that named them. Only
files written more than ``--older-than`` ago are deleted, so the files of requests that run
meanwhile are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from flowlane.cli.durable import DbOption, RecipeArg, _fail
from flowlane.core.duration import parse_duration
from flowlane.core.errors import FlowlaneError
from flowlane.runtime.durable import load_valid_recipe, open_durable, request_account
from flowlane.services.taskwork import collect_orphans

files_app = typer.Typer(no_args_is_help=True, add_completion=False)


@files_app.command("gc")
def gc_command(
    recipe: RecipeArg,
    db: DbOption = None,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Grace period: only files written longer ago are deleted (at least 1m)",
        ),
    ] = "1h",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            envvar="FLOWLANE_DATA",
            help="Data folder (default ./flowlane-data)",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be deleted")
    ] = False,
) -> None:
    """Delete attachment files that no task names and staged files left behind, written
    more than --older-than ago."""
    try:
        grace = parse_duration(older_than)
        store = open_durable(load_valid_recipe(recipe), db)
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    try:
        account = request_account(store, data)
        done = collect_orphans(account, grace, dry_run=dry_run)
    except (FlowlaneError, SQLAlchemyError) as exc:
        raise _fail(exc) from exc
    finally:
        store.close()
    verb = "would delete" if dry_run else "deleted"
    for entry in done.rescued:
        rescue = "would promote" if dry_run else "promoted"
        typer.echo(f"{rescue} committed {entry.name} (a task names it; it was still staged)")
    for entry in done.removed:
        kind = "staged" if entry.staged else "orphan"
        typer.echo(f"{verb} {kind} {entry.name} ({entry.size} bytes)")
    typer.echo(
        f"{verb} {len(done.removed)} file(s), {done.freed} bytes; kept {done.referenced} "
        f"named by tasks and {done.young} younger than {older_than}"
    )
