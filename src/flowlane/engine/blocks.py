"""Block handlers: what each block type does when a token enters it, and how it resumes.

A handler returns :data:`WAIT` when its token came to wait, anything else when the token
moved on or ended. Handlers compute everything before they emit a command, so a block that
fails (an :class:`Incident`) has changed nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from markupsafe import Markup

from flowlane.core.duration import parse_duration
from flowlane.engine.children import for_each, subprocess
from flowlane.engine.events import (
    CancelTimer,
    OpenTask,
    SendMessage,
    TaskAnswered,
    TaskFinished,
)
from flowlane.engine.operation import operation
from flowlane.engine.people import recipients, resolve_assignee
from flowlane.engine.state import Token
from flowlane.engine.step import WAIT, Incident, Step
from flowlane.expr import compile_expression
from flowlane.model import process as m
from flowlane.model.render import render, render_markdown

Handler = Callable[[Step, Any, Token], object]


def _start(step: Step, block: m.StartBlock, token: Token) -> object:
    step.move(token, block.next)
    return None


def _end(step: Step, block: m.EndBlock, token: Token) -> object:
    step.drop(token)
    step.finish("ended", block.outcome, block.result)
    return None


def _fork(step: Step, block: m.ForkBlock, token: Token) -> object:
    step.drop(token)
    for target in block.next:
        step.spawn(target, came_from=token.block, answer=token.answer)
    return None


def _join(step: Step, block: m.JoinBlock, token: Token) -> object:
    incoming = step.defn.incoming.get(token.block, ())
    token.wait = {"k": "join"}
    here = [t for t in step.state.tokens if t.block == token.block and t.wait is not None]
    arrived: dict[str | None, Token] = {}
    for t in here:
        arrived.setdefault(t.came_from, t)
    if not all(src in arrived for src in incoming):
        step.log(token.block, "join_waiting", arrived=len(arrived), needed=len(incoming))
        return WAIT
    for src in incoming:
        step.drop(arrived[src])
    step.spawn(block.next, came_from=token.block, answer=token.answer)
    return None


def _condition(step: Step, block: m.ConditionBlock, token: Token) -> object:
    scope = step.scope(token)
    for i, branch in enumerate(block.branches):
        if compile_expression(branch.if_).test(scope):
            step.log(token.block, "branch", taken=i)
            step.move(token, branch.next)
            return None
    step.log(token.block, "branch", taken="else")
    step.move(token, block.else_)
    return None


def _holds(step: Step, source: str, token: Token) -> tuple[bool, list[str]]:
    """Evaluate a wait condition and return the objects it read."""
    step.overlay.reads = set()
    try:
        ok = compile_expression(source).test(step.scope(token))
        reads = sorted(step.overlay.reads)
    finally:
        step.overlay.reads = None
    return ok, reads


def _wait_for(step: Step, block: m.WaitForBlock, token: Token) -> object:
    ok, reads = _holds(step, block.until, token)
    if ok:
        step.log(token.block, "condition_met")
        step.move(token, block.next)
        return None
    wait: dict[str, Any] = {"k": "cond", "objs": reads}
    if block.timeout:
        wait["timer"] = step.schedule(step.ctx.now + parse_duration(block.timeout))
    token.wait = wait
    step.subscriptions_dirty = True
    return WAIT


def resume_condition(step: Step, token: Token) -> None:
    block = step.defn.spec.blocks[token.block]
    assert isinstance(block, m.WaitForBlock)
    ok, reads = _holds(step, block.until, token)
    if not ok:
        if token.wait is not None and token.wait.get("objs") != reads:
            token.wait["objs"] = reads
            step.subscriptions_dirty = True
        return
    step.log(token.block, "condition_met")
    if token.wait and token.wait.get("timer"):
        step.emit(CancelTimer(token.wait["timer"]))
    step.subscriptions_dirty = True
    step.move(token, block.next)


def _delay(step: Step, block: m.DelayBlock, token: Token) -> object:
    if block.ask is not None:
        assign = block.ask.assign
        task_id = _open_task(
            step,
            token,
            kind="ask_date",
            title=block.ask.title or block.name or "Enter a date",
            text=block.ask.text,
            assign=assign,
            options=(),
            fields={"at": {"type": "datetime", "required": True, "label": "Date and time"}},
        )
        token.wait = {"k": "task", "task": task_id}
        return WAIT
    if block.for_ is not None:
        due = step.ctx.now + parse_duration(block.for_)
    elif block.until is not None:
        due = step.to_datetime(step.evaluate(block.until, token), f"delay {token.block} until")
    else:
        raise Incident(f"delay {token.block} has neither for, until nor ask")
    return _wait_until(step, token, due, block.next)


def _wait_until(step: Step, token: Token, due: datetime, target: str | None) -> object:
    if due <= step.ctx.now:
        step.log(token.block, "delay_passed", due=due.isoformat())
        step.move(token, target)
        return None
    token.wait = {"k": "timer", "timer": step.schedule(due)}
    return WAIT


def resume_timer(step: Step, token: Token) -> None:
    block = step.defn.spec.blocks[token.block]
    timer = token.wait.get("timer") if token.wait else None
    step.log(token.block, "timer_fired", timer=timer)
    if isinstance(block, m.WaitForBlock):
        step.subscriptions_dirty = True
        held, _reads = _holds(step, block.until, token)
        step.move(token, block.next if held else block.on_timeout)
    else:
        step.move(token, getattr(block, "next", None))


def _open_task(
    step: Step,
    token: Token,
    *,
    kind: str,
    title: str | None,
    text: str | None,
    assign: str | None,
    options: tuple[str, ...],
    fields: dict[str, Any],
    workflow: dict[str, Any] | None = None,
    waits: bool = True,
) -> str:
    settings = step.settings()
    cached: list[dict[str, Any]] = []

    def scope() -> dict[str, Any]:
        # Built only when a template or an expression needs it (most titles are plain).
        if not cached:
            cached.append(step.scope(token))
        return cached[0]

    def text_of(source: str | None) -> str:
        if not source or "{" not in source:
            return source or ""
        return step.redact(render(source, scope()))

    spec = assign if assign is not None else settings.assign
    answer_by = token.answer.get("by") if token.answer else None
    assignee = resolve_assignee(
        spec,
        overlay=step.overlay,
        object_id=step.state.object_id,
        answer_by=answer_by,
        executors=settings.executors,
        extra_load=step.extra_load,
        scope=scope,
    )
    rendered_title = text_of(title) or token.block
    rendered_text = text_of(text)
    reaction = int(parse_duration(settings.reaction).total_seconds()) if settings.reaction else None
    task_id = step.state.next_id("t")
    if assignee is not None:
        step.extra_load[assignee] = step.extra_load.get(assignee, 0) + 1
    step.emit(
        OpenTask(
            task_id=task_id,
            instance_id=step.state.id,
            process=step.state.process,
            block=token.block,
            kind=kind,
            object_id=step.state.object_id,
            title=rendered_title,
            text=rendered_text,
            assignee=assignee,
            options=options,
            fields=fields,
            workflow=workflow,
            waits=waits,
            priority=settings.priority,
            reaction_s=reaction,
            inbox=settings.inbox,
        )
    )
    step.log(token.block, "task_opened", task=task_id, assignee=assignee, kind=kind)
    return task_id


def _question(step: Step, block: m.QuestionBlock | m.CallBlock, token: Token) -> object:
    text = block.text if isinstance(block, m.QuestionBlock) else block.script
    task_id = _open_task(
        step,
        token,
        kind=block.type,
        title=block.title or block.name,
        text=text,
        assign=block.assign,
        options=tuple(block.options),
        fields=block.fields,
    )
    token.wait = {"k": "task", "task": task_id}
    return WAIT


def _task(step: Step, block: m.TaskBlock, token: Token) -> object:
    workflow = (block.workflow or m.DEFAULT_WORKFLOW).model_dump(by_alias=True)
    task_id = _open_task(
        step,
        token,
        kind="task",
        title=block.title or block.name,
        text=block.text,
        assign=block.assign,
        options=(),
        fields={},
        workflow=workflow,
        waits=block.wait,
    )
    if block.wait:
        token.wait = {"k": "task", "task": task_id}
        return WAIT
    step.move(token, block.next)
    return None


def resume_task(step: Step, token: Token, event: TaskAnswered | TaskFinished) -> None:
    block = step.defn.spec.blocks[token.block]
    token.wait = None
    if isinstance(event, TaskFinished):
        token.answer = {"option": event.status, "fields": {}, "by": event.by}
        step.log(token.block, "task_finished", task=event.task_id, status=event.status)
        step.move(token, getattr(block, "next", None))
        return
    step.log(token.block, "task_answered", task=event.task_id, option=event.option, by=event.by)
    token.answer = {"option": event.option, "fields": dict(event.fields), "by": event.by}
    if isinstance(block, m.DelayBlock):
        at = step.to_datetime(event.fields.get("at"), f"field 'at' of {token.block}")
        _wait_until(step, token, at, block.next)
        return
    if isinstance(block, m.MessageBlock):
        if event.option == "send":
            _send(step, block, token)
        else:
            step.log(token.block, "message_skipped")
        step.move(token, block.next)
        return
    options = getattr(block, "options", {})
    step.move(token, options.get(event.option) if event.option is not None else None)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _counter(step: Step, block: m.CounterBlock, token: Token) -> object:
    name = block.counter
    if block.set is not None:
        value = step.value(block.set, token)
    else:
        delta = step.value(block.add, token)
        if not _is_number(delta):
            raise Incident(f"counter {name}: cannot add {delta!r}: not a number")
        value = (step.state.counters.get(name) or 0) + delta
    if not _is_number(value):
        raise Incident(f"counter {name}: {value!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise Incident(f"counter {name}: {value!r} is not a finite number")
    step.state.counters[name] = value
    step.log(token.block, "counter", counter=name, value=value)
    step.move(token, block.next)
    return None


def _message(step: Step, block: m.MessageBlock, token: Token) -> object:
    if block.confirm:
        task_id = _open_task(
            step,
            token,
            kind="confirm",
            title=block.title or block.name or "Send the message?",
            text=_preview(step, block, token),
            assign=block.assign,
            options=("send", "skip"),
            fields={},
        )
        token.wait = {"k": "task", "task": task_id}
        return WAIT
    _send(step, block, token)
    step.move(token, block.next)
    return None


def _content(step: Step, block: m.MessageBlock) -> tuple[str, str | None, str | None]:
    channel: str | None = block.channel
    subject, body = block.subject, block.body
    if block.template:
        tpl = step.world.template(block.template)
        if tpl is None:
            raise Incident(f"template {block.template!r} does not exist")
        channel = channel or tpl.channel
        subject = subject if subject is not None else tpl.subject
        body = body if body is not None else tpl.body
    return channel or "email", subject, body


def _preview(step: Step, block: m.MessageBlock, token: Token) -> str:
    _channel, subject, body = _content(step, block)
    scope = step.scope(token)
    return f"{render(subject, scope)}\n\n{render(body, scope)}".strip()


def _reply_task(step: Step, block: m.MessageBlock) -> str | None:
    """The task of block ``reply_to_task`` in this instance: opened earlier in this step (a
    task block right before the message), else the one a token still waits on there."""
    name = block.reply_to_task
    if name is None:
        return None
    for cmd in reversed(step.commands):
        if isinstance(cmd, OpenTask) and cmd.block == name:
            return cmd.task_id
    for tok in step.state.tokens:
        if tok.block == name and tok.wait and tok.wait.get("k") == "task":
            return str(tok.wait["task"])
    raise Incident(f"reply_to_task: block {name!r} has no open task in this instance")


def _send(step: Step, block: m.MessageBlock, token: Token) -> None:
    channel, subject, body = _content(step, block)
    base = step.scope(token)
    people = recipients(
        block.to,
        overlay=step.overlay,
        object_id=step.state.object_id,
        channel=channel,
        scope=lambda: base,
    )
    task_id = _reply_task(step, block) if any(a for _u, a in people) else None
    if task_id is not None and step.ctx.task_links is not None:
        # a URL the server made, printed as it is (like form_link)
        base = {**base, "task_link": Markup(step.ctx.task_links(task_id))}
    rendered = []
    for user_id, address in people:
        if address is None:
            step.log(token.block, "message_no_address", user=user_id, channel=channel)
            continue
        scope = {**base, "recipient": step.overlay.proxy(user_id)}
        # An email's body becomes HTML: its values are Markdown-escaped (model/markdown.py).
        text = render_markdown(body, scope) if channel == "email" else render(body, scope)
        rendered.append((user_id, address, render(subject, scope), text))
    for user_id, address, subj, text in rendered:
        mid = step.state.next_id("m")
        step.emit(
            SendMessage(
                mid, step.state.id, token.block, channel, address, user_id, subj, text, task_id
            )
        )
        step.log(token.block, "message_sent", message=mid, to=address, subject=step.redact(subj))


HANDLERS: dict[str, Handler] = {
    "start": _start,
    "end": _end,
    "fork": _fork,
    "join": _join,
    "condition": _condition,
    "wait_for": _wait_for,
    "delay": _delay,
    "question": _question,
    "call": _question,
    "task": _task,
    "operation": operation,
    "counter": _counter,
    "message": _message,
    "subprocess": subprocess,
    "for_each": for_each,
}
