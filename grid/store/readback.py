"""Reading back: one sensor's series or a site's aggregates, for forecasting and the dashboard.

Series are indexed by UTC interval starts (a value stamped t covers [t, t + resolution)) over the
full grid of [start, end); a missing interval is NaN, never 0. Register sensors hold the interval
energies derived from them.

A single sensor's series is as metered (an export register gives positive exported energy).
Aggregates by kind apply the sign convention of :mod:`grid.domain`: positive = drawn from the
grid, so PV generation comes out negative.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from grid.errors import InputError
from grid.store import bulk
from grid.store.schema import Measure, SensorKind, batches, readings
from grid.store.schema import sensors as sensor_table
from grid.store.sites import get_site, sensor_frame
from grid.timeindex import merged_within

Quantity = Literal["power", "energy"]
_ENERGY = {Measure.REGISTER.value, Measure.ENERGY.value}


def _utc(ts: pd.Timestamp | dt.datetime | str, name: str) -> pd.Timestamp:
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise InputError(name, "needs a UTC offset", str(ts))
    return stamp.tz_convert("UTC")


def _pick_sensors(sensors: pd.DataFrame, sensor: str | None, kind: str | None) -> pd.DataFrame:
    if (sensor is None) == (kind is None):
        raise InputError("sensor/kind", "give exactly one of sensor or kind")
    if sensor is not None:
        hit = sensors[sensors["name"] == sensor]
        if hit.empty and "/" in sensor:
            meter, obis = sensor.split("/", 1)
            hit = sensors[(sensors["meter_id"] == meter) & (sensors["obis"] == obis)]
        if hit.empty:
            raise InputError("sensor", "unknown sensor (a name or meter_id/obis)", sensor)
        return hit
    kinds = {k.value for k in SensorKind}
    if kind not in kinds:
        raise InputError("kind", f"must be one of {', '.join(sorted(kinds))}", kind)
    return sensors[sensors["kind"] == kind]


def _values(
    engine: Engine,
    sensors: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    resolution_min: int,
) -> pd.DataFrame:
    """Values per interval (rows: UTC interval starts of [start, end); columns: sensor ids)."""
    index = pd.date_range(start, end, freq=f"{resolution_min}min", inclusive="left", tz="UTC")
    start_s, end_s = int(start.timestamp()), int(end.timestamp())
    bounds = pd.DataFrame({"sensor_id": sensors["id"].to_numpy(), "lo_s": start_s, "hi_s": end_s - 1})
    with engine.connect() as conn:
        rows = bulk.fetch_existing(conn, "readings", bounds)
    table = rows.pivot(index="ts_s", columns="sensor_id", values="value") if len(rows) else pd.DataFrame()
    table.index = pd.to_datetime(table.index.to_numpy(dtype=np.int64), unit="s", utc=True)
    return table.reindex(index=index, columns=sensors["id"].to_numpy())


def _as(values: pd.DataFrame, measures: pd.Series, quantity: Quantity, dt_h: float) -> pd.DataFrame:
    """Convert each column (kWh per interval or kW) to power (kW) or energy (kWh)."""
    out = values.copy()
    for sid in out.columns:
        energy = measures[sid] in _ENERGY
        if energy and quantity == "power":
            out[sid] = out[sid] / dt_h
        elif not energy and quantity == "energy":
            out[sid] = out[sid] * dt_h
    return out


def load_series(
    engine: Engine,
    site_id: str,
    start: pd.Timestamp | dt.datetime | str,
    end: pd.Timestamp | dt.datetime | str,
    sensor: str | None = None,
    kind: str | None = None,
    quantity: Quantity = "power",
) -> pd.Series:
    """Mean power (kW) or energy (kWh) per interval of one sensor or of all sensors of a kind.

    Parameters
    ----------
    sensor : str, optional
        A sensor name (``hh-001.import``) or ``meter_id/obis``.
    kind : str, optional
        A :class:`grid.store.schema.SensorKind`; the series is the signed sum over its sensors
        (positive = drawn from the grid) and NaN wherever one of them has no value.
    quantity : {"power", "energy"}
        ``power_kw`` (mean kW over the interval) or ``energy_kwh``. Temperature and irradiance
        sensors are returned in their own unit (degC, W/m2).

    Returns
    -------
    Series named ``power_kw``, ``energy_kwh``, ``temp_degc`` or ``irradiance_w_per_m2`` with a UTC
    index of interval starts covering [start, end).
    """
    site = get_site(engine, site_id)
    start_ts, end_ts = _utc(start, "start"), _utc(end, "end")
    chosen = _pick_sensors(sensor_frame(engine, site_id), sensor, kind)
    dt_h = site.resolution_min / 60.0
    values = _values(engine, chosen, start_ts, end_ts, site.resolution_min)
    measures = chosen["measure"]
    other = [m for m in measures.unique() if m not in _ENERGY and m != Measure.POWER.value]
    if other:
        if sensor is None:
            raise InputError("kind", "aggregates only sum energy and power sensors", kind)
        name = "temp_degc" if other[0] == Measure.TEMPERATURE.value else "irradiance_w_per_m2"
        return values.iloc[:, 0].rename(name)
    converted = _as(values, measures, quantity, dt_h)
    name = "power_kw" if quantity == "power" else "energy_kwh"
    if sensor is not None:
        return converted.iloc[:, 0].rename(name)
    signed = converted * chosen["direction"].to_numpy(dtype=float)
    complete = signed.notna().all(axis=1) & (len(chosen) > 0)
    return signed.sum(axis=1).where(complete).rename(name)


def sensor_power(
    engine: Engine,
    site_id: str,
    sensors: pd.DataFrame,
    start: pd.Timestamp | dt.datetime | str,
    end: pd.Timestamp | dt.datetime | str,
) -> pd.DataFrame:
    """Mean power (kW) per interval of each of `sensors` (rows of :func:`grid.store.sites.sensor_frame`
    that measure energy or power), one column per sensor id, read at once: each column is what
    :func:`load_series` gives for that sensor (as metered, unsigned)."""
    site = get_site(engine, site_id)
    start_ts, end_ts = _utc(start, "start"), _utc(end, "end")
    values = _values(engine, sensors, start_ts, end_ts, site.resolution_min)
    return _as(values, sensors["measure"], "power", site.resolution_min / 60.0)


def site_aggregates(
    engine: Engine,
    site_id: str,
    start: pd.Timestamp | dt.datetime | str,
    end: pd.Timestamp | dt.datetime | str,
    freq: Literal["15min", "1h"] = "15min",
    kinds: tuple[str, ...] = (SensorKind.HOUSEHOLD_LOAD.value, SensorKind.PV.value),
) -> pd.DataFrame:
    """Signed mean power (kW) per kind, at the site resolution or hourly.

    Columns ``<kind>_kw`` (e.g. ``household_load_kw``, ``pv_kw``; PV generation is negative) and
    ``<kind>_coverage`` (share of sensor-intervals with a value, 0..1). A period with any missing
    value is NaN, not a partial sum. Hourly values are the mean of the hour's intervals (NaN
    unless all are present).
    """
    site = get_site(engine, site_id)
    start_ts, end_ts = _utc(start, "start"), _utc(end, "end")
    sensors = sensor_frame(engine, site_id)
    index = pd.date_range(start_ts, end_ts, freq=f"{site.resolution_min}min", inclusive="left", tz="UTC")
    columns = {}
    for kind in kinds:
        chosen = summable(sensors, kind)
        power = grouped_power(engine, chosen, start_ts, end_ts, site.resolution_min, site_id=site_id)
        kw, n = power["kw"].reindex(index), power["n"].reindex(index).fillna(0)
        columns[f"{kind}_kw"] = kw.where((n == len(chosen)) & (len(chosen) > 0))
        columns[f"{kind}_coverage"] = n / len(chosen) if len(chosen) else pd.Series(0.0, index)
    frame = pd.DataFrame(columns)
    if freq == "15min" and site.resolution_min == 15:
        return frame
    steps = pd.Timedelta(freq) / pd.Timedelta(minutes=site.resolution_min)
    grouped = frame.resample(freq, origin="epoch")
    out = grouped.mean()
    counts = frame.notna().resample(freq, origin="epoch").sum()
    kw_cols = [c for c in out.columns if c.endswith("_kw")]
    out[kw_cols] = out[kw_cols].where(counts[kw_cols] == steps)
    return out


def summable(sensors: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The sensors of `kind` (rows of :func:`grid.store.sites.sensor_frame`) whose values sum to a
    power: registers, interval energies and power."""
    chosen = sensors[sensors["kind"] == kind]
    return chosen[chosen["measure"].isin([*_ENERGY, Measure.POWER.value])]


