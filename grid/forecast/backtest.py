"""Rolling-origin backtest of a load forecast against seasonal naive, on any measured series.

For each origin (every `step_h` hours, the last one `horizon_h` before the end of the series,
going back `days` days) the model is fitted on everything measured before the origin and
forecasts the next `horizon_h` hours; seasonal naive forecasts the same intervals. Intervals
without a measurement (gaps) or without a naive value are skipped (counted in ``n_skipped``),
never filled.

Metrics (kW) over all kept (origin, interval) pairs, on the median:

``mae``, ``rmse``            of the model; ``mae_naive``, ``rmse_naive`` of seasonal naive;
``mae_ratio``                mae / mae_naive on the same points (< 1: better than naive);
``mase``                     mae / in-sample MAE of seasonal naive over the history before the first
                             origin (Hyndman & Koehler 2006);
``pinball``                  mean pinball loss per quantile level (kW), keys ``"0.1"`` ...;
``coverage_80``              share of measurements inside the 10-90 % band (ideal 0.8);
``n_points``, ``n_skipped``, ``n_origins``, ``cold_start_origins``, ``naive_chosen_origins`` counts
                             (origins where :func:`~grid.forecast.load.forecast_load` fell back);
``data``                     what the series is (a file, a site's store, a shipped real meter).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grid.errors import InputError
from grid.forecast.calendar import DEFAULT_TZ, wall_clock_lag
from grid.forecast.choices import MODELS
from grid.forecast.load import SEASON_DAYS, LearnedKind, SeasonalNaive, StandardProfile, forecast_load
from grid.forecast.quantiles import QUANTILES, Forecast
from grid.forecast.weather import Weather

#: History used per origin at most (days): enough for the lags and a few seasons of weekdays.
MAX_HISTORY_DAYS = 84


@dataclass
class BacktestResult:
    """Points (one row per origin and interval) and the metrics of a backtest."""

    points: pd.DataFrame
    metrics: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def pinball(actual: np.ndarray, predicted: np.ndarray, q: float) -> float:
    """Mean pinball (quantile) loss of `predicted` as the `q` quantile of `actual` (same unit)."""
    diff = actual - predicted
    return float(np.mean(np.maximum(q * diff, (q - 1.0) * diff)))


def origins_for(series: pd.Series, days: float, horizon_h: float, step_h: float) -> pd.DatetimeIndex:
    """Forecast origins: every `step_h` h (aligned to UTC midnight), the last one `horizon_h` before
    the end of the series, covering the last `days` days."""
    end = series.index[-1] + pd.Timedelta(minutes=15)
    last = (end - pd.Timedelta(hours=horizon_h)).floor(f"{int(step_h * 60)}min")
    count = max(1, math.floor(days * 24 / step_h))
    return pd.DatetimeIndex([last - pd.Timedelta(hours=step_h * k) for k in range(count)][::-1])


def _forecast(
    model: str, history: pd.Series, index: pd.DatetimeIndex, weather: Weather | None, horizon_h: float, **kw: Any
) -> Forecast:
    if model == "naive":
        return SeasonalNaive().fit(history).predict(index)
    if model == "profile":
        return StandardProfile(kw.get("profile", "H25"), kw.get("annual_kwh")).fit(history).predict(index)
    if model in ("recent", "auto"):
        from grid.forecast.meters import CANDIDATES, MeterForecaster

        allowed = ("recent_profile",) if model == "recent" else CANDIDATES
        return MeterForecaster(horizon_h, allowed=allowed).forecast(history, index, weather=weather)
    kind: LearnedKind = "hgb" if model == "hgb" else "ridge"
    return forecast_load(
        history, index, weather, kw.get("profile", "H25"), kw.get("annual_kwh"), kind=kind, horizon_h=horizon_h
    )


def backtest(
    series: pd.Series,
    days: float = 28,
    horizon_h: float = 24,
    step_h: float = 24,
    weather: Weather | None = None,
    model: str = "ridge",
    profile: str = "H25",
    annual_kwh: float | None = None,
    tz: str = DEFAULT_TZ,
    data: str = "measured series",
) -> BacktestResult:
    """Rolling-origin backtest of `model` on `series` (kW on the UTC quarter-hour grid, NaN = gap);
    `data` says what the series is (the report names it).

    Raises :class:`InputError` if the series is shorter than `days` + a week of history + the horizon.
    """
    if model not in MODELS:
        raise InputError("model", f"must be one of {', '.join(MODELS)}", model)
    if not 0 < horizon_h <= 48:
        raise InputError("horizon", "must be > 0 and at most 48 h", horizon_h)
    origins = origins_for(series, days, horizon_h, step_h)
    before = series[series.index < origins[0]]
    have = float(before.notna().sum()) / 96
    if have < SEASON_DAYS:
        need = days + SEASON_DAYS + horizon_h / 24
        span = (series.index[-1] - series.index[0]) / pd.Timedelta(days=1)
        raise InputError(
            "series",
            f"too little history: a {days:g}-day backtest with a {horizon_h:g} h horizon needs about {need:g} days "
            f"(at least {SEASON_DAYS} measured days before the first origin {origins[0].isoformat()})",
            f"{span:.1f} days spanned, {have:.1f} measured before the first origin",
        )
    frames = []
    notes: list[str] = []
    cold = naive_chosen = 0
    steps = round(horizon_h * 4)
    for origin in origins:
        history = series[(series.index < origin) & (series.index >= origin - pd.Timedelta(days=MAX_HISTORY_DAYS))]
        index = pd.date_range(origin, periods=steps, freq="15min")
        forecast = _forecast(model, history, index, weather, horizon_h, profile=profile, annual_kwh=annual_kwh)
        if any(n.startswith("cold start") for n in forecast.notes):
            cold += 1
        if forecast.model == "seasonal_naive" and model != "naive":
            naive_chosen += 1
        naive = SeasonalNaive(tz).fit(history).point(index)
        frame = forecast.quantiles.copy()
        frame.columns = [f"q{q:g}" for q in frame.columns]
        frame.insert(0, "actual_kw", series.reindex(index).to_numpy())
        frame.insert(1, "naive_kw", naive.to_numpy())
        frame.insert(0, "lead_h", (index - origin) / pd.Timedelta(hours=1))
        frame.insert(0, "origin", origin)
        frame["model"] = forecast.model
        frames.append(frame)
        for note in forecast.notes:
            if (
                note not in notes
                and not note.startswith(("seasonal naive chosen", "H25 scaled", "cold start"))
                and (" chosen on " not in note)
            ):
                notes.append(note)
    points = pd.concat(frames)
    points.index.name = "timestamp"
    metrics = _metrics(points, before, tz)
    metrics.update(
        n_origins=len(origins),
        cold_start_origins=cold,
        horizon_h=horizon_h,
        days=days,
        model=model,
        step_h=step_h,
        data=data,
    )
    metrics["naive_chosen_origins"] = naive_chosen
    if cold:
        notes.insert(0, f"{cold} of {len(origins)} origin(s) used the standard-profile cold start")
    if model == "auto":
        chosen = points.groupby("origin")["model"].first().value_counts()
        notes.insert(0, "models chosen per origin: " + ", ".join(f"{k} {v}" for k, v in chosen.items()))
    if naive_chosen:
        notes.insert(
            0, f"{naive_chosen} of {len(origins)} origin(s) used seasonal naive (better on that origin's held-out days)"
        )
    return BacktestResult(points, metrics, notes)


def _metrics(points: pd.DataFrame, before: pd.Series, tz: str) -> dict[str, Any]:
    quantile_cols = [c for c in points.columns if c.startswith("q")]
    keep = points[["actual_kw", "naive_kw", *quantile_cols]].notna().all(axis=1).to_numpy()
    kept = points[keep]
    if len(kept) == 0:
        raise InputError("series", "no interval of the backtest has a measurement, a naive value and a forecast")
    actual = kept["actual_kw"].to_numpy()
    median = kept["q0.5"].to_numpy()
    naive = kept["naive_kw"].to_numpy()
    mae = float(np.mean(np.abs(actual - median)))
    mae_naive = float(np.mean(np.abs(actual - naive)))
    insample = before - before.reindex(wall_clock_lag(pd.DatetimeIndex(before.index), SEASON_DAYS, tz)).to_numpy()
    scale = float(np.nanmean(np.abs(insample.to_numpy()))) if insample.notna().any() else float("nan")
    q_levels = [float(c[1:]) for c in quantile_cols]
    lo, hi = f"q{min(q_levels):g}", f"q{max(q_levels):g}"
    inside = (actual >= kept[lo].to_numpy()) & (actual <= kept[hi].to_numpy())
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean((actual - median) ** 2))),
        "mae_naive": mae_naive,
        "rmse_naive": float(np.sqrt(np.mean((actual - naive) ** 2))),
        "mae_ratio": mae / mae_naive if mae_naive > 0 else float("nan"),
        "mase": mae / scale if scale > 0 else float("nan"),
        "pinball": {f"{q:g}": pinball(actual, kept[f"q{q:g}"].to_numpy(), q) for q in q_levels},
        "coverage_80": float(np.mean(inside)),
        "band": f"{lo[1:]}-{hi[1:]}",
        "n_points": len(kept),
        "n_skipped": int((~keep).sum()),
    }


def write_report(result: BacktestResult, path: Path) -> None:
    """metrics.json: the metrics plus the notes (what fallbacks were used)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {**result.metrics, "notes": result.notes, "quantiles": list(QUANTILES)}
    path.write_text(json.dumps(body, indent=2, default=str) + "\n", encoding="utf-8")


