"""Tasks: the inbox order (due time, priority rank, inbox flag), attachments, hand-made tasks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import os
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    del bind
    # ---- inbox, task table, statistics ----
    _inbox_columns()
    # ---- attachments, hand-made tasks, variables ----


def _inbox_columns() -> None:
    """Due time, priority rank, inbox flag and creation day (in ``FLOWLANE_TZ``, else the
    default zone) of every task: added empty, filled from the row, then made required.
    Tasks opened before this version count as ``inbox: true``."""
    bind = op.get_bind()
    op.add_column("tasks", sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tasks", sa.Column("priority_rank", sa.Integer(), nullable=True))
    op.add_column("tasks", sa.Column("inbox", sa.Boolean(), nullable=True))
    op.add_column("tasks", sa.Column("created_day", sa.String(10), nullable=True))
    tasks = sa.table(
        "tasks",
        sa.column("id", sa.String),
        sa.column("priority", sa.String),
        sa.column("reaction_s", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("due_at", sa.DateTime(timezone=True)),
        sa.column("priority_rank", sa.Integer),
        sa.column("inbox", sa.Boolean),
        sa.column("created_day", sa.String),
    )
    zone = ZoneInfo(os.environ.get("FLOWLANE_TZ") or "Europe/Moscow")
    ranks = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
    after = ""
    while True:
        rows = bind.execute(
            sa.select(tasks.c.id, tasks.c.priority, tasks.c.reaction_s, tasks.c.created_at)
            .where(tasks.c.id > after)
            .order_by(tasks.c.id)
            .limit(1000)
        ).all()
        if not rows:
            break
        for row in rows:
            created = row.created_at
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            created = created.astimezone(UTC)
            reaction = row.reaction_s
            due = created + timedelta(seconds=reaction) if reaction is not None else None
            bind.execute(
                tasks.update()
                .where(tasks.c.id == row.id)
                .values(
                    due_at=due,
                    priority_rank=ranks.get(row.priority, 2),
                    inbox=True,
                    created_day=created.astimezone(zone).date().isoformat(),
                )
            )
        after = rows[-1].id
    with op.batch_alter_table("tasks") as batch:
        for name in ("priority_rank", "inbox", "created_day"):
            batch.alter_column(name, nullable=False)
    op.create_index(
        "ix_tasks_assignee_closed_inbox_priority_rank_due_at",
        "tasks",
        ["assignee", "closed", "inbox", "priority_rank", "due_at"],
    )
    op.create_index(
        "ix_tasks_process_assignee_status_created_day",
        "tasks",
        ["process", "assignee", "status", "created_day"],
    )


def _drop_inbox_columns() -> None:
    op.drop_index("ix_tasks_process_assignee_status_created_day", table_name="tasks")
    op.drop_index("ix_tasks_assignee_closed_inbox_priority_rank_due_at", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        for name in ("created_day", "inbox", "priority_rank", "due_at"):
            batch.drop_column(name)


def downgrade() -> None:
    # ---- attachments, hand-made tasks, variables ----
    # ---- inbox, task table, statistics ----
    _drop_inbox_columns()
