"""The initial durable schema (flowlane.store.sql.tables as of 0.1).

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types: a migration never imports the live tables module.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _id(name: str, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, sa.String(100), **kw)


def _name(name: str, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, sa.String(200), **kw)


def _status(name: str = "status", **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, sa.String(20), **kw)


def _at(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, TS, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "process_versions",
        _name("key", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        _at("deployed_at"),
        sa.PrimaryKeyConstraint("key", "version", name="pk_process_versions"),
    )
    op.create_table(
        "objects",
        _id("id", nullable=False),
        _name("type", nullable=False),
        sa.Column("data", JSON, nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_objects"),
    )
    op.create_index("ix_objects_type", "objects", ["type"])
    op.create_table(
        "instances",
        _id("id", nullable=False),
        _name("process", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _id("object_id", nullable=True),
        _status(nullable=False),
        _id("parent_id", nullable=True),
        sa.Column("state", JSON, nullable=False),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_instances"),
    )
    op.create_index("ix_instances_process_object_id", "instances", ["process", "object_id"])
    op.create_index("ix_instances_status", "instances", ["status"])
    op.create_table(
        "tasks",
        _id("id", nullable=False),
        _id("instance_id", nullable=False),
        _name("process", nullable=False),
        _name("block", nullable=False),
        _status("kind", nullable=False),
        _id("object_id", nullable=True),
        _name("assignee", nullable=True),
        _name("status", nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        _status("priority", nullable=False),
        sa.Column("reaction_s", sa.Integer(), nullable=True),
        _at("created_at"),
        _at("closed_at", nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.id"], name="fk_tasks_instance_id_instances"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
    )
    op.create_index("ix_tasks_assignee_closed", "tasks", ["assignee", "closed"])
    op.create_index("ix_tasks_process_status", "tasks", ["process", "status"])
    op.create_index("ix_tasks_object_id", "tasks", ["object_id"])
    op.create_table(
        "jobs",
        _id("id", nullable=False),
        _status("kind", nullable=False),
        _id("instance_id", nullable=True),
        sa.Column("payload", JSON, nullable=False),
        _at("due_at"),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        _status(nullable=False),
        _name("locked_by", nullable=True),
        _at("locked_until", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('timer', 'periodic', 'deliver', 'event', 'retry')", name="ck_jobs_kind"
        ),
        sa.CheckConstraint(
            "status IN ('ready', 'locked', 'done', 'failed')", name="ck_jobs_status"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_status_due_at_seq", "jobs", ["status", "due_at", "seq"])
    op.create_table(
        "subscriptions",
        _id("object_id", nullable=False),
        _id("instance_id", nullable=False),
        sa.PrimaryKeyConstraint("object_id", "instance_id", name="pk_subscriptions"),
    )
    op.create_index("ix_subscriptions_object_id", "subscriptions", ["object_id"])
    op.create_table(
        "outbox",
        _id("id", nullable=False),
        _id("instance_id", nullable=False),
        _name("process", nullable=False),
        _name("block", nullable=False),
        _status("channel", nullable=False),
        sa.Column("to", sa.Text(), nullable=False),
        _name("recipient", nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _at("created_at"),
        _status(nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_table(
        "history",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        _at("at"),
        _id("instance_id", nullable=True),
        _name("process", nullable=True),
        _name("block", nullable=True),
        _name("event", nullable=False),
        sa.Column("details", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_history"),
    )
    op.create_index("ix_history_instance_id", "history", ["instance_id"])
    op.create_table(
        "incidents",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        _id("instance_id", nullable=False),
        _name("block", nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        _at("at"),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_instance_id", "incidents", ["instance_id"])
    op.create_table(
        "entered",
        _name("process", nullable=False),
        _id("object_id", nullable=False),
        sa.PrimaryKeyConstraint("process", "object_id", name="pk_entered"),
    )
    op.create_table(
        "approvals",
        _name("process", nullable=False),
        _name("by", nullable=False),
        _at("at"),
        sa.PrimaryKeyConstraint("process", name="pk_approvals"),
    )
    op.create_table(
        "dictionary_values",
        _name("dictionary", nullable=False),
        _name("value", nullable=False),
        _at("added_at"),
        sa.PrimaryKeyConstraint("dictionary", "value", name="pk_dictionary_values"),
    )
    op.create_table(
        "task_counts",
        _name("process", nullable=False),
        _name("block", nullable=False),
        _id("object_id", nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("process", "block", "object_id", name="pk_task_counts"),
    )


def downgrade() -> None:
    for table in (
        "task_counts",
        "dictionary_values",
        "approvals",
        "entered",
        "incidents",
        "history",
        "outbox",
        "subscriptions",
        "jobs",
        "tasks",
        "instances",
        "objects",
        "process_versions",
    ):
        op.drop_table(table)
