"""Standard BPMN processes in ``decide()`` (ADR 0012 "Hosting").

A definition with ``bpmn`` (:class:`~flowlane.model.bpmn_process.HostedBpmn`) is run by
:class:`~flowlane.engine.bpmn.BpmnRun` instead of blocks. The run's JSON state lives in
``InstanceState.bpmn["run"]``; every step resumes it, applies the event and turns what the
run now waits for into flowlane commands, keeping one *mirror token* per wait in
``InstanceState.tokens`` so that cancelling, views and the store see an ordinary instance:

* a ready user / manual task (or ``task`` in ``wait`` mode) → ``OpenTask`` (assignee, title,
  options and fields from the process's ``bpmn.tasks`` / the element's ``flowlane:``
  attributes / the ``task:`` settings); mirror ``{"k": "task", "task": id, "bt": token}``.
  ``TaskAnswered`` completes the BPMN task with the answer's fields merged into its data
  (and ``option`` when the task has options); a task the run dropped (a boundary event
  interrupted it) → ``CloseTask``.
* the run's earliest timer → one ``ScheduleTimer`` on the job table / virtual clock (mirror
  ``{"k": "timer", "timer": id, "due": iso}``); ``TimerFired`` (indeed any event) advances
  the run's clock to the event's time, which fires every due timer in order.
* message / signal catches → a subscription under ``bpmn:message:<name>`` /
  ``bpmn:signal:<name>`` (the object-subscription index with a prefixed key);
  ``fire_event("message" | "signal", name, data)`` delivers :class:`EventDelivered`.
* a message the run throws and does not catch itself, and every signal it throws →
  ``DeliverEvent``: the runtime hands it to the first other instance waiting for the
  message / every other instance waiting for the signal (as ``fire_event`` would).
* the run completing → the instance ends, outcome ``positive``; the run stopping in error →
  an incident at the element (``RaiseIncident`` naming it). An unexpected exception of a
  step stops the run in error at its element too (:class:`BpmnRun`); one anywhere else in
  ``decide()`` drops the event's effects and stops the run in error, an incident naming the
  instance: ``decide()`` never raises, so no request fails and no timer job fails forever.
* a run in error cannot be resumed: ``Retried`` is ignored for it and the services refuse
  the retry (:func:`retry_refusal`); cancelling it is what is left.
"""

from __future__ import annotations

from typing import Any

from flowlane.core.errors import FlowlaneError, Refused
from flowlane.engine.blocks import _open_task
from flowlane.engine.bpmn import BpmnRun
from flowlane.engine.context import Ctx
from flowlane.engine.events import (
    CancelTimer,
    Decision,
    DeliverEvent,
    Event,
    EventDelivered,
    InstanceCancelled,
    InstanceStarted,
    NotifyParent,
    RaiseIncident,
    Retried,
    ScheduleTimer,
    Subscribe,
    TaskAnswered,
    TaskFinished,
    TimerFired,
)
from flowlane.engine.state import InstanceState, Token
from flowlane.engine.step import Step
from flowlane.model.definition import Definition
from flowlane.model.process import BpmnTask

PARENT_ENDED = "parent ended"
"""The reason of a cancellation that the parent's end set off; such a child reports nothing."""
NO_TASK = BpmnTask()
RETRY_REFUSED = "a standard BPMN run in error cannot be retried; cancel it"


def run_failed(state: InstanceState) -> bool:
    """Whether ``state`` is a standard BPMN instance whose run stopped in error (or never
    got a run): a retry would stop again at once."""
    if state.bpmn is None:
        return False
    run = state.bpmn.get("run")
    return not isinstance(run, dict) or run.get("status") == "error"


def retry_refusal(state: InstanceState) -> str | None:
    """Why a retry of ``state`` is refused (a standard BPMN run in error); None when it may
    be retried as far as BPMN hosting goes."""
    if run_failed(state):
        return f"instance {state.id}: {RETRY_REFUSED}"
    return None


def subscription_key(kind: str, name: str) -> str:
    """The subscription-index key of instances waiting for a message / signal by name."""
    return f"bpmn:{kind}:{name}"


