"""Site mode: forecasts from the store's measurements, stored as beliefs, and the planner's inputs.

Targets and quantities written by :func:`run_site` (table ``forecasts``, :mod:`grid.store.forecasts`):

==========================  ============  ==================================================
target                      quantity      what
==========================  ============  ==================================================
``site``                    ``power_kw``  measured household load of the whole site (kW), the
                                          sum of the connections' forecasts (reconciled, exact)
``connection:<id>``         ``power_kw``  household load behind one connection point (kW)
``pv:<array id>``           ``kw_per_kwp``  PV availability of one array (kW per kWp)
``heat:<heat pump id>``     ``heat_kw``   heat demand of one heat pump (kW thermal)
``weather``                 ``temp_degc``  the temperature forecast used (median only)
==========================  ============  ==================================================

``issued_at`` is the forecast origin: the instant up to which measurements were used (the end
of the measured data by default, "now" in live operation).

Load targets (:func:`forecast_series`): with three weeks of history and a horizon of at most 48 h,
the per-series choice by rolling backtest of :class:`~grid.forecast.meters.MeterForecaster`
(seasonal naive, recent-weeks median, ridge, the site's global LightGBM model, their ensemble;
normalised conformal band per lead hour), then reconciled; shorter histories or longer horizons
use :func:`~grid.forecast.load.forecast_load`. The global model is trained across the site's
series by :func:`train_global_model` (the service's daily job, ``grid.schedule.scheduler``) on
the history up to two weeks before the run and stored as JSON under ``$GRID_MODEL_DIR``; without
a stored model the choice is among the other candidates.

:func:`forecast_inputs` builds the planner's :class:`grid.series.SiteInputs` from the medians:
household base load = the forecast of its connection's household load, distributed over the
connection's households by their share of its annual energy (``annual_kwh``); where nothing is
stored it forecasts on the spot from the store, and without any history it uses each household's
own BDEW profile scaled to its annual energy (cold start). ``SiteInputs.sources`` says which.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.domain import Site, load_site
from grid.errors import InputError
from grid.forecast.gbm import TRAIN_SKIP_DAYS, GlobalLoad
from grid.forecast.heat import forecast_heat
from grid.forecast.load import MAX_HORIZON_H, SEASON_DAYS, forecast_load
from grid.forecast.meters import CALIBRATION_DAYS, MeterForecaster
from grid.forecast.profiles import standard_profile_kw
from grid.forecast.pv import PVForecaster, irradiance_given
from grid.forecast.quantiles import Forecast, quantile_frame
from grid.forecast.reconcile import reconcile
from grid.forecast.weather import Weather
from grid.series import SiteInputs
from grid.store.engine import database_url, make_engine
from grid.store.forecasts import ForecastRun, store_forecasts
from grid.store.forecasts import load_forecasts as read_stored_forecasts
from grid.store.migrate import upgrade
from grid.store.readback import grouped_power, load_series, site_aggregates, summable
from grid.store.schema import SensorKind, readings, sensors
from grid.store.sites import get_site, register_site, sensor_frame
from grid.timeindex import horizon_index, to_utc

#: History read per forecast (days): the learned model's lags and calibration need 5-8 weeks.
HISTORY_DAYS = 84
#: Where the global LightGBM load model of each site is kept (``<dir>/<site id>.json``), trained
#: by :func:`train_global_model` (the service's daily job): ``$GRID_MODEL_DIR`` or this default.
MODEL_DIR = Path(".grid") / "models"
#: The global model is retrained on the history up to this many days before its training run:
#: the latest days stay out of its training so that the per-series choice can score it on them.
GLOBAL_HOLDOUT_DAYS = CALIBRATION_DAYS
#: Days of training targets a series needs (after the global model's lag-only first days).
MIN_TRAIN_DAYS = 7
DATA_DIR = Path(__file__).resolve().parents[2] / "data"
LOAD_KIND = SensorKind.HOUSEHOLD_LOAD.value
#: the forecast quantile whose distance from the median (load above it, PV below it at 1 - this)
#: sets the reserve planned under each import limit (SiteInputs.reserve_kw), scaled to RESERVE_Z
#: standard deviations of an error with that spread: z = 2 keeps a limit with ~97.7 % odds per
#: interval where the bands are honest
RESERVE_QUANTILE = 0.9
RESERVE_Z = 2.0
_Z90 = 1.2816  # the standard normal's 90 % quantile


def open_store(db: str | None = None) -> Engine:
    """Engine for `db` (or ``$GRID_DATABASE_URL``), migrated to the newest schema."""
    engine = make_engine(database_url(db))
    upgrade(engine, "heads")
    return engine


def resolve_site(engine: Engine, site: str) -> tuple[str, Site | None]:
    """(site id, Site model or None) for a YAML path or a site id; a YAML is registered first.
    A bare id also finds ``data/<id>/site.yaml`` when that file describes the same site."""
    path = Path(site)
    if path.suffix in (".yaml", ".yml"):
        model = load_site(path)
        register_site(engine, model)
        return model.id, model
    candidate = DATA_DIR / site / "site.yaml"
    get_site(engine, site)
    if candidate.is_file():
        model = load_site(candidate)
        if model.id == site:
            return site, model
    return site, None


def measured_span(engine: Engine, site_id: str, kind: str = LOAD_KIND) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[first, last] interval start with a reading of any sensor of `kind` (UTC)."""
    # per sensor its first and last reading (two index look-ups each on readings' primary key,
    # sensor_id then ts), instead of a scan of all readings of the kind
    r = readings.alias("r")
    first_ts = sa.select(sa.func.min(r.c.ts)).where(r.c.sensor_id == sensors.c.id).scalar_subquery()
    last_ts = sa.select(sa.func.max(r.c.ts)).where(r.c.sensor_id == sensors.c.id).scalar_subquery()
    per_sensor = (
        sa.select(first_ts.label("first"), last_ts.label("last"))
        .where(sensors.c.site_id == site_id, sensors.c.kind == kind)
        .subquery()
    )
    query = sa.select(sa.func.min(per_sensor.c.first), sa.func.max(per_sensor.c.last))
    with engine.connect() as conn:
        first, last = conn.execute(query).one()
    if first is None:
        raise InputError(f"site {site_id}", f"has no measured {kind} in the store")
    return pd.Timestamp(first).tz_convert("UTC"), pd.Timestamp(last).tz_convert("UTC")


