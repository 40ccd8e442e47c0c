"""Telemetry revisions: a device value replaced by a later one is kept (as meter revisions are).

Revision ID: 0007
Revises: 0006 (performance)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from grid.store.schema import BIG_ID, UtcTimestamp

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "telemetry_revisions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=16), nullable=False),
        sa.Column("measured_at", UtcTimestamp(), nullable=False),
        sa.Column("old_value", sa.Float(), nullable=False),
        sa.Column("old_received_at", UtcTimestamp(), nullable=False),
        sa.Column("old_batch_id", sa.Integer(), nullable=False),
        sa.Column("new_value", sa.Float(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("revised_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_revisions")),
    )
    op.create_index(
        "ix_telemetry_revisions_site_asset", "telemetry_revisions", ["site_id", "asset_id", "measured_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_telemetry_revisions_site_asset", table_name="telemetry_revisions")
    op.drop_table("telemetry_revisions")
