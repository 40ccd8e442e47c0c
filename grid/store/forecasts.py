"""Forecasts in the store, kept as beliefs: every run is stored with the time it was issued.

Nothing a run stores is overwritten by a later run (only re-storing the same run, same
``issued_at`` and model, replaces it), so :func:`load_forecast` can answer "the forecast of
target X for tomorrow as it was known at 06:00 yesterday": per interval, the values of the latest
run issued at or before ``as_of``, next to the measurements from :mod:`grid.store.readback`.

Times are UTC instants; a value stamped t covers [t, t + resolution). Units are in ``quantity``
(``power_kw``: mean kW, positive = drawn from the grid; ``kw_per_kwp``; ``heat_kw`` thermal;
``temp_degc``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from grid.errors import InputError
from grid.store import bulk
from grid.store.engine import dbapi_connection, driver_rows, write_transaction
from grid.store.schema import forecasts, stored_time, utc_index
from grid.store.sites import get_site
from grid.timeindex import to_utc

TimeLike = pd.Timestamp | dt.datetime | str
_EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class ForecastRun:
    """One target's forecast of a run, to store (see :func:`store_forecast` for the fields)."""

    target: str
    quantiles: pd.DataFrame
    model: str
    quantity: str = "power_kw"


def store_forecast(
    engine: Engine,
    site_id: str,
    target: str,
    quantiles: pd.DataFrame,
    issued_at: TimeLike,
    model: str,
    quantity: str = "power_kw",
) -> int:
    """Store one forecast run; return the number of rows written.

    Parameters
    ----------
    quantiles : DataFrame
        Index: UTC interval starts; columns: quantile levels in 0..1 (e.g. 0.1, 0.5, 0.9); values in
        the unit of `quantity`. NaN values are not stored.
    issued_at : when the forecast was made (tz-aware); every interval should lie after it.
    model : the model's name (``learned_ridge``, ``standard_profile``, ``pvlib_clearsky`` ...).
    """
    return store_forecasts(engine, site_id, [ForecastRun(target, quantiles, model, quantity)], issued_at)


def store_forecasts(engine: Engine, site_id: str, runs: Sequence[ForecastRun], issued_at: TimeLike) -> int:
    """Store the forecasts of several targets issued at `issued_at` in one transaction (all or
    none), each as :func:`store_forecast` would; return the number of rows written."""
    issued = to_utc(issued_at)
    get_site(engine, site_id)
    checked = [(run, _levels(run.quantiles)) for run in runs]
    f = forecasts.c
    written = 0
    with write_transaction(engine) as conn:
        for run, levels in checked:
            conn.execute(
                forecasts.delete().where(
                    f.site_id == site_id,
                    f.target == run.target,
                    f.quantity == run.quantity,
                    f.issued_at == issued.to_pydatetime(),
                    f.model == run.model,
                )
            )
            written += _insert(conn, site_id, run, levels, issued)
    return written


def _levels(quantiles: pd.DataFrame) -> list[float]:
    if not isinstance(quantiles.index, pd.DatetimeIndex) or quantiles.index.tz is None:
        raise InputError("quantiles", "needs a tz-aware DatetimeIndex")
    levels = [float(q) for q in quantiles.columns]
    if any(not 0.0 <= q <= 1.0 for q in levels):
        raise InputError("quantiles", "column names must be quantile levels in 0..1", list(quantiles.columns))
    return levels