def write_points(result: BacktestResult, path: Path) -> None:
    """The points as CSV: timestamp (UTC ISO 8601), origin, lead_h, actual_kw, naive_kw, q0.1, ..."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = result.points.copy()
    out.index = pd.Index([t.isoformat() for t in out.index], name="timestamp")
    out["origin"] = [t.isoformat() for t in out["origin"]]
    out.to_csv(path, float_format="%.4f", lineterminator="\n")


def plot_points(result: BacktestResult, path: Path, title: str = "backtest", tz: str = DEFAULT_TZ) -> None:
    """PNG of actual vs forecast median with the 10-90 % band (the shortest lead per interval)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = result.points.sort_values("lead_h", kind="stable")
    pts = pts[~pts.index.duplicated(keep="first")].sort_index()
    local = pd.DatetimeIndex(pts.index).tz_convert(tz)
    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=100)
    ax.fill_between(local, pts["q0.1"], pts["q0.9"], color="tab:blue", alpha=0.25, label="10-90 % band", step="post")
    ax.plot(local, pts["q0.5"], color="tab:blue", lw=0.8, label=f"forecast median ({result.metrics['model']})")
    ax.plot(local, pts["actual_kw"], color="black", lw=0.7, label="measured")
    ax.plot(local, pts["naive_kw"], color="tab:orange", lw=0.5, alpha=0.6, label="seasonal naive")
    m = result.metrics
    ax.set_title(f"{title}: MAE {m['mae']:.3g} kW, MAE/naive {m['mae_ratio']:.2f}, coverage {m['coverage_80']:.0%}")
    ax.set_ylabel("kW")
    ax.set_xlabel(f"time ({tz})")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
