"""``flowlane demo``: install the demo account and serve the web UI with it
(:func:`install_and_serve`); or, with ``--simulate RECIPE``, simulate a recipe's scenarios
and print their traces readably (:func:`run_demo`, in memory or on a database).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flowlane.model.recipe import load_recipe
from flowlane.runtime.simulate import Database, InvalidInput, simulate

_SHOWN = {
    "instance_started",
    "task_opened",
    "task_answered",
    "task_finished",
    "timer_fired",
    "condition_met",
    "message_sent",
    "message_skipped",
    "object_updated",
    "object_created",
    "child_started",
    "child_ended",
    "counter",
    "instance_ended",
    "instance_cancelled",
    "incident",
    "refused",
    "expectation_failed",
    "step",
    "delay_passed",
}


def _when(line: dict[str, Any]) -> str:
    return datetime.fromisoformat(str(line["time"])).strftime("%a %d %b %H:%M:%S")


def _compact(value: Any) -> str:
    """``{a: 1, b: [x, y]}`` without Python's quotes."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return str(value)


def _what(line: dict[str, Any]) -> str:
    d = line.get("details") or {}
    event = line["event"]
    if event == "step":
        args = d.get("args")
        if isinstance(args, dict):
            args = {k: v for k, v in args.items() if v not in ({}, [], None)}
        return f"[bold cyan]▶ {d.get('kind')}[/bold cyan] {escape(_compact(args))}"
    parts = [f"{k}={_compact(v)}" for k, v in d.items() if v not in (None, [], {})]
    style = {"refused": "yellow", "expectation_failed": "red", "incident": "red"}.get(event)
    text = escape(f"{event} " + " ".join(parts))
    return f"[{style}]{text}[/{style}]" if style else text


DEMO_DB = "sqlite:///flowlane-demo.db"


def run_demo(recipe_dir: Path, console: Console | None = None, db: str | None = DEMO_DB) -> int:
    """Run every scenario of the recipe; ``db=None`` runs them in memory."""
    console = console or Console()
    recipe = load_recipe(recipe_dir)
    title = recipe.meta.name if recipe.meta else recipe_dir.name
    console.rule(f"[bold]flowlane demo[/bold] — {title}")
    worst = 0
    for path in recipe.scenarios:
        lines: list[dict[str, Any]] = []
        try:
            database = Database(db, reset=True) if db else None
            result = simulate(recipe_dir, path, sink=lines.append, db=database)
        except InvalidInput as exc:
            console.print("invalid input", style="red")
            console.print(str(exc), markup=False)
            return 2
        table = Table(title=f"{path.stem}", show_lines=False, expand=True)
        table.add_column("time", no_wrap=True, style="dim")
        table.add_column("instance", no_wrap=True)
        table.add_column("block", no_wrap=True)
        table.add_column("what")
        for line in lines:
            if line["event"] in _SHOWN:
                table.add_row(
                    _when(line),
                    str(line.get("instance") or ""),
                    str(line.get("block") or ""),
                    _what(line),
                )
        console.print(table)
        status = (
            "[green]all expectations held[/green]"
            if result.ok
            else f"[red]{escape(result.message)}[/red]"
        )
        console.print(status)
        worst = max(worst, result.exit_code)
    where = f"the database {db} (it holds the last scenario)" if db else "memory"
    console.print(f"[dim]ran on {escape(where)}[/dim]")
    return worst


# ---- the demo account ----------------------------------------------------------------------


def install_and_serve(
    db: str, *, host: str, port: int, reset: bool, serve: bool, console: Console | None = None
) -> int:
    """Install the demo account on ``db`` (when it is not there yet) and serve the UI."""
    import os

    from sqlalchemy.exc import SQLAlchemyError

    from flowlane.core.errors import FlowlaneError
    from flowlane.runtime.demo import DEMO_PASSWORD, demo_recipe, install_demo
    from flowlane.runtime.durable import open_durable
    from flowlane.runtime.mail import MailMode

    console = console or Console()
    # Without an SMTP server the demo keeps its emails in the mail sink (the Outbox page).
    default_mail: MailMode = "smtp" if os.environ.get("FLOWLANE_SMTP_HOST") else "sink"
    try:
        recipe = demo_recipe()
        store = open_durable(recipe, db, reset=reset)
        done = install_demo(recipe, store)
    except (FlowlaneError, SQLAlchemyError) as exc:
        console.print(f"error: {exc}", style="red", markup=False, highlight=False)
        return 1
    url = f"http://{host}:{port}"
    table = Table(title="Log in as", show_lines=False)
    table.add_column("email")
    table.add_column("role")
    table.add_column("name")
    for email, role, name in done.logins:
        table.add_row(email, role, name)
    console.print(table)
    console.print(f"password for everyone: [bold]{DEMO_PASSWORD}[/bold]")
    console.print(
        "demo account installed" if done.installed else "demo account found: kept as it is",
        f"in {escape(db)} (start afresh with --reset)",
    )
    if not serve:
        store.close()
        return 0
    from flowlane.cli.serve import serve_until_stopped

    serve_until_stopped(
        recipe,
        store,
        db,
        host=host,
        port=port,
        url=url,
        banner=f"flowlane demo: open {url} (Ctrl-C stops)",
        default_mail=default_mail,
    )
    return 0
