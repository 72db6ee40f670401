"""``flowlane hooks url RECIPE KEY``: the URL an outside service calls to fire
``webhook:<KEY>`` (``POST``, a JSON object or a form; see ``flowlane.web.hooks``)."""

from __future__ import annotations

from typing import Annotated

import typer

from flowlane.cli.durable import DbOption, RecipeArg, _fail
from flowlane.core.errors import FlowlaneError
from flowlane.runtime.durable import load_valid_recipe, open_durable
from flowlane.services.inbound import hook_url
from flowlane.services.signing import account_secret

hooks_app = typer.Typer(help="Inbound webhooks: their URLs.", no_args_is_help=True)


@hooks_app.command("url")
def hooks_url(
    recipe: RecipeArg,
    key: Annotated[str, typer.Argument(help="The hook key (a process launches on webhook:KEY)")],
    db: DbOption = None,
    public_url: Annotated[
        str,
        typer.Option(
            "--public-url",
            envvar="FLOWLANE_PUBLIC_URL",
            help="The address the web server is reached at from outside",
        ),
    ] = "http://127.0.0.1:8000",
) -> None:
    """Print the hook's URL, signed with the account secret (keep it private: anyone with
    it can fire the hook)."""
    if not key.strip():
        raise _fail(ValueError("a hook key must not be empty"))
    try:
        store = open_durable(load_valid_recipe(recipe), db)
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    try:
        typer.echo(hook_url(public_url, account_secret(store), key))
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()
