"""Runtime columns: creation order (``seq``), outbox kinds and errors, periodic matches,
named counters, and the PostgreSQL sequence ``flowlane_seq``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    if is_pg:
        op.execute("CREATE SEQUENCE IF NOT EXISTS flowlane_seq")
    for table in ("instances", "tasks", "outbox"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("instances") as batch:
        batch.alter_column("seq", server_default=None)
        batch.create_index("ix_instances_parent_id", ["parent_id"])
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("seq", server_default=None)
        batch.create_index("ix_tasks_instance_id", ["instance_id"])
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("seq", server_default=None)
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="message"))
        batch.add_column(sa.Column("last_error", sa.Text()))
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("kind", server_default=None)
        batch.create_index("ix_outbox_kind_seq", ["kind", "seq"])
    op.create_table(
        "matched",
        sa.Column("process", sa.String(200), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("process", "object_id", name="pk_matched"),
    )
    op.create_table(
        "sequences",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sequences"),
    )


def downgrade() -> None:
    op.drop_table("sequences")
    op.drop_table("matched")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_kind_seq")
        batch.drop_column("last_error")
        batch.drop_column("kind")
        batch.drop_column("seq")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_instance_id")
        batch.drop_column("seq")
    with op.batch_alter_table("instances") as batch:
        batch.drop_index("ix_instances_parent_id")
        batch.drop_column("seq")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS flowlane_seq")
