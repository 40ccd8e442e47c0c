"""A global gradient-boosted load model (LightGBM) trained across many meters at once.

One model for all series: each series is divided by its own scale (mean kW of its history), so a
3 kW household and a 300 kW connection share what they have in common (the shape of workdays,
Sundays and Hesse holidays, the reaction to cold, how far the next day follows the last one) and
a meter with little history borrows from the others. Features per target interval (local
quarter-hour q, date d): the calendar of :func:`grid.forecast.calendar.calendar_frame` (quarter-hour,
day type with holidays as Sundays, holiday and bridge-day flags), the lags of
:func:`grid.forecast.features.lag_features` and the weighted median of recent weeks
(:func:`grid.forecast.recent.recent_profile`) and the value at the same wall-clock time one (two)
day(s) earlier, all at least the horizon old and scaled, plus outdoor
temperature and heating degrees when a weather series covers every target. The objective is the
absolute error (L1), so the prediction is a median, like the other models' points.

Training costs seconds to a minute for hundreds of meters: it is meant to run periodically (say
weekly, :meth:`GlobalLoad.save` / :meth:`GlobalLoad.load`), not for every forecast; a forecast
with a fitted model costs milliseconds per series.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from grid.errors import InputError
from grid.forecast.calendar import DEFAULT_SUBDIV, DEFAULT_TZ, calendar_frame, wall_clock_lag
from grid.forecast.features import LAG_COLUMNS, gap_days, lag_features
from grid.forecast.recent import recent_profile
from grid.forecast.weather import Weather

HEATING_BASE_DEGC = 15.0
CALENDAR_COLUMNS = ("qh", "day_type", "holiday", "bridge")
#: Column of the recent-weeks median in the design: a row without it has no history to go on.
RECENT_COLUMN = len(CALENDAR_COLUMNS) + len(LAG_COLUMNS)
#: LightGBM settings: tuned on the SimBench "tune" split only (grid.forecast.realdata).
PARAMS: dict[str, float | int | str] = {
    "objective": "l1",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 1,
    "deterministic": True,
    "force_row_wise": True,
    "seed": 0,
    "verbose": -1,
}
ROUNDS = 300
#: The first days of each history serve only as lags of later rows (two weeks: two same-weekday lags).
TRAIN_SKIP_DAYS = 14
#: Training rows at most (sampled evenly over meters and time); more cost time, not accuracy.
MAX_TRAIN_ROWS = 400_000


def _scale(history: pd.Series) -> float:
    mean = float(np.nanmean(np.abs(history.to_numpy(dtype=float)))) if history.notna().any() else 0.0
    return mean if mean > 0 else 1.0


@dataclass
class GlobalLoad:
    """LightGBM across meters; :meth:`fit` on a mapping series id -> history (kW, UTC grid)."""

    horizon_h: float = 24.0
    tz: str = DEFAULT_TZ
    subdiv: str = DEFAULT_SUBDIV
    rounds: int = ROUNDS
    use_weather: bool = False
    booster: lgb.Booster | None = None
    trained_until: pd.Timestamp | None = None
    n_series: int = 0
    #: last training interval per series id: residuals after it are out of sample
    series_end: dict[str, pd.Timestamp] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    name = "global_lgbm"

    def features(
        self, history: pd.Series, index: pd.DatetimeIndex, weather: Weather | None = None, scale: float | None = None
    ) -> np.ndarray:
        """(len(index), n_features) design of one series: values only from `history`."""
        s = _scale(history) if scale is None else scale
        cal = calendar_frame(index, self.tz, self.subdiv)
        lags = lag_features(history, index, self.horizon_h, cal, self.tz, self.subdiv).to_numpy() / s
        recent = recent_profile(history, index, self.horizon_h, self.tz, self.subdiv).to_numpy()[:, None] / s
        # the same wall-clock quarter-hour gap days earlier, whatever the day type (yesterday's evening)
        same_time = history.reindex(wall_clock_lag(index, gap_days(self.horizon_h), self.tz)).to_numpy()[:, None] / s
        parts = [cal[list(CALENDAR_COLUMNS)].to_numpy(dtype=float), lags, recent, same_time]
        if self.use_weather:
            if weather is None or not weather.covers(index):
                raise InputError("weather", "the global model was trained with temperature; give it for every target")
            temp = weather.on(index).temp_degc.to_numpy(dtype=float)
            parts.append(np.column_stack([temp, np.maximum(0.0, HEATING_BASE_DEGC - temp)]))
        return np.hstack(parts)

    def fit(self, histories: Mapping[str, pd.Series], weather: Weather | None = None) -> GlobalLoad:
        """Train on every interval of every history after its first :data:`TRAIN_SKIP_DAYS` days
        (those only serve as lags)."""
        if not histories:
            raise InputError("histories", "the global model needs at least one series")
        first = next(iter(histories.values()))
        self.use_weather = weather is not None and weather.covers(pd.DatetimeIndex(first.index))
        designs, targets = [], []
        for series in histories.values():
            index = pd.DatetimeIndex(series.index)
            start = index[0] + pd.Timedelta(days=TRAIN_SKIP_DAYS)
            rows = index >= start
            if rows.sum() == 0:
                continue
            s = _scale(series)
            x = self.features(series, index[rows], weather, s)
            y = series.to_numpy(dtype=float)[rows] / s
            ok = np.isfinite(y) & np.isfinite(x[:, RECENT_COLUMN])
            designs.append(x[ok])
            targets.append(y[ok])
        if not designs:
            raise InputError("histories", f"no series has more than {TRAIN_SKIP_DAYS} days to train the global model")
        x_all, y_all = np.vstack(designs), np.concatenate(targets)
        if len(y_all) < 96:
            raise InputError("histories", "too few intervals with lags to train the global model", len(y_all))
        if len(y_all) > MAX_TRAIN_ROWS:
            pick = np.linspace(0, len(y_all) - 1, MAX_TRAIN_ROWS).astype(np.int64)
            x_all, y_all = x_all[pick], y_all[pick]
        data = lgb.Dataset(x_all, y_all, free_raw_data=True)
        self.booster = lgb.train(PARAMS, data, num_boost_round=self.rounds)
        self.trained_until = max(pd.DatetimeIndex(h.index)[-1] for h in histories.values())
        self.n_series = len(histories)
        self.series_end = {str(k): pd.DatetimeIndex(h.index)[-1] for k, h in histories.items() if len(h)}
        return self

    def out_of_sample_after(self, series_id: str | None) -> pd.Timestamp | None:
        """The last interval this model saw in training for `series_id` (all series if unknown)."""
        if series_id is not None and series_id in self.series_end:
            return self.series_end[series_id]
        return self.trained_until

    def point(self, history: pd.Series, index: pd.DatetimeIndex, weather: Weather | None = None) -> pd.Series:
        """Median forecast (kW) of one series for `index` from its `history` (NaN where the
        lags are missing)."""
        if self.booster is None:
            raise InputError("global model", "is not trained")
        s = _scale(history)
        x = self.features(history, index, weather, s)
        out = np.full(len(index), np.nan)
        ok = np.isfinite(x[:, RECENT_COLUMN])
        if ok.any():
            out[ok] = np.asarray(self.booster.predict(x[ok]), dtype=float) * s
        return pd.Series(out, index=index, name="power_kw")

    def save(self, path: Path) -> None:
        """The booster and its settings as one JSON file."""
        if self.booster is None:
            raise InputError("global model", "is not trained")
        body = {
            "horizon_h": self.horizon_h,
            "tz": self.tz,
            "subdiv": self.subdiv,
            "use_weather": self.use_weather,
            "trained_until": None if self.trained_until is None else self.trained_until.isoformat(),
            "n_series": self.n_series,
            "series_end": {k: v.isoformat() for k, v in self.series_end.items()},
            "booster": self.booster.model_to_string(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> GlobalLoad:
        body = json.loads(path.read_text(encoding="utf-8"))
        model = cls(body["horizon_h"], body["tz"], body["subdiv"], use_weather=body["use_weather"])
        model.booster = lgb.Booster(model_str=body["booster"])
        model.trained_until = None if body["trained_until"] is None else pd.Timestamp(body["trained_until"])
        model.n_series = body["n_series"]
        model.series_end = {k: pd.Timestamp(v) for k, v in body.get("series_end", {}).items()}
        return model
