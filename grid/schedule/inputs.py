"""What the planner plans on: forecasts from the store, with the prices and weather forecast that
are known ahead (day-ahead prices, the supplied weather forecast) as published in the store, the
site's files where the store has none.

`forecast_provider(engine)` is the scheduler's ``inputs_provider``: for each run it reads the
forecasts stored as of the run's start (making them on the spot where none are stored, see
``grid.forecast.site.forecast_inputs``) and never the generator's truth for load, PV or heat.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from grid.domain import Site
from grid.errors import InputError
from grid.forecast.site import forecast_inputs
from grid.forecast.weather import Weather
from grid.schedule.live import registered
from grid.schedule.runner import InputsProvider
from grid.series import SiteInputs, load_inputs
from grid.store import live
from grid.store.engine import make_engine
from grid.store.forecasts import load_forecast
from grid.timeindex import horizon_index, iso


def planning_inputs(site: Site, engine: Engine, start: pd.Timestamp, hours: float) -> SiteInputs:
    """Forecast load, PV and heat as known at `start`; prices and weather as published in the store
    by `start` (a named forecast beyond the last published price, see
    ``grid.store.live.prices_as_of``), the site's input files where the store has nothing; CO2
    intensity and feed-in series from the files. ``sources`` says where each came from."""
    index = horizon_index(start, hours, site.site.resolution_min)
    known = load_inputs(site).window(index)
    in_store = registered(engine, site.id)
    temp, weather_from = known.temp_degc, "site input files"
    if in_store:
        temp, weather_from = _stored_weather(engine, site, start, index, known.temp_degc)
    ghi = cloud = None
    if in_store:
        ghi, cloud = _stored_irradiance(engine, site, start, index)
    forecast = forecast_inputs(site, engine, start, hours, as_of=start, weather=Weather(temp, ghi, cloud))
    price, prices_from = known.price_eur_per_kwh, "site input files (known ahead)"
    if in_store:
        price, prices_from = _stored_prices(engine, site, start, index, known.price_eur_per_kwh)
    sources = {**forecast.sources, "prices": prices_from, "weather": weather_from}
    return replace(
        forecast,
        temp_degc=temp,
        price_eur_per_kwh=price,
        co2_g_per_kwh=known.co2_g_per_kwh,
        feed_in_eur_per_kwh=known.feed_in_eur_per_kwh,
        spot_eur_per_kwh=known.spot_eur_per_kwh,
        sources=sources,
    )


def _stored_prices(
    engine: Engine, site: Site, at: pd.Timestamp, index: pd.DatetimeIndex, file_price: pd.Series | None
) -> tuple[pd.Series | None, str]:
    """Store prices where published or forecast from published ones, else the file's (or the
    tariff's constant, `file_price` None); (series, source) with the count of each source."""
    frame = live.prices_as_of(engine, site.id, at, index)
    value = frame["price_eur_per_kwh"]
    if value.isna().all():
        return file_price, "site input files (known ahead); none published in the store"
    source = frame["source"].astype(object)
    gap = value.isna()
    if gap.any() and file_price is not None:
        value = value.where(~gap, file_price.reindex(index))
        source = source.where(~gap, "site input files")
    elif gap.any():
        constant = site.tariff.import_price_eur_per_kwh
        if constant is None:
            raise InputError(
                "prices",
                f"none published or forecast for {int(gap.sum())} interval(s) from {gap[gap].index[0].isoformat()}"
                " and the site has no price file or constant price",
            )
        value = value.fillna(constant)
        source = source.where(~gap, "tariff constant")
    counts = source.value_counts()
    latest = frame["published_at"].max()
    told = ", ".join(f"{n} {name}" for name, n in counts.items())
    return value.astype(
        float
    ), f"store: {told} interval(s); latest publication {iso(latest) if pd.notna(latest) else '-'}"


def _stored_weather(
    engine: Engine, site: Site, at: pd.Timestamp, index: pd.DatetimeIndex, file_temp: pd.Series
) -> tuple[pd.Series, str]:
    """The outdoor temperature published in the store by `at`; beyond the last publication the
    temperature forecast of the site's latest forecast run known at `at` (``weather`` target),
    then the file's. The source names how many intervals came from each."""
    frame = live.weather_as_of(engine, site.id, at, index, "temp_degc")
    published = frame["value"].astype(float)
    made = load_forecast(engine, site.id, "weather", index[0], index[-1] + pd.Timedelta(minutes=1), at, "temp_degc")
    forecast = made[0.5].reindex(index) if 0.5 in made.columns else pd.Series(np.nan, index=index)
    if published.isna().all() and forecast.isna().all():
        return file_temp, "site input files; no weather forecast published in the store"
    temp = published.fillna(forecast.where(published.isna())).fillna(file_temp.reindex(index))
    n_pub = int(published.notna().sum())
    n_fc = int((published.isna() & forecast.notna()).sum())
    return temp.astype(float), (
        f"store: {n_pub} interval(s) published, {n_fc} from the forecast run's temperature forecast,"
        f" {len(index) - n_pub - n_fc} from the site input files"
    )


def _stored_irradiance(
    engine: Engine, site: Site, at: pd.Timestamp, index: pd.DatetimeIndex
) -> tuple[pd.Series | None, pd.Series | None]:
    """(GHI, cloud cover) published in the store by `at` over all of `index`, each None unless
    complete; cloud cover is read only where no GHI is (PV converts it to GHI)."""
    for quantity in ("ghi_w_per_m2", "cloud_cover_pct"):
        value = live.weather_as_of(engine, site.id, at, index, quantity)["value"]
        if value.notna().all():
            series = value.astype(float).rename(quantity)
            return (series, None) if quantity == "ghi_w_per_m2" else (None, series)
    return None, None


class ForecastProvider:
    """The scheduler's inputs provider: :func:`planning_inputs` on the store at `engine`. It
    travels to a solver worker process as its database URL (an in-memory database does not)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, site: Site, start: pd.Timestamp, hours: float) -> SiteInputs:
        return planning_inputs(site, self.engine, start, hours)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise TypeError("an in-memory database cannot be shared with a worker process")
        return _provider_at, (url.render_as_string(hide_password=False),)


def _provider_at(url: str) -> ForecastProvider:
    return ForecastProvider(_engine(url))


@functools.cache
def _engine(url: str) -> Engine:
    """One engine per database URL in a worker process."""
    return make_engine(url)


def forecast_provider(engine: Engine) -> InputsProvider:
    """The scheduler's inputs provider: :func:`planning_inputs` on `engine`."""
    return ForecastProvider(engine)
