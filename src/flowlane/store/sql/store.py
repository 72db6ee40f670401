"""``SqlStore``: the :class:`~flowlane.store.base.Store` on SQLite or PostgreSQL.

Every method runs on the connection of the open :meth:`SqlStore.transaction`, or in a
transaction of its own when none is open.

**Unit of work.** Within a transaction the store keeps an identity map of the instances,
objects and tasks it read or wrote, and buffers the writes of steps (instance states,
objects, tasks, history, outbox, incidents, counters) to send them in a few ``executemany``
statements: before a query that could read them, at the start of a nested transaction
(savepoint) and before commit. A rolled-back savepoint drops the map and the buffer, so
nothing of it survives in memory either. New timers (``jobs``) and subscriptions are written
at once: other transactions claim and look them up; fired and cancelled timers are deleted in
one statement at the next query of jobs or at the flush.

**Locks.** Rows a step reads and then writes are locked on PostgreSQL when first read in the
transaction (``SELECT … FOR UPDATE``: instances, tasks, objects being updated); SQLite runs
one writer at a time (``BEGIN IMMEDIATE``), so no lock is needed there.

Values that JSON cannot hold (dates, datetimes, durations) are stored tagged by
:func:`flowlane.engine.state.encode_value`. Timers and periodic checks are rows of ``jobs``;
email messages get a ``deliver`` job in the same transaction (the outbox).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import ColumnElement

from flowlane.core.errors import NotFound
from flowlane.engine.context import ObjectRecord
from flowlane.engine.state import InstanceState, decode_value, encode_value, from_dict, to_dict
from flowlane.expr import Expression
from flowlane.model.definition import Definition
from flowlane.model.form import FormSpec
from flowlane.model.process import ProcessFile
from flowlane.model.template import Template
from flowlane.objects import ObjectType, Schema, load_type, type_spec
from flowlane.store.auth import ApiTokenRecord, SessionRecord
from flowlane.store.match import matcher
from flowlane.store.records import (
    DeliveryRecord,
    IncidentRecord,
    Job,
    MessageRecord,
    ProcessStatus,
    SinkMail,
    TaskCount,
    TaskQuery,
    TaskRecord,
    TimerRecord,
    VersionInfo,
)
from flowlane.store.sql import tables as t
from flowlane.store.sql.bulk import BulkWriter
from flowlane.store.sql.segment import (
    Segment,
    compile_segment,
    decode_object_data,
    encode_object_data,
    index_statements,
)
from flowlane.store.taskquery import matches, priority_rank

DEFAULT_TZ = "Europe/Moscow"
TIMER_KINDS = ("timer", "periodic")
WEBHOOK_JOB_PREFIX = "webhook:"
"""The id prefix of webhook deliveries (``deliver`` jobs that need no SMTP server)."""
_SEQ_BLOCK = 200
"""``nextval`` values PostgreSQL hands out per round trip (gaps are harmless)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _instance_order(instance_id: str) -> tuple[int, str]:
    head = instance_id.split(".", 1)[0]
    return (int(head[1:]) if head[1:].isdigit() else 0, instance_id)


class _InTx:
    """The context manager :meth:`SqlStore._txn` returns inside a transaction."""

    __slots__ = ("store",)

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def __enter__(self) -> _Tx:
        tx = self.store._tx
        assert tx is not None
        return tx

    def __exit__(self, *_exc: object) -> None:
        return None


@dataclass
class _Tx:
    """What one transaction knows and still has to write."""

    conn: Connection
    latest: dict[str, int] | None = None
    approved: dict[str, bool] = field(default_factory=dict)
    statuses: dict[str, ProcessStatus | None] = field(default_factory=dict)
    """Process lifecycles read or written by this transaction (None: no row)."""
    instances: dict[str, InstanceState] = field(default_factory=dict)
    objects: dict[str, ObjectRecord | None] = field(default_factory=dict)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    locked: set[tuple[str, str]] = field(default_factory=set)
    """(table, id) rows locked by this transaction (PostgreSQL)."""
    counters: dict[str, int] = field(default_factory=dict)
    no_timer_until: datetime | None = None
    watchers: dict[str, set[str]] = field(default_factory=dict)
    """Who waits on an object, as far as this transaction looked it up."""
    gone_jobs: set[str] = field(default_factory=set)
    """Timer jobs this transaction cancelled or fired."""
    delete_jobs: set[str] = field(default_factory=set)
    """Of those, the ones whose rows are still to delete."""
    # ---- buffered writes ----
    dirty_counters: set[str] = field(default_factory=set)
    put_instances: dict[str, tuple[InstanceState, int]] = field(default_factory=dict)
    put_objects: dict[str, tuple[ObjectRecord, datetime]] = field(default_factory=dict)
    put_tasks: dict[str, tuple[TaskRecord, int]] = field(default_factory=dict)
    put_timers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Timer job rows to insert (a timer cancelled in the same transaction never is)."""
    seqs: dict[tuple[str, str], int] = field(default_factory=dict)
    """Creation order of rows this transaction inserts, by (table, id)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    entered: set[tuple[str, str]] = field(default_factory=set)
    task_counts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)

    def forget(self) -> None:
        """Drop what is known and buffered (after a savepoint rolled back)."""
        conn = self.conn
        self.__init__(conn)  # type: ignore[misc]


