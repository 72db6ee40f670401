"""Objects and launches: process administration, stored object types, segment support.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ---- process administration (lifecycle, last launch) ----
    op.create_table(
        "process_status",
        sa.Column("process", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("process", name="pk_process_status"),
    )
    # ---- stored object types ----
    from sqlalchemy.dialects import postgresql

    types_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "object_types",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("spec", types_json, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_object_types"),
    )
    op.create_table(
        "deployed_types",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("spec", types_json, nullable=False),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_deployed_types"),
    )
    op.create_table(
        "object_dictionaries",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("items", types_json, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_object_dictionaries"),
    )
    op.create_table(
        "account_groups",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_account_groups"),
    )
    # ---- segments ----
    _utc_object_datetimes(types_json)


def _utc(value: Any) -> Any:
    """Object datetimes as UTC text with microseconds (text order is then time order)."""
    if isinstance(value, dict):
        moment = value.get("$dt")
        if len(value) == 1 and isinstance(moment, str):
            parsed = datetime.fromisoformat(moment)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return {"$dt": parsed.astimezone(UTC).isoformat(timespec="microseconds")}
        return {k: _utc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_utc(v) for v in value]
    return value


def _utc_object_datetimes(json_type: Any) -> None:
    """Rewrite the datetimes stored in objects before this version (with their offsets)."""
    bind = op.get_bind()
    objects = sa.table("objects", sa.column("id", sa.String), sa.column("data", json_type))
    text = sa.cast(objects.c.data, sa.Text)
    after = ""
    while True:
        rows = bind.execute(
            sa.select(objects.c.id, objects.c.data)
            .where(text.like('%"$dt"%'), objects.c.id > after)
            .order_by(objects.c.id)
            .limit(1000)
        ).all()
        if not rows:
            return
        for row in rows:
            new = _utc(row.data)
            if new != row.data:
                bind.execute(objects.update().where(objects.c.id == row.id).values(data=new))
        after = rows[-1].id


def downgrade() -> None:
    # ---- segments ----
    # ---- stored object types ----
    op.drop_table("account_groups")
    op.drop_table("object_dictionaries")
    op.drop_table("deployed_types")
    op.drop_table("object_types")
    # ---- process administration (lifecycle, last launch) ----
    op.drop_table("process_status")
