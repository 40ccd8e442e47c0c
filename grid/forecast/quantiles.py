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


#: Lead-time buckets of :class:`HorizonConformal` (hours).
LEAD_BUCKET_H = 1.0
#: Lead hours on each side pooled with a bucket.
POOL_LEAD_BUCKETS = 1
#: Least scale of a lead bucket in :meth:`HorizonConformal.fit_scaled`, as a share of the mean
#: absolute residual over all leads.
MIN_SCALE_SHARE = 0.05
#: Share of a lead bucket's scale in :meth:`HorizonConformal.fit_scaled` taken from its two
#: neighbours (half each; the table wraps, as :meth:`HorizonConformal.apply` reads it): a bucket's
#: mean absolute residual rests on a few dozen values. Tuning split, margin 0.04, lead hours with
#: 0.5 vs without: 0.773-0.828 vs 0.761-0.823 in the fortnight ending at the data's end (Easter,
#: DST: the hardest, which sets the margin), 0.796-0.896 vs 0.800-0.883 and 0.826-0.885 vs
#: 0.825-0.880 in the fortnights ending 14 and 28 days before (mixed there: the lowest hour of
#: the hardest fortnight decided).
NEIGHBOUR_SCALE_SHARE = 0.5
#: Half-life of a residual's weight in a bucket's scale (days; tuning split: 3 days held every lead
#: hour within 0.79-0.82, equal weights 0.79-0.84).
SCALE_HALF_LIFE_DAYS = 3.0
#: Lead hours on each side whose scaled residuals give a bucket its own conformal quantile in
#: :meth:`HorizonConformal.fit_scaled` (the table wraps), and that quantile's share (the rest: the
#: quantile over all leads). The shape of the errors changes over the day (the morning ramp's
#: errors are skewed, the night's are not), which one quantile over all leads misses; 7 lead hours
#: of 7 days are ~200 values, too few alone for a 10 % tail, hence half and half. Tuning split,
#: margin 0.04, the fortnight with Easter and DST (the held-out meters' days): every lead hour
#: 0.779-0.833 vs 0.773-0.827 with one quantile over all leads; all 24 lead hours within 0.75-0.85
#: in 55 % of 1,000 random sets of 14 of its series (as many as held out) vs 44 % (own quantile
#: alone: 0.743 at worst, 28 %; +-6 h: 52 %). The calmer fortnights 14 and 28 days earlier stay
#: too wide at most hours (0.79-0.91), as with one quantile.
LEAD_QUANTILE_POOL_H = 3
LEAD_QUANTILE_SHARE = 0.5


def conformal_quantile(values: np.ndarray, q: float) -> float:
    """Split-conformal quantile of `values` at level `q`: the ceil((n + 1) q)-th smallest for
    q > 0.5 and the floor((n + 1) q)-th for q < 0.5 (each tail gets at most its nominal share of
    exchangeable future errors), clipped to the sample; NaN for no values."""
    v = np.sort(values[np.isfinite(values)])
    n = len(v)
    if n == 0:
        return float("nan")
    if q == 0.5:
        return float(np.quantile(v, 0.5))
    rank = int(np.ceil((n + 1) * q)) if q > 0.5 else int(np.floor((n + 1) * q))
    return float(v[min(max(rank, 1), n) - 1])


