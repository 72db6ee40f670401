"""``flowlane start`` and ``flowlane forecast``: start a process by hand, on one object or on
every object of a filter (a mass start in batches, with a progress bar), and count the objects
an automatic launch would take now."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlalchemy.exc import SQLAlchemyError

from flowlane.cli.durable import DbOption, RecipeArg, _fail
from flowlane.core.errors import FlowlaneError
from flowlane.model.segment import Filter
from flowlane.model.yamlio import load_file
from flowlane.runtime.durable import (
    MASS_START_BATCH,
    load_valid_recipe,
    mass_start,
    open_durable,
    request_account,
)

ProcessArg = Annotated[str, typer.Argument(help="Process key")]


def _vars(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise _fail(ValueError(f"--var {item!r}: write it as name=value"))
        out[name.strip()] = value
    return out


def _filter(where: str | None, filter_file: Path | None) -> Filter | None:
    if where is not None and filter_file is not None:
        raise _fail(ValueError("give --where or --filter, not both"))
    if filter_file is None:
        return where
    try:
        raw = load_file(filter_file)
        return TypeAdapter(Filter).validate_python(raw)
    except (OSError, FlowlaneError) as exc:
        raise _fail(exc) from exc
    except PydanticError as exc:
        first = exc.errors()[0]
        where_ = ".".join(str(p) for p in first["loc"])
        raise _fail(ValueError(f"{filter_file}: {where_}: {first['msg']}")) from exc


def start_command(
    recipe: RecipeArg,
    process: ProcessArg,
    object_id: Annotated[
        str | None, typer.Option("--object", help="Start on this one object")
    ] = None,
    where: Annotated[
        str | None,
        typer.Option("--where", help="Mass start: every object matching this expression"),
    ] = None,
    filter_file: Annotated[
        Path | None,
        typer.Option("--filter", help="Mass start: a structured filter in a YAML file"),
    ] = None,
    all_objects: Annotated[
        bool, typer.Option("--all", help="Mass start on every object of the process's type")
    ] = False,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="Launch variable name=value (repeatable)")
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="The user who starts it")] = None,
    batch: Annotated[
        int, typer.Option("--batch", help="Objects started per transaction", min=1)
    ] = MASS_START_BATCH,
    db: DbOption = None,
) -> None:
    """Start a process by hand: on --object, or on every object matching --where / --filter
    (or --all), in batches with a progress bar."""
    vars_ = _vars(var)
    chosen = _filter(where, filter_file)
    mass = chosen is not None or all_objects
    if mass == (object_id is not None):
        raise _fail(ValueError("give --object, or --where / --filter / --all for a mass start"))
    try:
        store = open_durable(load_valid_recipe(recipe), db)
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    try:
        if object_id is not None:
            account = request_account(store)
            got: list[str] = []

            def run() -> None:
                got[:] = [account.start(process, object_id, vars_, by=by)]

            account.attempt(run)
            typer.echo(f"started {got[0]} of {process} on {object_id}")
            return
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=False,
        ) as bar:
            task = bar.add_task(f"starting {process}", total=None)

            def show(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            started = mass_start(store, process, chosen, vars_, by=by, batch=batch, progress=show)
        typer.echo(f"started {len(started)} instance(s) of {process}")
    except (FlowlaneError, SQLAlchemyError) as exc:
        raise _fail(exc) from exc
    finally:
        store.close()


def forecast_command(recipe: RecipeArg, process: ProcessArg, db: DbOption = None) -> None:
    """How many objects the process's automatic launch would start it for now (counted by
    the database: objects matching the entry condition that may enter)."""
    try:
        store = open_durable(load_valid_recipe(recipe), db)
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    try:
        account = request_account(store)
        with store.transaction():
            found = account.forecast(process)
        typer.echo(f"{found.objects} object(s) would enter {process} now (launch: {found.launch})")
    except (FlowlaneError, SQLAlchemyError) as exc:
        raise _fail(exc) from exc
    finally:
        store.close()
