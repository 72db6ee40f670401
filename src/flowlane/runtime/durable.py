"""The durable runtime's entry points: open an account on a database, deploy, run workers.

An account's object types and templates come from its recipe folder (``objects.yaml``,
``templates/``); its processes, once deployed, from the database, so that every worker and
API process runs the same versions. ``FLOWLANE_TZ`` sets the account's time zone
(default Europe/Moscow).
"""

from __future__ import annotations

import copy
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import SQLAlchemyError

from flowlane.core.errors import FlowlaneError, Invalid, NotFound, Refused, ValidationError
from flowlane.model.definition import Definition
from flowlane.model.recipe import Recipe, load_recipe
from flowlane.model.segment import Filter
from flowlane.model.validate import validate_recipe
from flowlane.runtime.faults import Faults
from flowlane.runtime.mail import SmtpSettings, mail_mode
from flowlane.runtime.worker import Worker, WorkerSettings, wall_clock
from flowlane.services.account import Account
from flowlane.store.files import LocalFileStore, data_folder
from flowlane.store.memory import DEFAULT_TZ
from flowlane.store.sql import open_store
from flowlane.store.sql.migrate import DatabaseError
from flowlane.store.sql.store import SqlStore

log = logging.getLogger("flowlane.worker")


ID_BLOCK = 100
"""Instance and object ids each process reserves at a time on PostgreSQL (see SqlStore)."""


def account_tz(env: Mapping[str, str] = os.environ) -> ZoneInfo:
    name = env.get("FLOWLANE_TZ") or DEFAULT_TZ
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"FLOWLANE_TZ: unknown time zone {name!r}") from exc


def load_valid_recipe(path: Path | str) -> Recipe:
    """The recipe folder, refused with every error when it is invalid."""
    recipe = load_recipe(path)
    errors = [p for p in recipe.problems + validate_recipe(recipe) if p.severity == "error"]
    if errors:
        raise ValidationError("\n".join(str(p) for p in errors))
    return recipe


def open_durable(recipe: Recipe, db: str | None, *, reset: bool = False) -> SqlStore:
    """A store on ``db`` (created or upgraded first) with the recipe's templates, and the
    account's stored object types over the recipe's (a type not deployed yet comes from the
    recipe). Opening writes nothing (``reset``: deletes everything stored first):
    :func:`deploy` stores the recipe's objects.yaml."""
    assert recipe.schema is not None
    return open_store(
        db,
        copy.deepcopy(recipe.schema),
        tz=account_tz(),
        templates=dict(recipe.templates),
        forms=dict(recipe.forms),
        id_block=ID_BLOCK,
        reset=reset,
    )


def request_account(store: SqlStore, data: Path | str | None = None) -> Account:
    """An account for one request outside a worker (deploy, start, migrate, forecast): it
    runs what the request sets off, but leaves due timers to the workers. ``data``: the data
    folder for attachments (default ``FLOWLANE_DATA``, else ``./flowlane-data``)."""
    account = Account(store, wall_clock(), files=LocalFileStore(data or data_folder()))
    account.runner.fire_due_timers = False
    return account


def deploy(recipe: Recipe, store: SqlStore) -> list[Definition]:
    """Deploy the recipe: its objects.yaml is merged into the account's stored schema (new
    types added, changed ones changed through the checks of ``Account.change_type``), then
    every process is deployed (a changed one becomes a new version). All or nothing."""
    assert recipe.schema is not None
    account = request_account(store)
    with store.transaction():
        account.deploy_objects(recipe.schema)
        return [
            account.deploy(Definition.build(recipe.processes[key], source=recipe.sources[key]))
            for key in sorted(recipe.processes)
        ]


MASS_START_BATCH = 500
"""Objects started per transaction by a mass start."""


class MassStartStopped(Refused):
    """A batch of a mass start failed after earlier batches had started their objects:
    those stay started (``started``: their new instance ids)."""

    def __init__(self, message: str, started: list[str]):
        super().__init__(message)
        self.started = started


