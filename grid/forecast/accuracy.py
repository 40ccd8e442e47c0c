"""Accuracy over time: every stored belief of a target compared with what was then measured.

Every run stored in ``forecasts`` (:mod:`grid.store.forecasts`) is kept with its ``issued_at``,
so each interval has as many beliefs as runs covered it. :func:`forecast_accuracy` pairs each
belief (median, 10 % and 90 % quantile) with the measurement of that interval and summarises

* by day (the site's local calendar day of the interval) and
* by horizon (whole hours from ``issued_at`` to the interval start: 0 = the first hour),

as MAE (|median - measured|), bias (mean of median - measured: positive = forecast too high) and
coverage (share of measurements inside [q10, q90]; ideal 0.8). Units: those of the target
(kW for ``site`` and ``connection:<id>``, positive = drawn from the grid).

Measured values: ``site`` = the site's household load (all household meters, complete intervals
only), ``connection:<id>`` = the household load behind that connection point. Other targets have
no measurement of the same quantity in the store and are refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pandas.api.typing import DataFrameGroupBy
from sqlalchemy.engine import Engine

from grid.errors import InputError
from grid.store.readback import site_aggregates
from grid.store.schema import SensorKind, forecasts
from grid.store.sites import get_site
from grid.timeindex import to_utc

LOWER, MEDIAN, UPPER = 0.1, 0.5, 0.9
LOAD_KIND = SensorKind.HOUSEHOLD_LOAD.value
TARGET_HELP = "site or connection:<id> (household load, kW)"
COLUMNS = ["n", "mae", "bias", "coverage"]


@dataclass(frozen=True)
class Accuracy:
    """MAE, bias and coverage of a target's stored beliefs, by day and by horizon.

    ``by_day``: index = local date (``YYYY-MM-DD``), ``by_horizon``: index = ``horizon_h`` (int);
    columns ``n`` (beliefs with a measurement), ``mae``, ``bias`` (unit of the target) and
    ``coverage`` (0..1, NaN where no 10/90 % quantiles were stored). ``overall`` the same over all.
    """

    site: str
    target: str
    quantity: str
    unit: str
    start: pd.Timestamp
    end: pd.Timestamp
    runs: int
    by_day: pd.DataFrame
    by_horizon: pd.DataFrame
    overall: pd.Series


def measured_target(
    engine: Engine, site_id: str, target: str, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[pd.Series, str, str]:
    """The measurement a target's forecast is compared with: (series on the site grid, quantity, unit)."""
    if target == "site":
        frame = site_aggregates(engine, site_id, start, end, kinds=(LOAD_KIND,))
        return frame[f"{LOAD_KIND}_kw"], "power_kw", "kW"
    if target.startswith("connection:"):
        from grid.forecast.site import measured_by_connection

        cid = target.split(":", 1)[1]
        by_conn = measured_by_connection(engine, site_id, start, end)
        if cid not in by_conn.columns:
            known = ", ".join(f"connection:{c}" for c in by_conn.columns) or "none"
            raise InputError("target", f"no measured household load for this connection (measured: {known})", target)
        return by_conn[cid], "power_kw", "kW"
    raise InputError("target", f"accuracy needs a measured counterpart: {TARGET_HELP}", target)


def beliefs(
    engine: Engine, site_id: str, target: str, quantity: str, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """Every stored run's median and 10/90 % values over [start, end): columns ts, issued_at,
    model and the levels that were stored (``0.1``, ``0.5``, ``0.9``)."""
    f = forecasts.c
    query = sa.select(f.ts, f.issued_at, f.model, f.quantile, f.value).where(
        f.site_id == site_id,
        f.target == target,
        f.quantity == quantity,
        f.ts >= start.to_pydatetime(),
        f.ts < end.to_pydatetime(),
        f.quantile.in_([LOWER, MEDIAN, UPPER]),
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    long = pd.DataFrame([tuple(r) for r in rows], columns=["ts", "issued_at", "model", "quantile", "value"])
    if long.empty:
        stamp = pd.Series(dtype="datetime64[us, UTC]")
        number = pd.Series(dtype=float)
        return pd.DataFrame(
            {
                "ts": stamp,
                "issued_at": stamp,
                "model": pd.Series(dtype=object),
                LOWER: number,
                MEDIAN: number,
                UPPER: number,
            }
        )
    long["ts"] = pd.to_datetime(long["ts"], utc=True)
    long["issued_at"] = pd.to_datetime(long["issued_at"], utc=True)
    long["quantile"] = long["quantile"].astype(float).round(6)
    wide = long.pivot_table(index=["ts", "issued_at", "model"], columns="quantile", values="value", aggfunc="first")
    wide = wide.reindex(columns=[LOWER, MEDIAN, UPPER])
    wide.columns = pd.Index([LOWER, MEDIAN, UPPER])
    return wide.reset_index()


def _summary(groups: DataFrameGroupBy) -> pd.DataFrame:
    out = groups.agg(
        n=("error", "size"), mae=("abs_error", "mean"), bias=("error", "mean"), coverage=("inside", "mean")
    )
    return out[COLUMNS]


def forecast_accuracy(
    engine: Engine,
    site_id: str,
    target: str,
    start: pd.Timestamp | dt.datetime | str,
    end: pd.Timestamp | dt.datetime | str,
) -> Accuracy:
    """MAE, bias and coverage of every stored belief of `target` for intervals in [start, end).

    Raises :class:`InputError` for an unknown site or a target without a measured counterpart.
    Beliefs whose interval has no (complete) measurement are left out; ``n`` counts the rest.
    """
    site = get_site(engine, site_id)
    start_ts, end_ts = to_utc(start), to_utc(end)
    if end_ts <= start_ts:
        raise InputError("end", "must be after start", end_ts.isoformat())
    measured, quantity, unit = measured_target(engine, site_id, target, start_ts, end_ts)
    table = beliefs(engine, site_id, target, quantity, start_ts, end_ts)
    table["measured"] = measured.reindex(pd.DatetimeIndex(table["ts"])).to_numpy(dtype=float)
    table = table[table["measured"].notna() & table[MEDIAN].notna()].copy()
    runs = int(table[["issued_at", "model"]].drop_duplicates().shape[0])
    table["error"] = table[MEDIAN].astype(float) - table["measured"]
    table["abs_error"] = table["error"].abs()
    banded = table[LOWER].notna() & table[UPPER].notna()
    inside = (table["measured"] >= table[LOWER]) & (table["measured"] <= table[UPPER])
    table["inside"] = inside.astype(float).where(banded)
    ts = pd.DatetimeIndex(table["ts"])
    table["day"] = ts.tz_convert(site.timezone).strftime("%Y-%m-%d")
    lead = (ts - pd.DatetimeIndex(table["issued_at"])) / pd.Timedelta(hours=1)
    table["horizon_h"] = np.floor(np.asarray(lead, dtype=float)).astype(int)
    by_day = _summary(table.groupby("day"))
    by_horizon = _summary(table.groupby("horizon_h"))
    overall = pd.Series(
        {
            "n": float(len(table)),
            "mae": float(table["abs_error"].mean()) if len(table) else np.nan,
            "bias": float(table["error"].mean()) if len(table) else np.nan,
            "coverage": float(table["inside"].mean()) if banded.any() else np.nan,
        }
    )
    return Accuracy(site_id, target, quantity, unit, start_ts, end_ts, runs, by_day, by_horizon, overall)
