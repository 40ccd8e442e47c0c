"""The span each evaluation rewrote in ``performance``, so that a kept copy of the rows knows what
to read again (:mod:`grid.schedule.performance`).

Revision ID: 0012
Revises: 0011 (batch reading spans)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from grid.store.schema import BIG_ID, UtcTimestamp

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "performance_writes",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("start", UtcTimestamp(), nullable=False),
        sa.Column("end", UtcTimestamp(), nullable=False),
        sa.Column("written_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_writes")),
    )
    op.create_index("ix_performance_writes_site_id", "performance_writes", ["site_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_performance_writes_site_id", table_name="performance_writes")
    op.drop_table("performance_writes")
