"""Probabilistic forecasts as quantiles: the `Forecast` result and empirical residual quantiles.

Every forecast in this package is a table of quantiles (default 10 %, 50 %, 90 %) per UTC
interval. The band comes from *out-of-sample* residuals (measured - point forecast) grouped by local
hour of day (each hour pooled with its neighbours), added to the point forecast. Quantiles never
cross: each row is sorted after the residual quantiles are added.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from grid.forecast.calendar import DEFAULT_TZ, quarter_hour_of_day

QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
#: Hours on each side pooled with an hour of day when taking residual quantiles.
POOL_HOURS = 1
#: Below this many residuals per pooled hour the quantiles come from all hours together.
MIN_RESIDUALS_PER_HOUR = 20


@dataclass
class Forecast:
    """Quantile forecast of one target.

    Attributes
    ----------
    quantiles : DataFrame
        Index: UTC interval starts (a value at t covers [t, t + 15 min)); columns: quantile levels
        (floats, e.g. 0.1, 0.5, 0.9); values in `unit`. Columns are non-decreasing in every row.
    model : str
        Which model made it (``seasonal_naive``, ``standard_profile``, ``learned_ridge``, ...).
    unit : str
        ``kW`` (load, PV, heat) or ``kW/kWp``.
    notes : list of str
        Fallbacks used (cold start, missing weather, ...), for the output to show.
    """

    quantiles: pd.DataFrame
    model: str
    unit: str = "kW"
    notes: list[str] = field(default_factory=list)

    @property
    def median(self) -> pd.Series:
        """The 50 % quantile (kW), the point forecast the planner uses."""
        return self.quantiles[0.5].rename("power_kw")

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.quantiles.index)


def ordered(values: np.ndarray) -> np.ndarray:
    """Rows sorted ascending, so that quantile columns never cross."""
    return np.sort(values, axis=1)


def quantile_frame(values: np.ndarray, index: pd.DatetimeIndex, quantiles: tuple[float, ...]) -> pd.DataFrame:
    """A non-crossing quantile frame from an (n, q) array."""
    frame = pd.DataFrame(ordered(np.asarray(values, dtype=float)), index=index, columns=list(quantiles))
    frame.columns.name = "quantile"
    return frame


@dataclass(frozen=True)
class ResidualQuantiles:
    """Residual quantiles by local hour of day: ``table`` has 24 rows and one column per level."""

    table: np.ndarray
    quantiles: tuple[float, ...]
    tz: str = DEFAULT_TZ

    @classmethod
    def fit(
        cls,
        residuals: pd.Series,
        quantiles: tuple[float, ...] = QUANTILES,
        tz: str = DEFAULT_TZ,
        relative_to: pd.Series | None = None,
    ) -> ResidualQuantiles:
        """Empirical quantiles of `residuals` (measured - forecast, NaN skipped) by local hour.

        With `relative_to`, residuals are divided by it first (a multiplicative band, used for
        PV and cold starts) and :meth:`apply` multiplies them back.
        """
        res = residuals.dropna()
        if relative_to is not None:
            scale = relative_to.reindex(res.index)
            keep = scale.abs() > 0
            res = (res[keep] / scale[keep]).dropna()
        q = np.asarray(quantiles)
        if len(res) == 0:
            return cls(np.zeros((24, len(q))), quantiles, tz)
        hours = quarter_hour_of_day(pd.DatetimeIndex(res.index), tz) // 4
        values = res.to_numpy(dtype=float)
        overall = np.quantile(values, q)
        table = np.empty((24, len(q)))
        for h in range(24):
            near = np.abs(((hours - h) + 12) % 24 - 12) <= POOL_HOURS
            table[h] = np.quantile(values[near], q) if near.sum() >= MIN_RESIDUALS_PER_HOUR else overall
        return cls(table, quantiles, tz)

    def centred(self) -> ResidualQuantiles:
        """The same spread with the median residual moved to 0 (median = point forecast)."""
        if 0.5 not in self.quantiles:
            return self
        centre = self.table[:, [self.quantiles.index(0.5)]]
        return ResidualQuantiles(self.table - centre, self.quantiles, self.tz)

    def apply(self, point: pd.Series, multiplicative: bool = False) -> pd.DataFrame:
        """Quantile frame: `point` + residual quantile of its hour (or x (1 + q) if multiplicative)."""
        index = pd.DatetimeIndex(point.index)
        hours = quarter_hour_of_day(index, self.tz) // 4
        base = point.to_numpy(dtype=float)[:, None]
        offsets = self.table[hours]
        values = base * (1.0 + offsets) if multiplicative else base + offsets
        return quantile_frame(values, index, self.quantiles)
