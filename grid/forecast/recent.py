"""Weighted median profile of recent weeks: the baseline a learned load model has to beat.

For a target interval (local date d, quarter-hour q, day class c = workday / Saturday / Sunday or
Hesse holiday) the candidates are the values at quarter-hours q-1, q, q+1 of the days of class c
that lie between ``gap_days`` (= ceil(horizon / 24 h)) and :data:`WEEKS` x 7 days before d. Each
candidate weighs 0.5 ** (age / :data:`HALF_LIFE_DAYS`), twice that on the same weekday (a Monday
resembles last Monday more than last Thursday) and half that at the neighbouring quarter-hours
(a little smoothing in time). The forecast is the weighted median: robust to the one-off kettle
or washing machine of a single household, which a mean would smear over every future day.

Every candidate is at least the horizon old, so the same values serve training-period residuals
and forecasts; values after the origin are unknown (NaN) and simply not candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
from grid.forecast.features import DailyMatrix, gap_days

WEEKS = 4
HALF_LIFE_DAYS = 14.0
SAME_WEEKDAY_WEIGHT = 2.0
NEIGHBOUR_WEIGHT = 0.5


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Column-wise weighted median of (k, n) `values` (NaN skipped); NaN where a column is empty."""
    w = np.where(np.isfinite(values), weights, 0.0)
    v = np.where(np.isfinite(values), values, np.inf)
    order = np.argsort(v, axis=0)
    v_sorted = np.take_along_axis(v, order, axis=0)
    w_sorted = np.take_along_axis(w, order, axis=0)
    cum = np.cumsum(w_sorted, axis=0)
    total = cum[-1]
    pos = np.argmax(cum >= 0.5 * total[None, :], axis=0)
    out = v_sorted[pos, np.arange(values.shape[1])]
    return np.where(total > 0, out, np.nan)


def recent_profile(
    history: pd.Series,
    index: pd.DatetimeIndex,
    horizon_h: float,
    tz: str = DEFAULT_TZ,
    subdiv: str = DEFAULT_SUBDIV,
    weeks: int = WEEKS,
) -> pd.Series:
    """Weighted median (kW) of the recent same-class days for each interval of `index` (see the
    module docstring); NaN where no candidate has a value."""
    cal = calendar_frame(index, tz, subdiv)
    target_dates = cal["date"].to_numpy().astype("datetime64[D]")
    gap = gap_days(horizon_h)
    first = target_dates.min() - np.timedelta64(weeks * 7, "D")
    matrix = DailyMatrix(history, first, target_dates.max(), tz)
    types = day_type_of_dates(matrix.dates, subdiv)
    classes = np.where(types >= SUNDAY, 2, np.where(types == SATURDAY, 1, 0))
    padded = np.pad(matrix.values, ((0, 0), (1, 1)), mode="edge")
    rows = matrix.row_of(target_dates)
    qh = cal["qh"].to_numpy()
    out = np.full(len(index), np.nan)
    for r in np.unique(rows):
        backs = np.arange(gap, weeks * 7 + 1)
        cands = r - backs
        ok = (cands >= 0) & (classes[np.clip(cands, 0, None)] == classes[r])
        cands, backs = cands[ok], backs[ok]
        if len(cands) == 0:
            continue
        w_day = 0.5 ** (backs / HALF_LIFE_DAYS) * np.where(types[cands] == types[r], SAME_WEEKDAY_WEIGHT, 1.0)
        # (3 shifts x candidate days, 96 quarter-hours): shift -1, 0, +1
        values = np.concatenate([padded[cands, s : s + QH_PER_DAY] for s in (0, 1, 2)])
        weights = np.concatenate([w_day * NEIGHBOUR_WEIGHT, w_day, w_day * NEIGHBOUR_WEIGHT])
        day_median = _weighted_median(values, np.repeat(weights[:, None], QH_PER_DAY, axis=1))
        sel = rows == r
        out[sel] = day_median[qh[sel]]
    return pd.Series(out, index=index, name="power_kw")


@dataclass
class RecentProfile:
    """The weighted median profile as a model (``fit`` keeps the history, ``point`` forecasts)."""

    horizon_h: float = 48.0
    tz: str = DEFAULT_TZ
    subdiv: str = DEFAULT_SUBDIV
    history: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))

    name = "recent_profile"

    def fit(self, history: pd.Series) -> RecentProfile:
        self.history = history
        return self

    def point(self, index: pd.DatetimeIndex) -> pd.Series:
        return recent_profile(self.history, index, self.horizon_h, self.tz, self.subdiv)
