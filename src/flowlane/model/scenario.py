"""The scenario file (FORMATS.md "Scenario file") as pydantic models.

A step is a mapping with exactly one key naming it (``repeat`` goes with ``steps``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from flowlane.core.duration import parse_duration
from flowlane.core.errors import DurationError, ExpressionError
from flowlane.expr import compile_expression
from flowlane.model.segment import Filter


def _datetime_text(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date-time: {value!r}") from None
    return value


def _duration_text(value: str) -> str:
    try:
        parse_duration(value)
    except DurationError as exc:
        raise ValueError(str(exc)) from None
    return value


def _expression_text(value: str | None) -> str | None:
    if value is not None:
        try:
            compile_expression(value)
        except ExpressionError as exc:
            raise ValueError(f"invalid expression {value!r}: {exc}") from None
    return value


DateTimeText = Annotated[str, AfterValidator(_datetime_text)]
DurationText = Annotated[str, AfterValidator(_duration_text)]
ExpressionText = Annotated[str | None, AfterValidator(_expression_text)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ObjectFixture(_Strict):
    type: str
    id: str
    data: dict[str, Any] = Field(default_factory=dict)


class StartStep(_Strict):
    process: str
    object: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    by: str | None = None


class MassStartStep(_Strict):
    process: str
    where: Filter | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    by: str | None = None


class CreateStep(_Strict):
    type: str
    id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class UpdateStep(_Strict):
    object: str
    set: dict[str, Any]


class StageStep(_Strict):
    object: str
    to: str
    by: str | None = None


class AdvanceUntil(_Strict):
    until: DateTimeText


class TaskRef(_Strict):
    block: str
    object: str | None = None
    process: str | None = None


class AnswerStep(TaskRef):
    option: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    by: str | None = None


class StatusStep(TaskRef):
    to: str
    by: str | None = None
    comment: str | None = None


class CommentStep(TaskRef):
    by: str | None = None
    text: str


class ClaimStep(TaskRef):
    by: str


class ReassignStep(_Strict):
    process: str
    from_: str | None = Field(default=None, alias="from")
    status: str | None = None
    to: str | None
    by: str | None = None


class ProcessStep(_Strict):
    process: str
    by: str | None = None


class CancelStep(_Strict):
    process: str
    object: str
    by: str | None = None


class DictionaryStep(_Strict):
    key: str
    add: str


class EventStep(_Strict):
    kind: Literal["form", "webhook", "email", "keyword", "message", "signal"]
    key: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class TaskMatch(_Strict):
    block: str | None = None
    object: str | None = None
    assignee: str | None = None
    process: str | None = None
    status: str | None = None


class EndedExpect(_Strict):
    process: str
    object: str | None = None
    outcome: str | None = None
    result: str | None = None


class RunningExpect(_Strict):
    process: str
    object: str | None = None
    waiting_at: str | None = None


class ObjectExpect(_Strict):
    id: str
    fields: dict[str, Any]


class MessageMatch(_Strict):
    to: str | None = None
    subject_contains: str | None = None
    channel: str | None = None


class CountersExpect(_Strict):
    process: str
    object: str | None = None
    values: dict[str, float]


class TasksCreatedExpect(_Strict):
    block: str
    count: int
    process: str | None = None
    object: str | None = None


class IncidentExpect(_Strict):
    process: str
    object: str | None = None
    contains: str | None = None


class StatisticsRow(_Strict):
    """One group of the task statistics; ``assignee`` omitted or null: nobody."""

    assignee: str | None = None
    status: str
    day: date
    count: int = Field(ge=1)


class StatisticsExpect(_Strict):
    """``Account.task_statistics`` of a process as ``by`` sees it (filters optional:
    ``assignee``, null given explicitly meaning unassigned tasks, ``status``, ``object``,
    ``open``, and ``created_from`` inclusive / ``created_to`` exclusive)."""

    process: str
    by: str | None = None
    assignee: str | None = None
    status: str | None = None
    object: str | None = None
    open: bool = False
    created_from: DateTimeText | None = None
    created_to: DateTimeText | None = None
    rows: list[StatisticsRow] | None = None
    total: int | None = Field(default=None, ge=0)


class Expect(_Strict):
    open_tasks: list[TaskMatch] | None = None
    ended: EndedExpect | None = None
    running: RunningExpect | None = None
    object: ObjectExpect | None = None
    messages: list[MessageMatch] | None = None
    message_count: int | None = None
    notifications: list[MessageMatch] | None = None
    counters: CountersExpect | None = None
    tasks_created: TasksCreatedExpect | None = None
    incident: IncidentExpect | None = None
    statistics: StatisticsExpect | None = None
    refused: bool | str | None = None


STEP_MODELS: dict[str, Any] = {
    "start": StartStep,
    "mass_start": MassStartStep,
    "create": CreateStep,
    "update": UpdateStep,
    "stage": StageStep,
    "advance": str | AdvanceUntil,
    "answer": AnswerStep,
    "status": StatusStep,
    "comment": CommentStep,
    "claim": ClaimStep,
    "unclaim": ClaimStep,
    "reassign": ReassignStep,
    "approve": ProcessStep,
    "restart": ProcessStep,
    "stop": ProcessStep,
    "activate": ProcessStep,
    "cancel": CancelStep,
    "dictionary": DictionaryStep,
    "event": EventStep,
    "expect": Expect,
}


class Step(_Strict):
    """One step: exactly one of the step keys (``repeat`` with ``steps``)."""

    start: StartStep | None = None
    mass_start: MassStartStep | None = None
    create: CreateStep | None = None
    update: UpdateStep | None = None
    stage: StageStep | None = None
    advance: DurationText | AdvanceUntil | None = None
    answer: AnswerStep | None = None
    status: StatusStep | None = None
    comment: CommentStep | None = None
    claim: ClaimStep | None = None
    unclaim: ClaimStep | None = None
    reassign: ReassignStep | None = None
    approve: ProcessStep | None = None
    restart: ProcessStep | None = None
    stop: ProcessStep | None = None
    activate: ProcessStep | None = None
    cancel: CancelStep | None = None
    dictionary: DictionaryStep | None = None
    event: EventStep | None = None
    expect: Expect | None = None
    repeat: int | None = Field(default=None, ge=0, le=10000)
    steps: list[Step] | None = None

    @model_validator(mode="after")
    def _one_key(self) -> Step:
        given = [k for k in STEP_MODELS if getattr(self, k) is not None]
        if self.repeat is not None or self.steps is not None:
            if self.repeat is None or self.steps is None or given:
                raise ValueError("'repeat' goes with 'steps' and nothing else")
            return self
        if len(given) != 1:
            names = ", ".join(given) if given else "none"
            raise ValueError(f"a step has exactly one of {', '.join(STEP_MODELS)} (found: {names})")
        return self

    @property
    def kind(self) -> str:
        if self.repeat is not None:
            return "repeat"
        return next(k for k in STEP_MODELS if getattr(self, k) is not None)


class ScenarioFile(_Strict):
    name: str
    description: str | None = None
    clock: DateTimeText
    timezone: str | None = None
    objects: list[ObjectFixture] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
