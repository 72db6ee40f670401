"""``flowlane deploy``, ``flowlane worker`` and ``flowlane jobs``: the durable runtime.

Every command takes the recipe folder (object types and templates) and ``--db`` (default
``sqlite:///flowlane.db``, or ``FLOWLANE_DB``). Errors are printed as ``error: …`` with
exit code 1.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from flowlane.core.errors import FlowlaneError
from flowlane.runtime.durable import (
    WorkerOptions,
    deploy,
    load_valid_recipe,
    open_durable,
    request_account,
    run_worker,
    run_workers,
)
from flowlane.runtime.worker import WorkerSettings
from flowlane.store.sql import JobQueue

RecipeArg = Annotated[Path, typer.Argument(help="Recipe folder (object types, templates)")]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="FLOWLANE_DB",
        help="Database URL: sqlite:///path.db (default sqlite:///flowlane.db) or "
        "postgresql://user@host/dbname.",
    ),
]

jobs_app = typer.Typer(help="Failed jobs: list and retry.", no_args_is_help=True)
instance_app = typer.Typer(help="Running instances: move to another version.", no_args_is_help=True)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def deploy_command(recipe: RecipeArg, db: DbOption = None) -> None:
    """Deploy the recipe's processes; a changed process becomes a new version."""
    try:
        loaded = load_valid_recipe(recipe)
        store = open_durable(loaded, db)
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    try:
        for d in deploy(loaded, store):
            typer.echo(f"{d.key} version {d.version}")
    except (FlowlaneError, SQLAlchemyError) as exc:
        raise _fail(exc) from exc
    finally:
        store.close()


def worker_command(
    recipe: RecipeArg,
    db: DbOption = None,
    workers: Annotated[int, typer.Option("-n", "--workers", min=1, help="Worker processes")] = 1,
    name: Annotated[str | None, typer.Option(help="Worker name (default host:pid)")] = None,
    name_suffix: Annotated[str, typer.Option(hidden=True)] = "",
    batch: Annotated[int, typer.Option(min=1, help="Jobs claimed at a time")] = 200,
    lease: Annotated[float, typer.Option(min=0.1, help="Lease of a claim, seconds")] = 30.0,
    poll: Annotated[float, typer.Option(min=0.01, help="Wait when idle, seconds")] = 0.2,
    max_attempts: Annotated[int, typer.Option(min=1, help="Attempts before a job fails")] = 5,
    backoff: Annotated[float, typer.Option(min=0.0, help="First retry delay, seconds")] = 2.0,
    until_idle: Annotated[bool, typer.Option(help="Stop when no job is due")] = False,
) -> None:
    """Run due timers, periodic launches and email deliveries until SIGTERM.

    Email goes out when FLOWLANE_SMTP_HOST is set (also FLOWLANE_SMTP_PORT, _SECURITY,
    _USER, _PASSWORD, _FROM). Any number of workers may share one PostgreSQL database.
    """
    worker_name = (name or f"{os.uname().nodename}:{os.getpid()}") + name_suffix
    if workers > 1:
        argv = ["worker", str(recipe), "--name", worker_name, "--batch", str(batch)]
        argv += ["--lease", str(lease), "--poll", str(poll), "--max-attempts", str(max_attempts)]
        argv += ["--backoff", str(backoff)] + (["--until-idle"] if until_idle else [])
        argv += ["--db", db] if db else []
        raise typer.Exit(run_workers(workers, argv))
    level = os.environ.get("FLOWLANE_LOG", "WARNING").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise _fail(ValueError(f"FLOWLANE_LOG: {level!r} is not DEBUG, INFO, WARNING or ERROR"))
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = WorkerSettings(
        batch=batch, lease_s=lease, poll_s=poll, max_attempts=max_attempts, backoff_s=backoff
    )
    try:
        run_worker(WorkerOptions(recipe, db, worker_name, settings, until_idle))
    except FlowlaneError as exc:
        raise _fail(exc) from exc


@jobs_app.command("list")
def jobs_list(recipe: RecipeArg, db: DbOption = None) -> None:
    """Jobs per status, then every failed job with its last error."""
    try:
        store = open_durable(load_valid_recipe(recipe), db)
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    try:
        queue = JobQueue(store)
        counts = queue.pending()
        if not counts:
            typer.echo("no jobs")
        for status, n in sorted(counts.items()):
            typer.echo(f"{status}: {n}")
        for job in queue.failed():
            typer.echo(f"failed {job.id} ({job.kind}, {job.attempts} attempts): {job.last_error}")
    finally:
        store.close()


@jobs_app.command("retry")
def jobs_retry(job_id: str, recipe: RecipeArg, db: DbOption = None) -> None:
    """Make a failed job ready again."""
    try:
        store = open_durable(load_valid_recipe(recipe), db)
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    try:
        JobQueue(store).retry(job_id)
        typer.echo(f"job {job_id} is ready again")
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()


@instance_app.command("migrate")
def instance_migrate(
    recipe: RecipeArg,
    process: Annotated[str, typer.Argument(help="Process key")],
    to: Annotated[int, typer.Option("--to", help="Target version")],
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="old_block=new_block (repeatable)")
    ] = None,
    instance: Annotated[
        list[str] | None, typer.Option("--instance", help="Only these instances (repeatable)")
    ] = None,
    db: DbOption = None,
) -> None:
    """Move waiting instances to version --to; refused as a whole if any would strand a token."""
    mapping: dict[str, str] = {}
    for item in map_ or []:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise _fail(ValueError(f"--map {item!r}: write it as old_block=new_block"))
        mapping[old.strip()] = new.strip()
    try:
        store = open_durable(load_valid_recipe(recipe), db)
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    try:
        account = request_account(store)
        moved: list[str] = []

        def run() -> None:
            moved[:] = account.migrate(process, to, mapping, instance_ids=instance, by=None)

        account.attempt(run)
        typer.echo(f"{len(moved)} instance(s) of {process} moved to version {to}")
        for iid in moved:
            typer.echo(f"  {iid}")
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()
