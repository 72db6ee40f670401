"""``flowlane mail-in RECIPE``: the SMTP server for inbound email (replies to task emails,
bounces, emails that start processes), see :mod:`flowlane.runtime.mailin`; with ``--imap``
the same email is taken from an IMAP mailbox instead, see :mod:`flowlane.runtime.imapin`."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from flowlane.cli.durable import DbOption, RecipeArg, _fail
from flowlane.core.errors import FlowlaneError
from flowlane.runtime.durable import load_valid_recipe, open_durable
from flowlane.runtime.imapin import ImapError, ImapPoller, ImapSettings, poll_forever
from flowlane.runtime.mailin import MailIntake, serve
from flowlane.store.sql.store import SqlStore


def mailin_command(
    recipe: RecipeArg,
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 2525,
    imap: Annotated[
        bool, typer.Option("--imap", help="Poll the IMAP mailbox of FLOWLANE_IMAP_* instead")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=1, help="Seconds between IMAP polls (with --imap)")
    ] = 60.0,
    once: Annotated[
        bool, typer.Option("--once", help="Poll the IMAP mailbox once and exit (with --imap)")
    ] = False,
) -> None:
    """Receive email over SMTP until SIGTERM: a reply to a task's email becomes a comment
    on the task, a bounce marks our email bounced, any other email fires the `email` event.

    Reply addresses are reply+<task>.<signature>@FLOWLANE_MAIL_DOMAIN (default: the domain
    of FLOWLANE_SMTP_FROM); attachments go to FLOWLANE_DATA.

    With --imap, no SMTP server: the UNSEEN messages of an IMAP folder are taken every
    --interval seconds (--once: one poll; exit code 1 if the mailbox cannot be read or a
    message is left for the next poll) and marked seen; a refused one is flagged too.
    Settings: FLOWLANE_IMAP_HOST, _PORT, _SECURITY (none, starttls, tls: the default),
    _USER, _PASSWORD, _FOLDER (INBOX), _DONE (a folder for handled messages), _CAFILE.
    """
    level = os.environ.get("FLOWLANE_LOG", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if once and not imap:
        raise _fail(ValueError("--once needs --imap"))
    try:
        settings = ImapSettings.from_env(os.environ) if imap else None
        store = open_durable(load_valid_recipe(recipe), db)
    except FlowlaneError as exc:
        raise _fail(exc) from exc
    try:
        if settings is not None:
            _poll(store, settings, interval, once=once)
        else:
            serve(store, host, port)
    except OSError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()


def _poll(store: SqlStore, settings: ImapSettings, interval: float, *, once: bool) -> None:
    poller = ImapPoller(MailIntake(store), settings)
    if not once:
        poll_forever(poller, interval)
        return
    try:
        result = poller.poll()
    except ImapError as exc:
        raise _fail(exc) from exc
    typer.echo(
        f"{len(result.handled)} handled, {len(result.refused)} refused, "
        f"{len(result.retry)} left for the next poll"
    )
    if result.retry:  # a temporary failure (the database is away): say so to cron
        raise typer.Exit(1)
