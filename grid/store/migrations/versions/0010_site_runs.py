"""The last planning run of each site, so that ``GET /api/v1/fleet/status`` survives a restart.

Revision ID: 0010
Revises: 0009 (store temperatures)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from grid.store.schema import UtcTimestamp

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "site_runs",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("period_start", UtcTimestamp(), nullable=True),
        sa.Column("started_at", UtcTimestamp(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("warm", sa.Boolean(), nullable=True),
        sa.Column("worker", sa.String(length=200), server_default="", nullable=False),
        sa.Column("queue_wait_s", sa.Float(), nullable=True),
        sa.Column("last_good_period", UtcTimestamp(), nullable=True),
        sa.Column("failures_in_a_row", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("site_id", name=op.f("pk_site_runs")),
    )


def downgrade() -> None:
    op.drop_table("site_runs")