def _insert(conn: Connection, site_id: str, run: ForecastRun, levels: list[float], issued: pd.Timestamp) -> int:
    """Insert the finite values of `run` (row by row of the frame, level by level), columns built
    whole with numpy and handed to the driver at once (SQLite: one executemany of plain tuples;
    PostgreSQL: COPY)."""
    values = run.quantiles.to_numpy(dtype=float)
    rows_i, cols_j = np.nonzero(np.isfinite(values))
    if not len(rows_i):
        return 0
    index = pd.DatetimeIndex(run.quantiles.index).tz_convert("UTC")
    n = len(rows_i)
    value = values[rows_i, cols_j].tolist()
    level = np.asarray(levels, dtype=float)[cols_j].tolist()
    if conn.dialect.name == "sqlite":
        stamps = ((index - _EPOCH) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)[rows_i].tolist()
        issued_s = int(issued.timestamp())
        dbapi_connection(conn).executemany(
            "INSERT INTO forecasts (site_id, target, quantity, ts, issued_at, model, quantile, value)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            zip(
                repeat(site_id, n),
                repeat(run.target, n),
                repeat(run.quantity, n),
                stamps,
                repeat(issued_s, n),
                repeat(run.model, n),
                level,
                value,
                strict=True,
            ),
        )
    else:
        times = index.to_pydatetime()  # once, not per row
        issued_dt = issued.to_pydatetime()
        bulk.insert_rows(
            conn,
            forecasts,
            (
                {
                    "site_id": site_id,
                    "target": run.target,
                    "quantity": run.quantity,
                    "ts": times[i],
                    "issued_at": issued_dt,
                    "model": run.model,
                    "quantile": q,
                    "value": v,
                }
                for i, q, v in zip(rows_i.tolist(), level, value, strict=True)
            ),
        )
    return n


def load_forecast(
    engine: Engine,
    site_id: str,
    target: str,
    start: TimeLike,
    end: TimeLike,
    as_of: TimeLike | None = None,
    quantity: str = "power_kw",
    model: str | None = None,
    resolution_min: int | None = None,
) -> pd.DataFrame:
    """The forecast of `target` over [start, end) as known at `as_of` (default: everything stored).

    For each interval the values come from the latest run issued at or before `as_of` that covers
    it (optionally only runs of `model`). Intervals no such run covers are NaN.

    Returns
    -------
    DataFrame with one column per quantile level (float), a UTC index over the full grid of
    [start, end), and ``attrs["issued_at"]`` / ``attrs["model"]``: Series per interval saying which
    run each row comes from.
    """
    key = (target, quantity)
    return load_forecasts(engine, site_id, [key], start, end, as_of, model, resolution_min)[key]


def load_forecasts(
    engine: Engine,
    site_id: str,
    keys: Sequence[tuple[str, str]],
    start: TimeLike,
    end: TimeLike,
    as_of: TimeLike | None = None,
    model: str | None = None,
    resolution_min: int | None = None,
) -> dict[tuple[str, str], pd.DataFrame]:
    """:func:`load_forecast` of each (target, quantity) in `keys` over the same [start, end) as
    known at `as_of`, read with one query (the planner reads ~200 targets per run)."""
    site = get_site(engine, site_id)
    start_ts, end_ts = to_utc(start), to_utc(end)
    res = resolution_min or site.resolution_min
    index = pd.date_range(start_ts, end_ts, freq=f"{res}min", inclusive="left")
    wanted = list(dict.fromkeys(keys))
    f = forecasts.c
    where = [
        f.site_id == site_id,
        f.target.in_(sorted({t for t, _ in wanted})),
        f.quantity.in_(sorted({q for _, q in wanted})),
        f.ts >= start_ts.to_pydatetime(),
        f.ts < end_ts.to_pydatetime(),
    ]
    if as_of is not None:
        where.append(f.issued_at <= to_utc(as_of).to_pydatetime())
    if model is not None:
        where.append(f.model == model)
    latest = (
        sa.select(f.target.label("lt"), f.quantity.label("lq"), f.ts.label("lts"), sa.func.max(f.issued_at).label("li"))
        .where(*where)
        .group_by(f.target, f.quantity, f.ts)
        .subquery()
    )
    query = (
        sa.select(f.target, f.quantity, stored_time(f.ts), stored_time(f.issued_at), f.model, f.quantile, f.value)
        .join(
            latest,
            sa.and_(
                f.target == latest.c.lt,
                f.quantity == latest.c.lq,
                f.ts == latest.c.lts,
                f.issued_at == latest.c.li,
            ),
        )
        .where(*where)
    )
    with engine.connect() as conn:
        rows = driver_rows(conn, query)  # numbers, texts and stored_time: nothing to process per row
    if not rows:
        return {key: _table(None, index) for key in wanted}
    # columns once for all targets, then each target's cells placed by positions
    targets, quantities, ts, issued, models, levels, values = (list(c) for c in zip(*rows, strict=True))
    position = {key: k for k, key in enumerate(wanted)}
    code = np.array([position.get(key, -1) for key in zip(targets, quantities, strict=True)], dtype=np.int64)
    stamps, issued_at = utc_index(ts), utc_index(issued)
    row = index.get_indexer(stamps)
    level = np.asarray(levels, dtype=float)
    value = np.asarray(values, dtype=float)
    run_model = np.asarray(models, dtype=object)
    order = np.argsort(code, kind="stable")  # each target's rows in the order the query gave them
    bounds = np.searchsorted(code[order], np.arange(len(wanted) + 1))
    out = {}
    for k, key in enumerate(wanted):
        mine = order[bounds[k] : bounds[k + 1]]
        if len(mine) == 0 or len(set(run_model[mine].tolist())) > 1:  # nothing, or the check of _table
            frame = pd.DataFrame(
                {
                    "ts": stamps[mine],
                    "issued_at": issued_at[mine],
                    "model": run_model[mine],
                    "quantile": level[mine],
                    "value": value[mine],
                }
            )
            out[key] = _table(frame if len(mine) else None, index)
            continue
        out[key] = _grid(index, row[mine], level[mine], value[mine], issued_at[mine], run_model[mine])
    return out