def decide_bpmn(definition: Definition, state: InstanceState, event: Event, ctx: Ctx) -> Decision:
    """``decide()`` for a standard BPMN definition. Pure: inputs are not mutated."""
    assert definition.bpmn is not None
    new = state.copy()
    step = Step(definition, new, ctx)
    if isinstance(event, InstanceCancelled):
        accepts = new.status in ("running", "incident")
    elif isinstance(event, Retried):
        accepts = new.status == "incident" and not run_failed(new)
    else:
        accepts = new.status == "running"
    if not accepts:
        return Decision(new, [], [])
    if isinstance(event, InstanceCancelled):
        step.finish("cancelled", "cancelled", None)
        _sync_subscriptions(step, [])
        if new.parent and event.reason != PARENT_ENDED:
            step.emit(NotifyParent(new.parent["id"], new.id, "cancelled", None))
        return Decision(new, step.commands, step.trace)
    run: BpmnRun | None = None
    try:
        run = _apply(step, event)
        if run is not None:
            _sync(step, run)
    except FlowlaneError as exc:
        _incident(step, None, str(exc))
    except Exception as exc:  # never a failed request nor a job failing forever
        return _crashed(definition, state, ctx, exc)
    return Decision(new, step.commands, step.trace)


def _crashed(definition: Definition, state: InstanceState, ctx: Ctx, exc: Exception) -> Decision:
    """An unexpected exception outside the run's steps: drop what the event did, stop the
    run in error and raise an incident naming the instance."""
    new = state.copy()
    step = Step(definition, new, ctx)
    message = f"internal error in instance {new.id}: {type(exc).__name__}: {exc}"
    if new.bpmn is None:
        new.bpmn = {"run": None, "seen": 0, "subs": []}
    elif isinstance(new.bpmn.get("run"), dict):
        new.bpmn["run"].update(status="error", error_at=None, error=message)
    _incident(step, None, message)
    return Decision(new, step.commands, step.trace)


def _apply(step: Step, event: Event) -> BpmnRun | None:
    """Resume the run, apply the event; None when the event changes nothing."""
    hosted = step.defn.bpmn
    assert hosted is not None
    state = step.state
    if isinstance(event, InstanceStarted):
        state.vars.update(event.vars)
        state.started_at = step.ctx.now
        step.log(None, "instance_started", vars=sorted(event.vars))
        run = BpmnRun.start(hosted.program, dict(state.vars), now=step.ctx.now)
        state.bpmn = {"run": run.state, "seen": 0, "subs": []}
        return run
    if state.bpmn is None:
        return None
    run = BpmnRun(hosted.program, state.bpmn["run"])
    if isinstance(event, Retried):
        step.log(None, "retried")
        state.status = "running"
        state.incident = None
        return run
    if run.status == "running":
        run.advance(step.ctx.now)
    _event(step, run, event)
    return run


def _event(step: Step, run: BpmnRun, event: Event) -> None:
    state = step.state
    if isinstance(event, TaskAnswered | TaskFinished):
        _task_done(step, run, event)
    elif isinstance(event, TimerFired):
        for tok in list(state.tokens):
            if tok.wait and tok.wait.get("timer") == event.timer_id:
                state.tokens.remove(tok)
                step.log(tok.block, "timer_fired", timer=event.timer_id)
    elif isinstance(event, EventDelivered) and run.status == "running":
        data = dict(event.data)
        if event.kind == "message":
            if run.message(event.name, data):
                step.log(None, "message_received", name=event.name)
        elif event.kind == "signal":
            count = run.signal(event.name, data)
            step.log(None, "signal_received", name=event.name, caught=count)


def _task_done(step: Step, run: BpmnRun, event: TaskAnswered | TaskFinished) -> None:
    state = step.state
    found = next((t for t in state.tokens if t.wait and t.wait.get("task") == event.task_id), None)
    if found is None or run.status != "running":
        return
    assert found.wait is not None
    state.tokens.remove(found)
    data: dict[str, Any] = {}
    if isinstance(event, TaskAnswered):
        data.update(event.fields)
        if event.option is not None:
            data["option"] = event.option
        state.vars.update(data)
    try:
        run.complete(str(found.wait["bt"]), data, token=True)
    except Refused:
        return


def _sync(step: Step, run: BpmnRun) -> None:
    """Turn the run's waits into commands and mirror tokens; end or stop the instance."""
    state = step.state
    assert state.bpmn is not None
    state.bpmn["run"] = run.state
    seen = int(state.bpmn.get("seen", 0))
    trace = run.state["trace"]
    for node in trace[seen:]:
        step.log(node, "bpmn_completed")
    state.bpmn["seen"] = len(trace)
    _send(step, run)
    if run.status == "error":
        _incident(step, run.error_at, f"{run.error_at}: {run.error}")
        return
    if run.status == "completed":
        state.vars.update(run.data)
        step.finish("ended", "positive", None)
        _sync_subscriptions(step, [])
        return
    _sync_tasks(step, run)
    _sync_timer(step, run)
    _sync_catches(step, run)


