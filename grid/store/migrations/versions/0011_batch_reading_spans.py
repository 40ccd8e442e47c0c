"""The span of interval readings each ingestion batch wrote or removed, so that a cached aggregate
of the readings knows what to read again (:mod:`grid.store.readback`).

Revision ID: 0011
Revises: 0010 (site runs)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from grid.store.schema import UtcTimestamp

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("readings_from", UtcTimestamp(), nullable=True))
        batch.add_column(sa.Column("readings_to", UtcTimestamp(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("readings_to")
        batch.drop_column("readings_from")
