"""What the planner plans on: forecasts from the store, with the prices and weather forecast that
are known ahead (day-ahead prices, the supplied weather forecast) taken from the site's files.

`forecast_provider(engine)` is the scheduler's ``inputs_provider``: for each run it reads the
forecasts stored as of the run's start (making them on the spot where none are stored, see
``grid.forecast.site.forecast_inputs``) and never the generator's truth for load, PV or heat.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from grid.domain import Site
from grid.forecast.site import forecast_inputs
from grid.forecast.weather import Weather
from grid.schedule.runner import InputsProvider
from grid.series import SiteInputs, load_inputs
from grid.store.engine import make_engine
from grid.timeindex import horizon_index


def planning_inputs(site: Site, engine: Engine, start: pd.Timestamp, hours: float) -> SiteInputs:
    """Forecast load, PV and heat as known at `start`, plus the known prices, CO2 intensity and
    weather forecast from the site's input files (which must cover the horizon)."""
    index = horizon_index(start, hours, site.site.resolution_min)
    known = load_inputs(site).window(index)
    weather = Weather(known.temp_degc)
    forecast = forecast_inputs(site, engine, start, hours, as_of=start, weather=weather)
    sources = {**forecast.sources, "prices": "site input files (known ahead)"}
    return replace(
        forecast,
        price_eur_per_kwh=known.price_eur_per_kwh,
        co2_g_per_kwh=known.co2_g_per_kwh,
        feed_in_eur_per_kwh=known.feed_in_eur_per_kwh,
        spot_eur_per_kwh=known.spot_eur_per_kwh,
        sources=sources,
    )


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
