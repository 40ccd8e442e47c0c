"""Forecasts as beliefs: one row per (site, target, quantity, interval, issue time, model, quantile).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from grid.store.schema import UtcTimestamp

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "forecasts",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("quantity", sa.String(length=32), nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        sa.Column("issued_at", UtcTimestamp(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("quantile", sa.Float(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_forecasts_site_id_sites"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint(
            "site_id", "target", "quantity", "ts", "issued_at", "model", "quantile", name=op.f("pk_forecasts")
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("forecasts")
