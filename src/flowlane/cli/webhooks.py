"""``flowlane webhooks``: what receivers of outgoing webhooks need to verify them."""

from __future__ import annotations

import typer
from sqlalchemy.exc import SQLAlchemyError

from flowlane.cli.durable import DbOption, RecipeArg
from flowlane.core.errors import FlowlaneError
from flowlane.runtime.durable import load_valid_recipe, open_durable
from flowlane.runtime.webhooks import webhook_secret

webhooks_app = typer.Typer(help="Outgoing webhooks: the signing secret.", no_args_is_help=True)


@webhooks_app.command("secret")
def secret_command(recipe: RecipeArg, db: DbOption = None) -> None:
    """Print the secret outgoing webhooks are signed with (X-Flowlane-Signature).

    FLOWLANE_WEBHOOK_SECRET if set, else derived from the account's secret in the database.
    """
    try:
        loaded = load_valid_recipe(recipe)
        store = open_durable(loaded, db)
    except FlowlaneError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    try:
        typer.echo(webhook_secret(store))
    except (FlowlaneError, SQLAlchemyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        store.close()
