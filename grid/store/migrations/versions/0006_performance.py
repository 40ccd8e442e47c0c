"""Realised against planned: per site, interval and entity the plan in force and the measurement.

Revision ID: 0006
Revises: 0005 (live data)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from grid.store.schema import UtcTimestamp

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "performance",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=True),
        sa.Column("planned_kw", sa.Float(), nullable=True),
        sa.Column("measured_kw", sa.Float(), nullable=True),
        sa.Column("limit_kw", sa.Float(), nullable=True),
        sa.Column("setpoint_kw", sa.Float(), nullable=True),
        sa.Column("dimmed_kw", sa.Float(), nullable=True),
        sa.Column("price_eur_per_kwh", sa.Float(), nullable=True),
        sa.Column("evaluated_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("site_id", "ts", "entity", name=op.f("pk_performance")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("performance")
