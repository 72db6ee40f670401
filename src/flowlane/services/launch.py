"""Launch rules: when objects enter processes (manual, once, periodic, create, update,
stage, event), entry conditions, ``repeat`` and approval."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flowlane.core.duration import parse_duration
from flowlane.core.errors import Refused
from flowlane.engine.context import Overlay, object_scope
from flowlane.expr import compile_expression
from flowlane.model.definition import Definition
from flowlane.model.segment import filter_expression
from flowlane.store.records import TimerRecord

if TYPE_CHECKING:
    from flowlane.services.account import Account


def is_approved(account: Account, definition: Definition) -> bool:
    """A process with ``launch.approval`` starts only after an admin approved it."""
    launch = definition.spec.launch
    return not (launch and launch.approval) or account.store.is_approved(definition.key)


def is_active(account: Account, definition: Definition) -> bool:
    """A stopped process starts nothing: no automatic launch fires, manual starts are refused
    (its running instances go on). A process is active unless stopped."""
    status = account.store.process_status(definition.key)
    return status is None or status.active


def require_startable(account: Account, definition: Definition) -> None:
    """Refuse a start by hand of a process that is not approved (when it must be) or stopped."""
    if not is_approved(account, definition):
        raise Refused(f"process {definition.key} must be approved before it starts")
    if not is_active(account, definition):
        raise Refused(f"process {definition.key} is stopped: activate it before starting it")


def cancel_periodic(account: Account, key: str) -> None:
    """End the process's periodic chain (the timer :func:`schedule_periodic` keeps)."""
    account.store.cancel_timer(f"periodic:{key}")


def condition_of(account: Account, definition: Definition) -> str | None:
    """The process's entry condition as one expression: ``entry`` and the ``where`` filter."""
    launch = definition.spec.launch
    if launch is None:
        return None
    where = filter_expression(launch.where, definition.spec.object, account.store.schema)
    parts = [f"({c})" for c in (launch.entry, where) if c]
    return " and ".join(parts) or None


def condition_scope(account: Account, vars_: dict[str, Any] | None = None) -> dict[str, Any]:
    """The names a condition on objects sees besides ``object``."""
    return {
        "now": account.runner.now.astimezone(account.store.tz),
        "vars": dict(vars_ or {}),
        "counters": {},
        "answer": None,
    }


def entry_holds(account: Account, definition: Definition, object_id: str) -> bool:
    """The process's entry condition (``entry`` and ``where``) on this object."""
    condition = condition_of(account, definition)
    if condition is None:
        return True
    scope = object_scope(
        Overlay(account.store), object_id, account.runner.now.astimezone(account.store.tz)
    )
    return compile_expression(condition).test(scope)


@dataclass(frozen=True)
class Forecast:
    """How many objects would enter the process now, counted by the database."""

    process: str
    objects: int
    """Objects of the process's type that match its entry condition and may enter."""
    launch: str


def forecast(account: Account, definition: Definition) -> Forecast:
    """The objects an automatic launch would start the process for if it ran now: those
    matching the entry condition (and, without ``repeat``, that never entered it; a periodic
    check with ``repeat``: that did not match at the previous check)."""
    launch = definition.spec.launch
    repeat = bool(launch and launch.repeat)
    condition, scope = condition_of(account, definition), condition_scope(account)
    count = account.store.count_objects(
        definition.spec.object,
        condition,
        scope,
        not_entered=None if repeat else definition.key,
    )
    if repeat and _periodic(definition):
        # The next check starts only the objects that did not match at the previous one.
        before = sorted(account.store.matched(definition.key))
        if before:
            count -= len(
                account.store.select_objects(definition.spec.object, condition, scope, ids=before)
            )
    return Forecast(definition.key, count, launch.on if launch else "manual")


def _automatic(account: Account, on: str, type_key: str) -> list[Definition]:
    out = []
    for key in account.store.process_keys():
        d = account.store.definition(key)
        if d is None or d.spec.draft or d.spec.launch is None or d.spec.launch.on != on:
            continue
        if d.spec.object != type_key:
            continue
        if not is_approved(account, d) or not is_active(account, d):
            continue
        out.append(d)
    return out


