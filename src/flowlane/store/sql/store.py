"""``SqlStore``: the :class:`~flowlane.store.base.Store` on SQLite or PostgreSQL.

Every method runs on the connection of the open :meth:`SqlStore.transaction`, or in a
transaction of its own when none is open. Records handed out are copies decoded from the
rows; callers write changes back with ``put_*``. Rows that a step reads and then writes are
locked on PostgreSQL (``SELECT … FOR UPDATE``: instances, tasks, objects being updated);
SQLite runs one writer at a time (``BEGIN IMMEDIATE``), so no lock is needed there.

Values that JSON cannot hold (dates, datetimes, durations) are stored tagged by
:func:`flowlane.engine.state.encode_value`. Timers and periodic checks are rows of ``jobs``;
email messages get a ``deliver`` job in the same transaction (the outbox).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import ColumnElement

from flowlane.core.errors import NotFound
from flowlane.engine.context import ObjectRecord
from flowlane.engine.state import InstanceState, decode_value, encode_value, from_dict, to_dict
from flowlane.expr import Expression
from flowlane.model.definition import Definition
from flowlane.model.process import ProcessFile
from flowlane.model.template import Template
from flowlane.objects import Schema
from flowlane.store.records import IncidentRecord, Job, MessageRecord, TaskRecord, TimerRecord
from flowlane.store.sql import tables as t

DEFAULT_TZ = "Europe/Moscow"
TIMER_KINDS = ("timer", "periodic")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SqlStore:
    """Objects, processes, instances, tasks, jobs, outbox and history in a SQL database."""

    def __init__(
        self,
        engine: Engine,
        schema: Schema,
        *,
        tz: tzinfo | None = None,
        templates: dict[str, Template] | None = None,
        secret: bytes = b"flowlane-dev-secret",
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.tz = tz or ZoneInfo(DEFAULT_TZ)
        self.templates = dict(templates or {})
        self.secret = secret
        self.pg = engine.dialect.name == "postgresql"
        self._conn: Connection | None = None
        self._undo: list[Callable[[], object]] = []
        self._defs: dict[tuple[str, int], Definition] = {}
        self._latest: dict[str, int] | None = None
        self._load_dictionaries()

    # ---- connections and transactions ----------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._conn is not None:
            mark = len(self._undo)
            try:
                with self._conn.begin_nested():
                    yield
            except BaseException:
                self._run_undo(mark)
                raise
            return
        conn = self.engine.connect()
        self._conn = conn
        self._undo = []
        self._latest = None
        try:
            with conn.begin():
                yield
        except BaseException:
            self._run_undo(0)
            raise
        finally:
            self._conn = None
            self._undo = []
            self._latest = None
            conn.close()

    def _run_undo(self, mark: int) -> None:
        """Undo what rolled-back work did to in-process state (schema, caches)."""
        while len(self._undo) > mark:
            self._undo.pop()()
        self._latest = None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _use(self) -> Iterator[Connection]:
        if self._conn is not None:
            yield self._conn
            return
        with self.transaction():
            assert self._conn is not None
            yield self._conn

    def _lock(self, stmt: Any) -> Any:
        return stmt.with_for_update() if self.pg else stmt

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.pg else sqlite.insert)(table)

    def _counter(self, c: Connection, name: str) -> int:
        stmt = self._insert(t.sequences).values(name=name, value=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"], set_={"value": t.sequences.c.value + 1}
        ).returning(t.sequences.c.value)
        return int(c.execute(stmt).scalar_one())

    def _seq(self, c: Connection) -> int:
        """A number increasing with every insert (``seq`` columns order rows by creation)."""
        if self.pg:
            return int(c.execute(text("SELECT nextval('flowlane_seq')")).scalar_one())
        return self._counter(c, "seq")

    # ---- World --------------------------------------------------------------------------------

    def get_object(self, object_id: str) -> ObjectRecord | None:
        with self._use() as c:
            row = c.execute(
                select(t.objects.c.type, t.objects.c.data).where(t.objects.c.id == object_id)
            ).first()
        if row is None:
            return None
        return ObjectRecord(object_id, row.type, decode_value(row.data))

    def users(self, selector: str) -> list[str]:
        kind, _, value = selector.partition(":")
        if kind == "user":
            rec = self.get_object(value)
            return [value] if rec is not None else []
        out = []
        for oid in self.objects_of_type("user"):
            rec = self.get_object(oid)
            assert rec is not None
            if (kind == "group" and value in (rec.data.get("groups") or [])) or (
                kind == "role" and rec.data.get("role") == value
            ):
                out.append(oid)
        return out

    def open_task_count(self, user_id: str) -> int:
        with self._use() as c:
            return int(
                c.execute(
                    select(func.count())
                    .select_from(t.tasks)
                    .where(t.tasks.c.assignee == user_id, t.tasks.c.closed.is_(False))
                ).scalar_one()
            )

    def find_objects(
        self, type_key: str, where: Expression | None, scope: Callable[[str], Any]
    ) -> list[str]:
        ids = self.objects_of_type(type_key)
        if where is None:
            return ids
        return [oid for oid in ids if where.test(scope(oid))]

    def definition(self, key: str) -> Definition | None:
        latest = self._latest_versions().get(key)
        return None if latest is None else self.version(key, latest)

    def template(self, name: str) -> Template | None:
        return self.templates.get(name)

    # ---- processes -------------------------------------------------------------------------

    def _latest_versions(self) -> dict[str, int]:
        if self._conn is not None and self._latest is not None:
            return self._latest
        with self._use() as c:
            rows = c.execute(
                select(t.process_versions.c.key, func.max(t.process_versions.c.version)).group_by(
                    t.process_versions.c.key
                )
            ).all()
        latest = {row[0]: int(row[1]) for row in rows}
        if self._conn is not None:
            self._latest = latest
        return latest

    def deploy(self, definition: Definition) -> Definition:
        with self._use() as c:
            current = self.definition(definition.key)
            if current is not None and current.spec == definition.spec:
                return current
            number = (current.version if current else 0) + 1
            version = Definition.build(definition.spec, version=number, source=definition.source)
            c.execute(
                insert(t.process_versions).values(
                    key=definition.key,
                    version=number,
                    source=definition.source or "",
                    spec=definition.spec.model_dump(mode="json", by_alias=True, exclude_unset=True),
                    deployed_at=_utcnow(),
                )
            )
            self._latest = None
        self._defs[(definition.key, number)] = version
        self._undo.append(lambda: self._defs.pop((definition.key, number), None))
        return version

    def version(self, key: str, version: int) -> Definition:
        found = self._defs.get((key, version))
        if found is not None:
            return found
        with self._use() as c:
            row = c.execute(
                select(t.process_versions.c.spec, t.process_versions.c.source).where(
                    t.process_versions.c.key == key, t.process_versions.c.version == version
                )
            ).first()
        if row is None:
            raise NotFound(f"process {key!r} has no version {version}")
        spec = ProcessFile.model_validate(row.spec)
        built = Definition.build(spec, version=version, source=row.source or "")
        self._defs[(key, version)] = built
        return built

    def process_keys(self) -> list[str]:
        return sorted(self._latest_versions())

    # ---- ids ---------------------------------------------------------------------------------

    def new_instance_id(self) -> str:
        with self._use() as c:
            return f"i{self._counter(c, 'instance')}"

    def new_object_id(self, type_key: str) -> str:
        with self._use() as c:
            return f"{type_key}-{self._counter(c, 'object:' + type_key)}"

    # ---- instances ---------------------------------------------------------------------------

    def get_instance(self, instance_id: str) -> InstanceState | None:
        with self._use() as c:
            row = c.execute(
                self._lock(select(t.instances.c.state).where(t.instances.c.id == instance_id))
            ).first()
        return None if row is None else from_dict(row.state)

    def put_instance(self, state: InstanceState) -> None:
        values = {
            "process": state.process,
            "version": state.version,
            "object_id": state.object_id,
            "status": state.status,
            "parent_id": state.parent["id"] if state.parent else None,
            "state": to_dict(state),
            "updated_at": _utcnow(),
        }
        with self._use() as c:
            done = c.execute(update(t.instances).where(t.instances.c.id == state.id).values(values))
            if done.rowcount == 0:
                c.execute(insert(t.instances).values(id=state.id, seq=self._seq(c), **values))

    def _instances(self, *where: ColumnElement[bool]) -> list[InstanceState]:
        with self._use() as c:
            rows = c.execute(
                select(t.instances.c.state).where(*where).order_by(t.instances.c.seq)
            ).all()
        return [from_dict(row.state) for row in rows]

    def instances_of(
        self, process: str | None = None, object_id: str | None = None
    ) -> list[InstanceState]:
        where = []
        if process is not None:
            where.append(t.instances.c.process == process)
        if object_id is not None:
            where.append(t.instances.c.object_id == object_id)
        return self._instances(*where)

    def children_of(self, parent_ids: set[str]) -> list[InstanceState]:
        if not parent_ids:
            return []
        return self._instances(t.instances.c.parent_id.in_(sorted(parent_ids)))

    def subscribe(self, instance_id: str, object_ids: tuple[str, ...]) -> None:
        with self._use() as c:
            c.execute(delete(t.subscriptions).where(t.subscriptions.c.instance_id == instance_id))
            if object_ids:
                c.execute(
                    insert(t.subscriptions),
                    [{"object_id": oid, "instance_id": instance_id} for oid in set(object_ids)],
                )

    def waiting_on(self, object_id: str) -> list[str]:
        with self._use() as c:
            rows = c.execute(
                select(t.subscriptions.c.instance_id)
                .join(t.instances, t.instances.c.id == t.subscriptions.c.instance_id)
                .where(t.subscriptions.c.object_id == object_id)
                .order_by(t.instances.c.seq)
            ).all()
        return [row[0] for row in rows]

    # ---- launch bookkeeping ------------------------------------------------------------------

    def has_entered(self, process: str, object_id: str) -> bool:
        with self._use() as c:
            return (
                c.execute(
                    select(t.entered.c.process).where(
                        t.entered.c.process == process, t.entered.c.object_id == object_id
                    )
                ).first()
                is not None
            )

    def mark_entered(self, process: str, object_id: str) -> None:
        with self._use() as c:
            c.execute(
                self._insert(t.entered)
                .values(process=process, object_id=object_id)
                .on_conflict_do_nothing()
            )

    def forget_entered(self, process: str) -> None:
        with self._use() as c:
            c.execute(delete(t.entered).where(t.entered.c.process == process))

    def matched(self, process: str) -> set[str]:
        with self._use() as c:
            rows = c.execute(
                select(t.matched.c.object_id).where(t.matched.c.process == process)
            ).all()
        return {row[0] for row in rows}

    def set_matched(self, process: str, object_ids: set[str]) -> None:
        with self._use() as c:
            c.execute(delete(t.matched).where(t.matched.c.process == process))
            if object_ids:
                c.execute(
                    insert(t.matched),
                    [{"process": process, "object_id": oid} for oid in sorted(object_ids)],
                )

    def is_approved(self, process: str) -> bool:
        with self._use() as c:
            return (
                c.execute(
                    select(t.approvals.c.process).where(t.approvals.c.process == process)
                ).first()
                is not None
            )

    def approve(self, process: str, by: str | None, at: datetime) -> None:
        with self._use() as c:
            c.execute(
                self._insert(t.approvals)
                .values(process=process, by=by or "", at=at)
                .on_conflict_do_nothing()
            )

    # ---- objects -----------------------------------------------------------------------------

    def put_object(self, record: ObjectRecord, at: datetime) -> None:
        data = encode_value(record.data)
        with self._use() as c:
            done = c.execute(
                update(t.objects)
                .where(t.objects.c.id == record.id)
                .values(data=data, updated_at=at)
            )
            if done.rowcount == 0:
                c.execute(
                    insert(t.objects).values(
                        id=record.id, type=record.type, data=data, created_at=at, updated_at=at
                    )
                )

    def update_object(
        self, object_id: str, changes: dict[str, Any], at: datetime
    ) -> dict[str, Any]:
        with self._use() as c:
            row = c.execute(
                self._lock(select(t.objects.c.data).where(t.objects.c.id == object_id))
            ).first()
            if row is None:
                raise NotFound(f"object {object_id!r} does not exist")
            before: dict[str, Any] = decode_value(row.data)
            after = {**before, **changes}
            c.execute(
                update(t.objects)
                .where(t.objects.c.id == object_id)
                .values(data=encode_value(after), updated_at=at)
            )
        return before

    def objects_of_type(self, type_key: str) -> list[str]:
        with self._use() as c:
            rows = c.execute(
                select(t.objects.c.id).where(t.objects.c.type == type_key).order_by(t.objects.c.id)
            ).all()
        return [row[0] for row in rows]

    def user_by_email(self, email: str) -> str | None:
        for oid in self.objects_of_type("user"):
            rec = self.get_object(oid)
            if rec is not None and rec.data.get("email") == email:
                return oid
        return None

    def add_dictionary_value(self, key: str, value: str, at: datetime) -> None:
        with self._use() as c:
            if self.schema.add_dictionary_value(key, value):
                self._undo.append(lambda: self.schema.dictionaries[key].remove(value))
                c.execute(
                    self._insert(t.dictionary_values)
                    .values(dictionary=key, value=value, added_at=at)
                    .on_conflict_do_nothing()
                )

    def _load_dictionaries(self) -> None:
        """Values added to dictionaries after the schema file was written."""
        with self.engine.connect() as c:
            rows = c.execute(
                select(t.dictionary_values.c.dictionary, t.dictionary_values.c.value).order_by(
                    t.dictionary_values.c.added_at, t.dictionary_values.c.value
                )
            ).all()
        for row in rows:
            if row.dictionary in self.schema.dictionaries:
                self.schema.add_dictionary_value(row.dictionary, row.value)

    # ---- tasks ---------------------------------------------------------------------------------

    def put_task(self, task: TaskRecord) -> None:
        values = {
            "instance_id": task.instance_id,
            "process": task.process,
            "block": task.block,
            "kind": task.kind,
            "object_id": task.object_id,
            "assignee": task.assignee,
            "status": task.status,
            "closed": task.closed,
            "priority": task.priority,
            "reaction_s": task.reaction_s,
            "created_at": task.created_at,
            "closed_at": task.closed_at,
            "data": encode_value(
                {
                    "title": task.title,
                    "text": task.text,
                    "options": list(task.options),
                    "fields": task.fields,
                    "workflow": task.workflow,
                    "waits": task.waits,
                    "answer": task.answer,
                    "comments": task.comments,
                    "history": task.history,
                }
            ),
        }
        with self._use() as c:
            done = c.execute(update(t.tasks).where(t.tasks.c.id == task.id).values(values))
            if done.rowcount == 0:
                c.execute(insert(t.tasks).values(id=task.id, seq=self._seq(c), **values))

    def _task(self, row: Row[Any]) -> TaskRecord:
        data = decode_value(row.data)
        return TaskRecord(
            id=row.id,
            instance_id=row.instance_id,
            process=row.process,
            block=row.block,
            kind=row.kind,
            object_id=row.object_id,
            title=data["title"],
            text=data["text"],
            assignee=row.assignee,
            options=tuple(data["options"]),
            fields=data["fields"],
            workflow=data["workflow"],
            waits=data["waits"],
            priority=row.priority,
            reaction_s=row.reaction_s,
            created_at=row.created_at.astimezone(self.tz),
            status=row.status,
            closed=row.closed,
            closed_at=row.closed_at.astimezone(self.tz) if row.closed_at else None,
            answer=data["answer"],
            comments=data["comments"],
            history=data["history"],
        )

    def get_task(self, task_id: str) -> TaskRecord | None:
        with self._use() as c:
            row = c.execute(self._lock(select(t.tasks).where(t.tasks.c.id == task_id))).first()
        return None if row is None else self._task(row)

    def find_tasks(
        self,
        *,
        open_only: bool = False,
        block: str | None = None,
        object_id: str | None = None,
        process: str | None = None,
        instance_ids: set[str] | None = None,
    ) -> list[TaskRecord]:
        where: list[ColumnElement[bool]] = []
        if open_only:
            where.append(t.tasks.c.closed.is_(False))
        if block is not None:
            where.append(t.tasks.c.block == block)
        if object_id is not None:
            where.append(t.tasks.c.object_id == object_id)
        if process is not None:
            where.append(t.tasks.c.process == process)
        if instance_ids is not None:
            if not instance_ids:
                return []
            where.append(t.tasks.c.instance_id.in_(sorted(instance_ids)))
        with self._use() as c:
            rows = c.execute(select(t.tasks).where(*where).order_by(t.tasks.c.seq)).all()
        return [self._task(row) for row in rows]

    def delete_tasks(self, task_ids: list[str]) -> None:
        if not task_ids:
            return
        with self._use() as c:
            c.execute(delete(t.tasks).where(t.tasks.c.id.in_(task_ids)))

    def count_task_created(self, process: str, block: str, object_id: str | None) -> None:
        stmt = self._insert(t.task_counts).values(
            process=process, block=block, object_id=object_id or "", count=1
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["process", "block", "object_id"],
            set_={"count": t.task_counts.c.count + 1},
        )
        with self._use() as c:
            c.execute(stmt)

    def tasks_created(self) -> dict[tuple[str, str, str | None], int]:
        with self._use() as c:
            rows = c.execute(select(t.task_counts)).all()
        return {(r.process, r.block, r.object_id or None): int(r._mapping["count"]) for r in rows}

    # ---- timers ----------------------------------------------------------------------------------

    def add_timer(self, timer: TimerRecord) -> None:
        with self._use() as c:
            seq = self._seq(c)
            timer.order = seq
            c.execute(
                insert(t.jobs).values(
                    id=timer.id,
                    kind=timer.kind,
                    instance_id=timer.instance_id,
                    payload={"process": timer.process} if timer.process else {},
                    due_at=timer.due_at,
                    seq=seq,
                    status="ready",
                    attempts=0,
                )
            )

    def cancel_timer(self, timer_id: str) -> None:
        with self._use() as c:
            c.execute(delete(t.jobs).where(t.jobs.c.id == timer_id))

    def _timer(self, row: Row[Any]) -> TimerRecord:
        return TimerRecord(
            id=row.id,
            instance_id=row.instance_id,
            due_at=row.due_at.astimezone(self.tz),
            order=int(row.seq),
            kind=row.kind,
            process=(row.payload or {}).get("process"),
        )

    def next_timer(self, until: datetime) -> TimerRecord | None:
        with self._use() as c:
            row = c.execute(
                select(t.jobs)
                .where(
                    t.jobs.c.kind.in_(TIMER_KINDS),
                    t.jobs.c.status == "ready",
                    t.jobs.c.due_at <= until,
                )
                .order_by(t.jobs.c.due_at, t.jobs.c.seq)
                .limit(1)
            ).first()
        return None if row is None else self._timer(row)

    def pop_timer(self, timer_id: str) -> TimerRecord | None:
        with self._use() as c:
            row = c.execute(
                delete(t.jobs)
                .where(t.jobs.c.id == timer_id, t.jobs.c.kind.in_(TIMER_KINDS))
                .returning(*t.jobs.c)
            ).first()
        return None if row is None else self._timer(row)

    # ---- effects ---------------------------------------------------------------------------------

    def _add_outbox(self, message: MessageRecord, kind: str) -> None:
        email = kind == "message" and message.channel == "email"
        status = "queued" if email or message.channel == "webhook" else "sent"
        message.status = status
        with self._use() as c:
            seq = self._seq(c)
            c.execute(
                insert(t.outbox).values(
                    id=message.id,
                    instance_id=message.instance_id,
                    process=message.process,
                    block=message.block,
                    channel=message.channel,
                    to=message.to,
                    recipient=message.recipient,
                    subject=message.subject,
                    body=message.body,
                    created_at=message.created_at,
                    status=status,
                    attempts=0,
                    seq=seq,
                    kind=kind,
                )
            )
            if email:
                c.execute(
                    insert(t.jobs).values(
                        id=f"deliver:{message.id}",
                        kind="deliver",
                        instance_id=message.instance_id,
                        payload={"outbox": message.id},
                        due_at=message.created_at,
                        seq=seq,
                        status="ready",
                        attempts=0,
                    )
                )

    def _outbox(self, kind: str, since: int) -> list[MessageRecord]:
        return self._outbox_rows(t.outbox.c.kind == kind, since=since)

    def _outbox_rows(self, where: ColumnElement[bool], since: int = 0) -> list[MessageRecord]:
        with self._use() as c:
            rows = c.execute(
                select(t.outbox).where(where).order_by(t.outbox.c.seq).offset(since)
            ).all()
        return [
            MessageRecord(
                id=r.id,
                instance_id=r.instance_id,
                process=r.process,
                block=r.block,
                channel=r.channel,
                to=r.to,
                recipient=r.recipient,
                subject=r.subject,
                body=r.body,
                created_at=r.created_at.astimezone(self.tz),
                status=r.status,
            )
            for r in rows
        ]

    def add_message(self, message: MessageRecord) -> None:
        self._add_outbox(message, "message")

    def messages(self, since: int = 0) -> list[MessageRecord]:
        return self._outbox("message", since)

    def add_notification(self, message: MessageRecord) -> None:
        self._add_outbox(message, "notification")

    def notifications(self, since: int = 0) -> list[MessageRecord]:
        return self._outbox("notification", since)

    def add_incident(self, incident: IncidentRecord) -> None:
        with self._use() as c:
            c.execute(
                insert(t.incidents).values(
                    instance_id=incident.instance_id,
                    block=incident.block,
                    message=incident.message,
                    at=incident.at,
                    resolved=incident.resolved,
                )
            )

    def resolve_incidents(self, instance_id: str) -> None:
        with self._use() as c:
            c.execute(
                update(t.incidents)
                .where(t.incidents.c.instance_id == instance_id)
                .values(resolved=True)
            )

    def incidents(self, open_only: bool = False) -> list[IncidentRecord]:
        stmt = select(t.incidents).order_by(t.incidents.c.id)
        if open_only:
            stmt = stmt.where(t.incidents.c.resolved.is_(False))
        with self._use() as c:
            rows = c.execute(stmt).all()
        return [
            IncidentRecord(r.instance_id, r.block, r.message, r.at.astimezone(self.tz), r.resolved)
            for r in rows
        ]

    def add_history(self, line: dict[str, Any]) -> None:
        with self._use() as c:
            c.execute(
                insert(t.history).values(
                    at=datetime.fromisoformat(line["time"]),
                    instance_id=line.get("instance"),
                    process=line.get("process"),
                    block=line.get("block"),
                    event=line["event"],
                    details=encode_value(line.get("details")),
                )
            )

    def history(self, instance_id: str | None = None) -> Iterator[dict[str, Any]]:
        stmt = select(t.history).order_by(t.history.c.id)
        if instance_id is not None:
            stmt = stmt.where(t.history.c.instance_id == instance_id)
        with self._use() as c:
            rows = c.execute(stmt).all()
        for r in rows:
            yield {
                "time": r.at.astimezone(self.tz).isoformat(),
                "instance": r.instance_id,
                "process": r.process,
                "block": r.block,
                "event": r.event,
                "details": decode_value(r.details),
            }


class JobQueue:
    """The durable job queue of a :class:`SqlStore`: claim with a lease, finish, retry.

    A claim is one short transaction of its own: ``UPDATE … WHERE id IN (SELECT … FOR
    UPDATE SKIP LOCKED) RETURNING`` on PostgreSQL, the same guarded update under SQLite's
    single writer. A job is claimable when it is ready and due, or when the lease of the
    worker that claimed it ran out (that worker died or hangs); a failed job waits out its
    backoff as a lease without a holder. Finishing deletes the job only if this worker still
    holds it, so a job whose lease passed to another worker is never run twice to completion.
    """

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def claim(
        self,
        now: datetime,
        worker: str,
        *,
        lease_s: float,
        limit: int,
        kinds: tuple[str, ...],
    ) -> list[Job]:
        j = t.jobs
        claimable = (
            select(j.c.id)
            .where(
                j.c.kind.in_(kinds),
                or_(
                    and_(j.c.status == "ready", j.c.due_at <= now),
                    and_(j.c.status == "locked", j.c.locked_until < now),
                ),
            )
            .order_by(j.c.due_at, j.c.seq)
            .limit(limit)
        )
        if self.store.pg:
            claimable = claimable.with_for_update(skip_locked=True)
        stmt = (
            update(j)
            .where(j.c.id.in_(claimable.scalar_subquery()))
            .values(
                status="locked",
                locked_by=worker,
                locked_until=now + timedelta(seconds=lease_s),
                attempts=j.c.attempts + 1,
            )
            .returning(*j.c)
        )
        with self.store.transaction(), self.store._use() as c:
            rows = c.execute(stmt).all()
        jobs = [self._job(r) for r in rows]
        jobs.sort(key=lambda job: (job.due_at, job.seq))
        return jobs

    def _job(self, r: Row[Any]) -> Job:
        return Job(
            id=r.id,
            kind=r.kind,
            instance_id=r.instance_id,
            payload=dict(r.payload or {}),
            due_at=r.due_at.astimezone(self.store.tz),
            seq=int(r.seq),
            attempts=int(r.attempts),
            last_error=r.last_error,
            status=r.status,
        )

    def finish(self, job: Job, worker: str) -> bool:
        """Delete the job if this worker still holds it (in the caller's transaction)."""
        with self.store._use() as c:
            done = c.execute(
                delete(t.jobs).where(
                    t.jobs.c.id == job.id,
                    t.jobs.c.status == "locked",
                    t.jobs.c.locked_by == worker,
                )
            )
        return bool(done.rowcount)

    def fail(self, job: Job, worker: str, error: str, *, retry_at: datetime | None) -> None:
        """Give the job back: to wait until ``retry_at`` (backoff), or as ``failed`` for good."""
        values: dict[str, Any] = {"last_error": error[:2000], "locked_by": None}
        if retry_at is None:
            values.update(status="failed", locked_until=None)
        else:
            values.update(status="locked", locked_until=retry_at)
        with self.store._use() as c:
            c.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job.id, t.jobs.c.locked_by == worker)
                .values(values)
            )

    def failed(self) -> list[Job]:
        with self.store._use() as c:
            rows = c.execute(
                select(t.jobs).where(t.jobs.c.status == "failed").order_by(t.jobs.c.seq)
            ).all()
        return [self._job(r) for r in rows]

    def retry(self, job_id: str) -> None:
        """Make a failed job ready again, with its attempts counted from zero."""
        with self.store._use() as c:
            done = c.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id, t.jobs.c.status == "failed")
                .values(status="ready", attempts=0, locked_until=None, locked_by=None)
            )
        if not done.rowcount:
            raise NotFound(f"no failed job {job_id!r}")

    def pending(self) -> dict[str, int]:
        """Jobs per status (for monitoring and tests)."""
        with self.store._use() as c:
            rows = c.execute(select(t.jobs.c.status, func.count()).group_by(t.jobs.c.status)).all()
        return {row[0]: int(row[1]) for row in rows}

    # ---- the outbox ------------------------------------------------------------------------

    def outbox_message(self, outbox_id: str) -> MessageRecord | None:
        found = [m for m in self.store._outbox_rows(t.outbox.c.id == outbox_id)]
        return found[0] if found else None

    def mark_sent(self, outbox_id: str, at: datetime) -> None:
        with self.store._use() as c:
            c.execute(
                update(t.outbox)
                .where(t.outbox.c.id == outbox_id)
                .values(status="sent", sent_at=at, attempts=t.outbox.c.attempts + 1)
            )

    def mark_undelivered(self, outbox_id: str, status: str, error: str) -> None:
        with self.store._use() as c:
            c.execute(
                update(t.outbox)
                .where(t.outbox.c.id == outbox_id)
                .values(status=status, last_error=error[:2000], attempts=t.outbox.c.attempts + 1)
            )


__all__ = ["JobQueue", "SqlStore"]