def _grid(
    index: pd.DatetimeIndex,
    row: np.ndarray,
    level: np.ndarray,
    value: np.ndarray,
    issued_at: pd.DatetimeIndex,
    model: np.ndarray,
) -> pd.DataFrame:
    """One target's cells (rows of `index`, -1 off the grid; quantile levels; values; the run of
    each) as the table of :func:`load_forecast`: what :func:`_table` gives, without a pandas pass
    per target (the planner reads ~200)."""
    levels = np.unique(level)
    col = np.searchsorted(levels, level)
    grid = np.full((len(index), len(levels)), np.nan)
    on_grid = row >= 0
    grid[row[on_grid], col[on_grid]] = value[on_grid]
    table = pd.DataFrame(grid, index=index, columns=pd.Index([float(q) for q in levels], name="quantile"))
    # per interval the run it comes from (one per interval: the latest, one model)
    first = np.unique(row, return_index=True)[1]
    first = first[row[first] >= 0]
    at = row[first]
    naive = issued_at.tz_localize(None).to_numpy()
    issued = np.full(len(index), np.datetime64("NaT"), dtype=naive.dtype)
    issued[at] = naive[first]
    table.attrs["issued_at"] = pd.Series(pd.DatetimeIndex(issued).tz_localize("UTC"), index=index, name="issued_at")
    names = np.full(len(index), np.nan, dtype=object)
    names[at] = model[first]
    table.attrs["model"] = pd.Series(names, index=index, name="model")
    return table


def _table(frame: pd.DataFrame | None, index: pd.DatetimeIndex) -> pd.DataFrame:
    """One target's rows (ts, issued_at, model, quantile, value) as :func:`load_forecast` returns them."""
    if frame is None or frame.empty:
        out = pd.DataFrame(index=index)
        out.attrs["issued_at"] = pd.Series(pd.NaT, index=index, dtype="datetime64[us, UTC]")
        out.attrs["model"] = pd.Series(None, index=index, dtype=object)
        return out
    frame = frame.reset_index(drop=True)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["issued_at"] = pd.to_datetime(frame["issued_at"], utc=True)
    if frame["model"].nunique() > 1:  # one model everywhere (the usual case) needs no check per ts
        models = frame.groupby("ts")["model"].nunique()
        if (models > 1).any():
            ts = models[models > 1].index[0]
            raise InputError(
                "model",
                f"several models were issued at the same time for {ts.isoformat()}; pass model=",
                sorted(frame.loc[frame["ts"] == ts, "model"].unique()),
            )
    # the pivot (interval x quantile level) on the full grid, by positions: one value per cell (the
    # latest run's, one model), what DataFrame.pivot + reindex give at a fraction of their cost
    levels = np.unique(frame["quantile"].to_numpy(dtype=float))
    row = index.get_indexer(pd.DatetimeIndex(frame["ts"]))
    col = np.searchsorted(levels, frame["quantile"].to_numpy(dtype=float))
    grid = np.full((len(index), len(levels)), np.nan)
    on_grid = row >= 0
    grid[row[on_grid], col[on_grid]] = frame["value"].to_numpy(dtype=float)[on_grid]
    table = pd.DataFrame(grid, index=index, columns=pd.Index([float(q) for q in levels], name="quantile"))
    meta = frame.drop_duplicates("ts").set_index("ts")
    table.attrs["issued_at"] = meta["issued_at"].reindex(index)
    table.attrs["model"] = meta["model"].reindex(index)
    return table