@dataclass(frozen=True)
class HorizonConformal:
    """Residual quantiles per lead-hour bucket (conformal on rolling-origin residuals).

    ``table[b]`` holds, for leads in [b, b + 1) h, the conformal quantiles of the residuals
    (measured - point) the same model made at that lead from earlier origins, pooled with the
    neighbouring buckets; a bucket with fewer than :data:`MIN_RESIDUALS_PER_HOUR` residuals takes all
    leads together. The median column is 0: the point forecast stays the median, the band is not
    centred on it (a model that under-forecasts evenings gets a band reaching up).
    """

    table: np.ndarray
    quantiles: tuple[float, ...]

    @classmethod
    def fit(
        cls,
        lead_h: np.ndarray,
        residuals: np.ndarray,
        quantiles: tuple[float, ...] = QUANTILES,
        horizon_h: float = 48,
        margin: float = 0.0,
    ) -> HorizonConformal:
        """Residual quantiles per lead bucket; `margin` widens every level away from the median
        (level q < 0.5 read at q - margin, q > 0.5 at q + margin)."""
        lead = np.asarray(lead_h, dtype=float)
        res = np.asarray(residuals, dtype=float)
        keep = np.isfinite(res) & np.isfinite(lead)
        lead, res = lead[keep], res[keep]
        n_buckets = max(1, int(np.ceil(horizon_h / LEAD_BUCKET_H)))
        bucket = np.clip((lead // LEAD_BUCKET_H).astype(np.int64), 0, n_buckets - 1)
        levels = [q if q == 0.5 else float(np.clip(q + np.sign(q - 0.5) * margin, 0.0, 1.0)) for q in quantiles]
        overall = np.array([0.0 if q == 0.5 else conformal_quantile(res, q) for q in levels])
        table = np.empty((n_buckets, len(quantiles)))
        for b in range(n_buckets):
            near = np.abs(bucket - b) <= POOL_LEAD_BUCKETS
            if near.sum() >= MIN_RESIDUALS_PER_HOUR:
                table[b] = [0.0 if q == 0.5 else conformal_quantile(res[near], q) for q in levels]
            else:
                table[b] = overall
        return cls(np.nan_to_num(table), quantiles)

    @classmethod
    def fit_scaled(
        cls,
        lead_h: np.ndarray,
        residuals: np.ndarray,
        recent: np.ndarray,
        quantiles: tuple[float, ...] = QUANTILES,
        horizon_h: float = 24,
        margin: float = 0.0,
        age_days: np.ndarray | None = None,
        lead_pool_h: float = LEAD_QUANTILE_POOL_H,
        lead_share: float = LEAD_QUANTILE_SHARE,
    ) -> HorizonConformal:
        """Normalised split conformal: each lead bucket's residuals are divided by their mean
        absolute value (the bucket's scale, from *all* residuals given, each weighing
        0.5 ** (age / :data:`SCALE_HALF_LIFE_DAYS`) when `age_days` is given), the conformal quantiles of
        the scaled residuals of the `recent` ones are taken over every lead together and, for each
        bucket, over the leads within `lead_pool_h` of it; a bucket's quantile is `lead_share` x its
        own + the rest x the all-leads one (:data:`LEAD_QUANTILE_SHARE`), multiplied back by the
        bucket's scale. ``lead_share=0`` gives one quantile over all leads.

        One quantile from all leads (hundreds of residuals instead of tens per bucket) and one
        scale per bucket (a mean, stable on few values): the band keeps its shape over the day
        (narrow at night, wide in the evening) and its level does not jump with the rank rounding
        of a small bucket. A bucket's scale is at least :data:`MIN_SCALE_SHARE` of the mean
        absolute residual over all leads (a bucket of exact forecasts still gets a band). On the
        SimBench tuning split (40 series, 3 fortnights, 24 h ahead) this held 0.79-0.84 in every
        lead hour, where the per-bucket quantiles of :meth:`fit` gave 0.77-0.84 at the same mean.
        """
        lead = np.asarray(lead_h, dtype=float)
        res = np.asarray(residuals, dtype=float)
        keep = np.isfinite(res) & np.isfinite(lead)
        use = np.asarray(recent, dtype=bool)[keep]
        age = np.zeros(len(keep)) if age_days is None else np.asarray(age_days, dtype=float)
        weight = 0.5 ** (age[keep] / SCALE_HALF_LIFE_DAYS)
        lead, res = lead[keep], res[keep]
        n_buckets = max(1, int(np.ceil(horizon_h / LEAD_BUCKET_H)))
        if len(res) == 0:
            return cls(np.zeros((n_buckets, len(quantiles))), quantiles)
        bucket = np.clip((lead // LEAD_BUCKET_H).astype(np.int64), 0, n_buckets - 1)
        total = np.bincount(bucket, weights=weight * np.abs(res), minlength=n_buckets)
        count = np.bincount(bucket, weights=weight, minlength=n_buckets)
        overall = float(np.mean(np.abs(res)))
        scale = np.where(count > 0, total / np.where(count > 0, count, 1.0), overall)
        if NEIGHBOUR_SCALE_SHARE > 0 and n_buckets > 2:
            # each bucket's scale leans on its neighbours' (leads wrap: the table repeats daily)
            side = NEIGHBOUR_SCALE_SHARE / 2
            scale = (1 - NEIGHBOUR_SCALE_SHARE) * scale + side * (np.roll(scale, 1) + np.roll(scale, -1))
        scale = np.maximum(scale, MIN_SCALE_SHARE * overall + 1e-12)
        if not use.any():
            use = np.ones(len(res), dtype=bool)
        z, z_bucket = res[use] / scale[bucket[use]], bucket[use]
        levels = [q if q == 0.5 else float(np.clip(q + np.sign(q - 0.5) * margin, 0.0, 1.0)) for q in quantiles]

        def zq_of(values: np.ndarray) -> np.ndarray:  # the median's residual quantile is 0
            return np.array([0.0 if q == 0.5 else conformal_quantile(values, q) for q in levels])

        zq = zq_of(z)
        table = np.tile(zq, (n_buckets, 1))
        if lead_share > 0 and n_buckets > 1:
            # circular distance in buckets: the table wraps (a 24 h table serves every day)
            half = n_buckets // 2
            apart = np.abs((z_bucket[None, :] - np.arange(n_buckets)[:, None] + half) % n_buckets - half)
            for b in range(n_buckets):
                near = apart[b] <= lead_pool_h / LEAD_BUCKET_H
                if near.sum() >= MIN_RESIDUALS_PER_HOUR:
                    table[b] = lead_share * zq_of(z[near]) + (1 - lead_share) * zq
        return cls(np.nan_to_num(scale[:, None] * table), quantiles)

    def apply(self, point: pd.Series, origin: pd.Timestamp) -> pd.DataFrame:
        """Quantile frame: `point` + the residual quantiles of each interval's lead after `origin`
        (leads past the table's span wrap around: a 24 h table serves 48 h day by day)."""
        index = pd.DatetimeIndex(point.index)
        lead = np.maximum(np.asarray((index - origin) / pd.Timedelta(hours=1), dtype=float), 0.0)
        bucket = (lead // LEAD_BUCKET_H).astype(np.int64) % len(self.table)
        values = point.to_numpy(dtype=float)[:, None] + self.table[bucket]
        return quantile_frame(values, index, self.quantiles)
