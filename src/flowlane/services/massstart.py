"""Mass start in batches that a page drives, one request (one unit of work) per batch.

:func:`flowlane.runtime.durable.mass_start` runs every batch in one call, which suits the CLI
and the API; the web UI instead starts one batch per request and shows "N of M started"
between them. The batches follow the objects' ids (the store returns them sorted in
code-point order): each batch starts the next ``size`` matching objects after the last id
the previous batch handled, with the checks of :meth:`Account.mass_start` (the starter, the
process, the filter, each object checked again under lock). Objects created meanwhile with
an id after the cursor are started too; objects that stopped matching are skipped.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowlane.core.errors import Invalid
from flowlane.model.segment import Filter
from flowlane.services import launch, permissions
from flowlane.services.admin import ProcessInfo

if TYPE_CHECKING:
    from flowlane.services.account import Account

LIMIT = 100_000
"""Most matching objects a mass start from the web UI takes (more: the CLI), as the API."""
MAX_BATCH = 500
"""Most objects one batch starts (one transaction), as the durable mass start."""


@dataclass(frozen=True, slots=True)
class Batch:
    """What one batch did: the instances it started, how many objects it handled (those that
    no longer matched under lock are handled but not started), the id to continue after,
    and whether matching objects remain after it."""

    started: list[str]
    handled: int
    last: str | None
    more: bool


def startable(acc: Account, type_key: str, *, by: str | None) -> list[ProcessInfo]:
    """The processes on objects of ``type_key`` the person may start by hand now (for a mass
    start): they may start processes, and the process is active, approved when it must be,
    and not a draft (drafts are started by other processes). Sorted by key."""
    if not permissions.can(acc, by, "start_processes"):
        return []
    out = []
    for key in acc.store.process_keys():
        d = acc.definition(key)
        if d.spec.object != type_key or d.spec.draft:
            continue
        if launch.is_approved(acc, d) and launch.is_active(acc, d):
            out.append(acc.process_info(key))
    return sorted(out, key=lambda p: p.key)


def count(
    acc: Account,
    process: str,
    where: Filter | None,
    vars_: dict[str, Any] | None = None,
    *,
    by: str | None,
    limit: int = LIMIT,
) -> int:
    """How many objects a mass start of ``process`` over ``where`` would start now (checked as
    a batch is: the starter, the process, the filter); more than ``limit`` are refused."""
    found = len(acc.mass_start_targets(process, where, vars_, by=by))
    if found > limit:
        raise Invalid(
            f"{found} objects match: more than {limit} are started with the CLI "
            "(flowlane start RECIPE PROCESS --where ...)",
            matching=found,
            limit=limit,
        )
    return found


def batch(
    acc: Account,
    process: str,
    where: Filter | None,
    vars_: dict[str, Any] | None = None,
    *,
    after: str | None,
    size: int,
    by: str | None,
) -> Batch:
    """Start ``process`` for the next ``size`` objects matching ``where`` whose id comes after
    ``after`` (``None``: from the first). Run it as one unit of work."""
    if not 1 <= size <= MAX_BATCH:
        raise Invalid(f"size: a batch takes 1 to {MAX_BATCH} objects, not {size}", field="size")
    ids = acc.mass_start_targets(process, where, vars_, by=by)
    pending = ids if after is None else ids[bisect_right(ids, after) :]
    chunk = pending[:size]
    started = acc.mass_start(process, where, vars_, by=by, ids=chunk) if chunk else []
    return Batch(started, len(chunk), chunk[-1] if chunk else after, len(pending) > size)
