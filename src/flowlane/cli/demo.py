"""``flowlane demo``: simulate a recipe's scenarios and print their traces readably.

The scenarios run on the durable store, in the SQLite file ``flowlane-demo.db`` by default
(emptied before each scenario, so the file holds the last one afterwards), or in memory.
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