def grouped_power(
    engine: Engine,
    chosen: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    resolution_min: int,
    by: str | None = None,
    site_id: str | None = None,
) -> pd.DataFrame:
    """Signed mean power (kW, > 0 drawn from the grid) summed over the `chosen` sensors per
    interval of [start, end) (and per value of sensor column `by`, e.g. ``connection``), summed by
    the database: columns ts (UTC), [by,] kw, n (how many sensors had a value). Only intervals
    with at least one value appear; a partial sum is the caller's to refuse (n < sensors).

    With `site_id` (the chosen sensors' site) the sums are kept per engine (:class:`_SumCache`)
    and only what changed is summed again: the intervals not summed before and those that a
    batch committed since touched (its ``readings_from`` .. ``readings_to``); the result is the
    one the whole query gives, to the last bit."""
    if site_id is None or chosen.empty or end - start > _SumCache.MAX_SPAN:
        data = _grouped_query(engine, chosen, start, end, resolution_min, by)
    else:
        data = _SUMS.grouped(engine, site_id, chosen, start, end, resolution_min, by)
    return data if by else data.set_index("ts")


def _grouped_query(
    engine: Engine,
    chosen: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    resolution_min: int,
    by: str | None = None,
    conn: Connection | None = None,
) -> pd.DataFrame:
    """:func:`grouped_power` as one query over [start, end) ("ts" a column)."""
    dt_h = resolution_min / 60.0
    kw = sa.case((sensor_table.c.measure == Measure.POWER.value, readings.c.value), else_=readings.c.value / dt_h)
    keys = [readings.c.ts] + ([sensor_table.c[by]] if by else [])
    query = (
        sa.select(*keys, sa.func.sum(kw * sensor_table.c.direction), sa.func.count())
        .select_from(readings.join(sensor_table, readings.c.sensor_id == sensor_table.c.id))
        .where(
            sensor_table.c.id.in_([int(i) for i in chosen["id"]]),
            readings.c.ts >= start.to_pydatetime(),
            readings.c.ts < end.to_pydatetime(),
        )
        .group_by(*keys)
    )
    names = ["ts", *([by] if by else []), "kw", "n"]
    rows: list[Any] = []
    if not chosen.empty:
        if conn is not None:
            rows = list(conn.execute(query).all())
        else:
            with engine.connect() as c:
                rows = list(c.execute(query).all())
    data = pd.DataFrame([tuple(r) for r in rows], columns=names).astype({"kw": float, "n": int})
    data["ts"] = pd.to_datetime(data["ts"], utc=True)
    return data


