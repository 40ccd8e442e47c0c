"""Sites as data: versioned site descriptions with their input series (PUT /api/v1/sites/{site}).

Revision ID: 0008
Revises: 0007 (telemetry revisions)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from grid.store.schema import BIG_ID, UtcTimestamp

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "site_versions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("series", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcTimestamp(), nullable=False),
        sa.Column("changes", sa.Text(), server_default="", nullable=False),
        sa.Column("retired", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_versions")),
        sa.UniqueConstraint("site_id", "version", name="uq_site_versions_site_version"),
    )


def downgrade() -> None:
    op.drop_table("site_versions")
