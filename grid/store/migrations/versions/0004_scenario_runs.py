"""Scenario runs started over the API: the scenario, the run's progress and its result.

Revision ID: 0004
Revises: 0003 (service)
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from grid.store.schema import UtcTimestamp

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scenario_runs",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scenario_status", sa.String(length=32), nullable=True),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("submitted_at", UtcTimestamp(), nullable=False),
        sa.Column("started_at", UtcTimestamp(), nullable=True),
        sa.Column("finished_at", UtcTimestamp(), nullable=True),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_scenario_runs")),
        sa.UniqueConstraint("run_id", name=op.f("uq_scenario_runs_run_id")),
    )
    op.create_index("ix_scenario_runs_site_seq", "scenario_runs", ["site_id", "seq"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_scenario_runs_site_seq", table_name="scenario_runs")
    op.drop_table("scenario_runs")