def _send(step: Step, run: BpmnRun) -> None:
    """Messages the run threw that nothing inside it caught, and every signal it threw, go
    to the other instances waiting for them."""
    state = step.state
    assert state.bpmn is not None
    for kind, key, counter in (("message", "outbox", "sent"), ("signal", "signals", "signalled")):
        thrown = run.state.get(key, [])
        done = int(state.bpmn.get(counter, 0))
        for item in thrown[done:]:
            name = str(item.get(kind) or "")
            step.emit(DeliverEvent(kind, name, dict(item.get("payload") or {}), state.id))
            step.log(item.get("from"), f"{kind}_sent", name=name)
        if thrown:
            state.bpmn[counter] = len(thrown)


def _catch_keys(t: dict[str, Any]) -> list[tuple[str, str]]:
    """The (kind, name) of every message / signal a waiting BPMN token takes."""
    pairs = t.get("names") or [(t.get("wait"), t.get("name"))]
    return [(str(k), str(v)) for k, v in pairs if k in ("message", "signal") and v]


def _sync_catches(step: Step, run: BpmnRun) -> None:
    """Mirror tokens and subscriptions of the message and signal catches that wait."""
    state = step.state
    catches = [
        t for t in sorted(run.state["tokens"].values(), key=lambda t: t["n"]) if _catch_keys(t)
    ]
    mirrored = {
        t.wait["bt"]: t for t in state.tokens if t.wait and t.wait.get("k") in ("message", "signal")
    }
    live = {str(t["id"]) for t in catches}
    state.tokens = [
        t
        for t in state.tokens
        if not (t.wait and t.wait.get("k") in ("message", "signal") and t.wait["bt"] not in live)
    ]
    for t in catches:
        if t["id"] not in mirrored:
            state.seq += 1
            kind, name = _catch_keys(t)[0]
            wait = {"k": kind, "name": name, "bt": str(t["id"])}
            state.tokens.append(Token(state.seq, str(t["node"]), None, wait))
    keys = sorted({subscription_key(k, n) for t in catches for k, n in _catch_keys(t)})
    _sync_subscriptions(step, keys)


def _sync_tasks(step: Step, run: BpmnRun) -> None:
    state = step.state
    hosted = step.defn.bpmn
    assert hosted is not None
    ready = {r.token: r for r in run.ready()}
    mirrored = {t.wait["bt"]: t for t in state.tokens if t.wait and t.wait.get("k") == "task"}
    for bt, tok in mirrored.items():
        if bt not in ready:
            step.release(tok)
            state.tokens.remove(tok)
            step.log(tok.block, "task_withdrawn")
    for bt, r in ready.items():
        if bt in mirrored:
            continue
        spec = hosted.tasks.get(r.node, NO_TASK)
        state.seq += 1
        tok = Token(state.seq, r.node)
        saved = state.vars
        state.vars = {**saved, **r.data}
        try:
            task_id = _open_task(
                step,
                tok,
                kind="question" if spec.options else "task",
                title=spec.title or r.name or r.node,
                text=spec.text,
                assign=spec.assign,
                options=tuple(spec.options),
                fields=dict(spec.fields),
            )
        finally:
            state.vars = saved
        tok.wait = {"k": "task", "task": task_id, "bt": bt}
        state.tokens.append(tok)


def _sync_timer(step: Step, run: BpmnRun) -> None:
    state = step.state
    current = next((t for t in state.tokens if t.wait and t.wait.get("k") == "timer"), None)
    due = run.next_timer()
    wanted = due.isoformat() if due is not None else None
    if current is not None and current.wait is not None:
        if current.wait.get("due") == wanted:
            return
        step.emit(CancelTimer(current.wait["timer"]))
        state.tokens.remove(current)
    if due is None:
        return
    node = min(
        (t for t in run.state["tokens"].values() if t.get("wait") == "timer" and "due" in t),
        key=lambda t: (t["due"], t["n"]),
    )["node"]
    timer_id = state.next_id("j")
    step.emit(ScheduleTimer(timer_id, state.id, due.astimezone(step.world.tz)))
    state.seq += 1
    state.tokens.append(
        Token(state.seq, str(node), None, {"k": "timer", "timer": timer_id, "due": wanted})
    )
    step.log(str(node), "timer_scheduled", timer=timer_id, due=wanted)


def _sync_subscriptions(step: Step, keys: list[str]) -> None:
    state = step.state
    if state.bpmn is None:
        return
    if list(state.bpmn.get("subs", [])) != keys:
        state.bpmn["subs"] = keys
        step.emit(Subscribe(state.id, tuple(keys)))


def _incident(step: Step, element: str | None, message: str) -> None:
    state = step.state
    state.status = "incident"
    state.incident = message
    step.log(element, "incident", message=message)
    step.emit(RaiseIncident(state.id, element, message))


__all__ = [
    "PARENT_ENDED",
    "RETRY_REFUSED",
    "decide_bpmn",
    "retry_refusal",
    "run_failed",
    "subscription_key",
]
