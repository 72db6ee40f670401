"""Messages, forms and signed links: account settings, delivery state, inbound bookkeeping.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

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


def _outgoing_hooks() -> None:
    """Webhooks out, in-app notifications."""


def _forms_and_links() -> None:
    """Public forms and signed links."""


def _inbound() -> None:
    """Inbound webhooks and email."""


def downgrade() -> None:
    # ---- inbound ----
    # ---- forms and links ----
    # ---- outgoing hooks ----
    # ---- outgoing mail ----
    op.drop_table("account_settings")
