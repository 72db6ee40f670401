"""The ``flowlane`` command line: parse arguments, call one service, render the result."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flowlane.runtime.simulate import Database, InvalidInput, simulate

app = typer.Typer(
    help="flowlane: business processes bound to objects, durable for months.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True, soft_wrap=True)


def _wire() -> None:
    from flowlane.cli.durable import deploy_command, instance_app, jobs_app, worker_command
    from flowlane.cli.init import init_command
    from flowlane.cli.launch import forecast_command, start_command
    from flowlane.cli.process import process_app, schema_command

    app.add_typer(process_app, name="process", help="Validate and manage process files.")
    app.command("schema", help="Print the JSON Schema of a file format.")(schema_command)
    app.command("init", help="Create or upgrade the database (SQLite by default).")(init_command)
    app.command("deploy", help="Deploy a recipe's processes to the database.")(deploy_command)
    app.command("worker", help="Run workers: timers, launches, email delivery.")(worker_command)
    app.command("start", help="Start a process on an object, or on every object of a filter.")(
        start_command
    )
    app.command("forecast", help="Count the objects a process's launch would take now.")(
        forecast_command
    )
    app.add_typer(jobs_app, name="jobs", help="Failed jobs: list and retry.")
    app.add_typer(instance_app, name="instance", help="Move instances to another version.")
    from flowlane.cli.files import files_app

    app.add_typer(files_app, name="files", help="Attachment files: delete orphans (gc).")
    from flowlane.cli.hooks import hooks_app
    from flowlane.cli.mailin import mailin_command

    app.add_typer(hooks_app, name="hooks", help="Inbound webhooks: their URLs.")
    app.command("mail-in", help="Receive email over SMTP: replies, bounces, events.")(
        mailin_command
    )
    from flowlane.cli.serve import serve_command
    from flowlane.cli.webhooks import webhooks_app

    app.command("serve", help="Serve the API, forms, signed links and hooks with a worker.")(
        serve_command
    )

    app.add_typer(webhooks_app, name="webhooks", help="Outgoing webhooks: the signing secret.")
    from flowlane.cli.tokens import token_app, user_app

    app.add_typer(token_app, name="token", help="API tokens: create one for a user.")
    app.add_typer(user_app, name="user", help="Users: create one, set a password.")
    from flowlane.cli.bpmn import bpmn_app

    app.add_typer(bpmn_app, name="bpmn", help="Process files as BPMN diagrams and back.")


@app.command("simulate")
def simulate_command(
    recipe: Annotated[Path, typer.Argument(help="Recipe folder")],
    scenario: Annotated[list[Path], typer.Option("--scenario", "-s", help="Scenario file(s)")],
    roundtrip: Annotated[
        bool, typer.Option(help="JSON round trip of every instance between steps")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No trace lines")] = False,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Run on the durable store at this URL (sqlite:///file.db or "
            "postgresql://user@host/dbname) instead of in memory; it must be empty",
        ),
    ] = None,
    reset: Annotated[
        bool, typer.Option(help="With --db: delete everything in the database before each run")
    ] = False,
) -> None:
    """Run scenario files against a recipe on a virtual clock; print the trace as JSON lines.

    Exit 0 when every expectation held, 1 at the first that did not, 2 on an invalid file.
    """
    out = sys.stdout

    def sink(line: dict[str, object]) -> None:
        if not quiet:
            out.write(json.dumps(line, default=str, ensure_ascii=False) + "\n")

    worst = 0
    worst_or_later = False
    for path in scenario:
        try:
            # The first scenario needs an empty database (or --reset); the later ones find
            # the previous scenario's data there, which is theirs to delete.
            database = Database(db, reset=reset or worst_or_later) if db else None
            worst_or_later = True
            result = simulate(recipe, path, roundtrip=roundtrip, sink=sink, db=database)
        except InvalidInput as exc:
            console.print("invalid input", style="red")
            console.print(str(exc), markup=False, highlight=False)
            raise typer.Exit(2) from exc
        if not result.ok:
            console.print(f"FAILED {result.message}", style="red", markup=False, highlight=False)
            worst = max(worst, result.exit_code)
        else:
            console.print(f"[green]ok[/green] {path}", highlight=False)
    raise typer.Exit(worst)


@app.command("demo")
def demo_command(
    db: Annotated[
        str | None,
        typer.Option(
            help="Database of the demo account, kept between runs (default "
            "sqlite:///flowlane-demo.db); with --simulate: run there instead of in memory"
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on")] = 8000,
    reset: Annotated[
        bool, typer.Option(help="Empty the database first and install the demo anew")
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the UI after installing")
    ] = True,
    simulate_recipe: Annotated[
        Path | None,
        typer.Option(
            "--simulate",
            help="Instead: simulate this recipe's scenarios in memory and print their traces",
        ),
    ] = None,
) -> None:
    """Install the demo account (recipes order-processing, homework and events with people
    and sample data) and serve the web UI with it, until Ctrl-C. Emails go to the mail sink
    (Outbox → Mail sink) unless FLOWLANE_SMTP_HOST is set."""
    if simulate_recipe is not None:
        from flowlane.cli.demo import run_demo

        raise typer.Exit(run_demo(simulate_recipe, db=db))
    from flowlane.cli.demo import DEMO_DB, install_and_serve

    raise typer.Exit(
        install_and_serve(db or DEMO_DB, host=host, port=port, reset=reset, serve=serve)
    )


_wire()


def main() -> None:  # pragma: no cover - console entry
    app()
