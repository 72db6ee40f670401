"""The working state of one :func:`flowlane.engine.decide` call, shared by block handlers."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime, time
from typing import Any

from flowlane.core.errors import FlowlaneError
from flowlane.engine.context import Ctx, Overlay, World, object_id_of
from flowlane.engine.events import (
    CancelChild,
    CancelTimer,
    CloseTask,
    Command,
    NotifyParent,
    ScheduleTimer,
    Subscribe,
    TraceEntry,
)
from flowlane.engine.state import InstanceState, Token
from flowlane.expr import compile_expression
from flowlane.model.definition import Definition
from flowlane.model.process import TaskSettings

NO_SETTINGS = TaskSettings()
"""The settings of a process without ``task:`` whose parents have none either."""


def effective_settings(definition: Definition, state: InstanceState, world: World) -> TaskSettings:
    """This process's ``task:`` settings, else those of the process that started it.

    The child's start records which process's settings govern it (``parent["settings"]``),
    so the rule holds down any depth of sub-processes.
    """
    if definition.spec.task is not None:
        return definition.spec.task
    inherited = (state.parent or {}).get("settings")
    if inherited:
        parent = world.definition(inherited)
        if parent is not None and parent.spec.task is not None:
            return parent.spec.task
    return NO_SETTINGS


WAIT = object()
"""Returned by a block handler when its token has come to wait."""


class Incident(FlowlaneError):
    """A block cannot go on; the instance stops with this text until retried."""

    code = "incident"


class Step:
    """The working state of one :func:`decide` call."""

    def __init__(self, definition: Definition, state: InstanceState, ctx: Ctx) -> None:
        self.defn = definition
        self.state = state
        self.ctx = ctx
        self.world = ctx.world
        self.overlay = Overlay(ctx.world)
        self._local_now: datetime | None = None
        self.commands: list[Command] = []
        self.trace: list[TraceEntry] = []
        self.transient: dict[str, Any] = {}
        self.queue: list[Token] = []
        self.executed: list[str] = []
        self.dropped: set[int] = set()
        self.extra_load: dict[str, int] = {}
        self.ended = False
        self.subscriptions_dirty = False

    # ---- helpers used by block handlers ----------------------------------------------

    def redact(self, text: str) -> str:
        """Replace values that live only for this step (generated passwords) with ***."""
        for value in self.transient.values():
            if isinstance(value, str) and value:
                text = text.replace(value, "***")
        return text

    def log(self, block: str | None, event: str, **details: Any) -> None:
        self.trace.append(TraceEntry(self.state.id, self.state.process, block, event, details))

    def emit(self, command: Command) -> None:
        self.commands.append(command)

    def local_now(self) -> datetime:
        """The event's time in the account's zone (what expressions see as ``now``)."""
        if self._local_now is None:
            self._local_now = self.ctx.now.astimezone(self.world.tz)
        return self._local_now

    def settings(self) -> TaskSettings:
        return effective_settings(self.defn, self.state, self.world)

    def scope(self, token: Token | None = None) -> dict[str, Any]:
        """Names in scope for expressions and templates."""
        vars_ = self.state.vars
        if self.transient:
            vars_ = {**vars_, **self.transient}
        answer = None
        if token is not None and token.answer is not None:
            a = token.answer
            answer = {
                "option": a.get("option"),
                "fields": a.get("fields") or {},
                "by": self.overlay.proxy(a.get("by")),
            }
        return {
            "object": self.overlay.proxy(self.state.object_id),
            "vars": vars_,
            "counters": self.state.counters,
            "answer": answer,
            "now": self.local_now(),
            "form_link": self.form_link,
        }

    def form_link(self, form: Any, target: Any = None) -> str:
        """``{{ form_link('review-sales') }}`` in a template: a signed link to that form for
        the instance's object (or the object ``target`` names), issued at the step's time."""
        if self.ctx.links is None:
            raise Incident("form_link: signed links cannot be made here")
        object_id = object_id_of(target) if target is not None else self.state.object_id
        if not object_id:
            raise Incident(f"form_link({form!r}): there is no object to link to")
        return self.ctx.links(object_id, str(form), self.ctx.now)

    def evaluate(self, source: str, token: Token | None) -> Any:
        return compile_expression(source).evaluate(self.scope(token))

    def value(self, raw: Any, token: Token | None) -> Any:
        """A parameter value: ``"=expr"`` is evaluated, anything else is a literal."""
        if isinstance(raw, str) and raw.startswith("="):
            return self.evaluate(raw[1:], token)
        if isinstance(raw, dict):
            return {k: self.value(v, token) for k, v in raw.items()}
        if isinstance(raw, list):
            return [self.value(v, token) for v in raw]
        return raw

    def schedule(self, due_at: datetime) -> str:
        timer_id = self.state.next_id("j")
        self.emit(ScheduleTimer(timer_id, self.state.id, due_at))
        return timer_id

    def derived_secret(self, label: str, length: int) -> str:
        """A password derived from the account secret and this instance's next id."""
        alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        digest = hmac.new(
            self.world.secret, self.state.next_id(label).encode(), hashlib.sha256
        ).digest()
        return "".join(alphabet[b % len(alphabet)] for b in digest[:length])

    def to_datetime(self, value: Any, what: str) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=self.world.tz)
        if isinstance(value, date):
            return datetime.combine(value, time(0), tzinfo=self.world.tz)
        if isinstance(value, str):
            try:
                return self.to_datetime(datetime.fromisoformat(value), what)
            except ValueError:
                pass
        raise Incident(f"{what} is not a date-time: {value!r}")

    # ---- token movement ----------------------------------------------------------------

    def spawn(self, block: str | None, *, came_from: str | None, answer: Any) -> None:
        if block is None:
            self.log(came_from, "branch_ended")
            return
        self.state.seq += 1
        tok = Token(self.state.seq, block, came_from, None, answer)
        self.state.tokens.append(tok)
        self.queue.append(tok)

    def move(self, token: Token, target: str | None) -> None:
        """Send ``token`` along an exit; ``None`` ends this branch only."""
        if target is None:
            self.log(token.block, "branch_ended")
            self.drop(token)
            return
        token.came_from = token.block
        token.block = target
        token.wait = None
        self.queue.append(token)

    def drop(self, token: Token) -> None:
        self.dropped.add(token.id)
        tokens = self.state.tokens
        for i, t in enumerate(tokens):
            if t is token:
                del tokens[i]
                return

    # ---- ending --------------------------------------------------------------------------

    def release(self, token: Token) -> None:
        """Cancel what a waiting token holds: its timer, its task, its children."""
        w = token.wait or {}
        if w.get("timer"):
            self.emit(CancelTimer(w["timer"]))
        if w.get("task"):
            self.emit(CloseTask(w["task"]))
        for child in [*w.get("children", []), *([w["child"]] if w.get("child") else [])]:
            if child in self.state.children:
                self.emit(CancelChild(child))
                self.state.children.remove(child)
        if w.get("k") == "cond":
            self.subscriptions_dirty = True

    def finish(
        self, status: str, outcome: str | None, result: str | None, *, terminate: bool = True
    ) -> None:
        """End the instance. ``terminate`` (an ``end`` block, a cancel) also cancels its
        running children; an instance that simply ran out of tokens leaves the children of a
        ``for_each`` with ``wait: none`` running."""
        for tok in list(self.state.tokens):
            self.release(tok)
        if terminate:
            for child in self.state.children:
                self.emit(CancelChild(child))
            self.state.children = []
        self.state.tokens = []
        self.queue.clear()
        self.state.status = status
        self.state.outcome = outcome
        self.state.result = result
        self.state.ended_at = self.ctx.now
        self.ended = True
        self.log(None, "instance_" + status, outcome=outcome, result=result)
        parent = self.state.parent
        if parent and status == "ended":
            self.emit(NotifyParent(parent["id"], self.state.id, outcome, result))

    def finish_if_empty(self) -> None:
        if not self.ended and self.state.status == "running" and not self.state.tokens:
            self.finish("ended", "neutral", None, terminate=False)

    def sync_subscriptions(self) -> None:
        if not self.subscriptions_dirty:
            return
        ids: set[str] = set()
        for tok in self.state.tokens:
            if tok.wait and tok.wait.get("k") == "cond":
                ids.update(tok.wait.get("objs", []))
        self.emit(Subscribe(self.state.id, tuple(sorted(ids))))
