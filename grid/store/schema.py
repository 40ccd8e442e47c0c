"""The store's tables (SQLAlchemy Core), shared by the bulk paths, the read-back and Alembic.

Conventions
-----------
* Every time column is a tz-aware UTC instant (:class:`UtcTimestamp`): ``TIMESTAMPTZ`` on
  PostgreSQL, integer seconds since the Unix epoch on SQLite (fast to compare and to difference).
* ``readings.ts`` is the *start* of the interval the value covers: a value stamped t covers
  [t, t + resolution). Energy values are kWh per interval, power values mean kW over the interval.
* ``register_readings`` keeps the raw cumulative meter registers (kWh at the instant ``ts``, i.e.
  energy up to ``ts``); their interval energies live in ``readings`` (see
  :mod:`grid.ingest.registers`).
* A changed value never disappears: the old row is copied to ``revisions`` first.
* A rejected input record is stored in ``rejected_records`` with where, field, value and reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

UTC = dt.UTC


class SensorKind(StrEnum):
    """What a sensor measures, for aggregation by kind."""

    HOUSEHOLD_LOAD = "household_load"
    PV = "pv"
    BATTERY = "battery"
    EV_CHARGER = "ev_charger"
    HEAT_PUMP = "heat_pump"
    TRANSFORMER = "transformer"
    WEATHER = "weather"


class Measure(StrEnum):
    """How a sensor's values are to be read.

    register:    cumulative energy register, kWh at an instant (differenced on ingest)
    energy:      energy per interval, kWh
    power:       mean (or instantaneous) power, kW
    temperature: degC
    irradiance:  W/m2
    """

    REGISTER = "register"
    ENERGY = "energy"
    POWER = "power"
    TEMPERATURE = "temperature"
    IRRADIANCE = "irradiance"


class Quality(StrEnum):
    """Quality flag of a stored value."""

    MEASURED = "measured"
    ESTIMATED = "estimated"  # interpolated over a gap, or declared estimated by the source
    REVISED = "revised"  # replaced an earlier measured value (the old one is in ``revisions``)


QUALITY_CODES: dict[Quality, int] = {Quality.MEASURED: 0, Quality.ESTIMATED: 1, Quality.REVISED: 2}
QUALITY_NAMES: list[str] = [q.value for q in QUALITY_CODES]


class UtcTimestamp(TypeDecorator[dt.datetime]):
    """A tz-aware UTC instant: TIMESTAMPTZ on PostgreSQL, integer epoch seconds on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        stamp = dt.datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else value
        if stamp.tzinfo is None:
            raise ValueError(f"naive datetime {stamp!r}: the store keeps tz-aware UTC only")
        if dialect.name == "sqlite":
            return int(stamp.timestamp())
        return stamp.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(value, UTC)
        if isinstance(value, dt.datetime):
            return value.astimezone(UTC)
        raise TypeError(f"unexpected stored timestamp {value!r}")


def stored_time(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """`column` (a :class:`UtcTimestamp`) selected as the driver gives it, without a datetime made
    per row by the type: SQLite's epoch seconds, PostgreSQL's tz-aware datetimes. Read the values
    with :func:`utc_index`."""
    return sa.type_coerce(column, sa.types.NullType()).label(getattr(column, "name", None))


def utc_index(values: Sequence[Any] | np.ndarray) -> pd.DatetimeIndex:
    """The instants of a :func:`stored_time` column (UTC), converted at once: the same index as
    the datetimes :class:`UtcTimestamp` gives, read one by one."""
    seconds = np.asarray(values)
    if seconds.dtype.kind in "iu":
        return pd.DatetimeIndex(pd.to_datetime(seconds.astype(np.int64), unit="s", utc=True))
    return pd.DatetimeIndex(pd.to_datetime(list(values), utc=True))


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


#: Autoincrementing 64-bit ids (SQLite only autoincrements INTEGER PRIMARY KEY).
BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _site_fk() -> sa.ForeignKey:
    return sa.ForeignKey("sites.id", ondelete="CASCADE")


def _sensor_fk() -> sa.ForeignKey:
    return sa.ForeignKey("sensors.id", ondelete="CASCADE")


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


sites = sa.Table(
    "sites",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="Europe/Berlin"),
    sa.Column("resolution_min", sa.Integer, nullable=False, server_default="15"),
    sa.Column("created_at", UtcTimestamp, nullable=False, default=_now),
)

