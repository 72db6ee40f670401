"""The process file (FORMATS.md "Process file") as pydantic models.

These models are the parse step and the published JSON Schema; unknown keys are errors.
Semantic checks (exits, reachability, names in scope) live in :mod:`flowlane.model.validate`.
Block ids map to blocks; every block has a ``type`` and may have ``name`` and ``note``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flowlane.model.segment import Filter

Exit = str | None
Priority = Literal["low", "normal", "high", "urgent"]
Outcome = Literal["positive", "neutral", "negative"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class TaskSettings(_Strict):
    """Settings of the instance itself: its title, default assignee, who may work on it."""

    title: str | None = None
    assign: str | None = None
    executors: list[str] = Field(default_factory=list)
    supervisors: list[str] = Field(default_factory=list)
    priority: Priority = "normal"
    reaction: str | None = None
    inbox: bool = True


class LaunchSettings(_Strict):
    """How objects enter the process. ``stage`` and ``event`` go only with their ``on``."""

    on: Literal["manual", "once", "periodic", "create", "update", "stage", "event"] = "manual"
    every: str | None = None
    from_: datetime | None = Field(default=None, alias="from")
    """Periodic checks begin at this moment (ISO 8601; without an offset: account zone)."""
    until: datetime | None = None
    """Periodic checks end at this moment; none is made after it."""
    entry: str | None = None
    where: Filter | None = None
    """A structured filter (or an expression) objects must match, besides ``entry``."""
    repeat: bool = False
    approval: bool = False
    stage: str | None = None
    event: str | None = None


class _Block(_Strict):
    name: str | None = None
    note: str | None = None


class StartBlock(_Block):
    type: Literal["start"]
    next: Exit = None


class EndBlock(_Block):
    type: Literal["end"]
    outcome: Outcome = "neutral"
    result: str | None = None


class ForkBlock(_Block):
    type: Literal["fork"]
    next: list[Exit] = Field(default_factory=list)


class JoinBlock(_Block):
    type: Literal["join"]
    next: Exit = None


class Branch(_Strict):
    if_: str = Field(alias="if")
    next: Exit = None


class ConditionBlock(_Block):
    type: Literal["condition"]
    branches: list[Branch] = Field(default_factory=list)
    else_: Exit = Field(default=None, alias="else")


class WaitForBlock(_Block):
    type: Literal["wait_for"]
    until: str
    timeout: str | None = None
    next: Exit = None
    on_timeout: Exit = None


class AskSpec(_Strict):
    title: str | None = None
    text: str | None = None
    assign: str | None = None


class DelayBlock(_Block):
    type: Literal["delay"]
    for_: str | None = Field(default=None, alias="for")
    until: str | None = None
    ask: AskSpec | None = None
    next: Exit = None


class QuestionBlock(_Block):
    type: Literal["question"]
    title: str | None = None
    text: str | None = None
    assign: str | None = None
    fields: dict[str, dict[str, Any]] = Field(default_factory=dict)
    options: dict[str, Exit] = Field(default_factory=dict)


class CallBlock(_Block):
    type: Literal["call"]
    title: str | None = None
    script: str | None = None
    assign: str | None = None
    fields: dict[str, dict[str, Any]] = Field(default_factory=dict)
    options: dict[str, Exit] = Field(default_factory=dict)


class Transition(_Strict):
    from_: str | list[str] = Field(alias="from")
    to: str
    by: str | list[str] = "assignee"
    comment: Literal["required", "optional"] = "optional"


class Workflow(_Strict):
    """A task's status workflow: statuses, the initial one, finals and allowed transitions."""

    statuses: list[str]
    initial: str | None = None
    final: list[str] = Field(default_factory=list)
    transitions: list[Transition] = Field(default_factory=list)


DEFAULT_WORKFLOW = Workflow(
    statuses=["open", "done"],
    initial="open",
    final=["done"],
    transitions=[Transition.model_validate({"from": "open", "to": "done", "by": "assignee"})],
)


class TaskBlock(_Block):
    type: Literal["task"]
    title: str | None = None
    text: str | None = None
    assign: str | None = None
    workflow: Workflow | None = None
    wait: bool = False
    next: Exit = None


class CreateSpec(_Strict):
    type: str
    data: dict[str, Any] = Field(default_factory=dict)
    as_: str | None = Field(default=None, alias="as")


class PasswordSpec(_Strict):
    as_: str = Field(alias="as")
    length: int = Field(default=10, ge=6, le=64)


class OperationBlock(_Block):
    type: Literal["operation"]
    set: dict[str, Any] = Field(default_factory=dict)
    stage: str | None = None
    reason: str | None = Field(
        default=None,
        description=(
            "With 'stage': why the object is moved (a template). When a process launched on a "
            "stage sends the object back (a guard), this is the reason the refused move shows."
        ),
    )
    add_to_group: str | list[str] | None = None
    remove_from_group: str | list[str] | None = None
    create: CreateSpec | None = None
    generate_password: PasswordSpec | None = None
    next: Exit = None


class CounterBlock(_Block):
    type: Literal["counter"]
    counter: str
    set: float | int | str | None = None
    add: float | int | str | None = None
    next: Exit = None


