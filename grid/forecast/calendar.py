"""Calendar of a forecast: local quarter-hour of day, day type, Hesse holidays, bridge days.

Everything takes and returns UTC-indexed objects; local time (``Europe/Berlin`` by default) is
used only to say which quarter-hour of which day an interval is. A local day has 92, 96 or 100
quarter-hours; the two passes of the repeated autumn hour get the same quarter-hour of day.

Day types follow the BDEW convention: a public holiday counts as a Sunday.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays
import numpy as np
import pandas as pd

DEFAULT_TZ = "Europe/Berlin"
#: State whose public holidays apply (Hesse: Darmstadt, Frankfurt).
DEFAULT_SUBDIV = "HE"
SUNDAY = 6
SATURDAY = 5
QH_PER_DAY = 96


@lru_cache(maxsize=64)
def _holiday_dates(years: tuple[int, ...], subdiv: str) -> frozenset[dt.date]:
    return frozenset(holidays.Germany(subdiv=subdiv, years=list(years)).keys())


def holiday_calendar(years: list[int] | tuple[int, ...], subdiv: str = DEFAULT_SUBDIV) -> holidays.HolidayBase:
    """Public holidays of the German state `subdiv` (``holidays.Germany(subdiv=...)``)."""
    return holidays.Germany(subdiv=subdiv, years=sorted(set(years)))


def local_dates(index: pd.DatetimeIndex, tz: str = DEFAULT_TZ) -> np.ndarray:
    """Local calendar date (numpy ``datetime64[D]``) of each UTC interval start."""
    local = index.tz_convert(tz)
    return np.asarray(local.tz_localize(None).normalize().to_numpy().astype("datetime64[D]"))


def quarter_hour_of_day(index: pd.DatetimeIndex, tz: str = DEFAULT_TZ) -> np.ndarray:
    """Local quarter-hour of day, 0..95 (wall clock; both passes of the autumn hour share one)."""
    local = index.tz_convert(tz)
    return np.asarray(local.hour * 4 + local.minute // 15, dtype=np.int64)


def is_holiday_date(dates: np.ndarray, subdiv: str = DEFAULT_SUBDIV) -> np.ndarray:
    """True for public holidays of `subdiv` among `dates` (``datetime64[D]``)."""
    if len(dates) == 0:
        return np.zeros(0, dtype=bool)
    years = pd.DatetimeIndex(dates).year
    known = _holiday_dates(tuple(range(int(years.min()) - 1, int(years.max()) + 2)), subdiv)
    return np.array([d in known for d in pd.DatetimeIndex(dates).date], dtype=bool)


def day_type_of_dates(dates: np.ndarray, subdiv: str = DEFAULT_SUBDIV) -> np.ndarray:
    """Weekday 0 (Monday) .. 6 (Sunday), with public holidays as 6 (BDEW: holiday = Sunday)."""
    weekday = np.asarray(pd.DatetimeIndex(dates).day_of_week, dtype=np.int64)
    return np.where(is_holiday_date(dates, subdiv), SUNDAY, weekday)


def is_bridge_date(dates: np.ndarray, subdiv: str = DEFAULT_SUBDIV) -> np.ndarray:
    """True for bridge days: a workday (Mon-Fri, not a holiday) between a holiday and a weekend or
    between a weekend and a holiday (e.g. the Friday after Ascension or Corpus Christi)."""
    days = pd.DatetimeIndex(dates)
    before = day_type_of_dates((days - pd.Timedelta(days=1)).to_numpy().astype("datetime64[D]"), subdiv)
    after = day_type_of_dates((days + pd.Timedelta(days=1)).to_numpy().astype("datetime64[D]"), subdiv)
    own = day_type_of_dates(dates, subdiv)
    workday = own < SATURDAY
    hol_before = is_holiday_date((days - pd.Timedelta(days=1)).to_numpy().astype("datetime64[D]"), subdiv)
    hol_after = is_holiday_date((days + pd.Timedelta(days=1)).to_numpy().astype("datetime64[D]"), subdiv)
    return workday & ((hol_before & (after >= SATURDAY)) | (hol_after & (before >= SATURDAY)))


QUARTER_HOUR = pd.Timedelta(minutes=15)


def regular_key(index: pd.DatetimeIndex, step: pd.Timedelta = QUARTER_HOUR) -> tuple[int, int] | None:
    """(first instant in ns, length) if `index` is a regular UTC grid of `step`, else None."""
    if len(index) < 2 or index.tz is None:
        return None
    if index[-1] - index[0] != step * (len(index) - 1) or not index.is_monotonic_increasing:
        return None
    return int(index[0].as_unit("ns").value), len(index)


@lru_cache(maxsize=16)
def _calendar_cached(start_ns: int, periods: int, tz: str, subdiv: str) -> pd.DataFrame:
    index = pd.date_range(pd.Timestamp(start_ns, unit="ns", tz="UTC"), periods=periods, freq="15min")
    return _calendar(index, tz, subdiv)


def calendar_frame(index: pd.DatetimeIndex, tz: str = DEFAULT_TZ, subdiv: str = DEFAULT_SUBDIV) -> pd.DataFrame:
    """Calendar features of each UTC interval start (cached for regular quarter-hour grids).

    Columns: ``qh`` (local quarter-hour 0..95), ``hour`` (local hour), ``day_type`` (0..6, holiday =
    6), ``holiday`` and ``bridge`` (0/1), ``date`` (local date, ``datetime64[D]``).
    """
    key = regular_key(index)
    if key is None:
        return _calendar(index, tz, subdiv)
    frame = _calendar_cached(*key, tz, subdiv).copy(deep=False)
    frame.index = index
    return frame


def _calendar(index: pd.DatetimeIndex, tz: str, subdiv: str) -> pd.DataFrame:
    dates = local_dates(index, tz)
    unique, inverse = np.unique(dates, return_inverse=True)
    qh = quarter_hour_of_day(index, tz)
    return pd.DataFrame(
        {
            "qh": qh,
            "hour": qh // 4,
            "day_type": day_type_of_dates(unique, subdiv)[inverse],
            "holiday": is_holiday_date(unique, subdiv)[inverse].astype(np.int64),
            "bridge": is_bridge_date(unique, subdiv)[inverse].astype(np.int64),
            "date": dates,
        },
        index=index,
    )


def wall_clock_lag(index: pd.DatetimeIndex, days: int, tz: str = DEFAULT_TZ) -> pd.DatetimeIndex:
    """UTC instants at the same local wall-clock time `days` days earlier.

    Where that wall time does not exist (spring DST gap) or is ambiguous (autumn repeated hour),
    the plain UTC lag ``t - days x 24 h`` is used instead, so every interval gets an instant.
    """
    wall = index.tz_convert(tz).tz_localize(None) - pd.Timedelta(days=days)
    local = wall.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    utc = pd.DatetimeIndex(local).tz_convert("UTC")
    fallback = index - pd.Timedelta(days=days)
    return pd.DatetimeIndex(utc.where(np.asarray(utc.notna()), fallback))
