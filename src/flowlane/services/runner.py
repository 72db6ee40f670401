"""Applying events to instances and their commands to the store, to quiescence.

:class:`Runner` is the one place that calls :func:`flowlane.engine.decide`. It applies a
decision's commands in order (an object change lands before a child start that follows it),
records the trace, and queues what the step set off: children to start, parents to notify,
instances waiting on changed objects (found by the subscription index), launches. Each
queued item is a step of its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from flowlane.core.errors import FlowlaneError
from flowlane.engine import Ctx, InstanceState, decide
from flowlane.engine import events as ev
from flowlane.engine.bpmn_host import subscription_key
from flowlane.engine.context import LinkMaker, ObjectRecord, TaskLinkMaker
from flowlane.engine.events import Decision, Event
from flowlane.engine.interpreter import PARENT_ENDED
from flowlane.model.definition import Definition
from flowlane.services.passwords import hash_passwords
from flowlane.store.base import Store
from flowlane.store.records import TASK_OPEN, IncidentRecord, MessageRecord, TaskRecord, TimerRecord

TraceSink = Callable[[dict[str, Any]], None]

MAX_CASCADE = 100_000
"""Steps one request may set off before it is taken for a runaway."""


@dataclass(frozen=True, slots=True)
class StageMove:
    """A stage move an instance made (an ``operation`` with ``stage``), with its reason."""

    object_id: str
    from_stage: Any
    to_stage: Any
    instance_id: str
    process: str
    block: str | None
    reason: str | None


@dataclass
class Runner:
    """Runs steps against a :class:`Store` with an explicit, injected ``now``."""

    store: Store
    now: datetime
    sink: TraceSink | None = None
    on_object_created: Callable[[str], None] | None = None
    on_object_changed: Callable[[str, dict[str, Any], dict[str, Any]], None] | None = None
    max_cascade: ClassVar[int] = MAX_CASCADE
    recorder: Callable[[Definition, InstanceState, Event, datetime, Decision], None] | None = None
    queue: deque[tuple[str, Event]] = field(default_factory=deque)
    _stamp: tuple[datetime | None, str] = (None, "")
    fire_due_timers: bool = True
    """Whether :meth:`run` fires due timers itself (the simulator); workers claim them instead."""
    links: LinkMaker | None = None
    """What ``form_link(...)`` in message templates calls (see :mod:`flowlane.services.links`)."""
    task_links: TaskLinkMaker | None = None
    """What makes ``{{ task_link }}`` in emails with ``reply_to_task`` (the task's page)."""
    stage_moves: list[StageMove] | None = None
    """While not None, the stage moves instances make are noted here (see
    :meth:`flowlane.services.account.Account.move_stage`, which tells a guard from it)."""

    # ---- trace ---------------------------------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        if self.now is not self._stamp[0]:  # a step writes many lines at one time
            self._stamp = (self.now, self.now.isoformat())
        line = {"time": self._stamp[1], **entry}
        self.store.add_history(line)
        if self.sink is not None:
            self.sink(line)

    # ---- steps ---------------------------------------------------------------------------

    def start_instance(
        self,
        process: str,
        object_id: str | None,
        vars_: dict[str, Any],
        *,
        parent: dict[str, Any] | None = None,
        instance_id: str | None = None,
    ) -> str:
        definition = self.store.definition(process)
        assert definition is not None, process
        iid = instance_id or self.store.new_instance_id()
        self.store.put_instance(
            InstanceState(
                id=iid,
                process=process,
                version=definition.version,
                object_id=object_id,
                parent=parent,
            )
        )
        if object_id is not None:
            self.store.mark_entered(process, object_id)
        self.queue.append((iid, ev.InstanceStarted(vars_)))
        return iid

    def deliver(self, instance_id: str, event: Event) -> None:
        self.queue.append((instance_id, event))

    def run(self) -> None:
        """Run queued steps, then due timers, until nothing is left at ``now``.

        A cascade that never comes to rest (e.g. an update launch that updates its own object
        with ``repeat: true``) is stopped after ``MAX_CASCADE`` steps with an error; the
        request that set it off is then undone as a whole.
        """
        steps = 0
        while True:
            while self.queue:
                iid, event = self.queue.popleft()
                self.step(iid, event)
                steps += 1
                if steps > self.max_cascade:
                    self.queue.clear()
                    raise FlowlaneError(
                        f"more than {self.max_cascade} steps without coming to rest: "
                        "a launch or wake-up keeps setting itself off"
                    )
            if not self.fire_due_timers:
                return
            timer = self.store.next_timer(self.now)
            if timer is None:
                return
            self.fire(timer)

    def fire(self, timer: TimerRecord) -> None:
        self.store.cancel_timer(timer.id)  # it fired: gone, in this step's transaction
        if timer.kind == "periodic" and self.on_periodic is not None:
            self.on_periodic(timer)
        elif timer.instance_id is not None:
            self.queue.append((timer.instance_id, ev.TimerFired(timer.id)))

    on_periodic: Callable[[TimerRecord], None] | None = None

    def step(self, instance_id: str, event: Event) -> None:
        state = self.store.get_instance(instance_id)
        if state is None:
            return
        definition = self.store.version(state.process, state.version)
        decision = decide(
            definition, state, event, Ctx(self.now, self.store, self.links, self.task_links)
        )
        if self.recorder is not None:
            self.recorder(definition, state, event, self.now, decision)
        self.store.put_instance(decision.state)
        for entry in decision.trace:
            self.record(
                {
                    "instance": entry.instance_id,
                    "process": entry.process,
                    "block": entry.block,
                    "event": entry.event,
                    "details": entry.details,
                }
            )
        changed: dict[str, dict[str, Any]] = {}
        for command in decision.commands:
            self.apply(command, decision.state, changed)
        if self.stage_moves is not None:
            self._note_stage_moves(definition, decision, changed)
        for oid, before in changed.items():
            self.object_changed(oid, before)

    def _note_stage_moves(
        self, definition: Definition, decision: Decision, changed: dict[str, dict[str, Any]]
    ) -> None:
        """Note the stage moves of this step, each with the operation that made it and its
        reason (its ``reason``, else its ``name``)."""
        assert self.stage_moves is not None
        for oid, before in changed.items():
            rec = self.store.get_object(oid)
            if rec is None or rec.data.get("stage") == before.get("stage"):
                continue
            # The operation that made the move (the last that set the stage) says why.
            entry = next(
                (
                    e
                    for e in reversed(decision.trace)
                    if e.event == "object_updated"
                    and e.details.get("object") == oid
                    and "stage" in e.details
                ),
                None,
            )
            reason = entry.details.get("reason") if entry else None
            if entry is not None and reason is None and entry.block in definition.spec.blocks:
                reason = definition.spec.blocks[entry.block].name
            self.stage_moves.append(
                StageMove(
                    oid,
                    before.get("stage"),
                    rec.data.get("stage"),
                    decision.state.id,
                    decision.state.process,
                    entry.block if entry else None,
                    reason,
                )
            )

    def object_changed(self, object_id: str, before: dict[str, Any]) -> None:
        """Wake the instances waiting on this object, then run update/stage launches."""
        for iid in self.store.waiting_on(object_id):
            self.queue.append((iid, ev.ObjectChanged((object_id,))))
        rec = self.store.get_object(object_id)
        if rec is not None and self.on_object_changed is not None:
            self.on_object_changed(object_id, before, rec.data)

    # ---- commands --------------------------------------------------------------------------

    def apply(
        self, cmd: ev.Command, state: InstanceState, changed: dict[str, dict[str, Any]]
    ) -> None:
        handler = getattr(self, "_apply_" + type(cmd).__name__)
        handler(cmd, state, changed)

    def _apply_OpenTask(self, cmd: ev.OpenTask, state: InstanceState, _c: Any) -> None:
        status = TASK_OPEN
        if cmd.workflow is not None:
            status = cmd.workflow.get("initial") or cmd.workflow["statuses"][0]
        self.store.put_task(
            TaskRecord(
                id=cmd.task_id,
                instance_id=cmd.instance_id,
                process=cmd.process,
                block=cmd.block,
                kind=cmd.kind,
                object_id=cmd.object_id,
                title=cmd.title,
                text=cmd.text,
                assignee=cmd.assignee,
                options=cmd.options,
                fields=cmd.fields,
                workflow=cmd.workflow,
                waits=cmd.waits,
                priority=cmd.priority,
                reaction_s=cmd.reaction_s,
                created_at=self.now,
                status=status,
                history=[{"at": self.now, "by": None, "what": "created", "assignee": cmd.assignee}],
                inbox=cmd.inbox,
            )
        )
        self.store.count_task_created(cmd.process, cmd.block, cmd.object_id)

    def _apply_CloseTask(self, cmd: ev.CloseTask, state: InstanceState, _c: Any) -> None:
        task = self.store.get_task(cmd.task_id)
        if task is not None and not task.closed:
            task.closed = True
            task.status = cmd.status
            task.closed_at = self.now
            task.history.append({"at": self.now, "by": None, "what": cmd.status})
            self.store.put_task(task)

    def _apply_ScheduleTimer(self, cmd: ev.ScheduleTimer, state: InstanceState, _c: Any) -> None:
        self.store.add_timer(TimerRecord(cmd.timer_id, cmd.instance_id, cmd.due_at, 0))

    def _apply_CancelTimer(self, cmd: ev.CancelTimer, state: InstanceState, _c: Any) -> None:
        self.store.cancel_timer(cmd.timer_id)

    def _apply_CreateObject(self, cmd: ev.CreateObject, state: InstanceState, _c: Any) -> None:
        otype = self.store.schema.types[cmd.type]
        data = hash_passwords(otype, dict(cmd.data))
        self.store.put_object(ObjectRecord(cmd.object_id, cmd.type, data), self.now)
        if self.on_object_created is not None:
            self.on_object_created(cmd.object_id)

    def _apply_UpdateObject(
        self, cmd: ev.UpdateObject, state: InstanceState, changed: dict[str, dict[str, Any]]
    ) -> None:
        rec = self.store.get_object(cmd.object_id)
        assert rec is not None, cmd.object_id
        changes = hash_passwords(self.store.schema.types[rec.type], cmd.changes)
        before = self.store.update_object(cmd.object_id, changes, self.now)
        changed.setdefault(cmd.object_id, before)

    def _apply_SendMessage(self, cmd: ev.SendMessage, state: InstanceState, _c: Any) -> None:
        self.store.add_message(
            MessageRecord(
                id=cmd.message_id,
                instance_id=cmd.instance_id,
                process=state.process,
                block=cmd.block,
                channel=cmd.channel,
                to=cmd.to,
                recipient=cmd.recipient,
                subject=cmd.subject,
                body=cmd.body,
                created_at=self.now,
                task_id=cmd.task_id,
            )
        )

    def _apply_StartChild(self, cmd: ev.StartChild, state: InstanceState, _c: Any) -> None:
        self.start_instance(
            cmd.process,
            cmd.object_id,
            cmd.vars,
            instance_id=cmd.child_id,
            parent={"id": cmd.parent_id, "token": cmd.token, "settings": cmd.settings_from},
        )

    def _apply_CancelChild(self, cmd: ev.CancelChild, state: InstanceState, _c: Any) -> None:
        # A cancelled child reports nothing; its own cancellation runs at once, recursively.
        child = self.store.get_instance(cmd.child_id)
        if child is not None and child.status in ("running", "incident"):
            self.step(cmd.child_id, ev.InstanceCancelled(PARENT_ENDED))

    def _apply_NotifyParent(self, cmd: ev.NotifyParent, state: InstanceState, _c: Any) -> None:
        self.queue.append((cmd.parent_id, ev.ChildEnded(cmd.child_id, cmd.outcome, cmd.result)))

    def _apply_Subscribe(self, cmd: ev.Subscribe, state: InstanceState, _c: Any) -> None:
        if self.store.subscribe(cmd.instance_id, cmd.object_ids):
            # The condition read data another transaction has changed since: look again.
            self.queue.append((cmd.instance_id, ev.ObjectChanged(cmd.object_ids)))

    def _apply_DeliverEvent(self, cmd: ev.DeliverEvent, state: InstanceState, _c: Any) -> None:
        waiting = [
            iid
            for iid in self.store.waiting_on(subscription_key(cmd.kind, cmd.name))
            if iid != cmd.sender
        ]
        for iid in waiting[:1] if cmd.kind == "message" else waiting:
            self.queue.append((iid, ev.EventDelivered(cmd.kind, cmd.name, dict(cmd.data))))

    def _apply_RaiseIncident(self, cmd: ev.RaiseIncident, state: InstanceState, _c: Any) -> None:
        self.store.add_incident(IncidentRecord(cmd.instance_id, cmd.block, cmd.message, self.now))