def try_enter(
    account: Account, definition: Definition, object_id: str, vars_: dict[str, Any] | None = None
) -> str | None:
    """Start the process for the object by an automatic launch, if its rules allow."""
    launch = definition.spec.launch
    repeat = bool(launch and launch.repeat)
    if not repeat and account.store.has_entered(definition.key, object_id):
        return None
    if not entry_holds(account, definition, object_id):
        return None
    return account.runner.start_instance(definition.key, object_id, dict(vars_ or {}))


def on_created(account: Account, object_id: str) -> None:
    rec = account.get_object(object_id)
    for d in _automatic(account, "create", rec.type):
        try_enter(account, d, object_id)
    if rec.type in account.staged_types():
        on_stage(account, object_id, None, rec.data.get("stage"))


def on_changed(
    account: Account, object_id: str, before: dict[str, Any], after: dict[str, Any]
) -> None:
    rec = account.get_object(object_id)
    for d in _automatic(account, "update", rec.type):
        try_enter(account, d, object_id)
    if before.get("stage") != after.get("stage"):
        on_stage(account, object_id, before.get("stage"), after.get("stage"))


def on_stage(account: Account, object_id: str, before: Any, stage: Any) -> list[str]:
    """Start the processes launched on entering ``stage`` (robots), by the rules of every
    automatic launch: the entry condition must hold, and without ``repeat`` an object enters
    a process once — a guard that sends the object back to a stage does not start that
    stage's processes again. With ``repeat: true`` every entry into the stage starts one."""
    rec = account.get_object(object_id)
    started = []
    for d in _automatic(account, "stage", rec.type):
        launch = d.spec.launch
        if launch is not None and launch.stage == stage:
            iid = try_enter(account, d, object_id)
            if iid:
                started.append(iid)
    return started


def start_all(account: Account, definition: Definition, object_ids: list[str]) -> list[str]:
    """Start the process for each object (ids that a launch rule chose), objects loaded and
    locked in one go, and checked again under the locks: a change committed between the
    search and the locks may have taken an object out (or another start let it enter)."""
    if not object_ids:
        return []
    launch = definition.spec.launch
    repeat = bool(launch and launch.repeat)
    account.store.prefetch(object_ids=object_ids, lock_objects=True)
    still = account.store.select_objects(
        definition.spec.object,
        condition_of(account, definition),
        condition_scope(account),
        ids=object_ids,
        not_entered=None if repeat else definition.key,
    )
    return [account.runner.start_instance(definition.key, oid, {}) for oid in still]


def run_once(account: Account, definition: Definition) -> list[str]:
    """``once``: every object matching the entry condition at this moment (that never
    entered the process, unless ``repeat``)."""
    launch = definition.spec.launch
    repeat = bool(launch and launch.repeat)
    ids = account.store.select_objects(
        definition.spec.object,
        condition_of(account, definition),
        condition_scope(account),
        not_entered=None if repeat else definition.key,
    )
    return start_all(account, definition, ids)


def _zoned(account: Account, moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=account.store.tz)


def schedule_periodic(account: Account, definition: Definition) -> None:
    """Schedule the next periodic check: ``every`` from now, not before ``from``; none
    after ``until`` (the chain ends)."""
    launch = definition.spec.launch
    # One chain per process: a new version restarts it rather than adding a second one,
    # and a version that is no longer periodic stops it.
    timer_id = f"periodic:{definition.key}"
    account.store.cancel_timer(timer_id)
    if not _periodic(definition) or launch is None or not launch.every:
        return
    due = account.runner.now + parse_duration(launch.every)
    start, end = _zoned(account, launch.from_), _zoned(account, launch.until)
    if start is not None and due < start:
        due = start
    if end is not None and due > end:
        return
    account.store.add_timer(
        TimerRecord(
            timer_id,
            None,
            due,
            0,
            kind="periodic",
            process=definition.key,
        )
    )


