"""Synthetic series for the forecast tests, and stores on SQLite and PostgreSQL (scratch schema)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from grid.forecast.calendar import calendar_frame
from grid.store.testing import scratch_store

TZ = "Europe/Berlin"


def weekly_pattern_kw(index: pd.DatetimeIndex, holidays_as_sunday: bool = False) -> pd.Series:
    """A load (kW) that depends only on the local weekday and quarter-hour: a morning and an
    evening peak on workdays, a late-morning hump at weekends, distinct per weekday."""
    cal = calendar_frame(index, TZ)
    hour = cal["qh"].to_numpy() / 4.0
    weekday = np.asarray(index.tz_convert(TZ).day_of_week)
    day = cal["day_type"].to_numpy() if holidays_as_sunday else weekday
    workday = 1.0 + 0.6 * np.exp(-((hour - 7.5) ** 2) / 2) + 1.2 * np.exp(-((hour - 19.0) ** 2) / 4)
    weekend = 1.2 + 1.0 * np.exp(-((hour - 11.5) ** 2) / 6) + 0.8 * np.exp(-((hour - 19.5) ** 2) / 4)
    values = np.where(day >= 5, weekend, workday) * (1.0 + 0.05 * day)
    return pd.Series(values, index=index, name="power_kw")


def quarter_hours(start: str, days: float) -> pd.DatetimeIndex:
    """UTC quarter-hours from `start` (ISO with offset) for `days` days."""
    return pd.date_range(pd.Timestamp(start).tz_convert("UTC"), periods=round(days * 96), freq="15min")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with scratch_store(request.param, tmp_path) as engine:
        yield engine