def issue_times(engine: Engine, site_id: str, target: str, quantity: str = "power_kw") -> list[pd.Timestamp]:
    """The distinct issue times stored for `target`, oldest first."""
    f = forecasts.c
    query = (
        sa.select(f.issued_at)
        .where(f.site_id == site_id, f.target == target, f.quantity == quantity)
        .distinct()
        .order_by(f.issued_at)
    )
    with engine.connect() as conn:
        return [pd.Timestamp(r[0]).tz_convert("UTC") for r in conn.execute(query)]


@dataclass(frozen=True)
class StoredForecast:
    """What is stored for one (target, quantity) of a site: its span, runs and quantile levels."""

    target: str
    quantity: str
    first_ts: pd.Timestamp
    last_ts: pd.Timestamp
    first_issued_at: pd.Timestamp
    last_issued_at: pd.Timestamp
    runs: int
    models: list[str]
    quantiles: list[float]


def forecast_keys(engine: Engine, site_id: str) -> list[tuple[str, str]]:
    """The (target, quantity) pairs with stored forecasts for `site_id`, sorted (one query; what
    :func:`stored_forecasts` lists without the spans, runs and levels)."""
    f = forecasts.c
    query = sa.select(f.target, f.quantity).where(f.site_id == site_id).distinct().order_by(f.target, f.quantity)
    with engine.connect() as conn:
        return [(t, q) for t, q in conn.execute(query).all()]


def stored_forecasts(engine: Engine, site_id: str) -> list[StoredForecast]:
    """Every (target, quantity) with stored forecasts for `site_id`, sorted by target and quantity.

    ``first_ts``/``last_ts`` are the first and last interval starts (UTC) any run covers; ``runs``
    counts distinct (issued_at, model) pairs.
    """
    f = forecasts.c
    keys = (f.target, f.quantity)
    spans = (
        sa.select(
            *keys,
            sa.func.min(f.ts),
            sa.func.max(f.ts),
            sa.func.min(f.issued_at),
            sa.func.max(f.issued_at),
        )
        .where(f.site_id == site_id)
        .group_by(*keys)
    )
    runs = sa.select(*keys, f.issued_at, f.model).where(f.site_id == site_id).distinct()
    levels = sa.select(*keys, f.quantile).where(f.site_id == site_id).distinct()
    with engine.connect() as conn:
        span_rows = conn.execute(spans).all()
        run_rows = conn.execute(runs).all()
        level_rows = conn.execute(levels).all()
    run_count: dict[tuple[str, str], int] = {}
    models: dict[tuple[str, str], set[str]] = {}
    for target, quantity, _issued, model in run_rows:
        run_count[target, quantity] = run_count.get((target, quantity), 0) + 1
        models.setdefault((target, quantity), set()).add(model)
    quantiles: dict[tuple[str, str], set[float]] = {}
    for target, quantity, level in level_rows:
        quantiles.setdefault((target, quantity), set()).add(float(level))
    out = [
        StoredForecast(
            target=target,
            quantity=quantity,
            first_ts=to_utc(first_ts),
            last_ts=to_utc(last_ts),
            first_issued_at=to_utc(first_is),
            last_issued_at=to_utc(last_is),
            runs=run_count.get((target, quantity), 0),
            models=sorted(models.get((target, quantity), set())),
            quantiles=sorted(quantiles.get((target, quantity), set())),
        )
        for target, quantity, first_ts, last_ts, first_is, last_is in span_rows
    ]
    return sorted(out, key=lambda s: (s.target, s.quantity))


def target_quantities(engine: Engine, site_id: str, target: str) -> list[str]:
    """The quantities stored for `target` of `site_id` (usually one), sorted."""
    f = forecasts.c
    query = sa.select(f.quantity).where(f.site_id == site_id, f.target == target).distinct().order_by(f.quantity)
    with engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(query)]
