"""Coherent forecasts of a hierarchy: the forecast of a connection or of the site equals the sum
of its parts' forecasts, interval by interval.

Each series is forecast on its own first (base forecasts ŷ: the whole has its own model, often
better than the sum of noisy parts). Reconciliation (Wickramasuriya, Athanasopoulos & Hyndman 2019,
"MinT", with a diagonal error covariance W, i.e. weighted least squares) then finds the bottom-level
forecasts b̃ whose sums S b̃ are closest to all base forecasts in the W⁻¹ norm:

    b̃ = (Sᵀ W⁻¹ S)⁻¹ Sᵀ W⁻¹ ŷ,   ỹ = S b̃

where S stacks one row of 0/1 per aggregate (which parts it sums) over the identity of the parts.
A series with a large error variance (W) gives way to the others. The aggregates are then the
literal sums of the reconciled parts, so the equality is exact, not up to a solver tolerance.

Only the medians are reconciled. Each band keeps its own calibrated spread around the reconciled
median (the quantiles of a sum are not the sum of the parts' quantiles), shifted by the same
amount as the median, and rows stay sorted (no crossing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from grid.errors import InputError
from grid.forecast.quantiles import Forecast, quantile_frame


def summing_matrix(bottom: Sequence[str], aggregates: Mapping[str, Sequence[str]]) -> np.ndarray:
    """S: one row per aggregate (in order), then the identity over `bottom`."""
    position = {b: i for i, b in enumerate(bottom)}
    rows = np.zeros((len(aggregates), len(bottom)))
    for r, (name, parts) in enumerate(aggregates.items()):
        unknown = [p for p in parts if p not in position]
        if unknown:
            raise InputError(f"aggregate {name}", "names parts that are not bottom series", unknown)
        rows[r, [position[p] for p in parts]] = 1.0
    return np.vstack([rows, np.eye(len(bottom))])


def reconcile_medians(
    base: pd.DataFrame,
    bottom: Sequence[str],
    aggregates: Mapping[str, Sequence[str]],
    variances: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Reconciled medians: `base` has one column per series (aggregates and bottom), one row per
    interval; `variances` (default 1 each) weigh the series. Aggregates come out as the sums
    of the reconciled bottom columns."""
    names = [*aggregates, *bottom]
    missing = [n for n in names if n not in base.columns]
    if missing:
        raise InputError("base forecasts", "lack series of the hierarchy", missing)
    S = summing_matrix(bottom, aggregates)
    w = np.array([float((variances or {}).get(n, 1.0)) for n in names])
    if not np.all(w > 0):
        raise InputError("variances", "must be positive", dict(zip(names, w, strict=True)))
    w_inv = 1.0 / w
    projection = np.linalg.solve(S.T @ (S * w_inv[:, None]), S.T * w_inv[None, :])
    y_hat = base[names].to_numpy(dtype=float).T
    bottom_values = projection @ y_hat
    out = pd.DataFrame(bottom_values.T, index=base.index, columns=list(bottom))
    for name, parts in aggregates.items():
        total = pd.Series(0.0, index=base.index)
        for part in parts:  # left to right: the sum anyone checking would write
            total = total + out[part]
        out[name] = total
    return out[names]


def band_variance(forecast: Forecast) -> float:
    """Error variance proxy of a forecast: mean squared 10-90 % width / (2 x 1.2816)² (normal)."""
    q = forecast.quantiles
    lo, hi = min(q.columns), max(q.columns)
    width = (q[hi] - q[lo]).to_numpy(dtype=float)
    var = float(np.nanmean((width / (2 * 1.2816)) ** 2)) if len(width) else 0.0
    return var if var > 0 else 1e-6


def reconcile(
    forecasts: Mapping[str, Forecast], bottom: Sequence[str], aggregates: Mapping[str, Sequence[str]]
) -> dict[str, Forecast]:
    """Coherent copies of `forecasts` (all on one index): medians reconciled with each series'
    band as its error variance, bands shifted with their medians."""
    names = [*aggregates, *bottom]
    base = pd.DataFrame({n: forecasts[n].median for n in names})
    medians = reconcile_medians(base, bottom, aggregates, {n: band_variance(forecasts[n]) for n in names})
    out = {}
    for n in names:
        f = forecasts[n]
        shift = (medians[n] - base[n]).to_numpy()[:, None]
        levels = tuple(float(c) for c in f.quantiles.columns)
        frame = quantile_frame(f.quantiles.to_numpy() + shift, f.index, levels)
        if 0.5 in frame.columns:
            # the exact sums, not median + shift (rounding); the other levels kept on their side
            median = medians[n].to_numpy()
            frame[0.5] = median
            for level in levels:
                side = np.minimum if level < 0.5 else np.maximum
                frame[level] = side(frame[level].to_numpy(), median)
        out[n] = Forecast(frame, f.model, f.unit, [*f.notes, "reconciled (MinT, diagonal W)"])
    return out