def measured_aggregate(
    engine: Engine, site_id: str, kind: str = LOAD_KIND, end: pd.Timestamp | None = None, days: float = HISTORY_DAYS
) -> pd.Series:
    """The site's measured aggregate of `kind` (kW, signed) via :func:`readback.site_aggregates`,
    over the last `days` days before `end` (default: the end of the data). NaN = incomplete."""
    first, last = measured_span(engine, site_id, kind)
    stop = end if end is not None else last + pd.Timedelta(minutes=15)
    start = max(first, stop - pd.Timedelta(days=days))
    frame = site_aggregates(engine, site_id, start, stop, kinds=(kind,))
    series = frame[f"{kind}_kw"].rename("power_kw")
    if series.notna().sum() == 0:
        raise InputError(f"site {site_id}", f"no interval has all {kind} sensors measured", f"{start} .. {stop}")
    return series


def measured_by_connection(
    engine: Engine, site_id: str, start: pd.Timestamp, end: pd.Timestamp, kind: str = LOAD_KIND
) -> pd.DataFrame:
    """Signed mean power (kW) of `kind` per connection point over [start, end); NaN where any
    sensor of that connection lacks a value (never a partial sum)."""
    site = get_site(engine, site_id)
    chosen = summable(sensor_frame(engine, site_id), kind)
    data = grouped_power(engine, chosen, start, end, site.resolution_min, by="connection", site_id=site_id)
    index = pd.date_range(start, end, freq=f"{site.resolution_min}min", inclusive="left")
    if data.empty:
        return pd.DataFrame(index=index)
    expected = chosen.groupby("connection")["id"].count()
    data.loc[data["n"] < data["connection"].map(expected), "kw"] = np.nan
    return data.pivot(index="ts", columns="connection", values="kw").reindex(index)