sensors = sa.Table(
    "sensors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("site_id", sa.String(64), _site_fk(), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("meter_id", sa.String(64)),
    sa.Column("obis", sa.String(32)),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("measure", sa.String(16), nullable=False),
    sa.Column("unit", sa.String(8), nullable=False),
    sa.Column("direction", sa.SmallInteger, nullable=False, server_default="1"),
    sa.Column("connection", sa.String(64)),
    sa.Column("asset_id", sa.String(64)),
    sa.Column("max_power_kw", sa.Float),
    sa.Column("allow_negative", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UtcTimestamp, nullable=False, default=_now),
    sa.UniqueConstraint("site_id", "name", name="uq_sensors_site_name"),
    sa.UniqueConstraint("site_id", "meter_id", "obis", name="uq_sensors_site_meter_obis"),
    sa.CheckConstraint(_in("kind", [k.value for k in SensorKind]), name="kind"),
    sa.CheckConstraint(_in("measure", [m.value for m in Measure]), name="measure"),
    sa.CheckConstraint("direction IN (1, -1)", name="direction"),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("site_id", sa.String(64), _site_fk(), nullable=False),
    sa.Column("source_kind", sa.String(16), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("started_at", UtcTimestamp, nullable=False),
    sa.Column("committed_at", UtcTimestamp),
    sa.Column("rows_read", sa.Integer, nullable=False, server_default="0"),
    sa.Column("accepted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("duplicates", sa.Integer, nullable=False, server_default="0"),
    sa.Column("revised", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
    # the first and last interval start of the ``readings`` rows the batch wrote or removed (NULL:
    # none; migration 0011): what a cached aggregate of the readings must take again
    # (:mod:`grid.store.readback`)
    sa.Column("readings_from", UtcTimestamp),
    sa.Column("readings_to", UtcTimestamp),
)


def _value_table(name: str) -> sa.Table:
    # No foreign keys and no CHECK here on purpose: on PostgreSQL the per-row FK triggers cost
    # more than the rest of a bulk insert together, and on SQLite a CHECK ... IN (...) doubles the
    # insert time. Only the ingestion path writes these tables, with sensor ids it has just
    # validated, the batch it has opened in the same transaction and qualities from `Quality`.
    return sa.Table(
        name,
        metadata,
        sa.Column("sensor_id", sa.Integer, primary_key=True),
        sa.Column("ts", UtcTimestamp, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("unit", sa.String(8), nullable=False),
        sa.Column("quality", sa.String(9), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("batch_id", sa.Integer, nullable=False),
        sa.Column("ingested_at", UtcTimestamp, nullable=False),
        sqlite_with_rowid=False,  # clustered on (sensor_id, ts): one B-tree instead of two
    )


#: Interval values: kWh per interval (energy, differenced registers), kW (power), degC, W/m2.
readings = _value_table("readings")

#: Raw cumulative registers: kWh at the instant ``ts`` (energy up to ``ts``).
register_readings = _value_table("register_readings")

revisions = sa.Table(
    "revisions",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("series", sa.String(8), nullable=False),  # 'reading' or 'register'
    sa.Column("sensor_id", sa.Integer, _sensor_fk(), nullable=False),
    sa.Column("ts", UtcTimestamp, nullable=False),
    sa.Column("old_value", sa.Float, nullable=False),
    sa.Column("old_quality", sa.String(9), nullable=False),
    sa.Column("old_source", sa.String(16), nullable=False),
    sa.Column("old_batch_id", sa.Integer, nullable=False),
    sa.Column("new_value", sa.Float),  # NULL: the value was withdrawn (no longer derivable)
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
    sa.Column("revised_at", UtcTimestamp, nullable=False),
    sa.CheckConstraint("series IN ('reading', 'register')", name="series"),
    sa.Index("ix_revisions_sensor_ts", "sensor_id", "ts"),
)

rejected_records = sa.Table(
    "rejected_records",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("location", sa.Text, nullable=False),  # file:line, topic or payload path
    sa.Column("line", sa.Integer),
    sa.Column("field", sa.String(64), nullable=False),
    sa.Column("value", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("rejected_at", UtcTimestamp, nullable=False),
    sa.Index("ix_rejected_records_batch", "batch_id"),
)

flags = sa.Table(
    "flags",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("sensor_id", sa.Integer, _sensor_fk(), nullable=False),
    sa.Column("start_ts", UtcTimestamp, nullable=False),  # the flagged span is [start_ts, end_ts)
    sa.Column("end_ts", UtcTimestamp, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # gap, reset, implausible
    sa.Column("energy_kwh", sa.Float),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
    sa.CheckConstraint("kind IN ('gap', 'reset', 'implausible')", name="kind"),
    sa.Index("ix_flags_sensor_start", "sensor_id", "start_ts"),
)


# --- The service (API keys, plans, scheduler runs); see grid/store/apikeys.py and plans.py ---

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),  # sha256(salt + secret), hex
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("sites", sa.Text, nullable=False),  # comma-separated site ids, "*" = every site
    sa.Column("label", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", UtcTimestamp, nullable=False),
    sa.Column("revoked_at", UtcTimestamp),
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),  # save order (ties in computed_at)
    sa.Column("plan_id", sa.String(32), nullable=False, unique=True),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("computed_at", UtcTimestamp, nullable=False),
    sa.Column("start", UtcTimestamp, nullable=False),
    sa.Column("end", UtcTimestamp, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),  # optimal, optimal_with_violations, failed
    sa.Column("stale", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("stale_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("objective_eur", sa.Float),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("trigger", sa.String(16), nullable=False, server_default="manual"),  # scheduled, manual
    sa.Column("duration_s", sa.Float),
    sa.Column("plan_json", sa.Text, nullable=False),  # Plan.to_dict() as JSON
    sa.Index("ix_plans_site_seq", "site_id", "seq"),
)

schedule_runs = sa.Table(
    "schedule_runs",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("period_start", UtcTimestamp, primary_key=True),  # the quarter-hour the run planned from
    sa.Column("started_at", UtcTimestamp, nullable=False),
    sa.Column("finished_at", UtcTimestamp),
    sa.Column("status", sa.String(32), nullable=False),  # running, optimal, ..., failed
    sa.Column("plan_id", sa.String(32)),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
)

#: Forecasts as beliefs: the value of `target` for interval [ts, ts + resolution) at quantile
#: level `quantile` (0..1), as issued at `issued_at` by `model`. Nothing is overwritten by a
#: later run, so the forecast "as known at" any past instant can be read back
#: (:mod:`grid.store.forecasts`). `target` is ``site``, ``connection:<id>``, ``sensor:<id>``,
#: ``pv:<array id>``, ``heat:<heat pump id>`` ...; `quantity` names the unit (``power_kw``,
#: ``kw_per_kwp``, ``heat_kw``, ``temp_degc``).
forecasts = sa.Table(
    "forecasts",
    metadata,
    sa.Column("site_id", sa.String(64), _site_fk(), primary_key=True),
    sa.Column("target", sa.String(128), primary_key=True),
    sa.Column("quantity", sa.String(32), primary_key=True),
    sa.Column("ts", UtcTimestamp, primary_key=True),
    sa.Column("issued_at", UtcTimestamp, primary_key=True),
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("quantile", sa.Float, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sqlite_with_rowid=False,
)

#: scenario runs started over the API (grid.store.scenarios): the scenario, progress and result
scenario_runs = sa.Table(
    "scenario_runs",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),  # submission order
    sa.Column("run_id", sa.String(32), nullable=False, unique=True),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # queued, running, succeeded, failed
    sa.Column("scenario_status", sa.String(32)),  # optimal, optimal_with_violations, invalid, failed, error
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("submitted_at", UtcTimestamp, nullable=False),
    sa.Column("started_at", UtcTimestamp),
    sa.Column("finished_at", UtcTimestamp),
    sa.Column("spec_json", sa.Text, nullable=False),  # the scenario as submitted
    sa.Column("result_json", sa.Text),  # grid.scenarios.ScenarioResult.to_dict() as JSON
    sa.Index("ix_scenario_runs_site_seq", "site_id", "seq"),
)


# --- Live data that closes the loop (migration 0005; see grid/store/live.py) ---

#: The controllable assets of a site as its YAML describes them (written by ``register_site``):
#: what telemetry is checked against (unknown asset, SoC above capacity).
assets = sa.Table(
    "assets",
    metadata,
    sa.Column("site_id", sa.String(64), _site_fk(), primary_key=True),
    sa.Column("asset_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # battery, heat_pump, ev_charger, pv
    sa.Column("connection", sa.String(64)),
    sa.Column("capacity_kwh", sa.Float),  # battery capacity, heat-store size; NULL: no store
    sa.Column("max_power_kw", sa.Float),  # rating (charge/discharge, electric, charger, kWp)
    # a heat store that reports its temperature: the temperatures at which it is empty and full
    sa.Column("temp_empty_degc", sa.Float),
    sa.Column("temp_full_degc", sa.Float),
)

#: Device state as measured: ``quantity`` soc_kwh (battery), store_kwh (heat store) or power_kw
#: (any device, > 0 drawn from the grid); `value` in `unit` (kWh or kW, converted on ingest).
#: `measured_at` is the device's time, `received_at` when the service got it.
device_telemetry = sa.Table(
    "device_telemetry",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("asset_id", sa.String(64), primary_key=True),
    sa.Column("quantity", sa.String(16), primary_key=True),
    sa.Column("measured_at", UtcTimestamp, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("unit", sa.String(8), nullable=False),
    sa.Column("received_at", UtcTimestamp, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("batch_id", sa.Integer, nullable=False),
    sqlite_with_rowid=False,
)

#: EV charging sessions as their latest state; every change is an event in ev_session_events.
ev_sessions = sa.Table(
    "ev_sessions",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("charger", sa.String(64), nullable=False),
    sa.Column("arrival", UtcTimestamp, nullable=False),
    sa.Column("departure", UtcTimestamp, nullable=False),
    sa.Column("energy_needed_kwh", sa.Float, nullable=False),
    sa.Column("target_soc", sa.Float),
    sa.Column("capacity_kwh", sa.Float),
    sa.Column("initial_soc", sa.Float),
    sa.Column("v2g_consent", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UtcTimestamp, nullable=False),
    sa.Column("updated_at", UtcTimestamp, nullable=False),
    sa.Column("plugged_out_at", UtcTimestamp),
    sa.Index("ix_ev_sessions_site_departure", "site_id", "departure"),
)

ev_session_events = sa.Table(
    "ev_session_events",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("session_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # created, changed, plugged_out
    sa.Column("at", UtcTimestamp, nullable=False),  # when it happened (plug-out time, else received)
    sa.Column("received_at", UtcTimestamp, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # api, mqtt
    sa.Column("body", sa.Text, nullable=False),  # the fields as given (JSON)
    sa.Column("event_key", sa.String(64), nullable=False),  # sha256 of source + body: a redelivery is one event
    sa.UniqueConstraint("event_key", name="uq_ev_session_events_event_key"),
    sa.Index("ix_ev_session_events_site_session", "site_id", "session_id"),
)

#: Day-ahead prices as published: [start, end) at `price_eur_per_kwh`, per `area` (a site id or a
#: market such as DE-LU). A later publication for the same interval is a new row, never an update,
#: so the prices "as known at" any instant can be read back.
price_points = sa.Table(
    "price_points",
    metadata,
    sa.Column("area", sa.String(64), primary_key=True),
    sa.Column("start", UtcTimestamp, primary_key=True),
    sa.Column("published_at", UtcTimestamp, primary_key=True),
    sa.Column("end", UtcTimestamp, nullable=False),
    sa.Column("price_eur_per_kwh", sa.Float, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("received_at", UtcTimestamp, nullable=False),
    sqlite_with_rowid=False,
)

#: Weather forecasts as published, the same way (`quantity`: temp_degc, ghi_w_per_m2, ...).
weather_points = sa.Table(
    "weather_points",
    metadata,
    sa.Column("area", sa.String(64), primary_key=True),
    sa.Column("quantity", sa.String(32), primary_key=True),
    sa.Column("start", UtcTimestamp, primary_key=True),
    sa.Column("published_at", UtcTimestamp, primary_key=True),
    sa.Column("end", UtcTimestamp, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("received_at", UtcTimestamp, nullable=False),
    sqlite_with_rowid=False,
)

#: Grid-operator limit orders for one connection over [start, end): import and/or export caps, kW.
limit_orders = sa.Table(
    "limit_orders",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("connection", sa.String(64), nullable=False),
    sa.Column("start", UtcTimestamp, nullable=False),
    sa.Column("end", UtcTimestamp, nullable=False),
    sa.Column("import_kw", sa.Float),
    sa.Column("export_kw", sa.Float),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("created_at", UtcTimestamp, nullable=False),
    sa.Column("cancelled_at", UtcTimestamp),
    sa.Index("ix_limit_orders_site_start", "site_id", "start"),
)


# --- Realised against planned (migration 0006; see grid/schedule/performance.py) ---

#: One row per site, interval and entity (a connection or a controllable asset), written after the
#: interval ended: what the plan in force (the latest good plan computed by the interval's start)
#: said and what was measured. kW are means over [ts, ts + resolution), > 0 drawn from the grid.
#: `measured_kw` is NULL when nothing was measured (never 0); `plan_id` NULL when no plan was in
#: force. Connections: planned import, limit = the plan's import limit or a lower limit order in
#: force. Assets: set-point (the plan's power), `dimmed_kw` the §14a dimming the plan applied.
performance = sa.Table(
    "performance",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("ts", UtcTimestamp, primary_key=True),
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # connection, battery, heat_pump, ev_charger, pv
    sa.Column("plan_id", sa.String(32)),
    sa.Column("planned_kw", sa.Float),
    sa.Column("measured_kw", sa.Float),
    sa.Column("limit_kw", sa.Float),
    sa.Column("setpoint_kw", sa.Float),
    sa.Column("dimmed_kw", sa.Float),
    sa.Column("price_eur_per_kwh", sa.Float),
    sa.Column("evaluated_at", UtcTimestamp, nullable=False),
    sqlite_with_rowid=False,
)

#: Each evaluation's span [start, end) of rewritten ``performance`` rows, written in the same
#: transaction (migration 0012): what a kept copy of the rows must read again
#: (:mod:`grid.schedule.performance`). Ids of one site are in commit order (its evaluations take
#: the site's lock).
performance_writes = sa.Table(
    "performance_writes",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("start", UtcTimestamp, nullable=False),
    sa.Column("end", UtcTimestamp, nullable=False),
    sa.Column("written_at", UtcTimestamp, nullable=False),
    sa.Index("ix_performance_writes_site_id", "site_id", "id"),
)

#: A telemetry value replaced by a later one for the same (asset, quantity, measured_at): the old
#: value is kept here, as ``revisions`` keeps meter values (migration 0007).
telemetry_revisions = sa.Table(
    "telemetry_revisions",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("asset_id", sa.String(64), nullable=False),
    sa.Column("quantity", sa.String(16), nullable=False),
    sa.Column("measured_at", UtcTimestamp, nullable=False),
    sa.Column("old_value", sa.Float, nullable=False),
    sa.Column("old_received_at", UtcTimestamp, nullable=False),
    sa.Column("old_batch_id", sa.Integer, nullable=False),
    sa.Column("new_value", sa.Float, nullable=False),
    sa.Column("batch_id", sa.Integer, nullable=False),
    sa.Column("revised_at", UtcTimestamp, nullable=False),
    sa.Index("ix_telemetry_revisions_site_asset", "site_id", "asset_id", "measured_at"),
)

#: Sites managed as data (migration 0008): every version of a site's description (the YAML schema
#: as JSON, its ``inputs`` naming the series) with its input series (CSV text per input name), who
#: stored it and when, what changed against the version before, and whether it retires the site.
#: The newest row of a site is its current version; a retired site keeps its rows, plans and readings.
site_versions = sa.Table(
    "site_versions",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("description", sa.Text, nullable=False),  # JSON
    sa.Column("series", sa.Text, nullable=False),  # JSON: input name -> CSV text
    sa.Column("digest", sa.String(64), nullable=False),  # sha256 of the validated description and series
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UtcTimestamp, nullable=False),
    sa.Column("changes", sa.Text, nullable=False, server_default=""),
    sa.Column("retired", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("site_id", "version", name="uq_site_versions_site_version"),
)

#: The last planning run of each site (migration 0010; :mod:`grid.store.site_runs`), as
#: ``GET /api/v1/fleet/status`` shows it: kept here so that a restarted service still knows which
#: sites are late or failing. Durations in seconds; `warm` NULL when not known (a failed run).
site_runs = sa.Table(
    "site_runs",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("period_start", UtcTimestamp),
    sa.Column("started_at", UtcTimestamp, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("warm", sa.Boolean),
    sa.Column("worker", sa.String(200), nullable=False, server_default=""),
    sa.Column("queue_wait_s", sa.Float),
    sa.Column("last_good_period", UtcTimestamp),
    sa.Column("failures_in_a_row", sa.Integer, nullable=False, server_default="0"),
)
