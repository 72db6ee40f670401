"""The in-memory store: the reference implementation of :class:`~flowlane.store.base.Store`.

It also serves the engine as its read-only :class:`~flowlane.engine.World`. Nothing here
decides process logic; the services call it. Records it hands out are the stored ones (the
SQL store hands out copies): callers write every change back with ``put_*`` all the same.
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from flowlane.engine.context import ObjectRecord
from flowlane.engine.state import InstanceState
from flowlane.expr import Expression
from flowlane.model.definition import Definition
from flowlane.model.form import FormSpec
from flowlane.model.template import Template
from flowlane.objects import ObjectType, Schema
from flowlane.store import taskquery
from flowlane.store.auth import ApiTokenRecord, SessionRecord
from flowlane.store.match import matcher
from flowlane.store.records import (
    DeliveryRecord,
    IncidentRecord,
    MessageRecord,
    ProcessStatus,
    SinkMail,
    TaskCount,
    TaskQuery,
    TaskRecord,
    TimerRecord,
    VersionInfo,
)

DEFAULT_TZ = "Europe/Moscow"


@dataclass
class MemoryStore:
    """Objects, process versions, instances, tasks, timers, messages and history in memory."""

    schema: Schema
    tz: tzinfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TZ))
    secret: bytes = b"flowlane-dev-secret"
    templates: dict[str, Template] = field(default_factory=dict)
    forms: dict[str, FormSpec] = field(default_factory=dict)
    versions: dict[str, list[Definition]] = field(default_factory=dict)
    deployed_at: dict[tuple[str, int], datetime] = field(default_factory=dict)
    """When each (process, version) was deployed."""
    objects: dict[str, ObjectRecord] = field(default_factory=dict)
    instances: dict[str, InstanceState] = field(default_factory=dict)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    timers: dict[str, TimerRecord] = field(default_factory=dict)
    outbox: list[MessageRecord] = field(default_factory=list)
    notified: list[MessageRecord] = field(default_factory=list)
    inapp_feed: list[MessageRecord] = field(default_factory=list)
    """In-app messages and notifications with a recipient, in the order they were added."""
    inapp_read: dict[str, datetime] = field(default_factory=dict)
    """When each read in-app message was read (by outbox id)."""
    incident_list: list[IncidentRecord] = field(default_factory=list)
    history_lines: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: dict[str, set[str]] = field(default_factory=dict)
    subscribed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    entered: set[tuple[str, str]] = field(default_factory=set)
    matched_by: dict[str, set[str]] = field(default_factory=dict)
    approved: set[str] = field(default_factory=set)
    settings: dict[str, str] = field(default_factory=dict)
    bounced: dict[str, str] = field(default_factory=dict)
    """Messages marked bounced (``mark_bounced``): outbox id → the reason."""
    sink: list[SinkMail] = field(default_factory=list)
    """Emails stored instead of sent (mail sink mode), oldest first."""
    form_submissions: list[tuple[str, str, datetime, str | None, bool]] = field(
        default_factory=list
    )
    """(form, address hash, at, object id, accepted) per public form submission."""
    used_links: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    """Signed links used: token hash → (used at, object id)."""
    inbound: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    """Login sessions by id hash."""
    api_token_rows: dict[str, ApiTokenRecord] = field(default_factory=dict)
    """API tokens by id."""
    login_failures: list[tuple[str, datetime]] = field(default_factory=list)
    """(key hash, at) per failed login."""
    """Inbound messages handled (``claim_inbound``): key → the result recorded."""
    statuses: dict[str, ProcessStatus] = field(default_factory=dict)
    created_counts: dict[tuple[str, str, str | None], int] = field(default_factory=dict)
    """Tasks opened per (process, block, object), counting tasks ``restart`` deleted too."""
    deployed: dict[str, ObjectType] = field(default_factory=dict)
    """What the last deploy declared for each type (``deployed_types``)."""
    _heap: list[tuple[datetime, int, str]] = field(default_factory=list)
    _timer_seq: int = 0
    _instance_seq: int = 0
    _object_seqs: dict[str, int] = field(default_factory=dict)

    # ---- World (read-only, for the engine) -------------------------------------------

    def get_object(self, object_id: str) -> ObjectRecord | None:
        return self.objects.get(object_id)

    def users(self, selector: str) -> list[str]:
        kind, _, value = selector.partition(":")
        if kind == "user":
            rec = self.objects.get(value)
            return [value] if rec is not None and rec.type == "user" else []
        out = []
        for oid, rec in self.objects.items():
            if rec.type != "user":
                continue
            if (kind == "group" and value in (rec.data.get("groups") or [])) or (
                kind == "role" and rec.data.get("role") == value
            ):
                out.append(oid)
        return sorted(out)

    def open_task_count(self, user_id: str) -> int:
        return sum(1 for t in self.tasks.values() if t.assignee == user_id and not t.closed)

    def find_objects(
        self, type_key: str, where: Expression | None, scope: Callable[[str], Mapping[str, Any]]
    ) -> list[str]:
        ids = sorted(oid for oid, rec in self.objects.items() if rec.type == type_key)
        if where is None:
            return ids
        return [oid for oid in ids if where.test(scope(oid))]

    def definition(self, key: str) -> Definition | None:
        versions = self.versions.get(key)
        return versions[-1] if versions else None

    def template(self, name: str) -> Template | None:
        return self.templates.get(name)

    # ---- processes ------------------------------------------------------------------------

    def deploy(self, definition: Definition) -> Definition:
        """Store a new version unless it equals the latest; return the version in force."""
        versions = self.versions.setdefault(definition.key, [])
        if versions and versions[-1].spec == definition.spec:
            return versions[-1]
        version = Definition.build(
            definition.spec, version=len(versions) + 1, source=definition.source
        )
        versions.append(version)
        self.deployed_at[(version.key, version.version)] = datetime.now(UTC)
        return version

    def version(self, key: str, version: int) -> Definition:
        return self.versions[key][version - 1]

    def process_keys(self) -> list[str]:
        return sorted(self.versions)

    def process_versions(self, key: str) -> list[VersionInfo]:
        return [
            VersionInfo(key, d.version, self.deployed_at.get((key, d.version)), d.source)
            for d in self.versions.get(key, [])
        ]

    # ---- instances ------------------------------------------------------------------------

    def new_instance_id(self) -> str:
        self._instance_seq += 1
        return f"i{self._instance_seq}"

    def new_object_id(self, type_key: str) -> str:
        seq = self._object_seqs.get(type_key, 0) + 1
        self._object_seqs[type_key] = seq
        return f"{type_key}-{seq}"

    def get_instance(self, instance_id: str) -> InstanceState | None:
        return self.instances.get(instance_id)

    def put_instance(self, state: InstanceState) -> None:
        self.instances[state.id] = state

    def instances_of(
        self, process: str | None = None, object_id: str | None = None
    ) -> list[InstanceState]:
        return [
            st
            for st in self.instances.values()
            if (process is None or st.process == process)
            and (object_id is None or st.object_id == object_id)
        ]

    def children_of(self, parent_ids: set[str]) -> list[InstanceState]:
        return [st for st in self.instances.values() if st.parent and st.parent["id"] in parent_ids]

    def find_instances(
        self,
        *,
        process: str | None = None,
        object_id: str | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[InstanceState], int]:
        found = [
            st
            for st in reversed(self.instances.values())
            if (process is None or st.process == process)
            and (object_id is None or st.object_id == object_id)
            and (status is None or st.status == status)
        ]
        return found[offset : offset + limit], len(found)

    def instance_counts(self, process: str) -> dict[tuple[int, str], int]:
        out: dict[tuple[int, str], int] = {}
        for st in self.instances.values():
            if st.process == process:
                out[(st.version, st.status)] = out.get((st.version, st.status), 0) + 1
        return out

    def subscribe(self, instance_id: str, object_ids: tuple[str, ...]) -> bool:
        for oid in self.subscribed.get(instance_id, ()):
            self.subscriptions.get(oid, set()).discard(instance_id)
        self.subscribed[instance_id] = object_ids
        for oid in object_ids:
            self.subscriptions.setdefault(oid, set()).add(instance_id)
        return False  # one writer: nothing can change behind our back

    def waiting_on(self, object_id: str) -> list[str]:
        """Instances whose wait conditions read this object (by index, not by scan)."""
        return sorted(self.subscriptions.get(object_id, ()), key=_instance_order)

    # ---- launch bookkeeping ---------------------------------------------------------------

    def has_entered(self, process: str, object_id: str) -> bool:
        return (process, object_id) in self.entered

    def mark_entered(self, process: str, object_id: str) -> None:
        self.entered.add((process, object_id))

    def forget_entered(self, process: str) -> None:
        self.entered = {e for e in self.entered if e[0] != process}

    def matched(self, process: str) -> set[str]:
        return set(self.matched_by.get(process, set()))

    def set_matched(self, process: str, object_ids: set[str]) -> None:
        self.matched_by[process] = set(object_ids)

    def is_approved(self, process: str) -> bool:
        return process in self.approved

    def approve(self, process: str, by: str | None, at: datetime) -> None:
        self.approved.add(process)

    def revoke_approval(self, process: str) -> None:
        self.approved.discard(process)

    def setting(self, key: str) -> str | None:
        return self.settings.get(key)

    def setting_or_put(self, key: str, value: str) -> str:
        return self.settings.setdefault(key, value)

    def add_form_submission(
        self,
        form: str,
        address_hash: str,
        at: datetime,
        object_id: str | None,
        *,
        accepted: bool = True,
    ) -> None:
        self.form_submissions.append((form, address_hash, at, object_id, accepted))

    def count_form_submissions(self, form: str, address_hash: str, since: datetime) -> int:
        return sum(
            1
            for f, h, at, _, _ in self.form_submissions
            if f == form and h == address_hash and at >= since
        )

    def last_form_submission(self, object_id: str) -> datetime | None:
        times = [at for _, _, at, o, ok in self.form_submissions if ok and o == object_id]
        return max(times, default=None)

    def lock_key(self, key: str) -> None:
        pass  # one writer at a time

    def use_link(self, token_hash: str, object_id: str, at: datetime) -> bool:
        if token_hash in self.used_links:
            return False
        self.used_links[token_hash] = (at, object_id)
        return True

    def link_used(self, token_hash: str) -> bool:
        return token_hash in self.used_links

    def put_session(self, session: SessionRecord) -> None:
        self.sessions[session.id_hash] = session

    def get_session(self, id_hash: str) -> SessionRecord | None:
        return self.sessions.get(id_hash)

    def delete_sessions(self, *, id_hash: str | None = None, user_id: str | None = None) -> int:
        doomed = [
            k
            for k, s in self.sessions.items()
            if (id_hash is not None and k == id_hash)
            or (user_id is not None and s.user_id == user_id)
        ]
        for k in doomed:
            del self.sessions[k]
        return len(doomed)

    def put_api_token(self, token: ApiTokenRecord) -> None:
        self.api_token_rows[token.id] = token

    def get_api_token(
        self, *, token_id: str | None = None, token_hash: str | None = None
    ) -> ApiTokenRecord | None:
        if token_id is not None:
            return self.api_token_rows.get(token_id)
        return next((r for r in self.api_token_rows.values() if r.token_hash == token_hash), None)

    def api_tokens(self, user_id: str | None = None) -> list[ApiTokenRecord]:
        rows = [r for r in self.api_token_rows.values() if user_id in (None, r.user_id)]
        return sorted(rows, key=lambda r: (r.created_at, r.id))

    def revoke_api_token(self, token_id: str, at: datetime) -> bool:
        row = self.api_token_rows.get(token_id)
        if row is None or row.revoked_at is not None:
            return False
        self.api_token_rows[token_id] = replace(row, revoked_at=at)
        return True

    def touch_api_token(self, token_id: str, at: datetime) -> None:
        row = self.api_token_rows.get(token_id)
        if row is not None:
            self.api_token_rows[token_id] = replace(row, last_used_at=at)

    def add_login_failure(self, key_hash: str, at: datetime) -> None:
        self.login_failures.append((key_hash, at))

    def count_login_failures(self, key_hash: str, since: datetime) -> int:
        return sum(1 for k, at in self.login_failures if k == key_hash and at >= since)

    def clear_login_failures(self, key_hash: str) -> None:
        self.login_failures = [(k, at) for k, at in self.login_failures if k != key_hash]

    def claim_inbound(self, key: str, at: datetime) -> dict[str, Any] | None:
        if key in self.inbound:
            return copy.deepcopy(self.inbound[key])
        self.inbound[key] = {}
        return None

    def finish_inbound(self, key: str, result: dict[str, Any]) -> None:
        self.inbound[key] = copy.deepcopy(result)

    def process_status(self, process: str) -> ProcessStatus | None:
        found = self.statuses.get(process)
        return None if found is None else replace(found)

    def put_process_status(self, status: ProcessStatus) -> None:
        self.statuses[status.process] = replace(status)

    # ---- objects --------------------------------------------------------------------------

    def put_object(self, record: ObjectRecord, at: datetime) -> None:
        self.objects[record.id] = record

    def update_object(
        self, object_id: str, changes: dict[str, Any], at: datetime
    ) -> dict[str, Any]:
        rec = self.objects[object_id]
        before = dict(rec.data)
        rec.data.update(changes)
        return before

    def objects_of_type(self, type_key: str) -> list[str]:
        return sorted(oid for oid, rec in self.objects.items() if rec.type == type_key)

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
        test = matcher(self, where, scope)
        chosen = set(ids) if ids is not None else None
        out = []
        for oid in self.objects_of_type(type_key):
            if chosen is not None and oid not in chosen:
                continue
            if after is not None and oid <= after:
                continue
            if not_entered is not None and (not_entered, oid) in self.entered:
                continue
            if test(oid):
                out.append(oid)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def count_objects(
        self,
        type_key: str,
        where: str | None,
        scope: Mapping[str, Any],
        *,
        not_entered: str | None = None,
    ) -> int:
        return len(self.select_objects(type_key, where, scope, not_entered=not_entered))

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
        now_matching = self.select_objects(type_key, where, scope)
        before = self.matched_by.get(process, set())
        self.matched_by[process] = set(now_matching)
        return [oid for oid in now_matching if oid not in before]

    def index_fields(self, type_key: str, where: str | None) -> list[str]:
        return []

    def user_by_email(self, email: str) -> str | None:
        for oid in self.objects_of_type("user"):
            if self.objects[oid].data.get("email") == email:
                return oid
        return None

    def add_dictionary_value(self, key: str, value: str, at: datetime) -> None:
        self.schema.add_dictionary_value(key, value)

    # ---- object types -------------------------------------------------------------------------

    def object_pages(self, type_key: str, size: int = 500) -> Iterator[list[ObjectRecord]]:
        ids = self.objects_of_type(type_key)
        for start in range(0, len(ids), size):
            yield [
                ObjectRecord(oid, type_key, copy.deepcopy(self.objects[oid].data))
                for oid in ids[start : start + size]
                if oid in self.objects
            ]

    def rewrite_objects(self, records: list[ObjectRecord], at: datetime) -> None:
        for rec in records:
            stored = self.objects[rec.id]  # changed in place: holders of it see the change
            stored.data.clear()
            stored.data.update(copy.deepcopy(rec.data))

    def put_object_type(self, otype: ObjectType, at: datetime) -> None:
        self.schema.types[otype.key] = otype

    def stored_type(self, key: str) -> ObjectType | None:
        return self.schema.types.get(key)

    def deployed_types(self) -> dict[str, ObjectType]:
        return dict(self.deployed)

    def put_deployed_type(self, otype: ObjectType, at: datetime) -> None:
        self.deployed[otype.key] = otype

    def put_dictionary(self, key: str, values: list[str], at: datetime) -> None:
        current = self.schema.dictionaries.setdefault(key, [])
        current.extend(v for v in values if v not in current)

    def add_group(self, key: str, at: datetime) -> None:
        if key not in self.schema.groups:
            self.schema.groups = (*self.schema.groups, key)

    # ---- tasks ----------------------------------------------------------------------------

    def put_task(self, task: TaskRecord) -> None:
        self.tasks[task.id] = task

    def get_task(self, task_id: str) -> TaskRecord | None:
        return self.tasks.get(task_id)

    def find_tasks(
        self,
        *,
        open_only: bool = False,
        block: str | None = None,
        object_id: str | None = None,
        process: str | None = None,
        instance_ids: set[str] | None = None,
    ) -> list[TaskRecord]:
        return [
            t
            for t in self.tasks.values()
            if not (open_only and t.closed)
            and (block is None or t.block == block)
            and (object_id is None or t.object_id == object_id)
            and (process is None or t.process == process)
            and (instance_ids is None or t.instance_id in instance_ids)
        ]

    def delete_tasks(self, task_ids: list[str]) -> None:
        for tid in task_ids:
            self.tasks.pop(tid, None)

    def count_task_created(self, process: str, block: str, object_id: str | None) -> None:
        key = (process, block, object_id)
        self.created_counts[key] = self.created_counts.get(key, 0) + 1

    def tasks_created(self) -> dict[tuple[str, str, str | None], int]:
        return dict(self.created_counts)

    def inbox(
        self,
        user_id: str,
        executor_processes: Collection[str],
        now: datetime,
        *,
        offset: int = 0,
        limit: int = 50,
    ) -> list[TaskRecord]:
        found = [
            (taskquery.inbox_key(t, now, i), t)
            for i, t in enumerate(self.tasks.values())
            if taskquery.in_inbox(t, user_id, executor_processes)
        ]
        found.sort(key=lambda pair: pair[0])
        return [t for _k, t in found[offset : offset + limit]]

    def task_page(
        self,
        query: TaskQuery,
        *,
        sort: str = "created_at",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[TaskRecord], int]:
        found = [t for t in self.tasks.values() if taskquery.matches(t, query)]
        ordered = taskquery.sort_page(found, sort, descending)
        return ordered[offset : offset + limit], len(found)

    def task_statistics(self, query: TaskQuery) -> list[TaskCount]:
        found = (t for t in self.tasks.values() if taskquery.matches(t, query))
        return taskquery.statistics(found, self.tz)

    def inbox_count(self, user_id: str, executor_processes: Collection[str]) -> int:
        return sum(
            1 for t in self.tasks.values() if taskquery.in_inbox(t, user_id, executor_processes)
        )

    def reassign_tasks(self, query: TaskQuery, to: str | None, entry: Mapping[str, Any]) -> int:
        found = [t for t in self.tasks.values() if t.assignee != to and taskquery.matches(t, query)]
        for task in found:
            task.assignee = to
            task.history.append(copy.deepcopy(dict(entry)))
        return len(found)

    # ---- effects --------------------------------------------------------------------------

    def add_message(self, message: MessageRecord) -> None:
        self.outbox.append(message)
        if message.channel == "inapp" and message.recipient is not None:
            self.inapp_feed.append(message)

    def messages(self, since: int = 0) -> list[MessageRecord]:
        return self.outbox[since:]

    def deliveries(
        self,
        *,
        status: str | None = None,
        offset: int = 0,
        limit: int = 50,
        channel: str | None = None,
        ids: Collection[str] | None = None,
    ) -> list[DeliveryRecord]:
        found = []
        for m in reversed(self.outbox):
            state = "bounced" if m.id in self.bounced else m.status
            if status is not None and state != status:
                continue
            if channel is not None and m.channel != channel:
                continue
            if ids is not None and m.id not in ids:
                continue
            found.append(
                DeliveryRecord(
                    id=m.id,
                    instance_id=m.instance_id,
                    process=m.process,
                    block=m.block,
                    channel=m.channel,
                    to=m.to,
                    recipient=m.recipient,
                    subject=m.subject,
                    status=state,
                    attempts=0,
                    last_error=self.bounced.get(m.id),
                    created_at=m.created_at,
                    read_at=m.read_at,
                )
            )
        return found[offset : offset + limit]

    def count_deliveries(self, status: str | None = None, channel: str | None = None) -> int:
        return sum(
            1
            for m in self.outbox
            if (status is None or ("bounced" if m.id in self.bounced else m.status) == status)
            and (channel is None or m.channel == channel)
        )

    def outbox_message(self, message_id: str) -> MessageRecord | None:
        found = [m for m in self.outbox if m.id == message_id]
        return replace(found[0]) if found else None

    def mark_bounced(self, message_id: str, reason: str) -> bool:
        if not any(
            m.id == message_id and m.channel == "email" and m.status == "sent" for m in self.outbox
        ):
            return False  # no such email, or not sent (yet): nothing came back
        self.bounced[message_id] = reason[:2000]
        return True

    def add_sink_mail(self, mail: SinkMail) -> bool:
        if any(m.outbox_id == mail.outbox_id for m in self.sink):
            return False
        self.sink.append(replace(mail, id=len(self.sink) + 1))
        return True

    def sink_mails(self, *, offset: int = 0, limit: int = 50) -> list[SinkMail]:
        return [replace(m) for m in reversed(self.sink)][offset : offset + limit]

    def count_sink_mails(self) -> int:
        return len(self.sink)

    def sink_mail(self, mail_id: int) -> SinkMail | None:
        found = [m for m in self.sink if m.id == mail_id]
        return replace(found[0]) if found else None

    def add_notification(self, message: MessageRecord) -> None:
        self.notified.append(message)
        if message.recipient is not None:
            self.inapp_feed.append(message)

    def notifications(self, since: int = 0) -> list[MessageRecord]:
        return self.notified[since:]

    # ---- in-app messages (services/notify.py) ----------------------------------------------

    def _inapp(
        self, recipient: str, unread_only: bool, ids: Collection[str] | None
    ) -> list[MessageRecord]:
        wanted = None if ids is None else set(ids)
        return [
            replace(m, read_at=self.inapp_read.get(m.id))
            for m in reversed(self.inapp_feed)
            if m.recipient == recipient
            and (wanted is None or m.id in wanted)
            and not (unread_only and m.id in self.inapp_read)
        ]

    def inapp_messages(
        self,
        recipient: str,
        *,
        unread_only: bool = False,
        ids: Collection[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[MessageRecord], int]:
        found = self._inapp(recipient, unread_only, ids)
        end = None if limit is None else offset + limit
        return found[offset:end], len(found)

    def inapp_unread(self, recipient: str) -> int:
        return len(self._inapp(recipient, True, None))

    def mark_inapp_read(
        self, recipient: str, ids: Collection[str] | None, at: datetime
    ) -> list[str]:
        marked = sorted(m.id for m in self._inapp(recipient, True, ids))
        for mid in marked:
            self.inapp_read[mid] = at
        return marked

    def add_incident(self, incident: IncidentRecord) -> None:
        self.incident_list.append(incident)

    def resolve_incidents(self, instance_id: str) -> None:
        for inc in self.incident_list:
            if inc.instance_id == instance_id:
                inc.resolved = True

    def incidents(self, open_only: bool = False) -> list[IncidentRecord]:
        return [i for i in self.incident_list if not (open_only and i.resolved)]

    def add_history(self, line: dict[str, Any]) -> None:
        self.history_lines.append(line)

    def history(self, instance_id: str | None = None) -> Iterator[dict[str, Any]]:
        for line in self.history_lines:
            if instance_id is None or line.get("instance") == instance_id:
                yield line

    def history_page(
        self, instance_id: str, offset: int = 0, limit: int = 50
    ) -> tuple[list[dict[str, Any]], int]:
        lines = list(self.history(instance_id))
        return lines[offset : offset + limit], len(lines)

    # ---- savepoints -----------------------------------------------------------------------

    _APPEND_ONLY = ("outbox", "notified", "history_lines", "sink", "inapp_feed")
    _COPIED = (
        "objects",
        "instances",
        "tasks",
        "timers",
        "_heap",
        "subscriptions",
        "subscribed",
        "entered",
        "matched_by",
        "approved",
        "statuses",
        "created_counts",
        "incident_list",
        "_object_seqs",
        "form_submissions",
        "used_links",
        "sessions",
        "api_token_rows",
        "login_failures",
        "schema",
        "deployed",
        "inbound",
        "bounced",
        "inapp_read",
    )

    def close(self) -> None:
        """Nothing to release."""

    def prefetch(
        self,
        *,
        object_ids: list[str] | None = None,
        instance_ids: list[str] | None = None,
        lock_objects: bool = False,
    ) -> None:
        """Everything is in memory already."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        saved = self.savepoint()
        try:
            yield
        except BaseException:
            self.rollback(saved)
            raise

    def savepoint(self) -> dict[str, Any]:
        """What :meth:`rollback` needs to undo everything done after this call.

        The memory store's stand-in for a transaction: a refused request changes nothing.
        Append-only lists are cut back to their length; the rest is copied.
        """
        saved: dict[str, Any] = {k: len(getattr(self, k)) for k in self._APPEND_ONLY}
        saved.update({k: copy.deepcopy(getattr(self, k)) for k in self._COPIED})
        saved["_seq"] = (self._timer_seq, self._instance_seq)
        # Definitions are immutable: copying the lists is enough to undo a deploy.
        saved["versions"] = {k: list(v) for k, v in self.versions.items()}
        return saved

    def rollback(self, saved: dict[str, Any]) -> None:
        for k in self._APPEND_ONLY:
            del getattr(self, k)[saved[k] :]
        for k in self._COPIED:
            setattr(self, k, saved[k])
        self._timer_seq, self._instance_seq = saved["_seq"]
        self.versions = saved["versions"]

    # ---- timers ---------------------------------------------------------------------------

    def add_timer(self, timer: TimerRecord) -> None:
        self._timer_seq += 1
        timer.order = self._timer_seq
        self.timers[timer.id] = timer
        heapq.heappush(self._heap, (timer.due_at, timer.order, timer.id))

    def cancel_timer(self, timer_id: str) -> None:
        self.timers.pop(timer_id, None)

    def next_timer(self, until: datetime) -> TimerRecord | None:
        """The earliest timer due at or before ``until`` (ties in scheduling order)."""
        while self._heap:
            due, order, tid = self._heap[0]
            timer = self.timers.get(tid)
            if timer is None or timer.order != order:
                heapq.heappop(self._heap)
                continue
            return timer if due <= until else None
        return None

    def pop_timer(self, timer_id: str) -> TimerRecord | None:
        return self.timers.pop(timer_id, None)


def _instance_order(instance_id: str) -> tuple[int, str]:
    head = instance_id.split(".", 1)[0]
    return (int(head[1:]) if head[1:].isdigit() else 0, instance_id)


__all__ = ["MemoryStore", "MessageRecord", "TaskRecord", "TimerRecord"]
