"""The pure interpreter: ``decide(definition, state, event, ctx) -> Decision``.

One call handles one event for one instance: it moves every token it can until each token
waits or ends, and returns the new state with the commands the runtime must apply and the
trace to record. It reads only ``ctx`` (the event's time and a read-only world); it never
mutates its inputs, never reads the clock and never draws random numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowlane.core.errors import FlowlaneError
from flowlane.engine.blocks import HANDLERS, resume_condition, resume_task, resume_timer
from flowlane.engine.bpmn_host import PARENT_ENDED as PARENT_ENDED
from flowlane.engine.bpmn_host import decide_bpmn
from flowlane.engine.children import resume_child
from flowlane.engine.context import Ctx
from flowlane.engine.events import (
    ChildEnded,
    Decision,
    Event,
    EventDelivered,
    InstanceCancelled,
    InstanceStarted,
    NotifyParent,
    ObjectChanged,
    RaiseIncident,
    Retried,
    TaskAnswered,
    TaskFinished,
    TimerFired,
    TraceEntry,
)
from flowlane.engine.state import InstanceState, Token
from flowlane.engine.step import WAIT, Incident, Step
from flowlane.model.definition import Definition


def _find(state: InstanceState, key: str, value: str) -> Token | None:
    for tok in state.tokens:
        w = tok.wait
        if w is not None and (w.get(key) == value or value in w.get(key + "ren", ())):
            return tok
    return None


def _loop_ids(executed: list[str], limit: int) -> str:
    """The blocks of the cycle being repeated, in the order the step first entered them."""
    tail = executed[-limit:]
    last = tail[-1]
    previous = len(tail) - 2
    while previous >= 0 and tail[previous] != last:
        previous -= 1
    cycle = set(tail[previous + 1 :]) if previous >= 0 else set(tail)
    ordered: list[str] = []
    for block in executed:
        if block in cycle and block not in ordered:
            ordered.append(block)
    return ", ".join(ordered)


def _run(step: Step) -> None:
    """Move queued tokens until each waits or ends.

    The loop guard: more than ``loop_limit`` blocks since a token last came to wait is a
    loop without a wait. A cycle that does reach waits but multiplies them (a fork feeding
    back into itself) is stopped too: one step may run at most ``10 × loop_limit`` blocks.
    """
    limit = step.defn.spec.loop_limit
    blocks = step.defn.spec.blocks
    queue, dropped, executed, trace = step.queue, step.dropped, step.executed, step.trace
    sid, process = step.state.id, step.state.process
    total = 0
    while queue and not step.ended:
        token = queue.pop(0)
        if token.wait is not None or token.id in dropped:
            continue
        block = blocks.get(token.block)
        if block is None:
            raise Incident(f"block {token.block!r} does not exist in version {step.defn.version}")
        executed.append(token.block)
        total += 1
        if len(executed) > limit:
            raise Incident(f"loop without a wait: {_loop_ids(executed, limit)}")
        if total > 10 * limit:
            raise Incident(
                f"loop: more than {10 * limit} blocks in one step: {_loop_ids(executed, limit)}"
            )
        trace.append(TraceEntry(sid, process, token.block, "entered", {"type": block.type}))
        if HANDLERS[block.type](step, block, token) is WAIT:
            executed.clear()


def _started(step: Step, event: InstanceStarted) -> None:
    for name in step.defn.spec.counters:
        step.state.counters.setdefault(name, 0)
    step.state.vars.update(event.vars)
    step.state.started_at = step.ctx.now
    step.log(None, "instance_started", vars=sorted(event.vars))
    step.spawn(step.defn.start_block(), came_from=None, answer=None)


def _task_done(step: Step, event: TaskAnswered | TaskFinished) -> None:
    tok = _find(step.state, "task", event.task_id)
    if tok is not None:
        resume_task(step, tok, event)


def _timer(step: Step, event: TimerFired) -> None:
    tok = _find(step.state, "timer", event.timer_id)
    if tok is not None:
        resume_timer(step, tok)


def _changed(step: Step, event: ObjectChanged) -> None:
    for tok in list(step.state.tokens):
        if tok.wait and tok.wait.get("k") == "cond":
            resume_condition(step, tok)


def _child(step: Step, event: ChildEnded) -> None:
    tok = _find(step.state, "child", event.child_id)
    if event.child_id in step.state.children:
        step.state.children.remove(event.child_id)
    if tok is not None:
        resume_child(step, tok, event)


def _cancelled(step: Step, event: InstanceCancelled) -> None:
    step.finish("cancelled", "cancelled", None)
    parent = step.state.parent
    if parent and event.reason != PARENT_ENDED:
        # Cancelled by hand: the parent's branch that waits on it ends (no result).
        step.emit(NotifyParent(parent["id"], step.state.id, "cancelled", None))


def _retried(step: Step, event: Retried) -> None:
    step.state.status = "running"
    step.state.incident = None
    step.log(None, "retried")
    step.queue.extend(tok for tok in step.state.tokens if tok.wait is None)


EVENT_HANDLERS: dict[type, Callable[[Step, Any], None]] = {
    InstanceStarted: _started,
    TaskAnswered: _task_done,
    TaskFinished: _task_done,
    TimerFired: _timer,
    ObjectChanged: _changed,
    ChildEnded: _child,
    InstanceCancelled: _cancelled,
    Retried: _retried,
    EventDelivered: lambda step, event: None,  # only standard BPMN processes wait for these
}


def decide(definition: Definition, state: InstanceState, event: Event, ctx: Ctx) -> Decision:
    """Apply one event to one instance. Pure: inputs are not mutated."""
    if definition.bpmn is not None:
        return decide_bpmn(definition, state, event, ctx)
    new = state.copy()
    step = Step(definition, new, ctx)
    if isinstance(event, InstanceCancelled):
        accepts = new.status in ("running", "incident")
    elif isinstance(event, Retried):
        accepts = new.status == "incident"
    else:
        accepts = new.status == "running"
    if not accepts:
        return Decision(new, [], [])
    try:
        EVENT_HANDLERS[type(event)](step, event)
        _run(step)
        step.finish_if_empty()
    except FlowlaneError as exc:
        _incident(step, str(exc))
    step.sync_subscriptions()
    return Decision(new, step.commands, step.trace)


def _incident(step: Step, message: str) -> None:
    """Stop the instance with an incident at the block that failed.

    What the blocks before it did stands; the failing block changed nothing (handlers emit
    their commands only after everything they need has been computed). Its token keeps
    standing there without a wait, so a retry runs that block again.
    """
    state = step.state
    state.status = "incident"
    state.incident = message
    block = step.executed[-1] if step.executed else None
    step.queue.clear()
    step.log(block, "incident", message=message)
    step.emit(RaiseIncident(state.id, block, message))
