"""The durable schema: SQLAlchemy Core tables shared by SQLite and PostgreSQL.

Migrations under ``migrations/versions`` must create exactly these tables;
``tests/store/test_migrations.py`` compares an upgraded database with :data:`metadata`.
Timestamps are ``TIMESTAMP WITH TIME ZONE`` and always UTC-aware in Python (see
:class:`Timestamp`); JSON columns are JSONB on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB

# Deterministic constraint names, identical on both dialects, so migrations can name them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

JOB_KINDS = ("timer", "periodic", "deliver", "event", "retry")
JOB_STATUSES = ("ready", "locked", "done", "failed")

# JSON everywhere, JSONB on PostgreSQL (indexable, compact, compared by value).
Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only autoincrements an ``INTEGER PRIMARY KEY`` (the rowid alias), never ``BIGINT``.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Timestamp(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that accepts only aware datetimes and returns UTC ones.

    SQLite stores timestamps as text without an offset and returns naive values; storing UTC
    and re-attaching it on read gives both dialects the same behaviour.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to a timestamp column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _id(name: str, *args: Any, **kw: Any) -> Column[Any]:
    """An id column (instance, task, object, job or message id): short text."""
    return Column(name, String(100), *args, **kw)


def _name(name: str, **kw: Any) -> Column[Any]:
    """A key or name (process key, block id, user id, channel): text up to 200 characters."""
    return Column(name, String(200), **kw)


def _status(name: str = "status", **kw: Any) -> Column[Any]:
    return Column(name, String(20), **kw)


def _at(name: str, *, nullable: bool = False) -> Column[Any]:
    return Column(name, Timestamp(), nullable=nullable)


# One row per deployed version of a process; ``source`` is the file as deployed, ``spec`` the
# parsed definition.
process_versions = Table(
    "process_versions",
    metadata,
    _name("key", nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("spec", Json, nullable=False),
    _at("deployed_at"),
    PrimaryKeyConstraint("key", "version"),
)

objects = Table(
    "objects",
    metadata,
    _id("id", primary_key=True),
    _name("type", nullable=False),
    Column("data", Json, nullable=False),
    _at("created_at"),
    _at("updated_at"),
    Index(None, "type"),
)

# ``state`` is ``flowlane.engine.state.to_dict``; the other columns copy what queries need.
instances = Table(
    "instances",
    metadata,
    _id("id", primary_key=True),
    _name("process", nullable=False),
    Column("version", Integer, nullable=False),
    _id("object_id"),
    _status(nullable=False),
    _id("parent_id"),
    Column("state", Json, nullable=False),
    _at("updated_at"),
    Column("seq", BigInteger, nullable=False),
    Index(None, "process", "object_id"),
    Index(None, "status"),
    Index(None, "parent_id"),
)

# ``data`` holds title, text, options, fields, workflow, waits, answer, comments and history.
tasks = Table(
    "tasks",
    metadata,
    _id("id", primary_key=True),
    _id("instance_id", ForeignKey("instances.id"), nullable=False),
    _name("process", nullable=False),
    _name("block", nullable=False),
    _status("kind", nullable=False),
    _id("object_id"),
    _name("assignee"),
    _name("status", nullable=False),
    Column("closed", Boolean, nullable=False),
    _status("priority", nullable=False),
    Column("reaction_s", Integer),
    _at("created_at"),
    _at("closed_at", nullable=True),
    Column("data", Json, nullable=False),
    Column("seq", BigInteger, nullable=False),
    # ---- inbox, task table, statistics ----
    # created_at + reaction_s; the inbox sorts on it (overdue first, then by due time).
    _at("due_at", nullable=True),
    # urgent 0, high 1, normal 2, low 3 (flowlane.store.records.PRIORITY_RANKS).
    Column("priority_rank", Integer, nullable=False),
    # the process's ``task: inbox`` setting when the task was opened.
    Column("inbox", Boolean, nullable=False),
    # the creation date in the account's zone (ISO), grouped on by the statistics.
    Column("created_day", String(10), nullable=False),
    Index(None, "assignee", "closed"),
    Index(None, "instance_id"),
    Index(None, "process", "status"),
    Index(None, "object_id"),
    Index(None, "assignee", "closed", "inbox", "priority_rank", "due_at"),
    Index(None, "process", "assignee", "status", "created_day"),
)

# Timers, periodic launches, deliveries, queued events and retries. ``due_at`` comes from the
# injected clock, never from the database's now(); ``seq`` orders jobs due at the same time.
jobs = Table(
    "jobs",
    metadata,
    _id("id", primary_key=True),
    _status("kind", nullable=False),
    _id("instance_id"),
    Column("payload", Json, nullable=False),
    _at("due_at"),
    Column("seq", BigInteger, nullable=False),
    _status(nullable=False),
    _name("locked_by"),
    _at("locked_until", nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    CheckConstraint(f"kind IN {JOB_KINDS!r}", name="kind"),
    CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
    Index(None, "status", "due_at", "seq"),
)

# Which instances wait on which object (``wait_for``, conditional events).
subscriptions = Table(
    "subscriptions",
    metadata,
    _id("object_id", nullable=False),
    _id("instance_id", nullable=False),
    PrimaryKeyConstraint("object_id", "instance_id"),
    Index(None, "object_id"),
)

# Effects written in the step's transaction and delivered afterwards; ``id`` is the message id
# the stable Message-ID / idempotency key derives from.
outbox = Table(
    "outbox",
    metadata,
    _id("id", primary_key=True),
    _id("instance_id", nullable=False),
    _name("process", nullable=False),
    _name("block", nullable=False),
    _status("channel", nullable=False),
    Column("to", Text, nullable=False),
    _name("recipient"),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    _at("created_at"),
    _status(nullable=False),
    Column("attempts", Integer, nullable=False),
    _at("sent_at", nullable=True),
    Column("seq", BigInteger, nullable=False),
    _status("kind", nullable=False),
    Column("last_error", Text),
    _id("task_id"),  # the task a reply to this email comments on (``reply_to_task``)
    _at("read_at", nullable=True),  # read in the app (in-app messages, notifications)
    Index(None, "kind", "seq"),
    Index(None, "recipient", "seq"),
)

history = Table(
    "history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _at("at"),
    _id("instance_id"),
    _name("process"),
    _name("block"),
    _name("event", nullable=False),
    Column("details", Json),
    Index(None, "instance_id"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _id("instance_id", nullable=False),
    _name("block"),
    Column("message", Text, nullable=False),
    _at("at"),
    Column("resolved", Boolean, nullable=False),
    Index(None, "instance_id"),
)

# Objects that have entered a process once (``once per object`` launches).
entered = Table(
    "entered",
    metadata,
    _name("process", nullable=False),
    _id("object_id", nullable=False),
    PrimaryKeyConstraint("process", "object_id"),
)

approvals = Table(
    "approvals",
    metadata,
    _name("process", primary_key=True),
    _name("by", nullable=False),
    _at("at"),
)

# Account-wide settings written once (the signing secret of links, reply addresses and hooks).
account_settings = Table(
    "account_settings",
    metadata,
    _name("key", primary_key=True),
    Column("value", Text, nullable=False),
)

# Emails the worker stored instead of sending (``FLOWLANE_MAIL=sink``): one per outbox id;
# ``raw`` is the whole MIME text, read back in the UI.
sink_mails = Table(
    "sink_mails",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _id("outbox_id", nullable=False, unique=True),
    Column("message_id", String(300), nullable=False),
    Column("to", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("raw", Text, nullable=False),
    _at("stored_at"),
)

# Public form submissions, counted per form and address (a keyed hash) for the rate limit:
# accepted ones and refused ones (bad values), so that invalid posts count too.
# ``object_id``: the object created or changed (an accepted one), for signed links' on_open.
form_submissions = Table(
    "form_submissions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _name("form", nullable=False),
    Column("address_hash", String(100), nullable=False),
    _at("at"),
    _id("object_id"),
    Column("accepted", Boolean, nullable=False),
    Index(None, "form", "address_hash", "at"),
    Index(None, "object_id"),
)

# Signed links submitted once (single use): a hash of the token, never the token itself.
used_links = Table(
    "used_links",
    metadata,
    Column("token_hash", String(100), primary_key=True),
    _at("used_at"),
    _id("object_id", nullable=False),
)

# Inbound messages handled once: ``key`` is ``<kind>:<id>`` (a webhook call's idempotency
# key, an email's Message-ID); ``result`` is what handling it gave, answered to a duplicate.
inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("key", String(400), primary_key=True),
    _at("received_at"),
    Column("result", Json),
)

# A process's lifecycle (``active`` / ``stopped``); no row means active, never (re)started.
process_status = Table(
    "process_status",
    metadata,
    _name("process", primary_key=True),
    _status(nullable=False),
    _at("started_at", nullable=True),
    _at("stopped_at", nullable=True),
)

dictionary_values = Table(
    "dictionary_values",
    metadata,
    _name("dictionary", nullable=False),
    _name("value", nullable=False),
    _at("added_at"),
    PrimaryKeyConstraint("dictionary", "value"),
)

# The account's object types (custom ones and extended built-ins; an untouched built-in has
# no row): ``spec`` is the type in objects.yaml syntax (``flowlane.objects.type_spec``), with
# dates tagged as in ``objects.data``. Loaded into ``SqlStore.schema`` when the store opens.
object_types = Table(
    "object_types",
    metadata,
    _name("key", primary_key=True),
    Column("spec", Json, nullable=False),
    _at("updated_at"),
)

# What the last deploy declared for each type (``spec`` as in ``object_types``: the recipe's
# type, ``flowlane.objects.type_spec``): a redeploy applies only what the recipe changed since.
deployed_types = Table(
    "deployed_types",
    metadata,
    _name("key", primary_key=True),
    Column("spec", Json, nullable=False),
    _at("deployed_at"),
)

# Dictionaries in their declared order; values added one by one later are rows of
# ``dictionary_values`` (appended after these on load).
object_dictionaries = Table(
    "object_dictionaries",
    metadata,
    _name("key", primary_key=True),
    Column("items", Json, nullable=False),
    _at("updated_at"),
)

# User groups, in the order they were declared or added.
account_groups = Table(
    "account_groups",
    metadata,
    _name("key", primary_key=True),
    Column("position", Integer, nullable=False),
    _at("added_at"),
)

# Objects that matched a periodic launch's condition at its last check.
matched = Table(
    "matched",
    metadata,
    _name("process", nullable=False),
    _id("object_id", nullable=False),
    PrimaryKeyConstraint("process", "object_id"),
)

# Named counters for readable ids (``i7``, ``order-3``) and, on SQLite, for ``seq`` columns;
# PostgreSQL takes ``seq`` values from the sequence ``flowlane_seq`` instead, so that
# concurrent transactions do not queue on one row.
sequences = Table(
    "sequences",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Tasks created per (process, block, object); ``object_id`` is '' for tasks without an
# object, because a primary key column cannot be NULL. Survives task deletion by ``restart``.
task_counts = Table(
    "task_counts",
    metadata,
    _name("process", nullable=False),
    _name("block", nullable=False),
    _id("object_id", nullable=False),
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("process", "block", "object_id"),
)

# Login sessions: ``id_hash`` is the SHA-256 of the cookie's value, never the value itself.
auth_sessions = Table(
    "auth_sessions",
    metadata,
    Column("id_hash", String(100), primary_key=True),
    _name("user_id", nullable=False, index=True),
    Column("csrf", String(100), nullable=False),
    _at("created_at"),
    _at("expires_at"),
)

# API tokens: ``token_hash`` is the SHA-256 of the secret; ``id`` is public.
api_tokens = Table(
    "api_tokens",
    metadata,
    _id("id", primary_key=True),
    Column("token_hash", String(100), nullable=False, unique=True),
    _name("user_id", nullable=False, index=True),
    _name("name", nullable=False),
    _at("created_at"),
    _at("last_used_at", nullable=True),
    _at("revoked_at", nullable=True),
)

# Failed logins per key (a hash of email and address), counted for the login throttle.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("key_hash", String(100), nullable=False),
    _at("at"),
    Index(None, "key_hash", "at"),
)
