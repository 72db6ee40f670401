"""Messages, forms and signed links: account settings, delivery state, inbound bookkeeping.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ---- account settings (signing secret) ----
    op.create_table(
        "account_settings",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_account_settings"),
    )
    _outgoing_mail()
    _outgoing_hooks()
    _forms_and_links()
    _inbound()


def _outgoing_mail() -> None:
    """Templates, email out, mail sink."""
    op.create_table(
        "sink_mails",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("outbox_id", sa.String(100), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("to", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sink_mails"),
        sa.UniqueConstraint("outbox_id", name="uq_sink_mails_outbox_id"),
    )


def _outgoing_hooks() -> None:
    """Webhooks out, in-app notifications."""
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_outbox_recipient_seq", ["recipient", "seq"])


def _forms_and_links() -> None:
    """Public forms and signed links."""
    op.create_table(
        "form_submissions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("form", sa.String(200), nullable=False),
        sa.Column("address_hash", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("object_id", sa.String(100)),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_form_submissions"),
    )
    op.create_index(
        "ix_form_submissions_form_address_hash_at",
        "form_submissions",
        ["form", "address_hash", "at"],
    )
    op.create_index("ix_form_submissions_object_id", "form_submissions", ["object_id"])
    op.create_table(
        "used_links",
        sa.Column("token_hash", sa.String(100), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_used_links"),
    )


def _inbound() -> None:
    """Inbound webhooks and email."""
    op.create_table(
        "inbound_messages",
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
        sa.PrimaryKeyConstraint("key", name="pk_inbound_messages"),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("task_id", sa.String(100)))


def downgrade() -> None:
    # ---- inbound ----
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("task_id")
    op.drop_table("inbound_messages")
    # ---- forms and links ----
    op.drop_table("used_links")
    op.drop_index("ix_form_submissions_object_id", table_name="form_submissions")
    op.drop_index("ix_form_submissions_form_address_hash_at", table_name="form_submissions")
    op.drop_table("form_submissions")
    # ---- outgoing hooks ----
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_recipient_seq")
        batch.drop_column("read_at")
    # ---- outgoing mail ----
    op.drop_table("sink_mails")
    op.drop_table("account_settings")