def _periodic(definition: Definition) -> bool:
    launch = definition.spec.launch
    return launch is not None and launch.on == "periodic" and not definition.spec.draft


def run_periodic(account: Account, timer: TimerRecord) -> None:
    """A periodic check: objects that newly match enter; then the next check is scheduled.

    The database finds them (:meth:`~flowlane.store.base.Store.newly_matching`): without
    ``repeat`` the matching objects that never entered; with it, those that did not match at
    the previous check.
    """
    assert timer.process is not None
    definition = account.store.definition(timer.process)
    if definition is None or not _periodic(definition):
        return  # the process is no longer launched periodically: the chain ends
    launch = definition.spec.launch
    assert launch is not None
    if not is_active(account, definition):
        return  # stopped meanwhile: the chain ends (activating the process schedules it anew)
    if is_approved(account, definition):
        ids = account.store.newly_matching(
            definition.key,
            definition.spec.object,
            condition_of(account, definition),
            condition_scope(account),
            repeat=launch.repeat,
        )
        start_all(account, definition, ids)
    schedule_periodic(account, definition)


_WORD = re.compile(r"[\w-]+")
"""A word of a message (as ``keyword:<word>`` allows: letters, digits, ``_`` and ``-``)."""

EVENT_KINDS = ("form", "webhook", "email", "keyword", "message")
"""A form submission, a webhook call, an inbound email, a keyword, a bot / chat message."""


def event_names(kind: str, key: str | None, data: dict[str, Any]) -> set[str]:
    """The launch names an event answers: ``form:<key>``, ``webhook:<key>``, ``email``, and
    ``keyword:<word>`` for every whole word (case-insensitive) of a message's ``text`` (or
    an event of kind ``keyword`` with that key)."""
    if kind not in EVENT_KINDS:
        raise Refused(f"event kind {kind!r}: use one of {', '.join(EVENT_KINDS)}")
    if kind in ("form", "webhook") and not (key and key.strip()):
        raise Refused(f"a {kind} event needs a key")
    if kind == "keyword" and not (key and key.strip()) and not isinstance(data.get("text"), str):
        raise Refused("a keyword event needs a key (the word) or data.text")
    names = {f"{kind}:{key}" if key else kind}
    if kind == "email":
        names.add("email")  # any inbound email, whatever mailbox key it came with
    if kind == "keyword" and key:
        names.add(f"keyword:{key.lower()}")
    text = data.get("text")
    if kind == "message" and not isinstance(text, str):
        raise Refused("a message event needs its text in data.text")
    if kind in ("message", "keyword") and isinstance(text, str):
        names.update(f"keyword:{word.lower()}" for word in _WORD.findall(text))
    return names


def _listens(definition: Definition, names: set[str]) -> bool:
    launch = definition.spec.launch
    if launch is None or launch.event is None:
        return False
    event = launch.event
    if event.startswith("keyword:"):
        event = "keyword:" + event[len("keyword:") :].lower()
    return event in names


def on_event(account: Account, kind: str, key: str | None, data: dict[str, Any]) -> list[str]:
    """A form, webhook, inbound email or keyword message: start the active processes
    listening (approved, where approval is needed)."""
    names = event_names(kind, key, data)
    started = []
    objects: dict[str, str | None] = {}  # one object per type and event, however many listen
    for d_key in account.store.process_keys():
        d = account.store.definition(d_key)
        if d is None or d.spec.launch is None or d.spec.launch.on != "event":
            continue
        if not _listens(d, names):
            continue
        if not is_approved(account, d) or not is_active(account, d):
            continue
        if d.spec.object not in objects:
            objects[d.spec.object] = account.object_for_event(d, data)
        object_id = objects[d.spec.object]
        vars_ = account.coerce_vars(d, {k: v for k, v in data.items() if k in d.spec.variables})
        if object_id is None or entry_holds(account, d, object_id):
            started.append(account.runner.start_instance(d_key, object_id, vars_))
    return started