def stored_weather(engine: Engine, site_id: str, index: pd.DatetimeIndex) -> Weather | None:
    """Measured temperature of the site's ``temp_degc`` sensor on `index`, or None if there is none."""
    names = set(sensor_frame(engine, site_id)["name"])
    if "temp_degc" not in names or len(index) == 0:
        return None
    temp = load_series(engine, site_id, index[0], index[-1] + pd.Timedelta(minutes=15), sensor="temp_degc")
    return Weather(temp.rename("temp_degc")) if temp.notna().any() else None


def _combined_weather(history: Weather | None, forecast: Weather | None, index: pd.DatetimeIndex) -> Weather | None:
    parts = [w.on(index).temp_degc for w in (history, forecast) if w is not None]
    if not parts:
        return None
    temp = parts[0]
    for more in parts[1:]:
        temp = temp.combine_first(more)
    return Weather(temp)


def temperature_forecast(
    weather: Weather | None, measured: Weather | None, index: pd.DatetimeIndex, notes: list[str]
) -> pd.Series | None:
    """Temperature (degC) over `index`: the supplied forecast, else the last measured day repeated
    (persistence, noted), else None."""
    if weather is not None and weather.covers(index):
        return weather.on(index).temp_degc
    if measured is not None:
        temp = measured.temp_degc.dropna()
        if len(temp) >= 96:
            last_day = temp.iloc[-96:].to_numpy()
            notes.append("temperature: no forecast given, the last measured day is repeated (persistence)")
            return pd.Series(np.resize(last_day, len(index)), index=index, name="temp_degc")
    return None


def forecast_series(
    chooser: MeterForecaster,
    target: str,
    history: pd.Series,
    index: pd.DatetimeIndex,
    weather: Weather | None,
    annual_kwh: float | None,
) -> Forecast:
    """One load target's forecast: the per-series choice by rolling backtest of
    :class:`~grid.forecast.meters.MeterForecaster` (seasonal naive, recent-weeks median, ridge,
    the site's global LightGBM model when one is stored, their ensemble; normalised conformal band
    per lead hour) when the history has the three weeks it needs and the horizon is at most
    :data:`~grid.forecast.load.MAX_HORIZON_H`; else :func:`~grid.forecast.load.forecast_load`
    (ridge or seasonal naive, the standard profile on a cold start)."""
    days = float(history.notna().sum()) / 96
    hours = (index[-1] + pd.Timedelta(minutes=15) - index[0]) / pd.Timedelta(hours=1)
    if days >= CALIBRATION_DAYS + SEASON_DAYS + 1 and hours <= MAX_HORIZON_H:
        try:
            return chooser.forecast(history, index, target, weather)
        except InputError:
            pass  # no candidate could forecast (gaps): the single-model path below says why
    return forecast_load(history, index, weather, annual_kwh=annual_kwh)


def model_dir() -> Path:
    """Directory of the stored global models (``$GRID_MODEL_DIR`` or :data:`MODEL_DIR`)."""
    return Path(os.environ.get("GRID_MODEL_DIR", str(MODEL_DIR)))


def global_model_path(site_id: str, latest: bool = False) -> Path:
    """The scored model's file; `latest`: the one trained up to the training run (it forecasts)."""
    return model_dir() / (f"{site_id}.latest.json" if latest else f"{site_id}.json")


def stored_global_model(site_id: str, origin: pd.Timestamp, latest: bool = False) -> GlobalLoad | None:
    """The site's stored global model if it trained on data before `origin` only (a model from
    the future of a replayed origin would score itself on its own training days), else None."""
    path = global_model_path(site_id, latest)
    if not path.is_file():
        return None
    try:
        model = GlobalLoad.load(path)
    except (OSError, ValueError, KeyError):
        return None
    if model.trained_until is None or model.trained_until >= origin:
        return None
    return model