class SqlStore:
    """Objects, processes, instances, tasks, jobs, outbox and history in a SQL database."""

    def __init__(
        self,
        engine: Engine,
        schema: Schema,
        *,
        tz: tzinfo | None = None,
        templates: dict[str, Template] | None = None,
        forms: dict[str, FormSpec] | None = None,
        secret: bytes = b"flowlane-dev-secret",
        id_block: int = 1,
    ) -> None:
        self.engine = engine
        self.id_block = id_block
        self._id_pools: dict[str, list[int]] = {}
        self.schema = schema
        self.tz = tz or ZoneInfo(DEFAULT_TZ)
        self.templates = dict(templates or {})
        self.forms = dict(forms or {})
        self.secret = secret
        self.pg = engine.dialect.name == "postgresql"
        self._tx: _Tx | None = None
        self._in_tx = _InTx(self)
        self._undo: list[Callable[[], object]] = []
        self._defs: dict[tuple[str, int], Definition] = {}
        self._seq_pool: list[int] = []
        self._stmts = _Statements(self.pg)
        self._bulk = BulkWriter(engine.dialect.name)
        self._last_time: tuple[str, datetime] = ("", datetime.min.replace(tzinfo=UTC))
        self._stored_types: set[str] = set()
        """Keys of the types stored in ``object_types`` (the others came with the schema)."""
        self._load_schema()

    # ---- connections and transactions ----------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        tx = self._tx
        if tx is not None:
            self._flush()
            mark = len(self._undo)
            try:
                with tx.conn.begin_nested():
                    yield
                    self._flush()
            except BaseException:
                tx.forget()
                self._run_undo(mark)
                raise
            return
        conn = self.engine.connect()
        self._tx = _Tx(conn)
        self._undo = []
        try:
            with conn.begin():
                yield
                self._flush()
        except BaseException:
            self._run_undo(0)
            raise
        finally:
            self._tx = None
            self._undo = []
            conn.close()

    def _run_undo(self, mark: int) -> None:
        """Undo what rolled-back work did to in-process state (schema, caches)."""
        while len(self._undo) > mark:
            self._undo.pop()()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _use(self) -> Iterator[Connection]:
        """The open transaction's connection (one is opened for the call if none is)."""
        with self._txn() as tx:
            yield tx.conn

    def _txn(self) -> AbstractContextManager[_Tx]:
        """The open transaction's state (one is opened for the call if none is).

        Called for every read and write of a step: inside a transaction it costs one
        attribute lookup and two trivial calls (a generator-based context manager would
        cost several times that).
        """
        if self._tx is not None:
            return self._in_tx
        return self._own_txn()

    @contextmanager
    def _own_txn(self) -> Iterator[_Tx]:
        with self.transaction():
            assert self._tx is not None
            yield self._tx

    @contextmanager
    def _query(self) -> Iterator[Connection]:
        """A connection for a query that must see this transaction's buffered writes."""
        with self._txn() as tx:
            self._flush()
            yield tx.conn

    def _lock(self, stmt: Any) -> Any:
        return stmt.with_for_update() if self.pg else stmt

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.pg else sqlite.insert)(table)

    def _counter(self, tx: _Tx, name: str) -> int:
        """The next value of a named counter; the first use in a transaction locks its row.

        With ``id_block`` > 1 on PostgreSQL, ids come instead from blocks reserved in short
        transactions of their own, so that concurrent transactions do not queue on the
        counter's row; an id of a rolled-back transaction is then skipped, never reused.
        """
        if self.pg and self.id_block > 1 and name != "seq":
            return self._pooled(name)
        value = tx.counters.get(name)
        if value is None:
            stmt = self._insert(t.sequences).values(name=name, value=1)
            stmt = stmt.on_conflict_do_update(
                index_elements=["name"], set_={"value": t.sequences.c.value + 1}
            ).returning(t.sequences.c.value)
            value = int(tx.conn.execute(stmt).scalar_one())
        else:
            value += 1
            tx.dirty_counters.add(name)
        tx.counters[name] = value
        return value

    def _pooled(self, name: str) -> int:
        pool = self._id_pools.setdefault(name, [])
        if not pool:
            stmt = self._insert(t.sequences).values(name=name, value=self.id_block)
            stmt = stmt.on_conflict_do_update(
                index_elements=["name"], set_={"value": t.sequences.c.value + self.id_block}
            ).returning(t.sequences.c.value)
            with self.engine.begin() as own:
                last = int(own.execute(stmt).scalar_one())
            pool.extend(range(last, last - self.id_block, -1))
        return pool.pop()

    def _seq(self, tx: _Tx) -> int:
        """A number increasing with every insert (``seq`` columns order rows by creation)."""
        if not self.pg:
            return self._counter(tx, "seq")
        if not self._seq_pool:
            rows = tx.conn.execute(
                text("SELECT nextval('flowlane_seq') FROM generate_series(1, :n)"),
                {"n": _SEQ_BLOCK},
            ).all()
            self._seq_pool = sorted((int(r[0]) for r in rows), reverse=True)
        return self._seq_pool.pop()

    def _row_seq(self, tx: _Tx, table: str, row_id: str) -> int:
        key = (table, row_id)
        seq = tx.seqs.get(key)
        if seq is None:
            seq = tx.seqs[key] = self._seq(tx)
        return seq

    # ---- the buffer --------------------------------------------------------------------------

    def _flush(self) -> None:
        tx = self._tx
        if tx is None:
            return
        c = tx.conn
        st = self._stmts
        if tx.dirty_counters:
            c.execute(
                st.set_counter,
                [{"n": name, "v": tx.counters[name]} for name in sorted(tx.dirty_counters)],
            )
            tx.dirty_counters.clear()
        bulk = self._bulk
        self._delete_jobs(tx)
        if tx.put_instances:
            now = _utcnow()
            bulk.write(
                c,
                t.instances,
                [
                    {
                        "id": state.id,
                        "process": state.process,
                        "version": state.version,
                        "object_id": state.object_id,
                        "status": state.status,
                        "parent_id": state.parent["id"] if state.parent else None,
                        "state": to_dict(state),
                        "updated_at": now,
                        "seq": seq,
                    }
                    for state, seq in tx.put_instances.values()
                ],
                conflict=("id",),
                update=(
                    "process",
                    "version",
                    "object_id",
                    "status",
                    "parent_id",
                    "state",
                    "updated_at",
                ),
            )
            tx.put_instances.clear()
        if tx.put_objects:
            bulk.write(
                c,
                t.objects,
                [
                    {
                        "id": rec.id,
                        "type": rec.type,
                        "data": encode_object_data(rec.data),
                        "created_at": at,
                        "updated_at": at,
                    }
                    for rec, at in tx.put_objects.values()
                ],
                conflict=("id",),
                update=("data", "updated_at"),
            )
            tx.put_objects.clear()
        if tx.put_tasks:
            bulk.write(
                c,
                t.tasks,
                [_task_row(task, seq, self.tz) for task, seq in tx.put_tasks.values()],
                conflict=("id",),
                update=_TASK_UPDATES,
            )
            tx.put_tasks.clear()
        self._write_timers(tx)
        for table, rows in (
            (t.history, tx.history),
            (t.outbox, tx.outbox),
            (t.jobs, tx.jobs),
            (t.incidents, tx.incidents),
        ):
            if rows:
                bulk.write(c, table, rows)
                rows.clear()
        if tx.entered:
            bulk.write(
                c,
                t.entered,
                [{"process": p, "object_id": o} for p, o in sorted(tx.entered)],
                conflict=("process", "object_id"),
            )
            tx.entered.clear()
        if tx.task_counts:
            bulk.write(
                c,
                t.task_counts,
                [
                    {"process": p, "block": b, "object_id": o, "count": n}
                    for (p, b, o), n in tx.task_counts.items()
                ],
                conflict=("process", "block", "object_id"),
                add=("count",),
            )
            tx.task_counts.clear()

    # ---- World --------------------------------------------------------------------------------

    def get_object(self, object_id: str) -> ObjectRecord | None:
        with self._txn() as tx:
            if object_id in tx.objects:
                return tx.objects[object_id]
            row = tx.conn.execute(self._stmts.get_object, {"id": object_id}).first()
            rec = None if row is None else ObjectRecord(object_id, row.type, self._data(row.data))
            tx.objects[object_id] = rec
            return rec

    def users(self, selector: str) -> list[str]:
        kind, _, value = selector.partition(":")
        if kind == "user":
            rec = self.get_object(value)
            return [value] if rec is not None and rec.type == "user" else []
        out = []
        for rec in self._objects("user"):
            if (kind == "group" and value in (rec.data.get("groups") or [])) or (
                kind == "role" and rec.data.get("role") == value
            ):
                out.append(rec.id)
        return out

    def _objects(self, type_key: str) -> list[ObjectRecord]:
        """Every object of a type, sorted by id (through the identity map)."""
        with self._query() as c, self._txn() as tx:
            rows = c.execute(
                select(t.objects.c.id, t.objects.c.data)
                .where(t.objects.c.type == type_key)
                .order_by(t.objects.c.id)
            ).all()
            out = []
            for row in rows:
                rec = tx.objects.get(row.id)
                if rec is None:
                    rec = tx.objects[row.id] = ObjectRecord(row.id, type_key, self._data(row.data))
                out.append(rec)
            return out

    def open_task_count(self, user_id: str) -> int:
        with self._query() as c:
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
        with self._txn() as tx:
            if tx.latest is None:
                rows = tx.conn.execute(
                    select(
                        t.process_versions.c.key, func.max(t.process_versions.c.version)
                    ).group_by(t.process_versions.c.key)
                ).all()
                tx.latest = {row[0]: int(row[1]) for row in rows}
            return tx.latest

    def deploy(self, definition: Definition) -> Definition:
        with self._txn() as tx:
            current = self.definition(definition.key)
            if current is not None and current.spec == definition.spec:
                return current
            number = (current.version if current else 0) + 1
            version = Definition.build(definition.spec, version=number, source=definition.source)
            tx.conn.execute(
                insert(t.process_versions).values(
                    key=definition.key,
                    version=number,
                    source=definition.source or "",
                    spec=definition.spec.model_dump(mode="json", by_alias=True, exclude_unset=True),
                    deployed_at=_utcnow(),
                )
            )
            tx.latest = None
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

    def process_versions(self, key: str) -> list[VersionInfo]:
        pv = t.process_versions.c
        with self._use() as c:
            rows = c.execute(
                select(pv.version, pv.deployed_at, pv.source)
                .where(pv.key == key)
                .order_by(pv.version)
            ).all()
        return [
            VersionInfo(
                key,
                int(r.version),
                r.deployed_at.astimezone(self.tz) if r.deployed_at is not None else None,
                r.source or "",
            )
            for r in rows
        ]

    # ---- ids ---------------------------------------------------------------------------------

    def new_instance_id(self) -> str:
        with self._txn() as tx:
            return f"i{self._counter(tx, 'instance')}"

    def new_object_id(self, type_key: str) -> str:
        with self._txn() as tx:
            return f"{type_key}-{self._counter(tx, 'object:' + type_key)}"

    # ---- instances ---------------------------------------------------------------------------

    def get_instance(self, instance_id: str) -> InstanceState | None:
        with self._txn() as tx:
            key = ("instances", instance_id)
            known = tx.instances.get(instance_id)
            if known is not None and (not self.pg or key in tx.locked):
                return known
            row = tx.conn.execute(self._stmts.get_instance, {"id": instance_id}).first()
            if self.pg:
                tx.locked.add(key)
            if instance_id in tx.put_instances:
                return tx.put_instances[instance_id][0]
            if row is None:
                return None
            state = tx.instances[instance_id] = from_dict(row.state)
            return state

    def put_instance(self, state: InstanceState) -> None:
        with self._txn() as tx:
            key = ("instances", state.id)
            if key in tx.seqs or state.id not in tx.instances:
                seq = self._row_seq(tx, "instances", state.id)
                if self.pg and state.id not in tx.instances:
                    tx.locked.add(key)  # new: no other transaction can see it yet
            else:
                seq = 0  # the row exists; its seq stays
            tx.instances[state.id] = state
            tx.put_instances[state.id] = (state, seq)

    def _instances(self, *where: ColumnElement[bool]) -> list[InstanceState]:
        with self._query() as c, self._txn() as tx:
            rows = c.execute(
                select(t.instances.c.id, t.instances.c.state)
                .where(*where)
                .order_by(t.instances.c.seq)
            ).all()
            out = []
            for row in rows:
                state = tx.instances.get(row.id)
                if state is None:
                    state = tx.instances[row.id] = from_dict(row.state)
                out.append(state)
            return out

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

    def find_instances(
        self,
        *,
        process: str | None = None,
        object_id: str | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[InstanceState], int]:
        ic = t.instances.c
        where = [
            column == value
            for column, value in (
                (ic.process, process),
                (ic.object_id, object_id),
                (ic.status, status),
            )
            if value is not None
        ]
        with self._query() as c, self._txn() as tx:
            total = int(
                c.execute(select(func.count()).select_from(t.instances).where(*where)).scalar_one()
            )
            rows = c.execute(
                select(ic.id, ic.state)
                .where(*where)
                .order_by(ic.seq.desc())
                .offset(offset)
                .limit(limit)
            ).all()
            out = []
            for row in rows:
                state = tx.instances.get(row.id)
                if state is None:
                    state = tx.instances[row.id] = from_dict(row.state)
                out.append(state)
        return out, total

    def instance_counts(self, process: str) -> dict[tuple[int, str], int]:
        ic = t.instances.c
        with self._query() as c:
            rows = c.execute(
                select(ic.version, ic.status, func.count())
                .where(ic.process == process)
                .group_by(ic.version, ic.status)
            ).all()
        return {(int(r[0]), str(r[1])): int(r[2]) for r in rows}

    def subscribe(self, instance_id: str, object_ids: tuple[str, ...]) -> bool:
        """Record what the instance waits on. On PostgreSQL the objects are locked FOR SHARE
        first, so a transaction changing one of them waits for this one to commit and then
        sees the subscription; True when an object changed since this transaction read it
        (the condition was evaluated on old data: the caller wakes the instance again)."""
        with self._txn() as tx:
            c = tx.conn
            stale = self._share_lock(tx, object_ids)
            c.execute(delete(t.subscriptions).where(t.subscriptions.c.instance_id == instance_id))
            if object_ids:
                c.execute(
                    insert(t.subscriptions),
                    [{"object_id": oid, "instance_id": instance_id} for oid in set(object_ids)],
                )
            for oid, waiting in tx.watchers.items():
                waiting.discard(instance_id)
                if oid in object_ids:
                    waiting.add(instance_id)
        return stale

    def _share_lock(self, tx: _Tx, object_ids: tuple[str, ...]) -> bool:
        if not self.pg or not object_ids:
            return False
        wanted = sorted(
            oid
            for oid in set(object_ids)
            if ("objects", oid) not in tx.locked and ("shared", oid) not in tx.locked
        )
        if not wanted:
            return False  # held by this transaction already: no one changed them since
        self._flush()
        rows = tx.conn.execute(
            select(t.objects.c.id, t.objects.c.type, t.objects.c.data)
            .where(t.objects.c.id.in_(wanted))
            .order_by(t.objects.c.id)
            .with_for_update(read=True)
        ).all()
        stale = False
        for row in rows:
            tx.locked.add(("shared", row.id))
            known = tx.objects.get(row.id)
            # Compared as stored (tuples are lists there), so that only a real change counts.
            if known is not None and encode_object_data(known.data) != row.data:
                stale = True
            tx.objects[row.id] = ObjectRecord(row.id, row.type, self._data(row.data))
        return stale

    def waiting_on(self, object_id: str) -> list[str]:
        with self._txn() as tx:
            waiting = tx.watchers.get(object_id)
            if waiting is None:
                rows = tx.conn.execute(self._stmts.waiting_on, {"id": object_id}).all()
                waiting = tx.watchers[object_id] = {row[0] for row in rows}
            return sorted(waiting, key=_instance_order)

    def prefetch(
        self,
        *,
        object_ids: list[str] | None = None,
        instance_ids: list[str] | None = None,
        lock_objects: bool = False,
    ) -> None:
        """Load objects (with who waits on them) and instances into this transaction at once.

        A batch of steps (a mass start, a worker's claimed timers) then reads from memory
        instead of asking the database once per object and instance. Instances are locked on
        PostgreSQL as :meth:`get_instance` would; objects too with ``lock_objects`` (when the
        batch will likely change them). Outside a transaction, does nothing.
        """
        tx = self._tx
        if tx is None:
            return
        chunk = 500
        lock = lock_objects and self.pg
        objects = sorted(
            oid
            for oid in set(object_ids or [])
            if oid not in tx.put_objects
            and (oid not in tx.objects or (lock and ("objects", oid) not in tx.locked))
        )
        for i in range(0, len(objects), chunk):
            part = objects[i : i + chunk]
            query = select(t.objects.c.id, t.objects.c.type, t.objects.c.data).where(
                t.objects.c.id.in_(part)
            )
            if lock:
                query = self._lock(query.order_by(t.objects.c.id))
            for row in tx.conn.execute(query).all():
                tx.objects[row.id] = ObjectRecord(row.id, row.type, self._data(row.data))
                if lock:
                    tx.locked.add(("objects", row.id))
            # Who waits on the objects, read after their locks: a transaction subscribing to
            # one of them meanwhile holds it FOR SHARE (see subscribe), so it committed first.
            waiting: dict[str, set[str]] = {oid: set() for oid in part}
            for sub in tx.conn.execute(
                select(t.subscriptions.c.object_id, t.subscriptions.c.instance_id).where(
                    t.subscriptions.c.object_id.in_(part)
                )
            ).all():
                waiting[sub.object_id].add(sub.instance_id)
            tx.watchers.update(waiting)
        wanted = sorted(
            iid
            for iid in set(instance_ids or [])
            if iid not in tx.put_instances and ("instances", iid) not in tx.locked
        )
        for i in range(0, len(wanted), chunk):
            part = wanted[i : i + chunk]
            rows = tx.conn.execute(
                self._lock(
                    select(t.instances.c.id, t.instances.c.state)
                    .where(t.instances.c.id.in_(part))
                    .order_by(t.instances.c.id)
                )
            ).all()
            for row in rows:
                tx.instances[row.id] = from_dict(row.state)
                if self.pg:
                    tx.locked.add(("instances", row.id))

    # ---- launch bookkeeping ------------------------------------------------------------------

    def has_entered(self, process: str, object_id: str) -> bool:
        with self._txn() as tx:
            if (process, object_id) in tx.entered:
                return True
            found = tx.conn.execute(self._stmts.has_entered, {"p": process, "o": object_id})
            return found.first() is not None

    def mark_entered(self, process: str, object_id: str) -> None:
        with self._txn() as tx:
            tx.entered.add((process, object_id))

    def forget_entered(self, process: str) -> None:
        with self._query() as c:
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
        with self._txn() as tx:
            known = tx.approved.get(process)
            if known is None:
                known = tx.approved[process] = (
                    tx.conn.execute(
                        select(t.approvals.c.process).where(t.approvals.c.process == process)
                    ).first()
                    is not None
                )
            return known

    def approve(self, process: str, by: str | None, at: datetime) -> None:
        with self._txn() as tx:
            tx.conn.execute(
                self._insert(t.approvals)
                .values(process=process, by=by or "", at=at)
                .on_conflict_do_nothing()
            )
            tx.approved[process] = True

    def revoke_approval(self, process: str) -> None:
        with self._txn() as tx:
            tx.conn.execute(delete(t.approvals).where(t.approvals.c.process == process))
            tx.approved[process] = False

    def setting(self, key: str) -> str | None:
        with self._query() as c:
            value = c.execute(
                select(t.account_settings.c.value).where(t.account_settings.c.key == key)
            ).scalar()
        return None if value is None else str(value)

    def setting_or_put(self, key: str, value: str) -> str:
        with self._txn() as tx:
            tx.conn.execute(
                self._insert(t.account_settings)
                .values(key=key, value=value)
                .on_conflict_do_nothing()
            )
            return str(
                tx.conn.execute(
                    select(t.account_settings.c.value).where(t.account_settings.c.key == key)
                ).scalar_one()
            )

    def add_form_submission(
        self,
        form: str,
        address_hash: str,
        at: datetime,
        object_id: str | None,
        *,
        accepted: bool = True,
    ) -> None:
        with self._txn() as tx:
            tx.conn.execute(
                insert(t.form_submissions).values(
                    form=form,
                    address_hash=address_hash,
                    at=at,
                    object_id=object_id,
                    accepted=accepted,
                )
            )

    def count_form_submissions(self, form: str, address_hash: str, since: datetime) -> int:
        table = t.form_submissions
        with self._query() as c:
            return int(
                c.execute(
                    select(func.count())
                    .select_from(table)
                    .where(
                        table.c.form == form,
                        table.c.address_hash == address_hash,
                        table.c.at >= since,
                    )
                ).scalar_one()
            )

    def last_form_submission(self, object_id: str) -> datetime | None:
        table = t.form_submissions
        with self._query() as c:
            last = c.execute(
                select(func.max(table.c.at)).where(
                    table.c.object_id == object_id, table.c.accepted.is_(True)
                )
            ).scalar_one()
        return last if isinstance(last, datetime) else None  # max() keeps Timestamp

    def lock_key(self, key: str) -> None:
        if not self.pg:
            return  # SQLite: BEGIN IMMEDIATE already runs one writer at a time
        digest = hashlib.sha256(key.encode()).digest()
        with self._txn() as tx:
            tx.conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"),
                {"key": int.from_bytes(digest[:8], "big", signed=True)},
            )

    def use_link(self, token_hash: str, object_id: str, at: datetime) -> bool:
        with self._txn() as tx:
            # The insert waits for a concurrent one of the same token to commit or roll back.
            inserted = tx.conn.execute(
                self._insert(t.used_links)
                .values(token_hash=token_hash, used_at=at, object_id=object_id)
                .on_conflict_do_nothing()
                .returning(t.used_links.c.token_hash)
            ).first()
            return inserted is not None

    def link_used(self, token_hash: str) -> bool:
        table = t.used_links
        with self._query() as c:
            found = c.execute(
                select(table.c.token_hash).where(table.c.token_hash == token_hash)
            ).first()
        return found is not None

    # ---- authentication ------------------------------------------------------------------

    def put_session(self, session: SessionRecord) -> None:
        with self._txn() as tx:
            tx.conn.execute(
                insert(t.auth_sessions).values(
                    id_hash=session.id_hash,
                    user_id=session.user_id,
                    csrf=session.csrf,
                    created_at=session.created_at,
                    expires_at=session.expires_at,
                )
            )

    def get_session(self, id_hash: str) -> SessionRecord | None:
        s = t.auth_sessions
        with self._query() as c:
            row = c.execute(select(s).where(s.c.id_hash == id_hash)).first()
        if row is None:
            return None
        return SessionRecord(row.id_hash, row.user_id, row.csrf, row.created_at, row.expires_at)

    def delete_sessions(self, *, id_hash: str | None = None, user_id: str | None = None) -> int:
        s = t.auth_sessions
        where = [s.c.id_hash == id_hash] if id_hash is not None else []
        if user_id is not None:
            where.append(s.c.user_id == user_id)
        if not where:
            return 0
        with self._txn() as tx:
            return int(tx.conn.execute(delete(s).where(or_(*where))).rowcount or 0)

    def put_api_token(self, token: ApiTokenRecord) -> None:
        with self._txn() as tx:
            tx.conn.execute(
                insert(t.api_tokens).values(
                    id=token.id,
                    token_hash=token.token_hash,
                    user_id=token.user_id,
                    name=token.name,
                    created_at=token.created_at,
                    last_used_at=token.last_used_at,
                    revoked_at=token.revoked_at,
                )
            )

    @staticmethod
    def _api_token(row: Row[Any]) -> ApiTokenRecord:
        return ApiTokenRecord(
            row.id,
            row.token_hash,
            row.user_id,
            row.name,
            row.created_at,
            row.last_used_at,
            row.revoked_at,
        )

    def get_api_token(
        self, *, token_id: str | None = None, token_hash: str | None = None
    ) -> ApiTokenRecord | None:
        a = t.api_tokens
        cond = a.c.id == token_id if token_id is not None else a.c.token_hash == token_hash
        with self._query() as c:
            row = c.execute(select(a).where(cond)).first()
        return None if row is None else self._api_token(row)

    def api_tokens(self, user_id: str | None = None) -> list[ApiTokenRecord]:
        a = t.api_tokens
        stmt = select(a).order_by(a.c.created_at, a.c.id)
        if user_id is not None:
            stmt = stmt.where(a.c.user_id == user_id)
        with self._query() as c:
            return [self._api_token(row) for row in c.execute(stmt)]

    def revoke_api_token(self, token_id: str, at: datetime) -> bool:
        a = t.api_tokens
        with self._txn() as tx:
            done = tx.conn.execute(
                update(a).where(a.c.id == token_id, a.c.revoked_at.is_(None)).values(revoked_at=at)
            )
            return bool(done.rowcount)

    def touch_api_token(self, token_id: str, at: datetime) -> None:
        a = t.api_tokens
        with self._txn() as tx:
            tx.conn.execute(update(a).where(a.c.id == token_id).values(last_used_at=at))

    def add_login_failure(self, key_hash: str, at: datetime) -> None:
        with self._txn() as tx:
            tx.conn.execute(insert(t.login_failures).values(key_hash=key_hash, at=at))

    def count_login_failures(self, key_hash: str, since: datetime) -> int:
        f = t.login_failures
        with self._query() as c:
            return int(
                c.execute(
                    select(func.count())
                    .select_from(f)
                    .where(f.c.key_hash == key_hash, f.c.at >= since)
                ).scalar_one()
            )

    def clear_login_failures(self, key_hash: str) -> None:
        f = t.login_failures
        with self._txn() as tx:
            tx.conn.execute(delete(f).where(f.c.key_hash == key_hash))

    def claim_inbound(self, key: str, at: datetime) -> dict[str, Any] | None:
        table = t.inbound_messages
        with self._txn() as tx:
            # The insert waits for a concurrent one of the same key to commit or roll back.
            inserted = tx.conn.execute(
                self._insert(table)
                .values(key=key, received_at=at)
                .on_conflict_do_nothing()
                .returning(table.c.key)
            ).first()
            if inserted is not None:
                return None
            result = tx.conn.execute(select(table.c.result).where(table.c.key == key)).scalar()
            return dict(result) if isinstance(result, dict) else {}

    def finish_inbound(self, key: str, result: dict[str, Any]) -> None:
        table = t.inbound_messages
        with self._txn() as tx:
            tx.conn.execute(update(table).where(table.c.key == key).values(result=result))

    def process_status(self, process: str) -> ProcessStatus | None:
        with self._txn() as tx:
            if process not in tx.statuses:
                row = tx.conn.execute(
                    select(t.process_status).where(t.process_status.c.process == process)
                ).first()
                tx.statuses[process] = (
                    None
                    if row is None
                    else ProcessStatus(process, row.status, row.started_at, row.stopped_at)
                )
            found = tx.statuses[process]
            return None if found is None else replace(found)

    def put_process_status(self, status: ProcessStatus) -> None:
        values = {
            "status": status.status,
            "started_at": status.started_at,
            "stopped_at": status.stopped_at,
        }
        with self._txn() as tx:
            tx.conn.execute(
                self._insert(t.process_status)
                .values(process=status.process, **values)
                .on_conflict_do_update(index_elements=["process"], set_=values)
            )
            tx.statuses[status.process] = replace(status)

    # ---- objects -----------------------------------------------------------------------------

    def put_object(self, record: ObjectRecord, at: datetime) -> None:
        with self._txn() as tx:
            tx.objects[record.id] = record
            tx.put_objects[record.id] = (record, at)

    def update_object(
        self, object_id: str, changes: dict[str, Any], at: datetime
    ) -> dict[str, Any]:
        with self._txn() as tx:
            rec = tx.objects.get(object_id)
            key = ("objects", object_id)
            if self.pg and key not in tx.locked:
                row = tx.conn.execute(self._stmts.lock_object, {"id": object_id}).first()
                tx.locked.add(key)
                tx.watchers.pop(object_id, None)  # read again, now that others wait for us
                if object_id not in tx.put_objects:
                    rec = None
                    if row is not None:
                        rec = ObjectRecord(object_id, row.type, self._data(row.data))
                    tx.objects[object_id] = rec
            elif rec is None:
                rec = self.get_object(object_id)
            if rec is None:
                raise NotFound(f"object {object_id!r} does not exist")
            before = dict(rec.data)
            rec.data.update(changes)
            tx.put_objects[object_id] = (rec, at)
            return before

    def _data(self, stored: Any) -> dict[str, Any]:
        """Object data as read from a row: datetimes back in the account's zone."""
        data: dict[str, Any] = decode_object_data(stored, self.tz)
        return data

    def _segment(self, type_key: str, where: str | None, scope: Mapping[str, Any]) -> Segment:
        return compile_segment(
            where,
            type_key=type_key,
            schema=self.schema,
            scope=scope,
            dialect="postgresql" if self.pg else "sqlite",
        )

    def _id_order(self) -> ColumnElement[Any]:
        """Object ids in code-point order, as Python sorts them."""
        return t.objects.c.id.collate("C") if self.pg else t.objects.c.id

    def _matching(
        self,
        type_key: str,
        segment: Segment,
        *,
        ids: list[str] | None = None,
        not_entered: str | None = None,
        after: str | None = None,
    ) -> Any:
        o = t.objects
        query = select(o.c.id).where(o.c.type == type_key)
        if segment.where is not None:
            query = query.where(segment.where)
        if ids is not None:
            query = query.where(o.c.id.in_(ids))
        if not_entered is not None:
            query = query.where(
                ~select(t.entered.c.object_id)
                .where(t.entered.c.process == not_entered, t.entered.c.object_id == o.c.id)
                .exists()
            )
        if after is not None:
            query = query.where(self._id_order() > after)
        return query

    def _residual(self, segment: Segment, scope: Mapping[str, Any], found: list[str]) -> list[str]:
        """The ids among ``found`` for which the part SQL could not express holds."""
        if segment.residual is None:
            return found
        self.prefetch(object_ids=found)
        test = matcher(self, segment.residual, scope)
        return [oid for oid in found if test(oid)]

    def select_objects(
        self,
        type_key: str,
        where: str | None,
        scope: Mapping[str, Any],
        *,
        ids: list[str] | None = None,
        not_entered: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[str]:
        segment = self._segment(type_key, where, scope)
        chunks = [None] if ids is None else [ids[i : i + 500] for i in range(0, len(ids), 500)]
        out: list[str] = []
        with self._query() as c:
            for chunk in chunks:
                query = self._matching(
                    type_key, segment, ids=chunk, not_entered=not_entered, after=after
                )
                if limit is not None and segment.residual is None and ids is None:
                    query = query.order_by(self._id_order()).limit(limit)
                out.extend(row[0] for row in c.execute(query))
            # Sorted here (code-point order, as the database's "C" / binary order): an ORDER
            # BY would tempt the planner to walk the primary key instead of the field indexes.
            out.sort()
            out = self._residual(segment, scope, out)
        return out if limit is None else out[:limit]

    def count_objects(
        self,
        type_key: str,
        where: str | None,
        scope: Mapping[str, Any],
        *,
        not_entered: str | None = None,
    ) -> int:
        segment = self._segment(type_key, where, scope)
        if segment.residual is not None:
            return len(self.select_objects(type_key, where, scope, not_entered=not_entered))
        query = self._matching(type_key, segment, not_entered=not_entered)
        with self._query() as c:
            return int(c.execute(select(func.count()).select_from(query.subquery())).scalar_one())

    def newly_matching(
        self,
        process: str,
        type_key: str,
        where: str | None,
        scope: Mapping[str, Any],
        *,
        repeat: bool,
    ) -> list[str]:
        if not repeat:
            return self.select_objects(type_key, where, scope, not_entered=process)
        segment = self._segment(type_key, where, scope)
        m, o = t.matched, t.objects
        if segment.residual is not None:
            now_matching = self.select_objects(type_key, where, scope)
            before = self.matched(process)
            self.set_matched(process, set(now_matching))
            return [oid for oid in now_matching if oid not in before]
        with self._query() as c:
            new = [
                row[0]
                for row in c.execute(
                    self._matching(type_key, segment).where(
                        ~select(m.c.object_id)
                        .where(m.c.process == process, m.c.object_id == o.c.id)
                        .exists()
                    )
                )
            ]
            new.sort()
            still = select(o.c.id).where(o.c.id == m.c.object_id, o.c.type == type_key)
            if segment.where is not None:
                still = still.where(segment.where)
            c.execute(delete(m).where(m.c.process == process, ~still.exists()))
            for i in range(0, len(new), 1000):
                c.execute(
                    insert(m), [{"process": process, "object_id": oid} for oid in new[i : i + 1000]]
                )
        return new

    def index_fields(self, type_key: str, where: str | None) -> list[str]:
        scope = {"now": datetime.now(self.tz), "vars": {}, "counters": {}, "answer": None}
        segment = self._segment(type_key, where, scope)
        dialect = "postgresql" if self.pg else "sqlite"
        statements = index_statements(dialect, type_key, self.schema, set(segment.fields))
        if statements:
            with self._use() as c:
                listed = (
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'objects'"
                    if self.pg
                    else "SELECT name FROM sqlite_master WHERE type = 'index'"
                )
                known = {row[0] for row in c.execute(text(listed))}
                made = []
                for name, statement in statements:
                    if name not in known:
                        c.execute(text(statement))
                        made.append(name)
                # The planner needs statistics of a new expression index to prefer it.
                if made and self.pg:
                    c.execute(text("ANALYZE objects"))
                for name in made if not self.pg else []:
                    c.execute(text(f"ANALYZE {name}"))
        return sorted(segment.fields)

    def objects_of_type(self, type_key: str) -> list[str]:
        with self._query() as c:
            rows = c.execute(
                select(t.objects.c.id).where(t.objects.c.type == type_key).order_by(t.objects.c.id)
            ).all()
        return [row[0] for row in rows]

    def user_by_email(self, email: str) -> str | None:
        for rec in self._objects("user"):
            if rec.data.get("email") == email:
                return rec.id
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

    # ---- object types ----------------------------------------------------------------------

    def _load_schema(self) -> None:
        """The account's stored object types, dictionaries and groups, over the schema given
        to the store (the recipe's, or the built-in types): a stored type replaces the given
        one of its key; dictionaries and groups are the stored ones, then given ones not
        stored yet; then the values added to dictionaries one by one."""
        with self.engine.connect() as c:
            types = c.execute(
                select(t.object_types.c.key, t.object_types.c.spec).order_by(t.object_types.c.key)
            ).all()
            dictionaries = c.execute(
                select(t.object_dictionaries.c.key, t.object_dictionaries.c["items"]).order_by(
                    t.object_dictionaries.c.key
                )
            ).all()
            groups = c.execute(
                select(t.account_groups.c.key).order_by(
                    t.account_groups.c.position, t.account_groups.c.key
                )
            ).all()
            values = c.execute(
                select(t.dictionary_values.c.dictionary, t.dictionary_values.c.value).order_by(
                    t.dictionary_values.c.added_at, t.dictionary_values.c.value
                )
            ).all()
        schema = self.schema
        for row in types:
            schema.types[row.key] = load_type(row.key, decode_value(row.spec))
        self._stored_types = {row.key for row in types}
        for row in dictionaries:
            stored = [str(v) for v in row[1]]
            given = schema.dictionaries.get(row.key, [])
            schema.dictionaries[row.key] = stored + [v for v in given if v not in stored]
        if groups:
            kept = tuple(str(row[0]) for row in groups)
            schema.groups = kept + tuple(g for g in schema.groups if g not in kept)
        for row in values:
            if row.dictionary in schema.dictionaries:
                schema.add_dictionary_value(row.dictionary, row.value)

    def object_pages(self, type_key: str, size: int = 500) -> Iterator[list[ObjectRecord]]:
        after: str | None = None
        while True:
            query = select(t.objects.c.id, t.objects.c.data).where(t.objects.c.type == type_key)
            if after is not None:
                query = query.where(t.objects.c.id > after)
            with self._query() as c:
                rows = c.execute(self._lock(query.order_by(t.objects.c.id).limit(size))).all()
            if not rows:
                return
            after = rows[-1].id
            yield [ObjectRecord(row.id, type_key, self._data(row.data)) for row in rows]

    def rewrite_objects(self, records: list[ObjectRecord], at: datetime) -> None:
        if not records:
            return
        with self._query() as c, self._txn() as tx:
            c.execute(
                _REWRITE_OBJECT,
                [{"oid": r.id, "odata": encode_object_data(r.data), "oat": at} for r in records],
            )
            for r in records:
                tx.objects[r.id] = ObjectRecord(r.id, r.type, copy.deepcopy(r.data))

    def put_object_type(self, otype: ObjectType, at: datetime) -> None:
        spec = encode_value(type_spec(otype))
        with self._use() as c:
            c.execute(
                self._insert(t.object_types)
                .values(key=otype.key, spec=spec, updated_at=at)
                .on_conflict_do_update(
                    index_elements=["key"], set_={"spec": spec, "updated_at": at}
                )
            )
            types = self.schema.types
            before = types.get(otype.key)
            types[otype.key] = otype
            if before is None:
                self._undo.append(lambda: types.pop(otype.key, None))
            else:
                self._undo.append(lambda: types.__setitem__(otype.key, before))
            if otype.key not in self._stored_types:
                self._stored_types.add(otype.key)
                self._undo.append(lambda: self._stored_types.discard(otype.key))

    def stored_type(self, key: str) -> ObjectType | None:
        return self.schema.types.get(key) if key in self._stored_types else None

    def deployed_types(self) -> dict[str, ObjectType]:
        with self._query() as c:
            rows = c.execute(select(t.deployed_types.c.key, t.deployed_types.c.spec)).all()
        return {row.key: load_type(row.key, decode_value(row.spec)) for row in rows}

    def put_deployed_type(self, otype: ObjectType, at: datetime) -> None:
        """Nothing is cached: a rolled-back transaction leaves nothing to undo."""
        spec = encode_value(type_spec(otype))
        with self._use() as c:
            c.execute(
                self._insert(t.deployed_types)
                .values(key=otype.key, spec=spec, deployed_at=at)
                .on_conflict_do_update(
                    index_elements=["key"], set_={"spec": spec, "deployed_at": at}
                )
            )

    def put_dictionary(self, key: str, values: list[str], at: datetime) -> None:
        dictionaries = self.schema.dictionaries
        before = dictionaries.get(key)
        items = list(before or []) + [v for v in values if v not in (before or [])]
        with self._use() as c:
            c.execute(
                self._insert(t.object_dictionaries)
                .values(key=key, items=items, updated_at=at)
                .on_conflict_do_update(
                    index_elements=["key"], set_={"items": items, "updated_at": at}
                )
            )
            if before is None:
                dictionaries[key] = items
                self._undo.append(lambda: dictionaries.pop(key, None))
            else:
                kept = list(before)
                before[:] = items  # the same list: holders of the schema see the values
                self._undo.append(lambda: before.__setitem__(slice(None), kept))

    def add_group(self, key: str, at: datetime) -> None:
        """Stores every group the account has (those only given to the store too), in order."""
        before = self.schema.groups
        groups = before if key in before else (*before, key)
        with self._use() as c:
            stmt = self._insert(t.account_groups).values(
                [{"key": g, "position": i, "added_at": at} for i, g in enumerate(groups)]
            )
            c.execute(
                stmt.on_conflict_do_update(
                    index_elements=["key"], set_={"position": stmt.excluded.position}
                )
            )
            if groups != before:
                self.schema.groups = groups
                self._undo.append(lambda: setattr(self.schema, "groups", before))

    # ---- tasks ---------------------------------------------------------------------------------

    def put_task(self, task: TaskRecord) -> None:
        with self._txn() as tx:
            key = ("tasks", task.id)
            if key in tx.seqs or task.id not in tx.tasks:
                seq = self._row_seq(tx, "tasks", task.id)
            else:
                seq = 0
            tx.tasks[task.id] = task
            tx.put_tasks[task.id] = (task, seq)

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
            attachments=data.get("attachments", []),
        )

    def get_task(self, task_id: str) -> TaskRecord | None:
        with self._txn() as tx:
            key = ("tasks", task_id)
            known = tx.tasks.get(task_id)
            if known is not None and (not self.pg or key in tx.locked):
                return known
            row = tx.conn.execute(self._stmts.get_task, {"id": task_id}).first()
            if self.pg:
                tx.locked.add(key)
            if task_id in tx.put_tasks:
                return tx.put_tasks[task_id][0]
            if row is None:
                return None
            task = tx.tasks[task_id] = self._task(row)
            return task

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
        with self._query() as c, self._txn() as tx:
            rows = c.execute(select(t.tasks).where(*where).order_by(t.tasks.c.seq)).all()
            out = []
            for row in rows:
                task = tx.tasks.get(row.id)
                if task is None:
                    task = tx.tasks[row.id] = self._task(row)
                out.append(task)
            return out

    def delete_tasks(self, task_ids: list[str]) -> None:
        if not task_ids:
            return
        with self._query() as c, self._txn() as tx:
            c.execute(delete(t.tasks).where(t.tasks.c.id.in_(task_ids)))
            for tid in task_ids:
                tx.tasks.pop(tid, None)

    def count_task_created(self, process: str, block: str, object_id: str | None) -> None:
        with self._txn() as tx:
            key = (process, block, object_id or "")
            tx.task_counts[key] = tx.task_counts.get(key, 0) + 1

    def tasks_created(self) -> dict[tuple[str, str, str | None], int]:
        with self._query() as c:
            rows = c.execute(select(t.task_counts)).all()
        return {(r.process, r.block, r.object_id or None): int(r._mapping["count"]) for r in rows}

    def _tasks_of(self, tx: _Tx, rows: Any) -> list[TaskRecord]:
        out = []
        for row in rows:
            task = tx.tasks.get(row.id)
            if task is None:
                task = tx.tasks[row.id] = self._task(row)
            out.append(task)
        return out

    def _text_order(self, column: Any) -> Any:
        """Byte order on both dialects (PostgreSQL's default collation may follow a locale)."""
        return column.collate("C") if self.pg else column

    def inbox(
        self,
        user_id: str,
        executor_processes: Collection[str],
        now: datetime,
        *,
        offset: int = 0,
        limit: int = 50,
    ) -> list[TaskRecord]:
        branches = [
            select(t.tasks).where(*w) for w in self._inbox_where(user_id, executor_processes)
        ]
        both = union_all(*branches) if len(branches) > 1 else None
        found = both.subquery() if both is not None else branches[0].subquery()
        overdue = case((and_(found.c.due_at.is_not(None), found.c.due_at < now), 0), else_=1)
        stmt = (
            select(found)
            .order_by(
                overdue,
                found.c.priority_rank,
                found.c.due_at.asc().nulls_last(),
                found.c.seq,
            )
            .offset(offset)
            .limit(limit)
        )
        with self._query() as c, self._txn() as tx:
            return self._tasks_of(tx, c.execute(stmt).all())

    def _task_where(self, q: TaskQuery) -> list[ColumnElement[bool]]:
        c_ = t.tasks.c
        where: list[ColumnElement[bool]] = []
        if q.process is not None:
            where.append(c_.process == q.process)
        if q.status is not None:
            where.append(c_.status == q.status)
        if q.unassigned:
            where.append(c_.assignee.is_(None))
        elif q.assignee is not None:
            where.append(c_.assignee == q.assignee)
        if q.object_ids is not None:
            where.append(c_.object_id.in_(sorted(q.object_ids)))
        if q.open_only:
            where.append(c_.closed.is_(False))
        if q.created_from is not None:
            where.append(c_.created_at >= q.created_from)
        if q.created_to is not None:
            where.append(c_.created_at < q.created_to)
        if q.block is not None:
            where.append(c_.block == q.block)
        return where

    def task_page(
        self,
        query: TaskQuery,
        *,
        sort: str = "created_at",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[TaskRecord], int]:
        c_ = t.tasks.c
        columns = {
            "created_at": c_.created_at,
            "due_at": c_.due_at,
            "priority": c_.priority_rank,
            "status": self._text_order(c_.status),
            "assignee": self._text_order(c_.assignee),
        }
        if sort not in columns:
            raise ValueError(f"unknown task sort {sort!r}")
        key = columns[sort]
        where = self._task_where(query)
        stmt = (
            select(t.tasks)
            .where(*where)
            .order_by((key.desc() if descending else key.asc()).nulls_last(), c_.seq)
            .offset(offset)
            .limit(limit)
        )
        with self._query() as c, self._txn() as tx:
            total = int(
                c.execute(select(func.count()).select_from(t.tasks).where(*where)).scalar_one()
            )
            return self._tasks_of(tx, c.execute(stmt).all()), total

    def task_statistics(self, query: TaskQuery) -> list[TaskCount]:
        c_ = t.tasks.c
        stmt = (
            select(c_.assignee, c_.status, c_.created_day, func.count())
            .where(*self._task_where(query))
            .group_by(c_.assignee, c_.status, c_.created_day)
        )
        with self._query() as c:
            rows = c.execute(stmt).all()
        # Ordered and converted here: an ORDER BY over the groups (text in code-point order)
        # costs the database more than Python's sort, and there are few distinct days.
        days: dict[str, date] = {}
        out = []
        for assignee, status, day, n in rows:
            known = days.get(day)
            if known is None:
                known = days[day] = date.fromisoformat(day)
            out.append(TaskCount(assignee, status, known, int(n)))
        out.sort(key=lambda r: (r.day, r.assignee is None, r.assignee or "", r.status))
        return out

    @staticmethod
    def _inbox_where(
        user_id: str, executor_processes: Collection[str]
    ) -> list[list[ColumnElement[bool]]]:
        """The inbox's two disjoint parts: the person's tasks, and the unassigned tasks of
        their executor processes (each read through the assignee-first index)."""
        c_ = t.tasks.c
        parts = [[c_.assignee == user_id, c_.closed.is_(False), c_.inbox.is_(True)]]
        if executor_processes:
            parts.append(
                [
                    c_.assignee.is_(None),
                    c_.closed.is_(False),
                    c_.inbox.is_(True),
                    c_.process.in_(sorted(executor_processes)),
                ]
            )
        return parts

    def inbox_count(self, user_id: str, executor_processes: Collection[str]) -> int:
        counts = [
            select(func.count()).select_from(t.tasks).where(*where).scalar_subquery()
            for where in self._inbox_where(user_id, executor_processes)
        ]
        with self._query() as c:
            return sum(int(n) for n in c.execute(select(*counts)).one())

    def reassign_tasks(self, query: TaskQuery, to: str | None, entry: Mapping[str, Any]) -> int:
        c_ = t.tasks.c
        where = [*self._task_where(query), c_.assignee.is_distinct_from(to)]
        added = json.dumps(encode_value(dict(entry)), separators=(",", ":"), allow_nan=False)
        if self.pg:
            history = text(
                "jsonb_set(data, '{history}', "
                "coalesce(data -> 'history', '[]'::jsonb) || jsonb_build_array(CAST(:e AS jsonb)))"
            )
        else:
            history = text("json_insert(data, '$.history[#]', json(:e))")
        stmt = update(t.tasks).where(*where).values(assignee=to, data=history.bindparams(e=added))
        with self._query() as c, self._txn() as tx:
            if self.pg:
                # Instances first, then their tasks: the order every request locks them in.
                c.execute(
                    select(t.instances.c.id)
                    .where(t.instances.c.id.in_(select(c_.instance_id).where(*where)))
                    .order_by(t.instances.c.id)
                    .with_for_update()
                ).all()
            changed = int(c.execute(stmt).rowcount)
            # The identity map: a task read under lock (any on SQLite, one writer) is current
            # and gets the same change; another may be stale and is read again when asked for.
            for task_id, task in list(tx.tasks.items()):
                if self.pg and ("tasks", task_id) not in tx.locked:
                    del tx.tasks[task_id]
                elif task.assignee != to and matches(task, query):
                    task.assignee = to
                    task.history.append(copy.deepcopy(dict(entry)))
            return changed

    # ---- timers ----------------------------------------------------------------------------------

    def add_timer(self, timer: TimerRecord) -> None:
        with self._txn() as tx:
            seq = self._seq(tx)
            timer.order = seq
            tx.no_timer_until = None
            self._delete_jobs(tx)
            tx.gone_jobs.discard(timer.id)
            values = {
                "id": timer.id,
                "kind": timer.kind,
                "instance_id": timer.instance_id,
                "payload": {"process": timer.process} if timer.process else {},
                "due_at": timer.due_at,
                "seq": seq,
                "status": "ready",
                "locked_by": None,
                "locked_until": None,
                "attempts": 0,
            }
            if timer.kind != "periodic":
                tx.put_timers[timer.id] = values  # written with the others, in one statement
                return
            # A process's one chain of checks has a fixed id; a deploy restarting it may meet a
            # worker that has just scheduled the next check: the newer one wins.
            tx.conn.execute(
                self._insert(t.jobs)
                .values(values)
                .on_conflict_do_update(
                    index_elements=["id"], set_={k: v for k, v in values.items() if k != "id"}
                )
            )

    def cancel_timer(self, timer_id: str) -> None:
        with self._txn() as tx:
            if tx.put_timers.pop(timer_id, None) is None:
                tx.delete_jobs.add(timer_id)
            tx.gone_jobs.add(timer_id)

    def _write_timers(self, tx: _Tx) -> None:
        if tx.put_timers:
            self._bulk.write(tx.conn, t.jobs, list(tx.put_timers.values()))
            tx.put_timers.clear()

    def timer_gone(self, timer_id: str) -> bool:
        """Whether this transaction cancelled (or fired) the timer."""
        return self._tx is not None and timer_id in self._tx.gone_jobs

    def _delete_jobs(self, tx: _Tx) -> None:
        if tx.delete_jobs:
            tx.conn.execute(delete(t.jobs).where(t.jobs.c.id.in_(sorted(tx.delete_jobs))))
            tx.delete_jobs.clear()

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
        with self._txn() as tx:
            # Within a transaction, a look that found nothing due stays true until this
            # transaction schedules a timer (other transactions' timers are theirs to run).
            if tx.no_timer_until is not None and until <= tx.no_timer_until:
                return None
            self._delete_jobs(tx)
            self._write_timers(tx)
            row = tx.conn.execute(self._stmts.next_timer, {"until": until}).first()
            if row is None:
                tx.no_timer_until = until
                return None
        return self._timer(row)

    def pop_timer(self, timer_id: str) -> TimerRecord | None:
        with self._txn() as tx:
            self._delete_jobs(tx)
            self._write_timers(tx)
            tx.gone_jobs.add(timer_id)
            row = tx.conn.execute(
                delete(t.jobs)
                .where(t.jobs.c.id == timer_id, t.jobs.c.kind.in_(TIMER_KINDS))
                .returning(*t.jobs.c)
            ).first()
        return None if row is None else self._timer(row)

    # ---- effects ---------------------------------------------------------------------------------

    def _add_outbox(self, message: MessageRecord, kind: str) -> None:
        email = message.channel == "email"
        webhook = message.channel == "webhook"
        status = "queued" if email or webhook else "sent"
        message.status = status
        with self._txn() as tx:
            seq = self._seq(tx)
            tx.outbox.append(
                {
                    "id": message.id,
                    "instance_id": message.instance_id,
                    "process": message.process,
                    "block": message.block,
                    "channel": message.channel,
                    "to": message.to,
                    "recipient": message.recipient,
                    "subject": message.subject,
                    "body": message.body,
                    "created_at": message.created_at,
                    "status": status,
                    "attempts": 0,
                    "sent_at": None,
                    "seq": seq,
                    "kind": kind,
                    "last_error": None,
                    "task_id": message.task_id,
                }
            )
            if email or webhook:
                tx.jobs.append(
                    {
                        # Webhook deliveries have ids of their own: every worker claims them
                        # (``claim(id_prefixes=...)``), emails only workers with SMTP.
                        "id": f"{WEBHOOK_JOB_PREFIX if webhook else 'deliver:'}{message.id}",
                        "kind": "deliver",
                        "instance_id": message.instance_id,
                        "payload": {"outbox": message.id, "channel": message.channel},
                        "due_at": message.created_at,
                        "seq": seq,
                        "status": "ready",
                        "locked_by": None,
                        "locked_until": None,
                        "attempts": 0,
                        "last_error": None,
                    }
                )

    def _outbox(self, kind: str, since: int) -> list[MessageRecord]:
        return self._outbox_rows(t.outbox.c.kind == kind, since=since)

    def _outbox_rows(self, where: ColumnElement[bool], since: int = 0) -> list[MessageRecord]:
        with self._query() as c:
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
                task_id=r.task_id,
                read_at=None if r.read_at is None else r.read_at.astimezone(self.tz),
            )
            for r in rows
        ]

    def add_message(self, message: MessageRecord) -> None:
        self._add_outbox(message, "message")

    def messages(self, since: int = 0) -> list[MessageRecord]:
        return self._outbox("message", since)

    def deliveries(
        self,
        *,
        status: str | None = None,
        offset: int = 0,
        limit: int = 50,
        channel: str | None = None,
        ids: Collection[str] | None = None,
    ) -> list[DeliveryRecord]:
        o, j = t.outbox, t.jobs
        # A queued email's retries so far are counted on its deliver job.
        job = j.c.id == literal("deliver:") + o.c.id
        stmt = select(o, j.c.attempts.label("job_attempts"), j.c.last_error.label("job_error"))
        stmt = stmt.select_from(o.outerjoin(j, job)).where(o.c.kind == "message")
        if status is not None:
            stmt = stmt.where(o.c.status == status)
        if channel is not None:
            stmt = stmt.where(o.c.channel == channel)
        if ids is not None:
            stmt = stmt.where(o.c.id.in_(list(ids)))
        stmt = stmt.order_by(o.c.seq.desc()).offset(offset).limit(limit)
        with self._query() as c:
            rows = c.execute(stmt).all()
        return [
            DeliveryRecord(
                id=r.id,
                instance_id=r.instance_id,
                process=r.process,
                block=r.block,
                channel=r.channel,
                to=r.to,
                recipient=r.recipient,
                subject=r.subject,
                status=r.status,
                attempts=int(r.attempts if r.job_attempts is None else r.job_attempts),
                last_error=r.job_error or r.last_error,
                created_at=r.created_at.astimezone(self.tz),
                sent_at=None if r.sent_at is None else r.sent_at.astimezone(self.tz),
                read_at=None if r.read_at is None else r.read_at.astimezone(self.tz),
            )
            for r in rows
        ]

    def count_deliveries(self, status: str | None = None, channel: str | None = None) -> int:
        o = t.outbox
        stmt = select(func.count()).select_from(o).where(o.c.kind == "message")
        if status is not None:
            stmt = stmt.where(o.c.status == status)
        if channel is not None:
            stmt = stmt.where(o.c.channel == channel)
        with self._query() as c:
            return int(c.execute(stmt).scalar_one())

    def outbox_message(self, message_id: str) -> MessageRecord | None:
        o = t.outbox
        found = self._outbox_rows(and_(o.c.id == message_id, o.c.kind == "message"))
        return found[0] if found else None

    def mark_bounced(self, message_id: str, reason: str) -> bool:
        o = t.outbox
        with self._query() as c:
            done = c.execute(
                update(o)
                .where(o.c.id == message_id, o.c.kind == "message", o.c.channel == "email")
                .where(o.c.status.in_(("sent", "bounced")))  # a queued email was not sent
                .values(status="bounced", last_error=reason[:2000])
            )
        return bool(done.rowcount)

    def add_sink_mail(self, mail: SinkMail) -> bool:
        values = {
            "outbox_id": mail.outbox_id,
            "message_id": mail.message_id,
            "to": mail.to,
            "subject": mail.subject,
            "raw": mail.raw,
            "stored_at": mail.stored_at,
        }
        stmt = self._insert(t.sink_mails).values(**values).on_conflict_do_nothing()
        with self._query() as c:  # rowcount is -1 here on psycopg: ask for the new id instead
            return c.execute(stmt.returning(t.sink_mails.c.id)).first() is not None

    def _sink_mail(self, r: Row[Any]) -> SinkMail:
        return SinkMail(
            id=int(r.id),
            outbox_id=r.outbox_id,
            message_id=r.message_id,
            to=r.to,
            subject=r.subject,
            raw=r.raw,
            stored_at=r.stored_at.astimezone(self.tz),
        )

    def sink_mails(self, *, offset: int = 0, limit: int = 50) -> list[SinkMail]:
        s = t.sink_mails
        with self._query() as c:
            rows = c.execute(select(s).order_by(s.c.id.desc()).offset(offset).limit(limit)).all()
        return [self._sink_mail(r) for r in rows]

    def count_sink_mails(self) -> int:
        with self._query() as c:
            return int(c.execute(select(func.count()).select_from(t.sink_mails)).scalar_one())

    def sink_mail(self, mail_id: int) -> SinkMail | None:
        s = t.sink_mails
        with self._query() as c:
            row = c.execute(select(s).where(s.c.id == mail_id)).first()
        return None if row is None else self._sink_mail(row)

    def add_notification(self, message: MessageRecord) -> None:
        self._add_outbox(message, "notification")

    def notifications(self, since: int = 0) -> list[MessageRecord]:
        return self._outbox("notification", since)

    # ---- in-app messages (services/notify.py) --------------------------------------------------

    def _inapp_where(
        self, recipient: str, unread_only: bool, ids: Collection[str] | None
    ) -> list[ColumnElement[bool]]:
        o = t.outbox.c
        where = [o.recipient == recipient, or_(o.channel == "inapp", o.kind == "notification")]
        if unread_only:
            where.append(o.read_at.is_(None))
        if ids is not None:
            where.append(o.id.in_(list(ids)))
        return where

    def inapp_messages(
        self,
        recipient: str,
        *,
        unread_only: bool = False,
        ids: Collection[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[MessageRecord], int]:
        where = self._inapp_where(recipient, unread_only, ids)
        with self._query() as c:
            count = select(func.count()).select_from(t.outbox).where(*where)
            total = int(c.execute(count).scalar_one())
            page = (
                select(t.outbox.c.id)
                .where(*where)
                .order_by(t.outbox.c.seq.desc())
                .offset(offset)
                .limit(limit)
            )
            found = list(c.execute(page).scalars())
        rows = {m.id: m for m in self._outbox_rows(t.outbox.c.id.in_(found))} if found else {}
        return [rows[i] for i in found], total

    def inapp_unread(self, recipient: str) -> int:
        where = self._inapp_where(recipient, True, None)
        with self._query() as c:
            count = select(func.count()).select_from(t.outbox).where(*where)
            return int(c.execute(count).scalar_one())

    def mark_inapp_read(
        self, recipient: str, ids: Collection[str] | None, at: datetime
    ) -> list[str]:
        where = self._inapp_where(recipient, True, ids)
        stmt = update(t.outbox).where(*where).values(read_at=at).returning(t.outbox.c.id)
        with self._query() as c:
            return sorted(c.execute(stmt).scalars())

    def add_incident(self, incident: IncidentRecord) -> None:
        with self._txn() as tx:
            tx.incidents.append(
                {
                    "instance_id": incident.instance_id,
                    "block": incident.block,
                    "message": incident.message,
                    "at": incident.at,
                    "resolved": incident.resolved,
                }
            )

    def resolve_incidents(self, instance_id: str) -> None:
        with self._query() as c:
            c.execute(
                update(t.incidents)
                .where(t.incidents.c.instance_id == instance_id)
                .values(resolved=True)
            )

    def incidents(self, open_only: bool = False) -> list[IncidentRecord]:
        stmt = select(t.incidents).order_by(t.incidents.c.id)
        if open_only:
            stmt = stmt.where(t.incidents.c.resolved.is_(False))
        with self._query() as c:
            rows = c.execute(stmt).all()
        return [
            IncidentRecord(r.instance_id, r.block, r.message, r.at.astimezone(self.tz), r.resolved)
            for r in rows
        ]

    def add_history(self, line: dict[str, Any]) -> None:
        with self._txn() as tx:
            when = line["time"]
            if when != self._last_time[0]:
                self._last_time = (when, datetime.fromisoformat(when))
            tx.history.append(
                {
                    "at": self._last_time[1],
                    "instance_id": line.get("instance"),
                    "process": line.get("process"),
                    "block": line.get("block"),
                    "event": line["event"],
                    "details": line.get("details"),
                }
            )

    def history(self, instance_id: str | None = None) -> Iterator[dict[str, Any]]:
        stmt = select(t.history).order_by(t.history.c.id)
        if instance_id is not None:
            stmt = stmt.where(t.history.c.instance_id == instance_id)
        with self._query() as c:
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

    def history_page(
        self, instance_id: str, offset: int = 0, limit: int = 50
    ) -> tuple[list[dict[str, Any]], int]:
        h = t.history.c
        with self._query() as c:
            total = int(
                c.execute(
                    select(func.count()).select_from(t.history).where(h.instance_id == instance_id)
                ).scalar_one()
            )
            rows = c.execute(
                select(t.history)
                .where(h.instance_id == instance_id)
                .order_by(h.id)
                .offset(offset)
                .limit(limit)
            ).all()
        return [
            {
                "time": r.at.astimezone(self.tz).isoformat(),
                "instance": r.instance_id,
                "process": r.process,
                "block": r.block,
                "event": r.event,
                "details": decode_value(r.details),
            }
            for r in rows
        ], total


_REWRITE_OBJECT = (
    update(t.objects)
    .where(t.objects.c.id == bindparam("oid"))
    .values(data=bindparam("odata"), updated_at=bindparam("oat"))
)

_TASK_UPDATES = tuple(c.name for c in t.tasks.c if c.name not in ("id", "seq"))


def _task_row(task: TaskRecord, seq: int, tz: tzinfo) -> dict[str, Any]:
    return {
        "due_at": task.due_at,
        "priority_rank": priority_rank(task.priority),
        "inbox": task.inbox,
        "created_day": task.created_at.astimezone(tz).date().isoformat(),
        "id": task.id,
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
        "data": (
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
                "attachments": task.attachments,
            }
        ),
        "seq": seq,
    }


