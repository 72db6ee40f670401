"""The store protocol: everything the services read and write, in one narrow interface.

Two implementations pass one contract-test module (``tests/store/test_contract.py``):
:class:`~flowlane.store.memory.MemoryStore`, the reference, and
:class:`~flowlane.store.sql.store.SqlStore` on SQLite or PostgreSQL. Records handed out are
copies: a caller that changes one writes it back with the matching ``put_*`` method.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from flowlane.engine.context import ObjectRecord, World
from flowlane.engine.state import InstanceState
from flowlane.model.definition import Definition
from flowlane.model.form import FormSpec
from flowlane.model.template import Template
from flowlane.objects import ObjectType
from flowlane.store.auth import ApiTokenRecord, SessionRecord
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

CONFLICT_SQLSTATES = ("40P01", "40001")
"""Deadlock detected, serialization failure: the transaction may simply be run again."""


def _sqlstate(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(getattr(orig, "sqlstate", None) or getattr(exc, "sqlstate", None) or "")


def is_conflict(exc: BaseException) -> bool:
    """Whether the database aborted a transaction only because of a concurrent one."""
    return _sqlstate(exc) in CONFLICT_SQLSTATES


def is_bad_value(exc: BaseException) -> bool:
    """Whether the database refused a value (SQLSTATE class 22, data exception)."""
    return _sqlstate(exc).startswith("22")


class Store(World, Protocol):
    """Reads for the engine (:class:`World`) plus the writes of the use cases."""

    templates: dict[str, Template]
    forms: dict[str, FormSpec]
    """The recipe's public forms by key (``forms/<key>.yaml``), like ``templates``."""

    # ---- units of work ---------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        """Everything done inside commits together, or nothing of it stays (nestable)."""
        ...

    def close(self) -> None:
        """Release connections (the store is not used afterwards)."""
        ...

    def prefetch(
        self,
        *,
        object_ids: list[str] | None = None,
        instance_ids: list[str] | None = None,
        lock_objects: bool = False,
    ) -> None:
        """A hint: a batch of steps is about to read (and lock) these rows."""
        ...

    # ---- processes -------------------------------------------------------------------------

    def deploy(self, definition: Definition) -> Definition:
        """Store a new version unless it equals the latest; return the version in force."""
        ...

    def version(self, key: str, version: int) -> Definition: ...

    def process_keys(self) -> list[str]:
        """Keys of every deployed process, sorted."""
        ...

    def process_versions(self, key: str) -> list[VersionInfo]:
        """Every version of the process, oldest first (none when it is not deployed)."""
        ...

    # ---- ids ---------------------------------------------------------------------------------

    def new_instance_id(self) -> str: ...

    def new_object_id(self, type_key: str) -> str: ...

    # ---- instances ---------------------------------------------------------------------------

    def get_instance(self, instance_id: str) -> InstanceState | None: ...

    def put_instance(self, state: InstanceState) -> None: ...

    def instances_of(
        self, process: str | None = None, object_id: str | None = None
    ) -> list[InstanceState]:
        """Instances in the order they were created."""
        ...

    def children_of(self, parent_ids: set[str]) -> list[InstanceState]: ...

    def find_instances(
        self,
        *,
        process: str | None = None,
        object_id: str | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[InstanceState], int]:
        """A page of the instances matching every filter given, newest first, and how many
        match in all."""
        ...

    def instance_counts(self, process: str) -> dict[tuple[int, str], int]:
        """How many instances of the process there are per (version, status)."""
        ...

    def subscribe(self, instance_id: str, object_ids: tuple[str, ...]) -> bool:
        """Record what the instance waits on; True if one of the objects changed since this
        transaction read it (another transaction committed meanwhile): wake it again."""
        ...

    def waiting_on(self, object_id: str) -> list[str]:
        """Instances whose wait conditions read this object (by index, never by scan)."""
        ...

    # ---- launch bookkeeping ------------------------------------------------------------------

    def has_entered(self, process: str, object_id: str) -> bool: ...

    def mark_entered(self, process: str, object_id: str) -> None: ...

    def forget_entered(self, process: str) -> None: ...

    def matched(self, process: str) -> set[str]: ...

    def set_matched(self, process: str, object_ids: set[str]) -> None: ...

    def is_approved(self, process: str) -> bool: ...

    def approve(self, process: str, by: str | None, at: datetime) -> None: ...

    def revoke_approval(self, process: str) -> None:
        """Forget the approval (an edited process must be approved again)."""
        ...

    def process_status(self, process: str) -> ProcessStatus | None:
        """The process's lifecycle as last stored; None if never set (then it is active)."""
        ...

    def put_process_status(self, status: ProcessStatus) -> None: ...

    def setting(self, key: str) -> str | None:
        """An account-wide setting (e.g. the signing secret); None when never set."""
        ...

    def setting_or_put(self, key: str, value: str) -> str:
        """The stored setting, or ``value`` stored and returned when there is none yet: of
        concurrent callers exactly one value wins and all of them get it."""
        ...

    def claim_inbound(self, key: str, at: datetime) -> dict[str, Any] | None:
        """Note the inbound message ``key`` (``<kind>:<id>``: a webhook call's idempotency
        key, an email's Message-ID) as received, in the open transaction. None the first time
        (go on and handle it); for a message seen before, the result that
        :meth:`finish_inbound` recorded then (a duplicate: handle nothing). Of concurrent
        callers with one key one gets None; the others wait for its commit."""
        ...

    def finish_inbound(self, key: str, result: dict[str, Any]) -> None:
        """Record what handling the claimed inbound message ``key`` gave (JSON data)."""
        ...

    # ---- forms and signed links --------------------------------------------------------------

    def add_form_submission(
        self,
        form: str,
        address_hash: str,
        at: datetime,
        object_id: str | None,
        *,
        accepted: bool = True,
    ) -> None:
        """Note a submission of ``form`` from an address (its keyed hash): one taken
        (``object_id`` the object it created or changed), or one refused for its values."""
        ...

    def count_form_submissions(self, form: str, address_hash: str, since: datetime) -> int:
        """Submissions of ``form`` from that address at or after ``since``, taken and
        refused alike."""
        ...

    def last_form_submission(self, object_id: str) -> datetime | None:
        """When a taken submission last created or changed that object (None: never)."""
        ...

    def lock_key(self, key: str) -> None:
        """Hold a lock on ``key`` until the open transaction ends: another transaction
        locking the same key waits for it (PostgreSQL: an advisory transaction lock on a
        64-bit hash of the key; SQLite and memory run one writer at a time: nothing to do)."""
        ...

    def use_link(self, token_hash: str, object_id: str, at: datetime) -> bool:
        """Mark a signed link used, in the open transaction: True the first time, False when
        it was used before (of concurrent callers exactly one gets True)."""
        ...

    def link_used(self, token_hash: str) -> bool:
        """Whether :meth:`use_link` has marked that link used."""
        ...

    # ---- authentication (services/auth.py) ------------------------------------------------

    def put_session(self, session: SessionRecord) -> None:
        """Insert a login session."""
        ...

    def get_session(self, id_hash: str) -> SessionRecord | None:
        """The session with that id hash (expired ones too), else None."""
        ...

    def delete_sessions(self, *, id_hash: str | None = None, user_id: str | None = None) -> int:
        """Delete one session (``id_hash``) or all of a user's; how many went."""
        ...

    def put_api_token(self, token: ApiTokenRecord) -> None:
        """Insert an API token (its id and hash are new)."""
        ...

    def get_api_token(
        self, *, token_id: str | None = None, token_hash: str | None = None
    ) -> ApiTokenRecord | None:
        """The token with that id, or with that hash; revoked ones too."""
        ...

    def api_tokens(self, user_id: str | None = None) -> list[ApiTokenRecord]:
        """The tokens of a user (every user's for None), revoked ones too, oldest first."""
        ...

    def revoke_api_token(self, token_id: str, at: datetime) -> bool:
        """Mark the token revoked at ``at``; False when it does not exist or was revoked."""
        ...

    def touch_api_token(self, token_id: str, at: datetime) -> None:
        """Note that the token was used at ``at``."""
        ...

    def add_login_failure(self, key_hash: str, at: datetime) -> None:
        """Note a failed login for a key (a hash of the email and the address)."""
        ...

    def count_login_failures(self, key_hash: str, since: datetime) -> int:
        """Failed logins of the key at or after ``since``."""
        ...

    def clear_login_failures(self, key_hash: str) -> None:
        """Forget the key's failed logins (after a successful login)."""
        ...

    # ---- objects -----------------------------------------------------------------------------

    def put_object(self, record: ObjectRecord, at: datetime) -> None:
        """Insert a new object or replace a stored one's data."""
        ...

    def update_object(
        self, object_id: str, changes: dict[str, Any], at: datetime
    ) -> dict[str, Any]:
        """Merge ``changes`` into the object's data under its row lock; return the data before."""
        ...

    def objects_of_type(self, type_key: str) -> list[str]:
        """Ids of every object of the type, sorted."""
        ...

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
        """Ids of the objects of a type for which the condition ``where`` holds, sorted.

        ``scope`` gives the other names of the condition (``now``, ``vars``). Only among
        ``ids`` if given; without those that have entered process ``not_entered``; only ids
        after ``after``, at most ``limit``. The SQL store evaluates in the database what it
        can (see :mod:`flowlane.store.sql.segment`), with the same result as in Python.
        """
        ...

    def count_objects(
        self,
        type_key: str,
        where: str | None,
        scope: Mapping[str, Any],
        *,
        not_entered: str | None = None,
    ) -> int:
        """How many objects :meth:`select_objects` would give (counted by the database)."""
        ...

    def newly_matching(
        self,
        process: str,
        type_key: str,
        where: str | None,
        scope: Mapping[str, Any],
        *,
        repeat: bool,
    ) -> list[str]:
        """A periodic check: the objects that match now and may enter, sorted.

        Without ``repeat``: matching objects that never entered the process. With it: those
        that did not match at the previous check; the matching set is remembered.
        """
        ...

    def index_fields(self, type_key: str, where: str | None) -> list[str]:
        """Make the database index the fields that condition ``where`` compares; returns
        their names (none for a store that needs no index)."""
        ...

    def user_by_email(self, email: str) -> str | None: ...

    def add_dictionary_value(self, key: str, value: str, at: datetime) -> None: ...

    # ---- object types (the schema is stored; ``schema`` reflects every change) --------------

    def object_pages(self, type_key: str, size: int = 500) -> Iterator[list[ObjectRecord]]:
        """Every object of the type with its data, sorted by id, ``size`` at a time (each page
        read when the previous one has been handled; locked for update on PostgreSQL)."""
        ...

    def rewrite_objects(self, records: list[ObjectRecord], at: datetime) -> None:
        """Replace the data of stored objects (a type change converting their values):
        nothing wakes, nothing launches."""
        ...

    def put_object_type(self, otype: ObjectType, at: datetime) -> None:
        """Store a new or changed type; ``schema.types`` has it at once."""
        ...

    def stored_type(self, key: str) -> ObjectType | None:
        """The type as the account has stored it; ``None`` while ``schema.types`` holds only
        what was given to the store (a recipe's type not deployed yet, an untouched built-in
        type). The memory store's schema is all stored."""
        ...

    def deployed_types(self) -> dict[str, ObjectType]:
        """The declaration of each type at the last deploy (the recipe's type, as
        :meth:`put_deployed_type` stored it), by key; empty before the first deploy."""
        ...

    def put_deployed_type(self, otype: ObjectType, at: datetime) -> None:
        """Remember ``otype`` as what the deploy declared for its key (the schema is not
        changed: a deploy changes it with :meth:`put_object_type`)."""
        ...

    def put_dictionary(self, key: str, values: list[str], at: datetime) -> None:
        """Store a dictionary with these values (a new one, or more values for one)."""
        ...

    def add_group(self, key: str, at: datetime) -> None:
        """Store a new user group; ``schema.groups`` ends with it."""
        ...

    # ---- tasks ---------------------------------------------------------------------------------

    def put_task(self, task: TaskRecord) -> None: ...

    def get_task(self, task_id: str) -> TaskRecord | None: ...

    def find_tasks(
        self,
        *,
        open_only: bool = False,
        block: str | None = None,
        object_id: str | None = None,
        process: str | None = None,
        instance_ids: set[str] | None = None,
    ) -> list[TaskRecord]:
        """Tasks matching every given filter, in the order they were created."""
        ...

    def delete_tasks(self, task_ids: list[str]) -> None: ...

    def count_task_created(self, process: str, block: str, object_id: str | None) -> None: ...

    def tasks_created(self) -> dict[tuple[str, str, str | None], int]:
        """Tasks opened per (process, block, object), counting tasks ``restart`` deleted."""
        ...

    def inbox(
        self,
        user_id: str,
        executor_processes: Collection[str],
        now: datetime,
        *,
        offset: int = 0,
        limit: int = 50,
    ) -> list[TaskRecord]:
        """A page of a person's inbox: open tasks of ``inbox: true`` processes assigned to
        them, or unassigned in one of ``executor_processes``; overdue first (due strictly
        before ``now``), then priority (urgent first), due time (none last), creation order."""
        ...

    def task_page(
        self,
        query: TaskQuery,
        *,
        sort: str = "created_at",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[TaskRecord], int]:
        """A page of the tasks matching ``query`` sorted by one of ``TASK_SORTS`` (priority:
        urgent first when ascending; None last either way; ties in creation order), and how
        many match in all."""
        ...

    def task_statistics(self, query: TaskQuery) -> list[TaskCount]:
        """Matching tasks counted per assignee, status and day of creation in the account's
        zone; sorted by day, assignee (nobody last), status."""
        ...

    def inbox_count(self, user_id: str, executor_processes: Collection[str]) -> int:
        """How many tasks the person's whole inbox holds: the tasks :meth:`inbox` pages."""
        ...

    def reassign_tasks(self, query: TaskQuery, to: str | None, entry: Mapping[str, Any]) -> int:
        """Give every task matching ``query`` that ``to`` does not hold already to ``to``
        (None: nobody) and append a copy of ``entry`` to its history; how many changed.

        Set-based: on a database one ``UPDATE … WHERE`` that re-checks the filters on every
        row it changes, so a task changed meanwhile so that it no longer matches stays as
        it is."""
        ...

    # ---- timers ----------------------------------------------------------------------------------

    def add_timer(self, timer: TimerRecord) -> None: ...

    def cancel_timer(self, timer_id: str) -> None: ...

    def next_timer(self, until: datetime) -> TimerRecord | None:
        """The earliest timer due at or before ``until`` (ties in scheduling order)."""
        ...

    def pop_timer(self, timer_id: str) -> TimerRecord | None: ...

    # ---- effects ---------------------------------------------------------------------------------

    def add_message(self, message: MessageRecord) -> None:
        """A message for the outbox; it is delivered after the transaction commits."""
        ...

    def messages(self, since: int = 0) -> list[MessageRecord]: ...

    def deliveries(
        self,
        *,
        status: str | None = None,
        offset: int = 0,
        limit: int = 50,
        channel: str | None = None,
        ids: Collection[str] | None = None,
    ) -> list[DeliveryRecord]:
        """Messages of the outbox (not notifications) with their delivery state, newest
        first; only those with ``status``, of ``channel``, among ``ids`` when given."""
        ...

    def count_deliveries(self, status: str | None = None, channel: str | None = None) -> int:
        """How many messages :meth:`deliveries` lists in all (with ``status`` and of
        ``channel`` if given)."""
        ...

    def outbox_message(self, message_id: str) -> MessageRecord | None:
        """The message ``message_id`` of the outbox (not a notification), with its body;
        None when there is none."""
        ...

    def mark_bounced(self, message_id: str, reason: str) -> bool:
        """Mark the sent email with outbox id ``message_id`` (:attr:`MessageRecord.id`,
        carried in the ``X-Flowlane-Outbox`` header; its signed Message-ID is derived from
        it, see :func:`flowlane.runtime.mail.outbox_id_of`) as ``bounced`` with ``reason``
        (a bounced one gets the new reason). False when there is no such email or it is not
        ``sent`` (queued, failed): nothing changes."""
        ...

    def add_sink_mail(self, mail: SinkMail) -> bool:
        """Keep an email the mail sink caught; the store gives it its ``id``. False (and
        nothing stored) when a mail with the same ``outbox_id`` is there already."""
        ...

    def sink_mails(self, *, offset: int = 0, limit: int = 50) -> list[SinkMail]:
        """The sink's mails, newest first."""
        ...

    def count_sink_mails(self) -> int:
        """How many mails the sink holds."""
        ...

    def sink_mail(self, mail_id: int) -> SinkMail | None: ...

    def add_notification(self, message: MessageRecord) -> None: ...

    def notifications(self, since: int = 0) -> list[MessageRecord]: ...

    # ---- in-app messages ---------------------------------------------------------------------
    # A person's in-app feed: messages of channel ``inapp`` and system notifications (every
    # channel) whose ``recipient`` is that person; newest first. ``read_at`` is set on read.

    def inapp_messages(
        self,
        recipient: str,
        *,
        unread_only: bool = False,
        ids: Collection[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[MessageRecord], int]:
        """A page of the feed (only ``ids`` if given) and how many there are in all."""
        ...

    def inapp_unread(self, recipient: str) -> int:
        """How many of the feed are unread."""
        ...

    def mark_inapp_read(
        self, recipient: str, ids: Collection[str] | None, at: datetime
    ) -> list[str]:
        """Mark the unread of the feed (only ``ids`` if given) read at ``at``; their ids,
        sorted. Ids that are not in the feed or are read already are left alone."""
        ...

    def add_incident(self, incident: IncidentRecord) -> None: ...

    def resolve_incidents(self, instance_id: str) -> None: ...

    def incidents(self, open_only: bool = False) -> list[IncidentRecord]: ...

    def add_history(self, line: dict[str, Any]) -> None: ...

    def history(self, instance_id: str | None = None) -> Iterator[dict[str, Any]]: ...

    def history_page(
        self, instance_id: str, offset: int = 0, limit: int = 50
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the instance's history lines (as :meth:`history` gives them), oldest
        first, and how many it has in all."""
        ...


__all__ = ["Store"]