def train_global_model(
    engine: Engine, site_id: str, as_of: pd.Timestamp | None = None, horizon_h: float = 24.0
) -> GlobalLoad | None:
    """Train the site's global LightGBM load model on the measured household load of the site
    and of each connection up to :data:`GLOBAL_HOLDOUT_DAYS` before `as_of` (default: the end of
    the data), and store it (:func:`global_model_path`); the choice scores it out of sample.
    Also one trained on everything up to `as_of` (``latest=True``), which makes the forecasts
    (fresher: MAE / naive 0.725 vs 0.730 on the SimBench tuning split, see grid.forecast.meters).
    None when there is too little history (the forecasts then choose among the other
    candidates). Seconds for a site's few series."""
    origin = _origin(engine, site_id, as_of)
    cut = origin - pd.Timedelta(days=GLOBAL_HOLDOUT_DAYS)
    histories: dict[str, pd.Series] = {}
    try:
        histories["site"] = measured_aggregate(engine, site_id, end=cut)
        start = cut - pd.Timedelta(days=HISTORY_DAYS)
        for cid, values in measured_by_connection(engine, site_id, start, cut).items():
            histories[f"connection:{cid}"] = values
        # a series trains from its first value on, after the days that only serve as lags, and
        # only with a week of targets after those
        histories = {k: v.loc[v.first_valid_index() :] for k, v in histories.items() if v.notna().any()}
        need = (TRAIN_SKIP_DAYS + MIN_TRAIN_DAYS) * 96
        histories = {k: v for k, v in histories.items() if v.notna().sum() >= need}
        if not histories:
            return None
        model = GlobalLoad(horizon_h).fit(histories)
        # and one on everything up to the run: it forecasts, the one above scores it
        latest = {"site": measured_aggregate(engine, site_id, end=origin)}
        start = origin - pd.Timedelta(days=HISTORY_DAYS)
        for cid, values in measured_by_connection(engine, site_id, start, origin).items():
            latest[f"connection:{cid}"] = values
        latest = {k: v.loc[v.first_valid_index() :] for k, v in latest.items() if v.notna().sum() >= need}
        newer = GlobalLoad(horizon_h).fit(latest)
    except InputError:
        return None
    model.save(global_model_path(site_id))
    newer.save(global_model_path(site_id, latest=True))
    return model


@dataclass
class RunRow:
    target: str
    quantity: str
    model: str
    intervals: int
    mean_median: float


