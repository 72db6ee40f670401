"""Launch rules: when objects enter processes (manual, once, periodic, create, update,
stage, event), entry conditions, ``repeat`` and approval."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowlane.core.duration import parse_duration
from flowlane.engine.context import Overlay, object_scope
from flowlane.expr import compile_expression
from flowlane.model.definition import Definition
from flowlane.store.records import TimerRecord

if TYPE_CHECKING:
    from flowlane.services.account import Account


def is_approved(account: Account, definition: Definition) -> bool:
    """A process with ``launch.approval`` starts only after an admin approved it."""
    launch = definition.spec.launch
    return not (launch and launch.approval) or account.store.is_approved(definition.key)


def entry_holds(account: Account, definition: Definition, object_id: str) -> bool:
    """The process's entry condition (``entry`` and ``where``) on this object."""
    launch = definition.spec.launch
    if launch is None:
        return True
    scope = object_scope(
        Overlay(account.store), object_id, account.runner.now.astimezone(account.store.tz)
    )
    return all(
        compile_expression(cond).test(scope) for cond in (launch.entry, launch.where) if cond
    )


def _automatic(account: Account, on: str, type_key: str) -> list[Definition]:
    out = []
    for key in account.store.process_keys():
        d = account.store.definition(key)
        if d is None or d.spec.draft or d.spec.launch is None or d.spec.launch.on != on:
            continue
        if d.spec.object != type_key:
            continue
        if not is_approved(account, d):
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


def on_stage(account: Account, object_id: str, before: Any, stage: Any) -> None:
    """Run the processes launched on entering ``stage`` (robots): every entry counts."""
    rec = account.get_object(object_id)
    for d in _automatic(account, "stage", rec.type):
        launch = d.spec.launch
        if launch is not None and launch.stage == stage and entry_holds(account, d, object_id):
            account.runner.start_instance(d.key, object_id, {})


def run_once(account: Account, definition: Definition) -> list[str]:
    """``once``: every object matching the entry condition at this moment."""
    started = []
    for oid in account.store.objects_of_type(definition.spec.object):
        iid = try_enter(account, definition, oid)
        if iid:
            started.append(iid)
    return started


def schedule_periodic(account: Account, definition: Definition) -> None:
    launch = definition.spec.launch
    # One chain per process: a new version restarts it rather than adding a second one,
    # and a version that is no longer periodic stops it.
    timer_id = f"periodic:{definition.key}"
    account.store.cancel_timer(timer_id)
    if not _periodic(definition) or launch is None or not launch.every:
        return
    due = account.runner.now + parse_duration(launch.every)
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
    """A periodic check: objects that newly match enter; then the next check is scheduled."""
    assert timer.process is not None
    definition = account.store.definition(timer.process)
    if definition is None or not _periodic(definition):
        return  # the process is no longer launched periodically: the chain ends
    if is_approved(account, definition):
        previous = account.store.matched(definition.key)
        now_matching = set()
        for oid in account.store.objects_of_type(definition.spec.object):
            if entry_holds(account, definition, oid):
                now_matching.add(oid)
                if oid not in previous:
                    try_enter(account, definition, oid)
        account.store.set_matched(definition.key, now_matching)
    schedule_periodic(account, definition)


def on_event(account: Account, kind: str, key: str | None, data: dict[str, Any]) -> list[str]:
    """A form, webhook, inbound email or keyword message: start the processes listening."""
    name = f"{kind}:{key}" if key else kind
    started = []
    for d_key in account.store.process_keys():
        d = account.store.definition(d_key)
        if d is None or d.spec.launch is None or d.spec.launch.on != "event":
            continue
        if d.spec.launch.event != name:
            continue
        if not is_approved(account, d):
            continue
        object_id = account.object_for_event(d, data)
        vars_ = account.coerce_vars(d, {k: v for k, v in data.items() if k in d.spec.variables})
        if object_id is None or entry_holds(account, d, object_id):
            started.append(account.runner.start_instance(d_key, object_id, vars_))
    return started