class MessageBlock(_Block):
    type: Literal["message"]
    channel: Literal["email", "inapp", "webhook"] | None = None
    to: str | list[str] = "client"
    template: str | None = None
    subject: str | None = None
    body: str | None = None
    confirm: bool = False
    title: str | None = None
    assign: str | None = None
    reply_to_task: str | None = Field(
        default=None,
        description=(
            "The id of a task block of this process: an email's reply address then names "
            "that block's task in this instance, and a reply lands as a comment on it."
        ),
    )
    next: Exit = None


class SubprocessBlock(_Block):
    type: Literal["subprocess"]
    process: str
    vars: dict[str, Any] = Field(default_factory=dict)
    exits: dict[str, Exit] = Field(default_factory=dict)
    next: Exit = None


class QuerySpec(_Strict):
    type: str
    where: str | None = None


class ForEachBlock(_Block):
    type: Literal["for_each"]
    query: QuerySpec
    process: str
    vars: dict[str, Any] = Field(default_factory=dict)
    wait: Literal["all", "none"] = "all"
    next: Exit = None


Block = Annotated[
    StartBlock
    | EndBlock
    | ForkBlock
    | JoinBlock
    | ConditionBlock
    | WaitForBlock
    | DelayBlock
    | QuestionBlock
    | CallBlock
    | TaskBlock
    | OperationBlock
    | CounterBlock
    | MessageBlock
    | SubprocessBlock
    | ForEachBlock,
    Field(discriminator="type"),
]

BLOCK_TYPES: tuple[str, ...] = tuple(
    get_args(model.model_fields["type"].annotation)[0] for model in get_args(get_args(Block)[0])
)
"""Every block ``type`` in table order, derived from the ``Block`` union."""

WAITING_TYPES = frozenset(
    {"wait_for", "delay", "question", "call", "subprocess", "for_each", "join"}
)
"""Blocks where a token may come to wait (a ``task`` with ``wait: true`` and a ``message``
with ``confirm: true`` wait too; see :func:`block_waits`)."""


def block_waits(block: BaseModel) -> bool:
    """Whether a token entering this block may stop there and wait for an event."""
    t = getattr(block, "type", "")
    if t in WAITING_TYPES:
        return t != "for_each" or getattr(block, "wait", "all") == "all"
    if t == "task":
        return bool(getattr(block, "wait", False))
    if t == "message":
        return bool(getattr(block, "confirm", False))
    return False


class BpmnTask(_Strict):
    """How one user / manual task of a standard BPMN process becomes a flowlane task."""

    title: str | None = None
    text: str | None = None
    assign: str | None = None
    options: list[str] = Field(default_factory=list)
    fields: dict[str, dict[str, Any]] = Field(default_factory=dict)


class BpmnSource(_Strict):
    """A process that is a standard BPMN diagram (ADR 0012 "Hosting"), run by the BPMN
    interpreter instead of blocks. ``file`` names the diagram next to the process file;
    the recipe loader reads it (and ``also``: called processes; ``decisions``: DMN files for
    business rule tasks) into ``documents`` (file name -> XML text), which every deployed
    version stores, so a version never changes. A document named ``*.dmn`` is DMN."""

    file: str | None = None
    also: list[str] = Field(default_factory=list)
    decisions: list[str] = Field(default_factory=list)
    process: str | None = None
    task_mode: Literal["wait", "pass"] = "wait"
    expressions: str = "python"
    parallel_join: Literal["strict", "reachable"] = "strict"
    tasks: dict[str, BpmnTask] = Field(default_factory=dict)
    documents: dict[str, str] = Field(default_factory=dict)


class ProcessFile(_Strict):
    """A process file: key, name, object type, settings, variables, counters and blocks
    (or, instead of blocks, ``bpmn``: a standard BPMN diagram)."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    description: str | None = None
    object: str
    draft: bool = False
    template: bool = False
    tags: list[str] = Field(default_factory=list)
    loop_limit: int = Field(default=1000, ge=1)
    task: TaskSettings | None = None
    launch: LaunchSettings | None = None
    variables: dict[str, dict[str, Any]] = Field(default_factory=dict)
    counters: list[str] = Field(default_factory=list)
    bpmn: BpmnSource | None = None
    blocks: dict[str, Block]

    @model_validator(mode="before")
    @classmethod
    def _bpmn_has_no_blocks(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("bpmn") is not None and "blocks" not in data:
            return {**data, "blocks": {}}
        return data


def exits_of(block: BaseModel) -> list[tuple[str, str | None]]:
    """Every exit of a block as ``(label, target)``; ``target`` None is an empty exit."""
    t = getattr(block, "type", "")
    if isinstance(block, ForkBlock):
        return [(f"next[{i}]", n) for i, n in enumerate(block.next)]
    if isinstance(block, ConditionBlock):
        out = [(f"branches[{i}]", b.next) for i, b in enumerate(block.branches)]
        return [*out, ("else", block.else_)]
    if isinstance(block, WaitForBlock):
        pairs = [("next", block.next)]
        return [*pairs, ("on_timeout", block.on_timeout)] if block.timeout else pairs
    if isinstance(block, QuestionBlock | CallBlock):
        return [(f"options.{k}", v) for k, v in block.options.items()]
    if isinstance(block, SubprocessBlock):
        if block.exits:
            return [(f"exits.{k}", v) for k, v in block.exits.items()]
        return [("next", block.next)]
    if t == "end":
        return []
    return [("next", getattr(block, "next", None))]
