"""``flowlane serve``: the HTTP server (web UI, REST API, public forms, signed links, inbound
hooks) with an embedded worker, on SQLite by default."""

from __future__ import annotations

import logging
import os
import threading
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from flowlane.cli.durable import DbOption, RecipeArg
from flowlane.core.errors import FlowlaneError
from flowlane.model.recipe import Recipe
from flowlane.runtime.durable import deploy, load_valid_recipe, open_durable
from flowlane.runtime.mail import MailMode, SmtpSettings, mail_mode
from flowlane.runtime.worker import Worker, WorkerSettings
from flowlane.services.links import PUBLIC_URL_ENV
from flowlane.store.sql.store import SqlStore

log = logging.getLogger("flowlane.serve")


def serve_command(
    recipe: RecipeArg,
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on")] = 8000,
    public_url: Annotated[
        str | None,
        typer.Option(
            envvar=PUBLIC_URL_ENV,
            help="Address visitors reach the server at; links in emails start with it "
            "(default http://HOST:PORT)",
        ),
    ] = None,
    worker: Annotated[
        bool, typer.Option(help="Run an embedded worker (timers, launches, deliveries)")
    ] = True,
    do_deploy: Annotated[
        bool, typer.Option("--deploy/--no-deploy", help="Deploy the recipe first")
    ] = True,
) -> None:
    """Serve the web UI (/), the REST API (/api/v1), public forms (/forms/KEY), signed links
    (/l/TOKEN) and inbound webhooks (/hooks/KEY) with an embedded worker, until Ctrl-C.

    Email goes out over SMTP when FLOWLANE_SMTP_HOST is set; FLOWLANE_MAIL=sink stores it
    in the database instead."""
    url = (public_url or f"http://{host}:{port}").rstrip("/")
    try:
        loaded = load_valid_recipe(recipe)
        store = open_durable(loaded, db)
        if do_deploy:
            for d in deploy(loaded, store):
                typer.echo(f"deployed {d.key} version {d.version}")
    except (FlowlaneError, SQLAlchemyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    serve_until_stopped(
        loaded,
        store,
        db,
        host=host,
        port=port,
        url=url,
        worker=worker,
        banner=f"flowlane serves {recipe} at {url}",
    )


def serve_until_stopped(
    recipe: Recipe,
    store: SqlStore,
    db: str | None,
    *,
    host: str,
    port: int,
    url: str,
    worker: bool = True,
    banner: str | None = None,
    default_mail: MailMode = "smtp",
) -> None:
    """Serve the app (UI, API, forms, links, hooks) over ``store`` with an embedded worker on
    its own store, until Ctrl-C; closes ``store`` at the end. ``default_mail`` is the mail
    mode when ``FLOWLANE_MAIL`` is not set."""
    # Imported here: the web stack is heavy and no other command needs it.
    import uvicorn

    from flowlane.web.app import Container, create_app

    os.environ[PUBLIC_URL_ENV] = url  # the worker and every request sign links with it
    try:
        background = _start_worker(recipe, db, default_mail) if worker else None
    except (FlowlaneError, SQLAlchemyError) as exc:
        store.close()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(banner or f"flowlane serves at {url}")
    try:
        uvicorn.run(
            create_app(Container(store=store, public_url=url)),
            host=host,
            port=port,
            log_level=os.environ.get("FLOWLANE_LOG", "warning").lower(),
        )
    finally:
        if background is not None:
            background[0].stopping = True
            background[1].join(timeout=30)
        store.close()


def _start_worker(
    recipe: Recipe, db: str | None, default_mail: MailMode
) -> tuple[Worker, threading.Thread]:
    """A worker on its own store and thread; it stops when its ``stopping`` is set."""
    mail = mail_mode(os.environ, default=default_mail)
    store = open_durable(recipe, db)
    smtp = (
        SmtpSettings.from_env(os.environ)
        if os.environ.get("FLOWLANE_SMTP_HOST") or mail == "sink"
        else None
    )
    name = f"{os.uname().nodename}:{os.getpid()}:serve"
    worker = Worker(store, name, WorkerSettings(), smtp=smtp, mail=mail)

    def run() -> None:
        try:
            worker.run()
        except Exception:  # the server goes on; the jobs wait for the next worker
            log.exception("the embedded worker stopped")
        finally:
            store.close()

    thread = threading.Thread(target=run, name="flowlane-worker", daemon=True)
    thread.start()
    return worker, thread