class _Statements:
    """Statements built once per store and executed many times (``executemany``)."""

    def __init__(self, pg: bool) -> None:
        make = postgresql.insert if pg else sqlite.insert

        def upsert(table: Any, keys: list[str], keep: tuple[str, ...] = ()) -> Any:
            stmt = make(table)
            return stmt.on_conflict_do_update(
                index_elements=keys,
                set_={
                    c.name: stmt.excluded[c.name]
                    for c in table.c
                    if c.name not in keys and c.name not in keep
                },
            )

        self.upsert_instance = upsert(t.instances, ["id"], keep=("seq",))
        self.upsert_object = upsert(t.objects, ["id"], keep=("type", "created_at"))
        self.upsert_task = upsert(t.tasks, ["id"], keep=("seq",))
        self.insert_history = insert(t.history)
        self.insert_outbox = insert(t.outbox)
        self.insert_job = insert(t.jobs)
        self.insert_incident = insert(t.incidents)
        self.insert_entered = make(t.entered).on_conflict_do_nothing()
        counts = make(t.task_counts)
        self.add_task_count = counts.on_conflict_do_update(
            index_elements=["process", "block", "object_id"],
            set_={"count": t.task_counts.c.count + counts.excluded["count"]},
        )

        def lock(stmt: Any) -> Any:
            return stmt.with_for_update() if pg else stmt

        self.get_object = select(t.objects.c.type, t.objects.c.data).where(
            t.objects.c.id == bindparam("id")
        )
        self.lock_object = lock(self.get_object)
        self.get_instance = lock(
            select(t.instances.c.state).where(t.instances.c.id == bindparam("id"))
        )
        self.get_task = lock(select(t.tasks).where(t.tasks.c.id == bindparam("id")))
        self.waiting_on = select(t.subscriptions.c.instance_id).where(
            t.subscriptions.c.object_id == bindparam("id")
        )
        self.has_entered = select(t.entered.c.process).where(
            t.entered.c.process == bindparam("p"), t.entered.c.object_id == bindparam("o")
        )
        self.next_timer = (
            select(t.jobs)
            .where(
                t.jobs.c.kind.in_(TIMER_KINDS),
                t.jobs.c.status == "ready",
                t.jobs.c.due_at <= bindparam("until", type_=t.Timestamp()),
            )
            .order_by(t.jobs.c.due_at, t.jobs.c.seq)
            .limit(1)
        )
        self.set_counter = (
            update(t.sequences)
            .where(t.sequences.c.name == bindparam("n"))
            .values(value=bindparam("v"))
        )


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
        id_prefixes: tuple[str, ...] = (),
    ) -> list[Job]:
        """Claim due jobs of ``kinds``, and of any kind whose id starts with one of
        ``id_prefixes`` (``WEBHOOK_JOB_PREFIX``: webhook deliveries)."""
        j = t.jobs
        claimable = (
            select(j.c.id)
            .where(
                or_(j.c.kind.in_(kinds), *(j.c.id.startswith(p) for p in id_prefixes)),
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

    def touch(self, job: Job, worker: str, until: datetime) -> bool:
        """Extend this worker's lease on a job (before a slow action such as sending an email);
        False if the job is no longer this worker's (another worker took it over)."""
        with self.store.transaction(), self.store._use() as c:
            done = c.execute(
                update(t.jobs)
                .where(
                    t.jobs.c.id == job.id,
                    t.jobs.c.status == "locked",
                    t.jobs.c.locked_by == worker,
                )
                .values(locked_until=until)
            )
        return bool(done.rowcount)

    def hold(self, jobs: list[Job], worker: str) -> set[str]:
        """The ids of ``jobs`` this worker still holds, locked for this transaction.

        A timer step deletes its job as it fires (``Runner.fire`` cancels the timer), in the
        step's transaction; a job that is gone (cancelled meanwhile) or whose lease passed to
        another worker is not returned.
        """
        if not jobs:
            return set()
        query = select(t.jobs.c.id).where(
            t.jobs.c.id.in_([job.id for job in jobs]),
            t.jobs.c.status == "locked",
            t.jobs.c.locked_by == worker,
        )
        with self.store._use() as c:
            rows = c.execute(self.store._lock(query.order_by(t.jobs.c.id))).all()
        return {row[0] for row in rows}

    def fail(self, job: Job, worker: str, error: str, *, retry_at: datetime | None) -> bool:
        """Give the job back: to wait until ``retry_at`` (backoff), or as ``failed`` for good.

        False if this worker no longer holds the job (its lease passed on): nothing changed.
        """
        values: dict[str, Any] = {"last_error": error[:2000], "locked_by": None}
        if retry_at is None:
            values.update(status="failed", locked_until=None)
        else:
            values.update(status="locked", locked_until=retry_at)
        with self.store._use() as c:
            done = c.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job.id, t.jobs.c.locked_by == worker)
                .values(values)
            )
        return bool(done.rowcount)

    def release(self, jobs: list[Job], worker: str) -> None:
        """Give back claimed jobs untouched (a stopping worker): ready again at once, and the
        claim does not count as an attempt."""
        if not jobs:
            return
        with self.store._use() as c:
            c.execute(
                update(t.jobs)
                .where(
                    t.jobs.c.id.in_([job.id for job in jobs]),
                    t.jobs.c.status == "locked",
                    t.jobs.c.locked_by == worker,
                )
                .values(
                    status="ready",
                    locked_by=None,
                    locked_until=None,
                    attempts=t.jobs.c.attempts - 1,
                )
            )

    def failed(self) -> list[Job]:
        with self.store._use() as c:
            rows = c.execute(
                select(t.jobs).where(t.jobs.c.status == "failed").order_by(t.jobs.c.seq)
            ).all()
        return [self._job(r) for r in rows]

    def retry(self, job_id: str) -> None:
        """Make a failed job ready again, with its attempts counted from zero.

        The incident this job's failures raised on its instance is resolved with it (other
        incidents stay, and an instance the engine itself put in ``incident`` keeps its own).
        """
        with self.store.transaction(), self.store._use() as c:
            row = c.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id, t.jobs.c.status == "failed")
                .values(status="ready", attempts=0, locked_until=None, locked_by=None)
                .returning(t.jobs.c.instance_id)
            ).first()
            if row is None:
                raise NotFound(f"no failed job {job_id!r}")
            state = self.store.get_instance(row.instance_id) if row.instance_id else None
            if state is not None and state.status != "incident":
                c.execute(
                    update(t.incidents)
                    .where(
                        t.incidents.c.instance_id == state.id,
                        t.incidents.c.message.startswith(f"job {job_id} failed ", autoescape=True),
                    )
                    .values(resolved=True)
                )

    def pending(self) -> dict[str, int]:
        """Jobs per status (for monitoring and tests)."""
        with self.store._use() as c:
            rows = c.execute(select(t.jobs.c.status, func.count()).group_by(t.jobs.c.status)).all()
        return {row[0]: int(row[1]) for row in rows}

    # ---- the outbox ------------------------------------------------------------------------

    def outbox_message(self, outbox_id: str) -> MessageRecord | None:
        found = [m for m in self.store._outbox_rows(t.outbox.c.id == outbox_id)]
        return found[0] if found else None

    def mark_sent(self, outbox_id: str, at: datetime, *, attempts: int | None = None) -> None:
        """The email went out; ``attempts`` (its deliver job's) replaces the count if given."""
        count = t.outbox.c.attempts + 1 if attempts is None else attempts
        with self.store._use() as c:
            c.execute(
                update(t.outbox)
                .where(t.outbox.c.id == outbox_id)
                .values(status="sent", sent_at=at, attempts=count)
            )

    def mark_undelivered(
        self, outbox_id: str, status: str, error: str, *, attempts: int | None = None
    ) -> None:
        count = t.outbox.c.attempts + 1 if attempts is None else attempts
        with self.store._use() as c:
            c.execute(
                update(t.outbox)
                .where(t.outbox.c.id == outbox_id)
                .values(status=status, last_error=error[:2000], attempts=count)
            )


__all__ = ["WEBHOOK_JOB_PREFIX", "JobQueue", "SqlStore"]
