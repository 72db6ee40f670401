"""``flowlane mail-in RECIPE``: the SMTP server for inbound email (replies to task emails,
bounces, emails that start processes); see :mod:`flowlane.runtime.mailin`."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from flowlane.cli.durable import DbOption, RecipeArg, _fail
from flowlane.core.errors import FlowlaneError
from flowlane.runtime.durable import load_valid_recipe, open_durable
from flowlane.runtime.mailin import serve


def mailin_command(
    recipe: RecipeArg,
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 2525,
) -> None:
    """Receive email over SMTP until SIGTERM: a reply to a task's email becomes a comment
    on the task, a bounce marks our email bounced, any other email fires the `email` event.

    Reply addresses are reply+<task>.<signature>@FLOWLANE_MAIL_DOMAIN (default: the domain
    of FLOWLANE_SMTP_FROM); attachments go to FLOWLANE_DATA.
    """
    level = os.environ.get("FLOWLANE_LOG", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        store = open_durable(load_valid_recipe(recipe), db)
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    try:
        serve(store, host, port)
    except OSError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()
