"""The use cases of one account: objects, process starts, tasks, administration.

Every public method is one unit of work: it checks everything first and refuses with a
:class:`~flowlane.core.errors.Refused` that names the reason, changing nothing; then it
changes the store and runs the steps it set off to quiescence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowlane.core.errors import (
    FlowlaneError,
    Forbidden,
    Invalid,
    NotFound,
    Refused,
    ValidationError,
)
from flowlane.engine import events as ev
from flowlane.engine.bpmn_host import retry_refusal, subscription_key
from flowlane.engine.context import ObjectRecord
from flowlane.engine.migrate import plan_many
from flowlane.engine.step import effective_settings
from flowlane.engine.taskrules import STAFF_ADMIN_ROLES, check_transition, may_act
from flowlane.expr import compile_expression
from flowlane.model.definition import Definition
from flowlane.model.process import TaskSettings
from flowlane.model.segment import Filter, filter_expression
from flowlane.objects import (
    FieldSpec,
    ObjectType,
    Schema,
    coerce_value,
    field_from_dict,
    link_problems,
    validate_record,
)
from flowlane.services import admin, launch, permissions, tasklists, taskwork
from flowlane.services.links import Links
from flowlane.services.passwords import hash_passwords
from flowlane.services.runner import Runner, StageMove, TraceSink
from flowlane.services.typedefs import TypeDefinitions
from flowlane.store.base import Store, is_bad_value, is_conflict
from flowlane.store.files import FileStore, LocalFileStore, Staged, data_folder
from flowlane.store.records import MessageRecord, TaskRecord

ADMIN_ROLES = tuple(sorted(STAFF_ADMIN_ROLES))
MAX_ID = 100
"""Longest object id (the stores' id columns)."""
MAX_NAME = 200
"""Longest dictionary value, key or name."""
RETRIES_ON_CONFLICT = 3
"""Times a request is run again when the database aborts it as a deadlock's victim."""
STAFF_ROLES = ("owner", "admin", "manager", "employee")


@dataclass(frozen=True, slots=True)
class MoveResult:
    """What became of a stage move: ``moved`` is False when a process launched on the new
    stage (a guard) sent the object back; ``stage`` is where the object is now and
    ``reason`` the guard's reason (:attr:`message` says it all in one line)."""

    moved: bool
    stage: str | None
    reason: str | None = None
    message: str | None = None


class Account:
    """An account's services over a store, with an injected clock value ``now``."""

    def __init__(
        self,
        store: Store,
        now: datetime,
        *,
        sink: TraceSink | None = None,
        files: FileStore | None = None,
        attachment_limits: taskwork.AttachmentLimits | None = None,
    ):
        self.store = store
        self._files = files
        self.attachment_limits = attachment_limits or taskwork.AttachmentLimits()
        self.staged_files: list[Staged] = []
        """Attachment bytes written by the request under way, promoted after its commit."""
        self.runner = Runner(store, now, sink)
        self.runner.on_object_created = lambda oid: launch.on_created(self, oid)
        self.runner.on_object_changed = lambda oid, b, a: launch.on_changed(self, oid, b, a)
        self.runner.on_periodic = lambda timer: launch.run_periodic(self, timer)
        self.links = Links(store)
        """Signed links to forms: ``form_link(...)`` in messages, checked when opened."""
        self.runner.links = self.links.make
        self.runner.task_links = self.links.task_url

    # ---- units of work -----------------------------------------------------------------------

    def attempt(self, action: Callable[[], None]) -> None:
        """Run one request as a unit: if it fails, nothing of it stays.

        Refusals pass through as they are; any other flowlane error (a bad value in the
        request, a step that ran away) is a refusal too, with its message.
        """
        now = self.runner.now
        for tries_left in range(RETRIES_ON_CONFLICT, -1, -1):
            try:
                with self.store.transaction():
                    action()
                self._settle_files(promote=True)
                return
            except BaseException as exc:
                self._settle_files(promote=False)
                # Nothing of a failed request may linger: not its queued steps, not its clock.
                self.runner.queue.clear()
                self.runner.now = now
                if tries_left and is_conflict(exc):
                    continue  # the database chose this request as a deadlock's victim
                if is_bad_value(exc):
                    raise Refused(f"the database refused a value: {exc.__cause__ or exc}") from exc
                if isinstance(exc, Refused) or not isinstance(exc, FlowlaneError):
                    raise
                if isinstance(exc, ValidationError):
                    raise Invalid(str(exc), **exc.fields) from exc
                raise Refused(str(exc)) from exc

    def _settle_files(self, *, promote: bool) -> None:
        staged, self.staged_files = self.staged_files, []
        for item in staged:
            if promote:
                self.files.promote(item)
            else:
                self.files.discard(item)

    @property
    def files(self) -> FileStore:
        """Where attachments' bytes go: the one given, else a folder (``FLOWLANE_DATA``)."""
        if self._files is None:
            self._files = LocalFileStore(data_folder())
        return self._files

    # ---- helpers ---------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.runner.now

    def staged_types(self) -> set[str]:
        return {k for k, t in self.store.schema.types.items() if t.stages}

    def members_for(self, user_id: str | None) -> Callable[[str], Sequence[str]]:
        """``users_of`` for the task rules when one person's rights are asked: answers
        ``role:`` and ``group:`` selectors from that person's own record instead of listing
        every user of the account (the rules only ask whether the person is among them)."""
        rec = None if user_id is None else self.store.get_object(user_id)

        def users_of(selector: str) -> Sequence[str]:
            kind, _, value = selector.partition(":")
            if rec is None or rec.type != "user" or user_id is None:
                return []
            if kind == "role":
                return [user_id] if rec.data.get("role") == value else []
            if kind == "group":
                return [user_id] if value in (rec.data.get("groups") or []) else []
            return self.store.users(selector)

        return users_of

    def role_of(self, user_id: str | None) -> str | None:
        if user_id is None:
            return None
        rec = self.store.get_object(user_id)
        if rec is None or rec.type != "user":
            raise NotFound(f"user {user_id!r} does not exist", user=user_id)
        return rec.data.get("role") or "client"

    def require_role(self, user_id: str | None, roles: tuple[str, ...], what: str) -> None:
        if user_id is None:
            return
        role = self.role_of(user_id)
        if role not in roles:
            raise Forbidden(f"{user_id} ({role}) may not {what}")

    def definition(self, key: str) -> Definition:
        d = self.store.definition(key)
        if d is None:
            raise NotFound(f"process {key!r} is not deployed")
        return d

    def settings_for(self, instance_id: str) -> TaskSettings:
        """The ``task:`` settings that govern an instance (its own, else its parent's)."""
        state = self.store.get_instance(instance_id)
        assert state is not None, instance_id
        definition = self.store.version(state.process, state.version)
        return effective_settings(definition, state, self.store)

    # ---- processes ---------------------------------------------------------------------------

    def deploy(self, definition: Definition) -> Definition:
        """Deploy a process; a changed one becomes a new version. Refused for an approved
        process that runs (stop it first; the edit must then be approved again)."""
        before = self.store.definition(definition.key)
        admin.check_deploy(self, before, definition)
        deployed = self.store.deploy(definition)
        if deployed.spec.launch is not None and not deployed.spec.draft:
            # Index the fields the entry condition compares: checks then read an index.
            self.store.index_fields(deployed.spec.object, launch.condition_of(self, deployed))
        admin.after_deploy(self, before, deployed)
        if self.runner.queue:  # a first deploy ran the process's ``once`` launch
            self.runner.run()
        return deployed

    def activate(self) -> None:
        """Run ``once`` launches of every approved process (the processes were started)."""
        for key in self.store.process_keys():
            d = self.definition(key)
            if (
                d.spec.launch
                and d.spec.launch.on == "once"
                and not d.spec.draft
                and launch.is_approved(self, d)
                and launch.is_active(self, d)
            ):
                launch.run_once(self, d)
        self.runner.run()

    def start(
        self,
        process: str,
        object_id: str | None,
        vars_: dict[str, Any] | None = None,
        *,
        by: str | None = None,
    ) -> str:
        d = self.definition(process)
        permissions.require(self, by, "start_processes", f"start {process}")
        launch.require_startable(self, d)
        if object_id is not None:
            self.get_object(object_id, expect_type=d.spec.object)
        clean = self.coerce_vars(d, vars_ or {})
        iid = self.runner.start_instance(process, object_id, clean)
        self.runner.run()
        return iid

    def coerce_vars(self, d: Definition, vars_: dict[str, Any]) -> dict[str, Any]:
        out = dict(vars_)
        for name, raw in vars_.items():
            spec = d.spec.variables.get(name)
            if spec is None:
                continue
            out[name] = self.coerce_field(name, spec, raw)
        return out

    def coerce_field(self, name: str, spec: dict[str, Any], value: Any) -> Any:
        fs: FieldSpec = field_from_dict(name, spec)
        try:
            return coerce_value(fs, value, schema=self.store.schema, tz=self.store.tz)
        except FlowlaneError as exc:
            raise Refused(str(exc)) from exc

    def condition(self, where: Filter | None, type_key: str) -> str | None:
        """A filter (structured or an expression) on objects of ``type_key`` as one checked
        expression; refused naming what is wrong."""
        try:
            source = filter_expression(where, type_key, self.store.schema)
            if source is not None:
                compile_expression(source)
        except FlowlaneError as exc:
            raise Refused(f"where: {exc}") from exc
        return source

    def matching(
        self, type_key: str, where: Filter | None, vars_: dict[str, Any] | None = None
    ) -> list[str]:
        """Ids of the objects of a type that match the filter now (found by the database)."""
        if type_key not in self.store.schema.types:
            raise Refused(f"object type {type_key!r} does not exist")
        source = self.condition(where, type_key)
        return self.store.select_objects(type_key, source, launch.condition_scope(self, vars_))

    def forecast(self, process: str) -> launch.Forecast:
        """How many objects the process's automatic launch would start it for now."""
        return launch.forecast(self, self.definition(process))

    def mass_start(
        self,
        process: str,
        where: Filter | None,
        vars_: dict[str, Any] | None = None,
        *,
        by: str | None = None,
        ids: list[str] | None = None,
    ) -> list[str]:
        """Start the process for every object of its type matching ``where`` (among ``ids``
        if given: one batch of a mass start that runs in several transactions)."""
        d, source, clean = self._mass_start_checks(process, where, vars_, by)
        scope = launch.condition_scope(self, clean)
        type_key = d.spec.object
        candidates = (
            self.store.select_objects(type_key, source, scope) if ids is None else list(ids)
        )
        self.store.prefetch(object_ids=candidates, lock_objects=True)
        # Again under the objects' locks: a change may have committed meanwhile.
        matching = self.store.select_objects(type_key, source, scope, ids=candidates)
        started = [self.runner.start_instance(process, oid, dict(clean)) for oid in matching]
        self.runner.run()
        return started

    def mass_start_targets(
        self,
        process: str,
        where: Filter | None,
        vars_: dict[str, Any] | None = None,
        *,
        by: str | None = None,
    ) -> list[str]:
        """The objects a mass start would start the process for now, checked as
        :meth:`mass_start` checks a batch (the starter, the process, the filter, the
        variables coerced to their types); the batches are then given their ids."""
        d, source, clean = self._mass_start_checks(process, where, vars_, by)
        scope = launch.condition_scope(self, clean)
        return self.store.select_objects(d.spec.object, source, scope)

    def _mass_start_checks(
        self, process: str, where: Filter | None, vars_: dict[str, Any] | None, by: str | None
    ) -> tuple[Definition, str | None, dict[str, Any]]:
        d = self.definition(process)
        permissions.require(self, by, "start_processes", f"start {process}")
        launch.require_startable(self, d)
        return d, self.condition(where, d.spec.object), self.coerce_vars(d, vars_ or {})

    def approve(self, process: str, *, by: str | None) -> None:
        """Approve the process for start; this activates it (``once`` launches run)."""
        d = self.definition(process)
        permissions.require(self, by, "manage_processes", f"approve {process}")
        if d.spec.launch is None or not d.spec.launch.approval:
            raise Refused(f"process {process} needs no approval (launch.approval is false)")
        if self.store.is_approved(process):
            # Again would run its ``once`` launch again; a stopped one is activated instead.
            raise Refused(f"process {process} is approved already")
        self.store.approve(process, by, self.now)
        admin.activate(self, d, refuse_if_active=False)
        self.runner.run()

    def stop_process(self, process: str, *, by: str | None) -> None:
        """Stop the process: no automatic launch fires, manual starts are refused; the
        instances that run go on."""
        self.definition(process)
        permissions.require(self, by, "manage_processes", f"stop {process}")
        admin.stop(self, process)

    def activate_process(self, process: str, *, by: str | None) -> None:
        """Start a stopped process again: ``once`` launches run, periodic checks restart."""
        d = self.definition(process)
        permissions.require(self, by, "manage_processes", f"activate {process}")
        admin.activate(self, d)
        self.runner.run()

    def process_info(self, key: str) -> admin.ProcessInfo:
        return admin.info(self, key)

    def list_processes(
        self, search: str | None = None, tag: str | None = None
    ) -> list[admin.ProcessInfo]:
        """Processes whose name contains ``search`` (any case) or whose key it is, with
        the tag ``tag``; sorted by key."""
        return admin.listing(self, search, tag)

    def templates_for(self, object_type: str) -> list[admin.ProcessInfo]:
        """Processes marked as templates for this object type (offered for new processes)."""
        return admin.templates_for(self, object_type)

    def restart(self, process: str, *, by: str | None) -> admin.Restarted:
        """Stop the process's running instances, delete the tasks they created and forget
        which objects entered; the process is left stopped (activate starts it again).
        Returns the instances cancelled and the tasks deleted."""
        self.definition(process)
        permissions.require(self, by, "manage_processes", f"restart {process}")
        doomed = [
            st.id for st in self.store.instances_of(process) if st.status in ("running", "incident")
        ]
        for iid in doomed:
            self.runner.step(iid, ev.InstanceCancelled("restart"))
        family = {st.id for st in self.store.instances_of(process)}
        generation = set(family)
        while generation:
            generation = {st.id for st in self.store.children_of(generation)} - family
            family |= generation
        deleted = [t.id for t in self.store.find_tasks(instance_ids=family)]
        self.store.delete_tasks(deleted)
        if deleted:
            self.runner.record(
                {
                    "instance": None,
                    "process": process,
                    "block": None,
                    "event": "tasks_deleted",
                    "details": {"tasks": deleted, "by": by, "reason": "restart"},
                }
            )
        self.store.forget_entered(process)
        admin.stop_after_restart(self, process)
        self.runner.run()
        return admin.Restarted(doomed, deleted)

    def cancel(self, process: str, object_id: str, *, by: str | None) -> None:
        permissions.require(self, by, "manage_processes", f"cancel {process}")
        running = [
            st.id
            for st in self.store.instances_of(process, object_id)
            if st.status in ("running", "incident")
        ]
        if not running:
            raise Refused(f"no running instance of {process} on {object_id}")
        for iid in running:
            self.runner.step(iid, ev.InstanceCancelled("cancelled by hand"))
        self.runner.run()

    def migrate(
        self,
        process: str,
        to_version: int,
        mapping: dict[str, str],
        *,
        instance_ids: list[str] | None = None,
        by: str | None,
    ) -> list[str]:
        """Move waiting instances to another version of their process, all or none.

        Without ``instance_ids``, every running instance on another version moves. Blocks keep
        their ids unless ``mapping`` renames them; a mapping that would strand a token is
        refused with the reason for each instance. Open tasks follow their renamed blocks.
        """
        self.definition(process)
        permissions.require(self, by, "manage_processes", f"migrate instances of {process}")
        try:
            target = self.store.version(process, to_version)
        except (NotFound, KeyError, IndexError) as exc:
            raise Refused(f"process {process} has no version {to_version}") from exc
        if instance_ids is None:
            instance_ids = [
                st.id
                for st in self.store.instances_of(process)
                if st.status == "running" and st.version != to_version
            ]
            must = False
        else:
            must = True
        # Read again under the instances' locks: a worker may have moved one meanwhile.
        self.store.prefetch(instance_ids=instance_ids)
        states = []
        for iid in instance_ids:
            st = self.store.get_instance(iid)
            if st is None or st.process != process:
                raise Refused(f"instance {iid} is not an instance of {process}")
            if must or (st.status == "running" and st.version != to_version):
                states.append(st)
        planned, problems = plan_many(
            states, lambda v: self.store.version(process, v), target, mapping
        )
        if problems:
            raise Refused("; ".join(problems))
        for before, after in zip(states, planned, strict=True):
            self.store.put_instance(after)
            for listed in self.store.find_tasks(open_only=True, instance_ids={after.id}):
                task = self.store.get_task(listed.id)  # locked (its instance already is)
                if task is not None and task.block in mapping:
                    task.block = mapping[task.block]
                    self.store.put_task(task)
            self.runner.record(
                {
                    "instance": after.id,
                    "process": process,
                    "block": None,
                    "event": "migrated",
                    "details": {"from": before.version, "to": to_version, "by": by},
                }
            )
        return [st.id for st in planned]

    def retry(self, instance_id: str, *, by: str | None) -> None:
        """Run an instance stopped by an incident again (``manage_processes``; ``by=None``
        is the system, e.g. the CLI)."""
        permissions.require(self, by, "manage_processes", f"retry instance {instance_id}")
        state = self.store.get_instance(instance_id)
        if state is None or state.status != "incident":
            raise Refused(f"instance {instance_id} has no incident")
        refusal = retry_refusal(state)
        if refusal is not None:
            raise Refused(refusal)
        self.store.resolve_incidents(instance_id)
        self.runner.deliver(instance_id, ev.Retried())
        self.runner.run()

    # ---- objects -----------------------------------------------------------------------------

    def get_object(self, object_id: str, *, expect_type: str | None = None) -> ObjectRecord:
        rec = self.store.get_object(object_id)
        if rec is None:
            raise NotFound(f"object {object_id!r} does not exist")
        if expect_type is not None and rec.type != expect_type:
            raise Refused(f"object {object_id} is a {rec.type}, not a {expect_type}")
        return rec

    def new_object_id(self, type_key: str) -> str:
        return self.store.new_object_id(type_key)

    def create_object(
        self,
        type_key: str,
        data: dict[str, Any],
        *,
        object_id: str | None = None,
        launches: bool = True,
    ) -> str:
        otype = self.store.schema.types.get(type_key)
        if otype is None:
            raise Refused(f"object type {type_key!r} does not exist")
        oid = object_id or self.new_object_id(type_key)
        if len(oid) > MAX_ID or not oid.strip():
            raise Refused(f"object id {oid[:40]!r}: 1 to {MAX_ID} characters")
        if self.store.get_object(oid) is not None:
            raise Refused(f"object {oid!r} exists already")
        clean = self._validate(type_key, data, partial=False, current_stage=None)
        self.store.put_object(ObjectRecord(oid, type_key, clean), self.now)
        if launches:
            launch.on_created(self, oid)
            self.runner.run()
        return oid

    def _validate(
        self, type_key: str, data: dict[str, Any], *, partial: bool, current_stage: str | None
    ) -> dict[str, Any]:
        otype = self.store.schema.types[type_key]
        try:
            clean = validate_record(
                otype,
                data,
                schema=self.store.schema,
                tz=self.store.tz,
                partial=partial,
                current_stage=current_stage,
            )
        except FlowlaneError as exc:
            raise Refused(f"{type_key}: {exc}") from exc
        problems = link_problems(otype, clean, self._type_of)
        if problems:
            raise Refused(f"{type_key}: {'; '.join(problems)}")
        return hash_passwords(otype, clean)

    def _type_of(self, object_id: str) -> str | None:
        rec = self.store.get_object(object_id)
        return rec.type if rec is not None else None

    def update_object(self, object_id: str, changes: dict[str, Any]) -> None:
        rec = self.get_object(object_id)
        clean = self._validate(rec.type, changes, partial=True, current_stage=rec.data.get("stage"))
        before = self.store.update_object(object_id, clean, self.now)
        self.runner.object_changed(object_id, before)
        self.runner.run()

    def move_stage(self, object_id: str, to: str, *, by: str | None = None) -> MoveResult:
        """Move an object to a stage; the ``stage`` launches run at once.

        A move to an unknown stage or out of a final stage is refused. A process launched
        on the stage that sends the object back to an earlier stage acts as a guard: the
        move does not hold, the result says so with the guard's reason (its ``operation``'s
        ``reason``, else that block's ``name``), and a ``move_sent_back`` trace entry names
        the guard. What the guard did stays done.
        """
        rec = self.get_object(object_id)
        permissions.require(self, by, "work_with_objects", f"move {object_id}")
        otype = self.store.schema.types[rec.type]
        what = f"{rec.type} {object_id}"
        current = rec.data.get("stage")
        if not otype.has_stages:
            raise Refused(f"{what}: type '{rec.type}' has no stages")
        if to not in otype.all_stages:
            stages = ", ".join(otype.all_stages)
            raise Refused(f"{what}: unknown stage {to!r} (stages: {stages})")
        if current in otype.final_stages and to != current:
            raise Refused(f"{what}: stage {current!r} is final; no move out of it (to {to!r})")
        outer, self.runner.stage_moves = self.runner.stage_moves, []
        try:
            self.update_object(object_id, {"stage": to})
            moves = self.runner.stage_moves
        finally:
            self.runner.stage_moves = outer
        if outer is not None:
            outer.extend(moves)
        now = self.get_object(object_id).data.get("stage")
        order = otype.all_stages
        if now is None or now == to or order.index(now) > order.index(to):
            return MoveResult(True, now)  # held, or a process moved it on
        return self._sent_back(what, object_id, current, to, now, moves, by)

    def _sent_back(
        self,
        what: str,
        object_id: str,
        current: str | None,
        to: str,
        now: str,
        moves: list[StageMove],
        by: str | None,
    ) -> MoveResult:
        guard = next((m for m in reversed(moves) if m.object_id == object_id), None)
        by_whom = f" by {guard.process}" if guard else ""
        reason = guard.reason if guard and guard.reason else f"sent back to {now!r}{by_whom}"
        message = f"{what}: the move to {to!r} was sent back to {now!r}{by_whom}: {reason}"
        self.runner.record(
            {
                "instance": guard.instance_id if guard else None,
                "process": guard.process if guard else None,
                "block": guard.block if guard else None,
                "event": "move_sent_back",
                "details": {
                    "object": object_id,
                    "from": current,
                    "to": to,
                    "stage": now,
                    "reason": reason,
                    "by": by,
                },
            }
        )
        return MoveResult(False, now, reason, message)

    def add_dictionary_value(self, key: str, value: str) -> None:
        if key not in self.store.schema.dictionaries:
            raise Refused(f"dictionary {key!r} does not exist")
        if len(value) > MAX_NAME:
            raise Refused(f"dictionary {key}: a value has at most {MAX_NAME} characters")
        try:
            self.store.add_dictionary_value(key, value, self.now)
        except FlowlaneError as exc:
            raise Refused(f"dictionary {key}: {exc}") from exc

    # ---- object types (see flowlane.services.typedefs) --------------------------------------

    def object_types(self) -> list[ObjectType]:
        """The account's object types (built-in and custom), sorted by key."""
        return [self.store.schema.types[k] for k in sorted(self.store.schema.types)]

    def define_type(self, key: str, spec: dict[str, Any], *, by: str | None = None) -> ObjectType:
        """Create a custom type from objects.yaml syntax for one type (admins and owners)."""
        return TypeDefinitions(self).define(key, spec, by=by)

    def change_type(
        self,
        key: str,
        spec: dict[str, Any],
        *,
        drop_fields: list[str] | None = None,
        by: str | None = None,
    ) -> ObjectType:
        """Replace a type by ``spec`` (a built-in type: its fields plus the declared ones),
        converting the stored objects; refused if any of them cannot take the change.
        ``drop_fields``: removed fields whose stored values may be deleted."""
        return TypeDefinitions(self).change(key, spec, drop_fields=drop_fields, by=by)

    def add_dictionary(self, key: str, values: list[str], *, by: str | None = None) -> None:
        """A new dictionary with its values (more may be added later)."""
        TypeDefinitions(self).add_dictionary(key, values, by=by)

    def add_group(self, key: str, *, by: str | None = None) -> None:
        """A new user group (users' ``groups``, ``add_to_group``, ``group:<key>``)."""
        TypeDefinitions(self).add_group(key, by=by)

    def deploy_objects(self, schema: Schema) -> list[str]:
        """Merge a recipe's objects.yaml into the account's stored schema (a deploy); the
        keys of the types written."""
        return TypeDefinitions(self).merge(schema)

    def object_for_event(self, d: Definition, data: dict[str, Any]) -> str | None:
        """The object an event launch runs on: ``data.object``, a user found by email,
        or a new object of the process's type made from the fields the type has."""
        if data.get("object"):
            return self.get_object(str(data["object"]), expect_type=d.spec.object).id
        otype = self.store.schema.types[d.spec.object]
        if d.spec.object == "user" and data.get("email"):
            found = self.store.user_by_email(str(data["email"]))
            if found is not None:
                return found
        fields = {k: v for k, v in data.items() if k in otype.fields}
        if not fields:
            return None
        return self.create_object(d.spec.object, fields, launches=False)

    def fire_event(
        self, kind: str, key: str | None, data: dict[str, Any], *, bpmn: bool = True
    ) -> list[str]:
        """An event: launches of the processes listening, and for kinds ``message``,
        ``webhook`` and ``signal`` with a key (the name), delivery to the standard BPMN
        instances waiting for that message (the first) or signal (all) — ADR 0012
        "Hosting" (``bpmn`` False: launches only). A ``signal`` and a ``message`` without
        ``data.text`` that reached an instance launch nothing."""
        delivered = 0
        if bpmn and kind in ("message", "webhook", "signal") and key:
            bpmn_kind = "signal" if kind == "signal" else "message"
            waiting = self.store.waiting_on(subscription_key(bpmn_kind, key))
            for iid in waiting[:1] if bpmn_kind == "message" else waiting:
                self.runner.deliver(iid, ev.EventDelivered(bpmn_kind, key, dict(data)))
                delivered += 1
        if kind == "signal":
            if not key:
                raise Refused("a signal event needs a key (the signal's name)")
            started: list[str] = []
        elif kind == "message" and delivered and not isinstance(data.get("text"), str):
            started = []
        else:
            started = launch.on_event(self, kind, key, data)
        self.runner.run()
        return started

    # ---- tasks ----------------------------------------------------------------------------------

    def open_task(
        self, block: str, object_id: str | None, *, process: str | None = None
    ) -> TaskRecord:
        found = self.store.find_tasks(
            open_only=True, block=block, object_id=object_id, process=process
        )
        if not found:
            raise Refused(f"no open task of block {block!r} on {object_id}")
        return found[0]

    def _check_instance(self, task: TaskRecord) -> None:
        """A task its instance waits on can be answered only while the instance runs."""
        state = self.store.get_instance(task.instance_id)
        if task.waits and state is not None and state.status != "running":
            why = f": {state.incident}" if state.incident else ""
            raise Refused(f"instance {state.id} is {state.status}{why}; retry it first")

    def _check_actor(self, task: TaskRecord, user_id: str | None, what: str) -> None:
        if user_id is None:
            return
        permissions.require_task_work(self, user_id, f"{what} task {task.id}")
        role = self.role_of(user_id)
        settings = self.settings_for(task.instance_id)
        if not may_act(
            user_id,
            role=role,
            assignee=task.assignee,
            executors=settings.executors,
            supervisors=settings.supervisors,
            users_of=self.members_for(user_id),
        ):
            raise Forbidden(f"{user_id} may not {what} task {task.id} ({task.title!r})")

    def check_actor(self, task: TaskRecord, user_id: str | None, what: str) -> None:
        """Refuse with :class:`Forbidden` unless ``user_id`` may act on the task: staff need
        ``work_with_tasks``, then assignee, executors, supervisors, admins and owners may
        (:func:`~flowlane.engine.taskrules.may_act`); ``what`` names the action ("see")."""
        self._check_actor(task, user_id, what)

    def _fresh(self, task: TaskRecord) -> TaskRecord:
        """The task as stored now, locked for this request (the caller's copy may be old).

        Its instance is locked first: steps lock an instance, then its tasks, and every
        request must take locks in the same order or two of them deadlock.
        """
        self.store.get_instance(task.instance_id)
        found = self.store.get_task(task.id)
        if found is None:
            raise NotFound(f"task {task.id} does not exist")
        return found

    def answer(
        self, task: TaskRecord, *, option: str | None, fields: dict[str, Any], by: str | None
    ) -> None:
        task = self._fresh(task)
        if task.closed:
            raise Refused(f"task {task.id} is {task.status} already")
        if task.workflow is not None:
            raise Refused(f"task {task.id} has a status workflow: change its status instead")
        self._check_instance(task)
        self._check_actor(task, by, "answer")
        if task.options and option is None:
            raise Invalid(f"an option is required: {', '.join(task.options)}", field="option")
        if not task.options and option is not None:
            raise Invalid(
                f"option: task {task.id} has no options; {option!r} is not one", field="option"
            )
        if option is not None and option not in task.options:
            raise Invalid(
                f"option: unknown option {option!r} (options: {', '.join(task.options)})",
                field="option",
            )
        clean = self._task_fields(task, fields)
        task.closed = True
        task.status = "answered"
        task.closed_at = self.now
        task.answer = {"option": option, "fields": clean, "by": by}
        task.history.append({"at": self.now, "by": by, "what": "answered", "option": option})
        self.store.put_task(task)
        self.runner.deliver(task.instance_id, ev.TaskAnswered(task.id, option, clean, by))
        self.runner.run()

    def _task_fields(self, task: TaskRecord, fields: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(fields) - set(task.fields))
        if unknown:
            raise Invalid(
                f"field {unknown[0]!r} does not exist on task {task.block}", field=unknown[0]
            )
        out = {}
        for name, spec in task.fields.items():
            value = fields.get(name)
            if value is None:
                if spec.get("required"):
                    raise Invalid(f"field {name!r} is required", field=name)
                continue
            out[name] = self.coerce_field(name, spec, value)
        return out

    def change_status(
        self, task: TaskRecord, to: str, *, by: str | None, comment: str | None = None
    ) -> None:
        task = self._fresh(task)
        if task.workflow is None:
            raise Refused(f"task {task.id} has no status workflow")
        if task.closed:
            raise Refused(f"task {task.id} is {task.status} already")
        if by is None:
            raise Refused("a status change needs the person who makes it (by)")
        permissions.require_task_work(self, by, f"change the status of task {task.id}")
        self._check_instance(task)
        check_transition(
            task.workflow,
            current=task.status,
            target=to,
            user_id=by,
            assignee=task.assignee,
            comment=comment,
            users_of=self.members_for(by),
        )
        before = task.status
        task.status = to
        task.history.append({"at": self.now, "by": by, "what": "status", "from": before, "to": to})
        if comment:
            self._add_comment(task, by, comment)
        if to in task.workflow.get("final", []):
            task.closed = True
            task.closed_at = self.now
            if task.waits:
                self.runner.deliver(task.instance_id, ev.TaskFinished(task.id, to, by))
        self.store.put_task(task)
        self.runner.record(
            {
                "instance": task.instance_id,
                "process": task.process,
                "block": task.block,
                "event": "task_status",
                "details": {"task": task.id, "from": before, "to": to, "by": by},
            }
        )
        self.runner.run()

    def comment(
        self,
        task: TaskRecord,
        text: str,
        *,
        by: str | None,
        files: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Comment on the task, with files (name, bytes) attached if given; the assignee
        and supervisors (else the owners) are notified."""
        if not text.strip() and not files:
            raise Invalid("text: a comment needs text", field="text")
        task = self._fresh(task)
        self._check_actor(task, by, "comment on")
        added = taskwork.add_files(self, task, files or [], by)
        self._add_comment(task, by, text, added)
        self.store.put_task(task)
        self._record_task(
            task,
            "task_commented",
            by=by,
            comment=len(task.comments),
            files=[a["name"] for a in added],
        )
        self.runner.run()

    def attach(
        self,
        task: TaskRecord,
        filename: str,
        content: bytes,
        *,
        by: str | None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """Attach a file to the task (size and type limits: ``attachment_limits``); its
        metadata is returned and kept in ``task.attachments``."""
        task = self._fresh(task)
        self._check_actor(task, by, "attach files to")
        meta = taskwork.attach(self, task, filename, content, by=by, content_type=content_type)
        self.store.put_task(task)
        return meta

    def attachment_content(self, task_id: str, attachment_id: str, *, by: str | None) -> bytes:
        """The bytes of a task's attachment (for those who may act on the task)."""
        task = self._task_by_id(task_id)
        self._check_actor(task, by, "read the files of")
        for meta in task.attachments:
            if meta["id"] == attachment_id:
                return self.files.read(str(meta["key"]))
        raise NotFound(f"task {task_id} has no attachment {attachment_id!r}")

    def task_history(self, task_id: str, *, by: str | None = None) -> list[dict[str, Any]]:
        """Every change of the task in order: ``at``, ``by``, ``what`` and its details."""
        task = self._task_by_id(task_id)
        self._check_actor(task, by, "read the history of")
        return list(task.history)

    def _task_by_id(self, task_id: str) -> TaskRecord:
        task = self.store.get_task(task_id)
        if task is None:
            raise NotFound(f"task {task_id} does not exist")
        return task

    def task_variables(
        self, task: TaskRecord, *, by: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """The process's variables as the task's typed fields: name → field and value
        (for those who may act on the task)."""
        self._check_actor(task, by, "read the variables of")
        state, specs = taskwork.variable_specs(self, task)
        return {n: {"field": spec, "value": state.vars.get(n)} for n, spec in specs.items()}

    def set_task_variables(
        self, task: TaskRecord, values: dict[str, Any], *, by: str | None
    ) -> dict[str, Any]:
        """Fill process variables from the task: coerced with their field types and kept
        on the instance, where later blocks read them as ``vars.<name>``. Staff fill them
        (SCENARIOS S2: "fields that managers fill in"): a client may read, not fill, the
        variables of an own task."""
        task = self._fresh(task)
        self._check_actor(task, by, "fill the variables of")
        permissions.require(self, by, "work_with_tasks", f"fill the variables of task {task.id}")
        return taskwork.set_variables(self, task, values, by)

    def add_task(
        self,
        process: str,
        *,
        object_id: str | None,
        title: str,
        text: str = "",
        assignee: str | None = None,
        priority: str | None = None,
        by: str | None,
    ) -> TaskRecord:
        """Put a task of the process by hand (not tied to a block; see ADR 0008)."""
        return taskwork.add_task(
            self,
            process,
            object_id=object_id,
            title=title,
            text=text,
            assignee=assignee,
            priority=priority,
            by=by,
        )

    def _record_task(self, task: TaskRecord, event: str, **details: Any) -> None:
        """A trace entry about the task (the instance history)."""
        self.runner.record(
            {
                "instance": task.instance_id,
                "process": task.process,
                "block": task.block,
                "event": event,
                "details": {"task": task.id, **details},
            }
        )

    def _add_comment(
        self,
        task: TaskRecord,
        by: str | None,
        text: str,
        attachments: list[dict[str, Any]] | None = None,
    ) -> None:
        """Keep the comment and notify the assignee and supervisors (else the owners) by
        email: the text, then the names of the files it carries."""
        entry: dict[str, Any] = {"at": self.now, "by": by, "text": text}
        names = [str(a["name"]) for a in attachments or []]
        if attachments:
            entry["attachments"] = [a["id"] for a in attachments]
        task.comments.append(entry)
        task.history.append(
            {"at": self.now, "by": by, "what": "comment", "comment": len(task.comments)}
        )
        settings = self.settings_for(task.instance_id)
        whom = [task.assignee] if task.assignee else []
        for sel in settings.supervisors:
            whom.extend(self.store.users(sel))
        if not [u for u in whom if u != by]:
            whom.extend(self.store.users("role:owner"))
        if text.strip():
            subject = f"New comment on task: {task.title}"
        else:
            subject = f"New {'file' if len(names) == 1 else 'files'} on task: {task.title}"
        listed = f"Attached: {', '.join(names)}" if names else ""
        body = "\n\n".join(part for part in (text.strip() and text, listed) if part)
        seen: list[str] = []
        for uid in whom:
            if uid is None or uid == by or uid in seen:
                continue
            seen.append(uid)
            rec = self.store.get_object(uid)
            email = rec.data.get("email") if rec else None
            self.store.add_notification(
                MessageRecord(
                    id=f"{task.id}.c{len(task.comments)}.n{len(seen)}",
                    instance_id=task.instance_id,
                    process=task.process,
                    block=task.block,
                    channel="email",
                    to=str(email or uid),
                    recipient=uid,
                    subject=subject,
                    body=body,
                    created_at=self.now,
                )
            )

    def claim(self, task: TaskRecord, *, by: str) -> None:
        task = self._fresh(task)
        if task.closed:
            raise Refused(f"task {task.id} is {task.status} already")
        self._check_actor(task, by, "claim")
        if task.assignee not in (None, by):
            raise Refused(f"task {task.id} is already assigned to {task.assignee}")
        task.assignee = by
        task.history.append({"at": self.now, "by": by, "what": "claimed"})
        self.store.put_task(task)
        self._record_task(task, "task_claimed", by=by)

    def unclaim(self, task: TaskRecord, *, by: str) -> None:
        """Give the task back (nobody is assigned): its assignee, the process's supervisors,
        admins and owners may; an executor only a task of their own."""
        task = self._fresh(task)
        permissions.require_task_work(self, by, f"give back task {task.id}")
        role = self.role_of(by)
        if task.closed:
            raise Refused(f"task {task.id} is {task.status} already")
        if task.assignee is None:
            raise Refused(f"task {task.id} is assigned to nobody: there is nothing to give back")
        if task.assignee != by and role not in ADMIN_ROLES:
            settings = self.settings_for(task.instance_id)
            if not may_act(
                by,
                role=None,
                assignee=None,
                executors=(),
                supervisors=settings.supervisors,
                users_of=self.members_for(by),
            ):
                raise Forbidden(
                    f"{by} may not give back task {task.id}: it is assigned to {task.assignee} "
                    "(its assignee, the process's supervisors, admins, owners may)"
                )
        before = task.assignee
        task.assignee = None
        task.history.append({"at": self.now, "by": by, "what": "unclaimed"})
        self.store.put_task(task)
        self._record_task(task, "task_unclaimed", by=by, assignee=before)

    def reassign(
        self,
        process: str,
        *,
        from_: str | None,
        status: str | None,
        to: str | None,
        by: str | None,
        from_given: bool = True,
        object_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        block: str | None = None,
    ) -> int:
        """Give the matching tasks (open ones unless a status is named) to ``to`` (None:
        nobody) in one set-based change; the filters are those of :meth:`task_statistics`.
        Admins, owners and the process's supervisors may; how many tasks changed."""
        return tasklists.reassign(
            self,
            process,
            from_=from_,
            from_given=from_given,
            status=status,
            to=to,
            by=by,
            object_id=object_id,
            created_from=created_from,
            created_to=created_to,
            block=block,
        )

    # ---- task lists and statistics ---------------------------------------------------------

    def inbox(
        self, user_id: str, *, page: int = 1, size: int = 50, by: str | None = None
    ) -> tasklists.TaskPage:
        """A page of the person's inbox; ``total`` is how many tasks the whole inbox holds."""
        return tasklists.inbox(self, user_id, page=page, size=size, by=by)

    def process_tasks(
        self,
        process: str,
        *,
        status: str | None = None,
        assignee: str | None = None,
        unassigned: bool = False,
        object_id: str | None = None,
        open_only: bool = False,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        block: str | None = None,
        sort: str = "created_at",
        descending: bool = False,
        page: int = 1,
        size: int = 50,
        by: str | None = None,
    ) -> tasklists.TaskPage:
        """The process's task table: a page of its tasks and how many match."""
        query = tasklists.task_query(
            self,
            process,
            status=status,
            assignee=assignee,
            unassigned=unassigned,
            object_id=object_id,
            open_only=open_only,
            created_from=created_from,
            created_to=created_to,
            block=block,
        )
        return tasklists.process_tasks(
            self, query, sort=sort, descending=descending, page=page, size=size, by=by
        )

    def object_tasks(self, object_id: str, *, by: str | None = None) -> list[TaskRecord]:
        return tasklists.object_tasks(self, object_id, by=by)

    def client_tasks(self, user_id: str, *, by: str | None = None) -> list[TaskRecord]:
        return tasklists.client_tasks(self, user_id, by=by)

    def task_statistics(
        self,
        process: str,
        *,
        status: str | None = None,
        assignee: str | None = None,
        unassigned: bool = False,
        object_id: str | None = None,
        open_only: bool = False,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        block: str | None = None,
        by: str | None = None,
    ) -> tasklists.TaskStatistics:
        """Tasks per manager × status × creation day (account zone), with totals."""
        query = tasklists.task_query(
            self,
            process,
            status=status,
            assignee=assignee,
            unassigned=unassigned,
            object_id=object_id,
            open_only=open_only,
            created_from=created_from,
            created_to=created_to,
            block=block,
        )
        return tasklists.statistics(self, query, by=by)
