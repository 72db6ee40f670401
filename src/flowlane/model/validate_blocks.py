"""The parameter checks of each block type (FORMATS.md, the block table).

:data:`BLOCK_CHECKS` maps a block class to its checks; :func:`check_block` runs them and the
checks every block shares: its ``"=expr"`` values. Each check is ``check(ck, block_id, block)``
and reports through the :class:`~flowlane.model.validate_names.Checker`.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from pydantic import BaseModel

from flowlane.expr import is_expression_literal
from flowlane.model import process as m
from flowlane.model.validate_names import (
    Checker,
    check_assign,
    check_data,
    check_duration,
    check_expression,
    check_fields,
    check_groups,
    check_stage,
    check_template,
    check_template_paths,
    check_values,
    resolve_type,
    unknown_counter,
)

Check = Callable[..., None]

# Parameters not walked for "=expr" values: templates, field specs, workflows, and those
# with checks of their own (always-expressions, assignments, the nested task of a delay).
_NOT_VALUES = frozenset(
    {
        "type",
        "name",
        "note",
        "title",
        "text",
        "script",
        "subject",
        "body",
        "fields",
        "workflow",
        "assign",
        "ask",
        "branches",
        "until",
        "query",
        "reason",
    }
)
_TEMPLATES = ("title", "text", "script", "subject", "body")
_OPERATION_PARTS = (
    "set",
    "stage",
    "add_to_group",
    "remove_from_group",
    "create",
    "generate_password",
)


def check_block(ck: Checker, bid: str, block: BaseModel) -> None:
    """Every check of one block."""
    for check in BLOCK_CHECKS.get(type(block), ()):
        check(ck, bid, block)
    params = block.model_dump(by_alias=True, exclude=set(_NOT_VALUES))
    for key, value in params.items():
        check_values(ck, bid, key, value, otype=ck.otype)


def _texts(ck: Checker, bid: str, block: BaseModel) -> None:
    for param in _TEMPLATES:
        check_template(ck, bid, param, getattr(block, param, None))
    check_assign(ck, bid, "assign", getattr(block, "assign", None))
    check_fields(ck, bid, "fields", getattr(block, "fields", None) or {})


def _fork(ck: Checker, bid: str, block: m.ForkBlock) -> None:
    if not block.next:
        ck.error(bid, "fork needs 'next': a list of blocks")


def _condition(ck: Checker, bid: str, block: m.ConditionBlock) -> None:
    if not block.branches:
        ck.error(bid, "condition needs at least one branch in 'branches'")
    for index, branch in enumerate(block.branches):
        check_expression(ck, bid, f"branches[{index}].if", branch.if_, otype=ck.otype)


def _wait_for(ck: Checker, bid: str, block: m.WaitForBlock) -> None:
    check_expression(ck, bid, "until", block.until, otype=ck.otype)
    check_duration(ck, bid, "timeout", block.timeout)
    if block.on_timeout is not None and block.timeout is None:
        ck.error(bid, "'on_timeout' needs 'timeout'")


def _delay(ck: Checker, bid: str, block: m.DelayBlock) -> None:
    given = [p for p, v in (("for", block.for_), ("until", block.until), ("ask", block.ask)) if v]
    if not given:
        ck.error(bid, "delay needs one of 'for', 'until' or 'ask'")
    elif len(given) > 1:
        both = " and ".join(f"'{p}'" for p in given)
        ck.error(bid, f"delay takes only one of 'for', 'until' or 'ask', not {both}")
    check_duration(ck, bid, "for", block.for_)
    if block.until is not None:
        check_expression(ck, bid, "until", block.until, otype=ck.otype)
    if block.ask is not None:
        check_template(ck, bid, "ask.title", block.ask.title)
        check_template(ck, bid, "ask.text", block.ask.text)
        check_assign(ck, bid, "ask.assign", block.ask.assign)


def _options(ck: Checker, bid: str, block: m.QuestionBlock | m.CallBlock) -> None:
    if not block.options:
        ck.error(bid, f"{block.type} needs 'options'")


def _workflow(ck: Checker, bid: str, block: m.TaskBlock) -> None:
    flow = block.workflow
    if flow is None:
        return
    named: list[tuple[str, str]] = [("initial", flow.initial)] if flow.initial else []
    named += [("final", s) for s in flow.final]
    for i, t in enumerate(flow.transitions):
        sources = [t.from_] if isinstance(t.from_, str) else t.from_
        named += [(f"transitions[{i}].from", s) for s in sources]
        named.append((f"transitions[{i}].to", t.to))
    for where, status in named:
        if status not in flow.statuses:
            known = ", ".join(flow.statuses)
            ck.error(bid, f"workflow.{where}: status '{status}' is not among statuses ({known})")
    if not flow.final:
        ck.error(bid, "workflow needs at least one 'final' status")


def _operation(ck: Checker, bid: str, block: m.OperationBlock) -> None:
    if not any(getattr(block, part) for part in _OPERATION_PARTS):
        parts = ", ".join(f"'{p}'" for p in _OPERATION_PARTS)
        ck.error(bid, f"operation does nothing: give one of {parts}")
    check_data(ck, bid, "set", block.set, ck.otype)
    if block.stage is not None and not is_expression_literal(block.stage) and ck.otype:
        check_stage(ck, bid, "stage", block.stage, ck.otype)
    if block.reason is not None:
        if block.stage is None:
            ck.error(bid, "'reason' goes only with 'stage'")
        check_template(ck, bid, "reason", block.reason)
    check_groups(ck, bid, "add_to_group", block.add_to_group)
    check_groups(ck, bid, "remove_from_group", block.remove_from_group)
    if block.create is not None:
        ctype = resolve_type(ck, bid, "create.type", block.create.type)
        check_data(ck, bid, "create.data", block.create.data, ctype)


def _counter(ck: Checker, bid: str, block: m.CounterBlock) -> None:
    if block.counter not in ck.spec.counters:
        ck.error(bid, unknown_counter(block.counter))
    given = [(p, v) for p, v in (("set", block.set), ("add", block.add)) if v is not None]
    if not given:
        ck.error(bid, "counter needs one of 'set' or 'add'")
    elif len(given) > 1:
        ck.error(bid, "counter takes only one of 'set' or 'add'")
    for param, value in given:
        if isinstance(value, str) and not is_expression_literal(value):
            ck.error(bid, f"{param}: {value!r} is neither a number nor an =expression")


def _message(ck: Checker, bid: str, block: m.MessageBlock) -> None:
    if block.template is None and block.subject is None and block.body is None:
        ck.error(bid, "message needs 'template' or 'subject' and 'body'")
    if block.template is not None:
        _check_template_name(ck, bid, block.template)
        _check_template_fields(ck, bid, block)
    if block.reply_to_task is not None:
        _check_reply_to_task(ck, bid, block)


def _check_template_fields(ck: Checker, bid: str, block: m.MessageBlock) -> None:
    """The fields, variables and counters a recipe template reads, against this process
    (its names, filters and syntax are checked once, with the template's file)."""
    tpl = ck.templates.get(block.template or "") if ck.templates is not None else None
    if tpl is None:
        return
    if block.subject is None:
        check_template_paths(ck, bid, f"template '{tpl.name}' subject", tpl.subject)
    if block.body is None:
        check_template_paths(ck, bid, f"template '{tpl.name}' body", tpl.body)


_TASK_BLOCKS = (m.TaskBlock, m.QuestionBlock, m.CallBlock)


def _check_reply_to_task(ck: Checker, bid: str, block: m.MessageBlock) -> None:
    """``reply_to_task`` names a block of this process that opens a task; email only."""
    name = block.reply_to_task
    target = ck.spec.blocks.get(name) if name is not None else None
    if target is None:
        ck.error(bid, f"reply_to_task: block '{name}' does not exist in this process")
    elif not isinstance(target, _TASK_BLOCKS):
        ck.error(bid, f"reply_to_task: block '{name}' is a {target.type} block, not a task")
    if block.channel not in (None, "email"):
        ck.error(bid, f"reply_to_task: only emails get replies, not channel '{block.channel}'")


_PEOPLE = ("client", "manager")
_PEOPLE_PREFIXES = ("user:", "group:", "role:")


def _webhook_urls(ck: Checker, bid: str, block: m.MessageBlock) -> None:
    """A webhook's literal ``to`` entries are absolute http(s) URLs (people and expressions
    are resolved when the message is sent)."""
    channel: str | None = block.channel
    if channel is None and block.template is not None and ck.templates is not None:
        tpl = ck.templates.get(block.template)
        channel = tpl.channel if tpl is not None else None
    if channel != "webhook":
        return
    for entry in [block.to] if isinstance(block.to, str) else block.to:
        if entry.startswith("=") or entry in _PEOPLE or entry.startswith(_PEOPLE_PREFIXES):
            continue
        try:
            parts = urlsplit(entry)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            ck.error(bid, f"to: {entry!r} is not an http:// or https:// URL (channel webhook)")


def _check_template_name(ck: Checker, bid: str, name: str) -> None:
    if not ck.known(ck.templates):
        ck.warn(bid, f"template: template '{name}' is not checked outside a recipe")
    elif ck.templates is not None and name not in ck.templates:
        ck.error(bid, f"template: template '{name}' does not exist")


def child_process(ck: Checker, bid: str, key: str) -> m.ProcessFile | None:
    """The process a ``subprocess`` or ``for_each`` starts; reports it when unknown."""
    child = ck.processes.get(key) if ck.processes is not None else None
    if child is not None:
        return child
    if ck.known(ck.processes):
        ck.error(bid, f"process: process '{key}' does not exist in the recipe")
    else:
        ck.warn(bid, f"process: process '{key}' is not checked outside a recipe")
    return None


def _same_object(ck: Checker, bid: str, child: m.ProcessFile, object_type: str) -> None:
    if child.object != object_type:
        ck.error(
            bid,
            f"process: '{child.key}' runs on type '{child.object}', "
            f"but this block starts it on type '{object_type}'",
        )


def _subprocess(ck: Checker, bid: str, block: m.SubprocessBlock) -> None:
    if block.exits and block.next is not None:
        ck.warn(bid, "'next' is not used when 'exits' is given")
    child = child_process(ck, bid, block.process)
    if child is None:
        return
    _same_object(ck, bid, child, ck.spec.object)
    if not block.exits:
        return
    results = sorted(
        {b.result for b in child.blocks.values() if isinstance(b, m.EndBlock) and b.result}
    )
    for name in block.exits:
        if name not in results:
            produced = ", ".join(results) or "none"
            ck.error(bid, f"exit 'exits.{name}': '{child.key}' has no result '{name}' ({produced})")
    for name in results:
        if name not in block.exits:
            ck.warn(bid, f"result '{name}' of '{child.key}' has no exit: that branch ends")


def _for_each(ck: Checker, bid: str, block: m.ForEachBlock) -> None:
    qtype = resolve_type(ck, bid, "query.type", block.query.type)
    if block.query.where is not None:
        check_expression(ck, bid, "query.where", block.query.where, otype=qtype)
    child = child_process(ck, bid, block.process)
    if child is not None:
        _same_object(ck, bid, child, block.query.type)


BLOCK_CHECKS: dict[type[BaseModel], tuple[Check, ...]] = {
    m.ForkBlock: (_fork,),
    m.ConditionBlock: (_condition,),
    m.WaitForBlock: (_wait_for,),
    m.DelayBlock: (_delay,),
    m.QuestionBlock: (_options, _texts),
    m.CallBlock: (_options, _texts),
    m.TaskBlock: (_texts, _workflow),
    m.OperationBlock: (_operation,),
    m.CounterBlock: (_counter,),
    m.MessageBlock: (_message, _texts, _webhook_urls),
    m.SubprocessBlock: (_subprocess,),
    m.ForEachBlock: (_for_each,),
}
