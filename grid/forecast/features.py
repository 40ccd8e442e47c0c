"""Features of the learned load model: calendar, weather and lags no shorter than the horizon.

For a target interval t (local date d, quarter-hour q, day type tau with holidays = Sunday):

``lag_type1``, ``lag_type2``
    the value at quarter-hour q on the last and second-last day of type tau that lies at least
    ``gap_days`` = ceil(horizon / 24 h) days before d (a Thursday holiday looks up the last
    Sunday, a normal Tuesday the Tuesday a week earlier);
``lag_recent``
    the value at q on the most recent day of the same class (workday, Saturday, Sunday or
    holiday) at least ``gap_days`` before d (a Tuesday 48 h ahead looks up the Friday before, not
    the Sunday);
``level``
    the mean of the 7 days ending on d - gap_days (kW), the recent level.

So every lag is at least the horizon old (up to the hour a DST change moves), and the same
features serve training (all targets) and prediction (values after the origin are unknown,
hence NaN). Values are looked up in a local day x quarter-hour matrix; both passes of the repeated
autumn hour are averaged into one cell and the missing spring hour is NaN.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from grid.forecast.calendar import (
    DEFAULT_SUBDIV,
    DEFAULT_TZ,
    QH_PER_DAY,
    SATURDAY,
    SUNDAY,
    calendar_frame,
    day_type_of_dates,
)

LAG_COLUMNS = ("lag_type1", "lag_type2", "lag_recent", "level")
LEVEL_DAYS = 7
#: Days looked back for a day of the same type before giving up (NaN).
MAX_LOOKBACK_DAYS = 35


def gap_days(horizon_h: float) -> int:
    """Whole days a lag must reach back so that it is at least `horizon_h` hours old."""
    return max(1, math.ceil(horizon_h / 24.0))


class DailyMatrix:
    """A series as a (local day x 96 quarter-hours) matrix over a contiguous range of local dates."""

    def __init__(self, series: pd.Series, first_date: np.datetime64, last_date: np.datetime64, tz: str) -> None:
        self.first = first_date
        self.dates = np.arange(first_date, last_date + np.timedelta64(1, "D"), dtype="datetime64[D]")
        n = len(self.dates)
        values = series.dropna()
        index = pd.DatetimeIndex(values.index)
        local = index.tz_convert(tz)
        rows = (local.tz_localize(None).normalize().to_numpy().astype("datetime64[D]") - first_date).astype(np.int64)
        cols = np.asarray(local.hour * 4 + local.minute // 15, dtype=np.int64)
        keep = (rows >= 0) & (rows < n)
        total = np.zeros((n, QH_PER_DAY))
        count = np.zeros((n, QH_PER_DAY))
        np.add.at(total, (rows[keep], cols[keep]), values.to_numpy(dtype=float)[keep])
        np.add.at(count, (rows[keep], cols[keep]), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.values = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)
        with np.errstate(invalid="ignore"):
            full = np.isfinite(self.values).sum(axis=1) >= QH_PER_DAY - 4
            self.day_mean = np.where(full, np.nanmean(np.where(full[:, None], self.values, 0.0), axis=1), np.nan)

    def row_of(self, dates: np.ndarray) -> np.ndarray:
        return (dates - self.first).astype(np.int64)


def lag_features(
    history: pd.Series,
    index: pd.DatetimeIndex,
    horizon_h: float,
    calendar: pd.DataFrame | None = None,
    tz: str = DEFAULT_TZ,
    subdiv: str = DEFAULT_SUBDIV,
) -> pd.DataFrame:
    """Lag features (kW) of the targets `index` from the values in `history` (NaN = unknown)."""
    cal = calendar if calendar is not None else calendar_frame(index, tz, subdiv)
    gap = gap_days(horizon_h)
    target_dates = cal["date"].to_numpy().astype("datetime64[D]")
    first = target_dates.min() - np.timedelta64(MAX_LOOKBACK_DAYS, "D")
    if len(history):
        hist_first = pd.DatetimeIndex(history.index[:1]).tz_convert(tz).tz_localize(None).normalize()
        first = min(first, hist_first.to_numpy().astype("datetime64[D]")[0])
    matrix = DailyMatrix(history, first, target_dates.max(), tz)
    types = day_type_of_dates(matrix.dates, subdiv)
    rows = matrix.row_of(target_dates)
    qh = cal["qh"].to_numpy()
    unique_rows = np.unique(rows)
    lag1 = np.full(len(matrix.dates), -1)
    lag2 = np.full(len(matrix.dates), -1)
    classes = np.where(types >= SUNDAY, 2, np.where(types == SATURDAY, 1, 0))
    same_class = np.full(len(matrix.dates), -1)
    for r in unique_rows:
        for back in range(gap, min(MAX_LOOKBACK_DAYS, r) + 1):
            if classes[r - back] == classes[r]:
                same_class[r] = r - back
                break
        found = 0
        for back in range(gap, MAX_LOOKBACK_DAYS + 1):
            cand = r - back
            if cand < 0:
                break
            if types[cand] == types[r]:
                if found == 0:
                    lag1[r] = cand
                else:
                    lag2[r] = cand
                    break
                found += 1
    recent = rows - gap
    cum = np.concatenate([[0.0], np.nancumsum(matrix.day_mean)])
    cnt = np.concatenate([[0], np.cumsum(np.isfinite(matrix.day_mean))])
    hi = np.clip(recent + 1, 0, len(matrix.dates))
    lo = np.clip(recent + 1 - LEVEL_DAYS, 0, len(matrix.dates))
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.where(cnt[hi] - cnt[lo] > 0, (cum[hi] - cum[lo]) / np.maximum(cnt[hi] - cnt[lo], 1), np.nan)

    def pick(day_rows: np.ndarray) -> np.ndarray:
        ok = day_rows >= 0
        out = np.full(len(day_rows), np.nan)
        out[ok] = matrix.values[day_rows[ok], qh[ok]]
        return out

    return pd.DataFrame(
        {
            "lag_type1": pick(lag1[rows]),
            "lag_type2": pick(lag2[rows]),
            "lag_recent": pick(same_class[rows]),
            "level": level,
        },
        index=index,
    )
