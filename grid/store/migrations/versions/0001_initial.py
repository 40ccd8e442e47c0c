"""Initial schema: sites, sensors, batches, readings, register readings, revisions, rejected
records and flags.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from grid.store.schema import UtcTimestamp

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="Europe/Berlin", nullable=False),
        sa.Column("resolution_min", sa.Integer(), server_default="15", nullable=False),
        sa.Column("created_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("started_at", UtcTimestamp(), nullable=False),
        sa.Column("committed_at", UtcTimestamp(), nullable=True),
        sa.Column("rows_read", sa.Integer(), server_default="0", nullable=False),
        sa.Column("accepted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default="0", nullable=False),
        sa.Column("revised", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rejected", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_batches_site_id_sites"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    op.create_table(
        "sensors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("meter_id", sa.String(length=64), nullable=True),
        sa.Column("obis", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("measure", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("direction", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=True),
        sa.Column("asset_id", sa.String(length=64), nullable=True),
        sa.Column("max_power_kw", sa.Float(), nullable=True),
        sa.Column("allow_negative", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", UtcTimestamp(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('household_load', 'pv', 'battery', 'ev_charger', 'heat_pump', 'transformer', 'weather')",
            name=op.f("ck_sensors_kind"),
        ),
        sa.CheckConstraint(
            "measure IN ('register', 'energy', 'power', 'temperature', 'irradiance')",
            name=op.f("ck_sensors_measure"),
        ),
        sa.CheckConstraint("direction IN (1, -1)", name=op.f("ck_sensors_direction")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_sensors_site_id_sites"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensors")),
        sa.UniqueConstraint("site_id", "meter_id", "obis", name="uq_sensors_site_meter_obis"),
        sa.UniqueConstraint("site_id", "name", name="uq_sensors_site_name"),
    )
    op.create_table(
        "flags",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sensor_id", sa.Integer(), nullable=False),
        sa.Column("start_ts", UtcTimestamp(), nullable=False),
        sa.Column("end_ts", UtcTimestamp(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("energy_kwh", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('gap', 'reset', 'implausible')", name=op.f("ck_flags_kind")),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name=op.f("fk_flags_batch_id_batches")),
        sa.ForeignKeyConstraint(
            ["sensor_id"],
            ["sensors.id"],
            name=op.f("fk_flags_sensor_id_sensors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flags")),
    )
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.create_index("ix_flags_sensor_start", ["sensor_id", "start_ts"], unique=False)

    op.create_table(
        "readings",
        sa.Column("sensor_id", sa.Integer(), nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("quality", sa.String(length=9), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("ingested_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("sensor_id", "ts", name=op.f("pk_readings")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "register_readings",
        sa.Column("sensor_id", sa.Integer(), nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("quality", sa.String(length=9), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("ingested_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("sensor_id", "ts", name=op.f("pk_register_readings")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "rejected_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("rejected_at", UtcTimestamp(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name=op.f("fk_rejected_records_batch_id_batches")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_records")),
    )
    with op.batch_alter_table("rejected_records", schema=None) as batch_op:
        batch_op.create_index("ix_rejected_records_batch", ["batch_id"], unique=False)

    op.create_table(
        "revisions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("series", sa.String(length=8), nullable=False),
        sa.Column("sensor_id", sa.Integer(), nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        sa.Column("old_value", sa.Float(), nullable=False),
        sa.Column("old_quality", sa.String(length=9), nullable=False),
        sa.Column("old_source", sa.String(length=16), nullable=False),
        sa.Column("old_batch_id", sa.Integer(), nullable=False),
        sa.Column("new_value", sa.Float(), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("revised_at", UtcTimestamp(), nullable=False),
        sa.CheckConstraint("series IN ('reading', 'register')", name=op.f("ck_revisions_series")),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name=op.f("fk_revisions_batch_id_batches")),
        sa.ForeignKeyConstraint(
            ["sensor_id"],
            ["sensors.id"],
            name=op.f("fk_revisions_sensor_id_sensors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisions")),
    )
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.create_index("ix_revisions_sensor_ts", ["sensor_id", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.drop_index("ix_revisions_sensor_ts")

    op.drop_table("revisions")
    with op.batch_alter_table("rejected_records", schema=None) as batch_op:
        batch_op.drop_index("ix_rejected_records_batch")

    op.drop_table("rejected_records")
    op.drop_table("register_readings")
    op.drop_table("readings")
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_index("ix_flags_sensor_start")

    op.drop_table("flags")
    op.drop_table("sensors")
    op.drop_table("batches")
    op.drop_table("sites")
