"""Live data that closes the loop: the site's assets, device telemetry, EV sessions and their
events, published prices and weather, grid-operator limit orders.

Revision ID: 0005
Revises: 0004 (scenario runs)
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from grid.store.schema import BIG_ID, UtcTimestamp

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=True),
        sa.Column("capacity_kwh", sa.Float(), nullable=True),
        sa.Column("max_power_kw", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_assets_site_id_sites"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "asset_id", name=op.f("pk_assets")),
    )
    op.create_table(
        "device_telemetry",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=16), nullable=False),
        sa.Column("measured_at", UtcTimestamp(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("received_at", UtcTimestamp(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("site_id", "asset_id", "quantity", "measured_at", name=op.f("pk_device_telemetry")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "ev_sessions",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("charger", sa.String(length=64), nullable=False),
        sa.Column("arrival", UtcTimestamp(), nullable=False),
        sa.Column("departure", UtcTimestamp(), nullable=False),
        sa.Column("energy_needed_kwh", sa.Float(), nullable=False),
        sa.Column("target_soc", sa.Float(), nullable=True),
        sa.Column("capacity_kwh", sa.Float(), nullable=True),
        sa.Column("initial_soc", sa.Float(), nullable=True),
        sa.Column("v2g_consent", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", UtcTimestamp(), nullable=False),
        sa.Column("updated_at", UtcTimestamp(), nullable=False),
        sa.Column("plugged_out_at", UtcTimestamp(), nullable=True),
        sa.PrimaryKeyConstraint("site_id", "session_id", name=op.f("pk_ev_sessions")),
    )
    op.create_index("ix_ev_sessions_site_departure", "ev_sessions", ["site_id", "departure"], unique=False)
    op.create_table(
        "ev_session_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", UtcTimestamp(), nullable=False),
        sa.Column("received_at", UtcTimestamp(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ev_session_events")),
        sa.UniqueConstraint("event_key", name="uq_ev_session_events_event_key"),
    )
    op.create_index("ix_ev_session_events_site_session", "ev_session_events", ["site_id", "session_id"], unique=False)
    op.create_table(
        "price_points",
        sa.Column("area", sa.String(length=64), nullable=False),
        sa.Column("start", UtcTimestamp(), nullable=False),
        sa.Column("published_at", UtcTimestamp(), nullable=False),
        sa.Column("end", UtcTimestamp(), nullable=False),
        sa.Column("price_eur_per_kwh", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("received_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("area", "start", "published_at", name=op.f("pk_price_points")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "weather_points",
        sa.Column("area", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=32), nullable=False),
        sa.Column("start", UtcTimestamp(), nullable=False),
        sa.Column("published_at", UtcTimestamp(), nullable=False),
        sa.Column("end", UtcTimestamp(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("received_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("area", "quantity", "start", "published_at", name=op.f("pk_weather_points")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "limit_orders",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("start", UtcTimestamp(), nullable=False),
        sa.Column("end", UtcTimestamp(), nullable=False),
        sa.Column("import_kw", sa.Float(), nullable=True),
        sa.Column("export_kw", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcTimestamp(), nullable=False),
        sa.Column("cancelled_at", UtcTimestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_limit_orders")),
    )
    op.create_index("ix_limit_orders_site_start", "limit_orders", ["site_id", "start"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_limit_orders_site_start", table_name="limit_orders")
    op.drop_table("limit_orders")
    op.drop_table("weather_points")
    op.drop_table("price_points")
    op.drop_index("ix_ev_session_events_site_session", table_name="ev_session_events")
    op.drop_table("ev_session_events")
    op.drop_index("ix_ev_sessions_site_departure", table_name="ev_sessions")
    op.drop_table("ev_sessions")
    op.drop_table("device_telemetry")
    op.drop_table("assets")
