"""Heat stores that report their temperature: the temperatures at which each store is empty and
full, per registered asset (telemetry converts a temperature to kWh with them).

Revision ID: 0009
Revises: 0008 (site versions)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.add_column(sa.Column("temp_empty_degc", sa.Float(), nullable=True))
        batch.add_column(sa.Column("temp_full_degc", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("temp_full_degc")
        batch.drop_column("temp_empty_degc")