def mass_start(
    store: SqlStore,
    process: str,
    where: Filter | None,
    vars_: dict[str, Any] | None = None,
    *,
    by: str | None = None,
    batch: int = MASS_START_BATCH,
    progress: Callable[[int, int], None] | None = None,
    limit: int | None = None,
) -> list[str]:
    """Start ``process`` for every object matching ``where``, ``batch`` objects per
    transaction (each batch all or nothing; the objects are checked again under lock).
    With ``limit``, more matching objects than that are refused before any starts.

    The database finds the objects; ``progress(done, total)`` is called after each batch.
    Returns the new instance ids. The objects are found with the checks of a batch (the
    starter, the process, the variables coerced). A failing batch stops the run with its
    error: the batches before it stay started, and the error is then a
    :class:`MassStartStopped` that says how many.
    """
    if batch < 1:
        raise ValidationError(f"batch must be at least 1, not {batch}")
    account = request_account(store)
    definition = store.definition(process)
    if definition is None:
        raise NotFound(f"process {process!r} is not deployed", process=process)
    ids: list[str] = []

    def find() -> None:
        ids[:] = account.mass_start_targets(process, where, vars_, by=by)

    account.attempt(find)
    if limit is not None and len(ids) > limit:
        raise Invalid(
            f"{len(ids)} objects match: more than {limit} are started with the CLI "
            "(flowlane start RECIPE PROCESS --where ...)",
            matching=len(ids),
            limit=limit,
        )
    if progress is not None:
        progress(0, len(ids))
    started: list[str] = []
    for i in range(0, len(ids), batch):
        chunk = ids[i : i + batch]
        got: list[str] = []

        def run(chunk: list[str] = chunk, got: list[str] = got) -> None:
            got[:] = account.mass_start(process, where, vars_, by=by, ids=chunk)

        account.runner.now = wall_clock()
        try:
            account.attempt(run)  # a retried batch replaces what it got, never adds twice
        except (FlowlaneError, SQLAlchemyError) as exc:
            if not started:
                raise  # nothing started: the plain refusal or error
            raise MassStartStopped(
                f"mass start of {process} stopped after {len(started)} of {len(ids)} "
                f"object(s), which stay started: {exc}",
                started,
            ) from exc
        started.extend(got)
        if progress is not None:
            progress(min(i + batch, len(ids)), len(ids))
    return started


@dataclass(frozen=True)
class WorkerOptions:
    recipe: Path
    db: str | None
    name: str
    settings: WorkerSettings
    until_idle: bool = False
    startup_wait_s: float = 60.0
    """How long a worker waits for the database when it starts."""


def run_worker(options: WorkerOptions, env: Mapping[str, str] = os.environ) -> None:
    """Run one worker in this process until SIGTERM / SIGINT (the current batch finishes)."""
    recipe = load_valid_recipe(options.recipe)
    mail = mail_mode(env)  # FLOWLANE_MAIL=sink stores emails instead of sending them
    smtp = SmtpSettings.from_env(env) if env.get("FLOWLANE_SMTP_HOST") or mail == "sink" else None
    store = _open_patiently(recipe, options.db, options.startup_wait_s)
    worker = Worker(
        store, options.name, options.settings, smtp=smtp, faults=Faults.from_env(env), mail=mail
    )

    def stop(_signum: int, _frame: FrameType | None) -> None:
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        worker.run(until_idle=options.until_idle)
    finally:
        store.close()


def _open_patiently(recipe: Recipe, db: str | None, wait_s: float) -> SqlStore:
    """Open the store, waiting up to ``wait_s`` for a database that is (re)starting."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return open_durable(recipe, db)
        except DatabaseError as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("database not ready, retrying: %s", exc)
            time.sleep(0.5)


def run_workers(count: int, argv: list[str]) -> int:
    """Run ``count`` worker processes (``flowlane worker … -n 1``); forward SIGTERM to them.

    Returns the worst exit code of the children.
    """
    children = [
        subprocess.Popen([sys.executable, "-m", "flowlane", *argv, "--name-suffix", f"-{i + 1}"])
        for i in range(count)
    ]

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)


__all__ = [
    "MassStartStopped",
    "WorkerOptions",
    "account_tz",
    "deploy",
    "load_valid_recipe",
    "open_durable",
    "run_worker",
    "run_workers",
]