@dataclass
class RunSummary:
    """What :func:`run_site` issued and stored."""

    site_id: str
    issued_at: pd.Timestamp
    rows: list[RunRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    forecasts: dict[tuple[str, str], Forecast] = field(default_factory=dict)


def _origin(engine: Engine, site_id: str, as_of: str | pd.Timestamp | dt.datetime | None) -> pd.Timestamp:
    if as_of is not None:
        return to_utc(as_of).floor("15min")
    _, last = measured_span(engine, site_id)
    return last + pd.Timedelta(minutes=15)


def run_site(
    engine: Engine,
    site: str,
    as_of: str | pd.Timestamp | dt.datetime | None = None,
    hours: float = 48,
    weather: Weather | None = None,
    store: bool = True,
    model: Site | None = None,
) -> RunSummary:
    """Issue the forecasts the planner uses from the store's measurements up to `as_of` and store
    them with ``issued_at`` = the origin. `site` is a YAML path or a site id (without a site
    model only the load targets are forecast). With `model` given, `site` is its id and nothing is
    registered."""
    if model is None:
        site_id, model = resolve_site(engine, site)
    else:
        site_id = model.id
    origin = _origin(engine, site_id, as_of)
    index = horizon_index(origin, hours)
    summary = RunSummary(site_id, origin)
    history_index = pd.date_range(origin - pd.Timedelta(days=HISTORY_DAYS), origin, freq="15min", inclusive="left")
    measured_weather = stored_weather(engine, site_id, history_index)
    both = pd.DatetimeIndex(history_index.append(index))
    load_weather = _combined_weather(measured_weather, weather, both)
    if load_weather is not None and not load_weather.covers(index):
        summary.notes.append("load: no temperature forecast for the horizon, calendar and lags only")
        load_weather = None

    issued: list[ForecastRun] = []  # stored together at the end (one transaction: a run is whole or absent)

    def issue(target: str, quantity: str, forecast: Forecast) -> None:
        summary.forecasts[(target, quantity)] = forecast
        issued.append(ForecastRun(target, forecast.quantiles, forecast.model, quantity))
        summary.rows.append(
            RunRow(target, quantity, forecast.model, len(forecast.quantiles), float(forecast.median.mean()))
        )
        family = target.split(":")[0] + ":*" if target.startswith(("pv:", "heat:")) else target
        for note in forecast.notes:
            text = f"{family}: {note}"
            if text not in summary.notes:
                summary.notes.append(text)

    annual = sum(h.annual_kwh for h in model.households) if model is not None else None
    site_history = measured_aggregate(engine, site_id, end=origin)
    chooser = MeterForecaster(
        max(hours, 24.0),
        global_model=stored_global_model(site_id, origin),
        forecast_model=stored_global_model(site_id, origin, latest=True),
    )

    def load_forecast(target: str, history: pd.Series, annual_kwh: float | None) -> Forecast:
        return forecast_series(chooser, target, history, index, load_weather, annual_kwh)

    load_forecasts = {"site": load_forecast("site", site_history, annual)}
    by_conn = measured_by_connection(engine, site_id, history_index[0], origin)
    for cid in by_conn.columns:
        conn_annual = sum(h.annual_kwh for h in model.households if h.connection == cid) if model else None
        load_forecasts[f"connection:{cid}"] = load_forecast(f"connection:{cid}", by_conn[cid], conn_annual)
    parts = [t for t in load_forecasts if t != "site"]
    if parts:
        # the site's household load is the sum of its connections': make the forecasts agree
        load_forecasts = reconcile(load_forecasts, parts, {"site": parts})
    for target, forecast in load_forecasts.items():
        issue(target, "power_kw", forecast)
    if model is None:
        summary.notes.append("no site YAML: PV and heat demand not forecast")
        if store:
            store_forecasts(engine, site_id, issued, origin)
        return summary
    temp = temperature_forecast(weather, measured_weather, index, summary.notes)
    if temp is not None:
        issue(
            "weather", "temp_degc", Forecast(quantile_frame(temp.to_numpy()[:, None], index, (0.5,)), "input", "degC")
        )
    if model.pv_arrays:
        pv = PVForecaster(model.site.latitude, model.site.longitude)
        try:
            measured_pv = measured_aggregate(engine, site_id, SensorKind.PV.value, end=origin, days=28)
            pv_index = pd.DatetimeIndex(measured_pv.index)
            pv_weather = _combined_weather(measured_weather, None, pv_index)
            if (
                weather is not None
                and weather.ghi_w_per_m2 is not None
                and weather.on(pv_index).ghi_w_per_m2 is not None
            ):
                ghi = weather.on(pv_index).ghi_w_per_m2
                if ghi is not None and ghi.notna().mean() > 0.9:
                    pv_weather = Weather(weather.on(pv_index).temp_degc, ghi)
            pv_by_conn = None
            if len({a.connection for a in model.pv_arrays}) > 1:
                pv_by_conn = -measured_by_connection(engine, site_id, pv_index[0], origin, SensorKind.PV.value)
            # with irradiance: the regression on it per connection and site (model output statistics)
            pv.calibrate_arrays(-measured_pv, model.pv_arrays, pv_weather, pv_by_conn)
        except InputError as exc:
            summary.notes.append(f"PV not calibrated ({exc})")
        pv_input = weather if irradiance_given(weather) else (Weather(temp) if temp is not None else None)
        for aid, forecast in pv.forecast(index, model.pv_arrays, pv_input).items():
            issue(f"pv:{aid}", "kw_per_kwp", forecast)
    if model.heat_pumps:
        if temp is None:
            summary.notes.append("heat demand not forecast: no temperature forecast and no measured temperature")
        else:
            for hid, forecast in forecast_heat(model.heat_pumps, temp).items():
                issue(f"heat:{hid}", "heat_kw", forecast)
    if store:
        store_forecasts(engine, site_id, issued, origin)
    return summary


def _median(stored: dict[tuple[str, str], pd.DataFrame], target: str, quantity: str) -> pd.Series | None:
    frame = _stored_quantiles(stored, target, quantity)
    return None if frame is None else frame[0.5]


def _stored_quantiles(stored: dict[tuple[str, str], pd.DataFrame], target: str, quantity: str) -> pd.DataFrame | None:
    """The stored forecast of `target` as read by :func:`_stored_forecasts` (columns: quantile
    levels); None unless its median covers every interval."""
    frame = stored.get((target, quantity))
    if frame is None or 0.5 not in frame.columns or frame[0.5].isna().any():
        return None
    return frame


def _stored_forecasts(
    engine: Engine, site: Site, index: pd.DatetimeIndex, as_of: pd.Timestamp
) -> dict[tuple[str, str], pd.DataFrame]:
    """The stored forecasts on `index` as known at `as_of` of every target the planner's inputs
    take (:func:`forecast_inputs`), in one read."""
    keys = [(f"connection:{c.id}", "power_kw") for c in site.connections]
    keys += [("weather", "temp_degc")]
    keys += [(f"pv:{a.id}", "kw_per_kwp") for a in site.pv_arrays]
    keys += [(f"heat:{h.id}", "heat_kw") for h in site.heat_pumps]
    return read_stored_forecasts(engine, site.id, keys, index[0], index[-1] + pd.Timedelta(minutes=15), as_of)


def band(quantiles: pd.DataFrame, level: float) -> pd.Series | None:
    """|quantile `level` - median| of a forecast per interval (>= 0); None without that quantile."""
    if level not in quantiles.columns:
        return None
    return (quantiles[level] - quantiles[0.5]).abs().fillna(0.0)


def reserve_kw(load_band_kw: pd.Series | None, pv_band_kw: pd.Series | None) -> pd.Series | None:
    """The planning reserve under a connection's import limit (kW, >= 0): its load forecast's band
    above the median and its PV forecast's band below (less PV = more import), as independent
    errors (root of the sum of squares), scaled from the 90 % band to ``RESERVE_Z`` standard
    deviations; None when neither is known."""
    parts = [b for b in (load_band_kw, pv_band_kw) if b is not None]
    if not parts:
        return None
    spread = np.sqrt(sum(b.to_numpy() ** 2 for b in parts))
    return pd.Series(spread * (RESERVE_Z / _Z90), index=parts[0].index)


def forecast_inputs(
    site: Site,
    engine: Engine,
    start: str | pd.Timestamp | dt.datetime,
    hours: float,
    as_of: str | pd.Timestamp | dt.datetime | None = None,
    weather: Weather | None = None,
) -> SiteInputs:
    """The planner's inputs over `hours` from `start`, from forecasts stored as of `as_of`
    (default: `start`), made on the spot where none are stored (see the module docstring)."""
    index = horizon_index(to_utc(start), hours, site.site.resolution_min)
    known = to_utc(as_of) if as_of is not None else index[0]
    sources: dict[str, str] = {}
    try:
        get_site(engine, site.id)
        in_store = True
    except InputError:
        in_store = False
    fresh: RunSummary | None = None
    stored = _stored_forecasts(engine, site, index, known) if in_store else {}

    def made() -> RunSummary | None:
        nonlocal fresh
        if fresh is None and in_store:
            try:
                fresh = run_site_model(engine, site, known, index, weather)
            except InputError as exc:
                sources["forecast"] = f"no forecast from the store ({exc})"
        return fresh

    base = {}
    load_band: dict[str, pd.Series] = {}
    for conn in site.connections:
        homes = [h for h in site.households if h.connection == conn.id]
        if not homes:
            continue
        total, bands = None, None
        if in_store:
            bands = _stored_quantiles(stored, f"connection:{conn.id}", "power_kw")
            if bands is not None:
                total = bands[0.5]
                sources[f"base_load:{conn.id}"] = "stored forecast"
        if total is None and (run := made()) is not None and (f"connection:{conn.id}", "power_kw") in run.forecasts:
            bands = run.forecasts[(f"connection:{conn.id}", "power_kw")].quantiles.reindex(index)
            total = bands[0.5]
            sources[f"base_load:{conn.id}"] = "forecast made now"
        if bands is not None and (upper := band(bands, RESERVE_QUANTILE)) is not None:
            load_band[conn.id] = upper
        annual = np.array([h.annual_kwh for h in homes])
        for h, share in zip(homes, annual / annual.sum(), strict=True):
            if total is not None:
                base[h.id] = total.to_numpy() * share
            else:
                base[h.id] = standard_profile_kw(index, h.profile, h.annual_kwh, site.site.timezone).to_numpy()
                sources[f"base_load:{conn.id}"] = "cold start: BDEW profiles x annual kWh"
    temp = _median(stored, "weather", "temp_degc") if in_store else None
    if temp is None and weather is not None and weather.covers(index):
        temp = weather.on(index).temp_degc
    if temp is None and (run := made()) is not None and ("weather", "temp_degc") in run.forecasts:
        temp = run.forecasts[("weather", "temp_degc")].median.reindex(index)
    if temp is None:
        raise InputError("weather", "no temperature forecast: pass weather= or store a temp_degc measurement")
    sources["temp_degc"] = "forecast"
    pv = {}
    pv_band: dict[str, pd.Series] = {}  # per connection: the arrays' band below the median, kW
    for arr in site.pv_arrays:
        quantiles = _stored_quantiles(stored, f"pv:{arr.id}", "kw_per_kwp") if in_store else None
        if quantiles is None:
            quantiles = (
                PVForecaster(site.site.latitude, site.site.longitude)
                .forecast(index, [arr], weather if weather is not None else Weather(temp))[arr.id]
                .quantiles
            )
        pv[arr.id] = quantiles[0.5].to_numpy()
        if (lower := band(quantiles, round(1.0 - RESERVE_QUANTILE, 6))) is not None:  # one weather: errors add up
            pv_band[arr.connection] = pv_band.get(arr.connection, 0.0) + lower * arr.kwp
    reserve = {}
    for cid in sorted(set(load_band) | set(pv_band)):
        spread = reserve_kw(load_band.get(cid), pv_band.get(cid))
        if spread is not None:
            reserve[cid] = spread
            what = " and ".join(
                w for w, b in (("load above its median", load_band), ("PV below its median", pv_band)) if cid in b
            )
            sources[f"reserve:{cid}"] = f"forecast bands ({what}, 80 % bands x {RESERVE_Z / _Z90:.3g})"
    heat = {}
    heat_made = forecast_heat(site.heat_pumps, temp.rename("temp_degc"))
    for hp in site.heat_pumps:
        got = _median(stored, f"heat:{hp.id}", "heat_kw") if in_store else None
        heat[hp.id] = (got if got is not None else heat_made[hp.id].median).to_numpy()
    return SiteInputs(
        base_load_kw=pd.DataFrame(base, index=index).clip(lower=0.0),
        pv_kw_per_kwp=pd.DataFrame(pv, index=index),
        heat_demand_kw=pd.DataFrame(heat, index=index),
        temp_degc=pd.Series(temp.to_numpy(), index=index, name="temp_degc"),
        sources=sources,
        reserve_kw=pd.DataFrame(reserve, index=index) if reserve else None,
    )


def run_site_model(
    engine: Engine, site: Site, as_of: pd.Timestamp, index: pd.DatetimeIndex, weather: Weather | None
) -> RunSummary:
    """Like :func:`run_site` for a Site model already in the store, from `as_of` to the end of
    `index`, without storing anything."""
    if as_of > index[0]:
        raise InputError("as_of", "must not lie after the start of the horizon", as_of.isoformat())
    hours = (index[-1] + pd.Timedelta(minutes=15) - as_of) / pd.Timedelta(hours=1)
    return run_site(engine, site.id, as_of=as_of, hours=hours, weather=weather, store=False, model=site)
