"""``flowlane process validate FILE...``, ``flowlane process list RECIPE`` and
``flowlane schema KIND``.

``validate`` prints every problem as ``file:block: message`` on its own line (warnings as
``file:block: warning: message``), then ``N error(s), M warning(s)``; it exits 1 if any
problem is an error, else 0. ``list`` prints the processes (of the database with ``--db``,
else of the recipe folder), one per line. ``schema`` prints the JSON Schema of a file format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from flowlane.model.process import ProcessFile
from flowlane.model.recipe import RecipeFile
from flowlane.model.scenario import ScenarioFile
from flowlane.model.validate import validate_files
from flowlane.objects import ObjectsFile

process_app = typer.Typer(
    help="Validate and manage process files.",
    no_args_is_help=True,
    add_completion=False,
)

SCHEMAS: dict[str, type[BaseModel]] = {
    "process": ProcessFile,
    "scenario": ScenarioFile,
    "objects": ObjectsFile,
    "recipe": RecipeFile,
}


@process_app.callback()
def _process() -> None:
    """Validate and manage process files."""


@process_app.command("validate")
def validate_command(
    files: Annotated[list[Path], typer.Argument(help="Process files (YAML or JSON)")],
) -> None:
    """Check process files; inside a recipe folder, against that recipe.

    Exit 1 if any problem is an error, 0 otherwise (warnings are printed too).
    """
    problems = validate_files(files)
    errors = sum(1 for p in problems if p.severity == "error")
    for problem in problems:
        typer.echo(str(problem))
    typer.echo(f"{errors} error(s), {len(problems) - errors} warning(s)")
    raise typer.Exit(1 if errors else 0)


@process_app.command("list")
def list_command(
    recipe: Annotated[Path, typer.Argument(help="Recipe folder")],
    db: Annotated[
        str | None,
        typer.Option("--db", help="List the processes deployed to this database instead"),
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Part of the name, or the key")
    ] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Only processes with this tag")] = None,
) -> None:
    """List processes: key, version, object type, launch, status, tags and name.

    Exit 1 (with ``error: ...``) if the recipe or the database cannot be read.
    """
    from flowlane.core.errors import FlowlaneError
    from flowlane.runtime.durable import account_tz, load_valid_recipe, open_durable
    from flowlane.runtime.simulate import build_account
    from flowlane.runtime.worker import wall_clock
    from flowlane.services.account import Account

    try:
        loaded = load_valid_recipe(recipe)
        if db is None:
            account = build_account(loaded, wall_clock(), account_tz(), None)
        else:
            account = Account(open_durable(loaded, db), wall_clock())
    except FlowlaneError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    try:
        with account.store.transaction():
            found = account.list_processes(search=search, tag=tag)
    finally:
        account.store.close()
    for p in found:
        status = p.status
        if p.approval:
            status += ", approved" if p.approved else ", not approved"
        if p.template:
            status += ", template"
        tags = ",".join(p.tags) or "-"
        typer.echo(f"{p.key}\tv{p.version}\t{p.object}\t{p.launch}\t{status}\t{tags}\t{p.name}")
    typer.echo(f"{len(found)} process(es)")


def schema_command(
    kind: Annotated[str, typer.Argument(help="process, scenario, objects or recipe")],
) -> None:
    """Print the JSON Schema of a file format: process, scenario, objects or recipe."""
    model = SCHEMAS.get(kind)
    if model is None:
        typer.echo(
            f"unknown schema {kind!r}: use one of {', '.join(SCHEMAS)}",
            err=True,
        )
        raise typer.Exit(2)
    schema = model.model_json_schema(by_alias=True)
    typer.echo(json.dumps(schema, indent=2, ensure_ascii=False))
