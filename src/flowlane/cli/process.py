"""``flowlane process validate FILE...`` and ``flowlane schema KIND``.

``validate`` prints every problem as ``file:block: message`` on its own line (warnings as
``file:block: warning: message``), then ``N error(s), M warning(s)``; it exits 1 if any
problem is an error, else 0. ``schema`` prints the JSON Schema of a file format.
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