@dataclass(frozen=True)
class _Sums:
    """Sums of one sensor selection over [lo, hi) (UTC), as of the batch `seen` (the newest batch
    of the site that touched interval readings when they were read; 0: none) whose row is `mark`."""

    lo: pd.Timestamp
    hi: pd.Timestamp
    seen: int
    mark: tuple[Any, ...] | None
    data: pd.DataFrame  # the rows of _grouped_query(by=...) over [lo, hi), "ts" a column


class _SumCache:
    """Per engine, the sums of :func:`grouped_power` by (site, sensors, resolution, grouping).

    A later call sums again only the intervals it had not summed, and those that batches
    committed since touched: every write or removal of ``readings`` happens in an ingestion batch
    (:mod:`grid.ingest.writer`) that records the span of interval starts it touched on its
    ``batches`` row. Batches of a site commit in the order of their ids (the site's writers are
    serialised: ``BEGIN IMMEDIATE`` on SQLite, the site's advisory lock on PostgreSQL, taken
    before the batch row is made), so "ids above the newest one seen" is exactly what is new; the
    batches are read before the sums, so a batch committing in between is summed again next time,
    never missed. Each group's sum is a sum over the rows of its interval only, so a sum read
    again over fewer intervals is the same number (SQLite adds a group's rows in the table's
    order, sensor by sensor, whatever the range). The sensors' definition (id, measure, direction,
    grouping column) is part of the key: a changed sensor starts afresh."""

    #: kept sum tables (selections: a site's forecast run reads four)
    KEPT = 64
    #: a kept table grows over the spans asked for until it is this long, then restarts; a longer
    #: span is summed by one query and not kept (a run reads 84 days, its model's training 98)
    MAX_SPAN = pd.Timedelta(days=120)
    #: dirty spans merged into at most this many queries (beyond: one query over their hull)
    MAX_RANGES = 16

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_engine: weakref.WeakKeyDictionary[Engine, OrderedDict[tuple[Any, ...], _Sums]] = (
            weakref.WeakKeyDictionary()
        )

    def clear(self) -> None:
        with self._lock:
            self._by_engine.clear()

    def grouped(
        self,
        engine: Engine,
        site_id: str,
        chosen: pd.DataFrame,
        start: pd.Timestamp,
        end: pd.Timestamp,
        resolution_min: int,
        by: str | None,
    ) -> pd.DataFrame:
        columns = ["id", "measure", "direction", *([by] if by else [])]
        rows = chosen[columns].reset_index(drop=True).sort_values("id")
        definition = tuple(tuple(row) for row in rows.itertuples(index=False))
        key = (site_id, resolution_min, by, definition)
        with self._lock:
            kept = self._by_engine.setdefault(engine, OrderedDict())
            entry = kept.get(key)
        with engine.connect() as conn:
            if entry is not None and self._mark(conn, entry.seen) != entry.mark:
                entry = None  # not the store it was read from (replaced under the same engine)
            if entry is not None and (
                end <= entry.lo or start >= entry.hi or max(end, entry.hi) - min(start, entry.lo) > self.MAX_SPAN
            ):
                entry = None
            if entry is None:
                b = batches.c
                newest = conn.execute(
                    sa.select(sa.func.max(b.id)).where(b.site_id == site_id, b.readings_from.is_not(None))
                ).scalar()
                newest = int(newest or 0)
                mark = self._mark(conn, newest)
                lo, hi = start, end
                data = _grouped_query(engine, chosen, start, end, resolution_min, by, conn)
            else:
                newest, mark, dirty = self._touched_since(conn, site_id, entry)
                lo, hi = min(start, entry.lo), max(end, entry.hi)
                stale = [*dirty, (lo, entry.lo), (entry.hi, hi)]
                ranges = merged_within(stale, lo, hi)
                if len(ranges) > self.MAX_RANGES:
                    ranges = [(ranges[0][0], ranges[-1][1])]
                old = entry.data
                keep = np.ones(len(old), dtype=bool)
                for f, t in ranges:
                    keep &= ~((old["ts"] >= f) & (old["ts"] < t)).to_numpy()
                parts = [old[keep]] + [
                    _grouped_query(engine, chosen, f, t, resolution_min, by, conn) for f, t in ranges
                ]
                data = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
                # a group's rows all come from one part, in the query's order: sorting by the
                # interval alone (stable) gives the query's order of the groups
                data = data.sort_values("ts", kind="stable", ignore_index=True)
        fresh = _Sums(lo, hi, newest, mark, data)
        with self._lock:
            kept = self._by_engine.setdefault(engine, OrderedDict())
            kept[key] = fresh
            kept.move_to_end(key)
            while len(kept) > self.KEPT:
                kept.popitem(last=False)
        return data[(data["ts"] >= start) & (data["ts"] < end)].reset_index(drop=True)

    @staticmethod
    def _mark(conn: Connection, batch_id: int) -> tuple[Any, ...] | None:
        """What identifies batch `batch_id` of this store (None for 0, no batch)."""
        if not batch_id:
            return None
        b = batches.c
        row = conn.execute(
            sa.select(b.id, b.site_id, b.started_at, b.source, b.checksum).where(b.id == batch_id)
        ).first()
        return tuple(row) if row is not None else ("gone", batch_id)

    def _touched_since(
        self, conn: Connection, site_id: str, entry: _Sums
    ) -> tuple[int, tuple[Any, ...] | None, list[tuple[pd.Timestamp, pd.Timestamp]]]:
        """(newest batch id, its mark, the spans [from, to + 1 s) the batches of the site after
        ``entry.seen`` touched)."""
        b = batches.c
        rows = conn.execute(
            sa.select(b.id, b.readings_from, b.readings_to)
            .where(b.site_id == site_id, b.id > entry.seen, b.readings_from.is_not(None))
            .order_by(b.id)
        ).all()
        if not rows:
            return entry.seen, entry.mark, []
        newest = int(rows[-1][0])
        spans = [
            (pd.Timestamp(f).tz_convert("UTC"), pd.Timestamp(t).tz_convert("UTC") + pd.Timedelta(seconds=1))
            for _, f, t in rows
        ]
        return newest, self._mark(conn, newest), spans


_SUMS = _SumCache()
