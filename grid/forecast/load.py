"""Load forecasts (kW, 15 min, up to 48 h): seasonal naive, BDEW standard profile, learned model.

All three take a measured history (mean kW per UTC quarter-hour, NaN = missing) and return a
:class:`~grid.forecast.quantiles.Forecast` with 10/50/90 % quantiles. They work on any load series:
a single meter, a group of meters, a connection point or the site aggregate (forecast the sum as
its own series; quantiles of a sum are not the sum of quantiles).

* :class:`SeasonalNaive`: the value at the same local wall-clock quarter-hour one week earlier
  (the UTC lag where that wall time does not exist or is ambiguous). The baseline of MASE.
* :class:`StandardProfile`: the BDEW profile (demandlib) scaled to the meter's annual energy
  (given, or matched to the measured energy of its history). The cold start for meters with less
  than :data:`MIN_LEARNED_DAYS` days of history.
* :class:`LearnedLoad`: a ridge regression (default) or HistGradientBoosting on calendar features
  (quarter-hour of day x day type with Hesse holidays as Sundays, weekday, bridge days), outdoor
  temperature and heating degrees, and lags at least the horizon old (:mod:`grid.forecast.features`).
  Ridge is the default because it won the backtests (``bench/forecast.py``; see its docstring)
  and fits 300 meters in seconds.

:func:`forecast_load` picks the model and says which fallback it used in ``Forecast.notes``: the
standard profile below two weeks of history; seasonal naive where it beat the learned model on
the held-out calibration days of that very series; else the learned model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from grid.errors import InputError
from grid.forecast.calendar import (
    DEFAULT_SUBDIV,
    DEFAULT_TZ,
    SATURDAY,
    SUNDAY,
    calendar_frame,
    regular_key,
    wall_clock_lag,
)
from grid.forecast.features import LAG_COLUMNS, lag_features
from grid.forecast.profiles import PROFILE_ANNUAL_KWH, profile_name, standard_profile_kw
from grid.forecast.quantiles import QUANTILES, Forecast, ResidualQuantiles, quantile_frame
from grid.forecast.weather import Weather

MAX_HORIZON_H = 48.0
#: Below this much history (days with values) a meter gets the standard-profile cold start.
MIN_LEARNED_DAYS = 14
#: Days at the end of the history held out to measure residuals for the quantiles.
CALIBRATION_DAYS = 14
SHORT_CALIBRATION_DAYS = 7
#: Base temperature of the heating degrees (degC).
HEATING_BASE_DEGC = 15.0
RIDGE_ALPHA = 1.0
#: Training rows lose half their weight every this many days, so that the model follows seasonal
#: drift (winter evenings, Christmas) rather than the average of its history.
HALF_LIFE_DAYS = 14.0
#: Multipliers of the profile for a cold start without a day of history (10/50/90 %): households
#: scatter widely around the profile; these are presumptions, replaced by measured ratios as soon
#: as a day of history exists.
COLD_START_BAND = (0.5, 1.0, 1.7)
MIN_RATIO_POINTS = 96
SEASON_DAYS = 7
#: Training rows with all lags present needed before rows with imputed lags are left out.
MIN_COMPLETE_ROWS = 7 * 96
#: Largest horizon seasonal naive can serve from one week of lag.
NAIVE_MAX_HORIZON_H = 24.0 * SEASON_DAYS

LearnedKind = Literal["ridge", "hgb"]


def _check_target(index: pd.DatetimeIndex, history: pd.Series, horizon_h: float | None = None) -> None:
    if len(index) == 0:
        raise InputError("forecast index", "is empty")
    if index.tz is None:
        raise InputError("forecast index", "has no UTC offset", str(index[0]))
    if len(history) and index[0] <= history.index[-1]:
        raise InputError(
            "forecast index",
            f"must start after the history (ends {history.index[-1].isoformat()})",
            index[0].isoformat(),
        )
    if horizon_h is not None and len(history):
        reach = (index[-1] - history.index[-1]) / pd.Timedelta(hours=1)
        if reach > horizon_h + 1e-9:
            raise InputError("forecast index", f"reaches {reach:g} h past the history, more than {horizon_h:g} h")


def _days_with_values(history: pd.Series) -> float:
    return float(history.notna().sum()) / 96.0


@dataclass
class SeasonalNaive:
    """Same local quarter-hour one week earlier; band from the residuals of this rule in the history."""

    tz: str = DEFAULT_TZ
    quantiles: tuple[float, ...] = QUANTILES
    history: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    band: ResidualQuantiles | None = None

    name = "seasonal_naive"

    def fit(self, history: pd.Series) -> SeasonalNaive:
        """Keep the history (kW, UTC quarter-hours) and measure the naive residuals in it."""
        self.history = history
        if _days_with_values(history) < SEASON_DAYS:
            raise InputError(
                "history", f"seasonal naive needs at least {SEASON_DAYS} days", f"{_days_with_values(history):.1f} days"
            )
        naive = self.point(pd.DatetimeIndex(history.index))
        self.band = ResidualQuantiles.fit(history - naive, self.quantiles, self.tz)
        return self

    def point(self, index: pd.DatetimeIndex) -> pd.Series:
        """Naive values for `index` (NaN where the week-old value is missing)."""
        lagged = wall_clock_lag(index, SEASON_DAYS, self.tz)
        values = self.history.reindex(lagged).to_numpy(dtype=float)
        return pd.Series(values, index=index, name="power_kw")

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        """Quantile forecast for `index` (at most a week after the end of the history)."""
        _check_target(index, self.history, NAIVE_MAX_HORIZON_H)
        assert self.band is not None
        point = self.point(index)
        notes = []
        if point.isna().any():
            notes.append(f"seasonal naive: {int(point.isna().sum())} interval(s) without a week-old value (NaN)")
        return Forecast(self.band.apply(point), self.name, notes=notes)


@dataclass
class StandardProfile:
    """BDEW profile x scale; the scale is ``annual_kwh`` / 1 GWh, or the measured energy of the
    history over the profile's energy in the same intervals."""

    profile: str = "H25"
    annual_kwh: float | None = None
    tz: str = DEFAULT_TZ
    subdiv: str = DEFAULT_SUBDIV
    quantiles: tuple[float, ...] = QUANTILES
    scale_annual_kwh: float = 0.0
    band: ResidualQuantiles | None = None
    notes: list[str] = field(default_factory=list)
    history_end: pd.Timestamp | None = None

    name = "standard_profile"

    def fit(self, history: pd.Series | None = None) -> StandardProfile:
        """Scale the profile and measure its band from `history` (may be None or short)."""
        history = history if history is not None else pd.Series(dtype=float)
        present = history.dropna()
        used = profile_name(self.profile)
        if used != self.profile:
            self.notes.append(f"profile {self.profile} served by {used}")
        if self.annual_kwh is not None:
            self.scale_annual_kwh = float(self.annual_kwh)
            how = "its annual energy"
        elif len(present):
            unit = standard_profile_kw(pd.DatetimeIndex(present.index), used, PROFILE_ANNUAL_KWH, self.tz, self.subdiv)
            self.scale_annual_kwh = float(present.sum() / unit.sum() * PROFILE_ANNUAL_KWH)
            how = f"the energy of {len(present) / 96:.1f} measured days"
        else:
            raise InputError("history", "a standard-profile forecast needs annual_kwh or some measured history")
        self.notes.append(f"{used} scaled to {self.scale_annual_kwh:.0f} kWh/a ({how})")
        if len(history):
            self.history_end = history.index[-1]
        if len(present) >= MIN_RATIO_POINTS:
            expected = self.point(pd.DatetimeIndex(present.index))
            band = ResidualQuantiles.fit(present - expected, self.quantiles, self.tz, relative_to=expected)
            # the median stays the scaled profile; the history only sets the spread around it
            self.band = band.centred()
        return self

    def point(self, index: pd.DatetimeIndex) -> pd.Series:
        used = profile_name(self.profile)
        return standard_profile_kw(index, used, self.scale_annual_kwh, self.tz, self.subdiv)

    def predict(self, index: pd.DatetimeIndex) -> Forecast:
        """Profile quantiles for `index` (kW)."""
        point = self.point(index)
        notes = list(self.notes)
        if self.band is not None:
            frame = self.band.apply(point, multiplicative=True)
        else:
            factors = np.interp(self.quantiles, QUANTILES, COLD_START_BAND)
            frame = quantile_frame(point.to_numpy()[:, None] * factors[None, :], index, self.quantiles)
            notes.append("band: default profile scatter (less than a day of history)")
        return Forecast(frame, self.name, notes=notes)


_DESIGN_CACHE: dict[tuple[int, int, str, str], np.ndarray] = {}
_DESIGN_CACHE_SIZE = 16


def _calendar_design_for(index: pd.DatetimeIndex, cal: pd.DataFrame, tz: str, subdiv: str) -> np.ndarray:
    """calendar_design(cal), cached for regular grids (300 meters share one index)."""
    key = regular_key(index)
    if key is None:
        return calendar_design(cal)
    full = (*key, tz, subdiv)
    if full not in _DESIGN_CACHE:
        if len(_DESIGN_CACHE) >= _DESIGN_CACHE_SIZE:
            _DESIGN_CACHE.pop(next(iter(_DESIGN_CACHE)))
        _DESIGN_CACHE[full] = calendar_design(cal)
    return _DESIGN_CACHE[full]


def calendar_design(cal: pd.DataFrame) -> np.ndarray:
    """One-hot calendar columns for the linear model: (workday/Saturday/Sunday-or-holiday) x hour,
    quarter within the hour, weekday, bridge day."""
    day_class = np.where(
        cal["day_type"].to_numpy() >= SUNDAY, 2, np.where(cal["day_type"].to_numpy() == SATURDAY, 1, 0)
    )
    n = len(cal)
    cols = []
    block = np.zeros((n, 72))
    block[np.arange(n), day_class * 24 + cal["hour"].to_numpy()] = 1.0
    cols.append(block)
    quarter = np.zeros((n, 4))
    quarter[np.arange(n), cal["qh"].to_numpy() % 4] = 1.0
    cols.append(quarter)
    weekday = np.zeros((n, 7))
    weekday[np.arange(n), cal["day_type"].to_numpy()] = 1.0
    cols.append(weekday)
    cols.append(cal[["bridge"]].to_numpy(dtype=float))
    return np.hstack(cols)


@dataclass
class WeightedRidge:
    """Ridge regression with an unpenalised intercept and sample weights, solved in closed form
    (the same estimate as ``sklearn.linear_model.Ridge(alpha).fit(X, y, sample_weight)``, without
    its input validation, which cost a quarter of a 300-meter fit)."""

    alpha: float = 1.0
    coef_: np.ndarray | None = None
    intercept_: float = 0.0

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> WeightedRidge:
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        w_sum = float(w.sum())
        x_mean = (w @ x) / w_sum
        y_mean = float(w @ y) / w_sum
        xc = x - x_mean
        yc = y - y_mean
        gram = (xc * w[:, None]).T @ xc
        gram[np.diag_indices_from(gram)] += self.alpha
        self.coef_ = np.linalg.solve(gram, (xc * w[:, None]).T @ yc)
        self.intercept_ = y_mean - float(x_mean @ self.coef_)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.coef_ is None:
            raise InputError("ridge", "is not fitted")
        return np.asarray(x @ self.coef_ + self.intercept_, dtype=float)


@dataclass
class LearnedLoad:
    """Regression on calendar, temperature and lags >= `horizon_h` (see the module docstring)."""

    kind: LearnedKind = "ridge"
    horizon_h: float = MAX_HORIZON_H
    tz: str = DEFAULT_TZ
    subdiv: str = DEFAULT_SUBDIV
    quantiles: tuple[float, ...] = QUANTILES
    history: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    use_weather: bool = False
    band: ResidualQuantiles | None = None
    notes: list[str] = field(default_factory=list)
    holdout_mae: float = float("nan")
    holdout_naive_mae: float = float("nan")
    #: the held-out days' forecast by the model fitted without them (kW; empty if none)
    holdout_predicted: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    _model: object | None = None
    _lag_means: np.ndarray | None = None
    _scale: float = 1.0

    @property
    def name(self) -> str:
        return f"learned_{self.kind}"

    def _design(self, history: pd.Series, index: pd.DatetimeIndex, weather: Weather | None) -> np.ndarray:
        cal = calendar_frame(index, self.tz, self.subdiv)
        lags = lag_features(history, index, self.horizon_h, cal, self.tz, self.subdiv).to_numpy() / self._scale
        if self._lag_means is not None:
            lags = np.where(np.isnan(lags), self._lag_means[None, :], lags)
        parts: list[np.ndarray] = []
        if self.kind == "ridge":
            parts.append(_calendar_design_for(index, cal, self.tz, self.subdiv))
        else:
            parts.append(cal[["qh", "day_type", "holiday", "bridge"]].to_numpy(dtype=float))
        parts.append(lags)
        if self.use_weather:
            assert weather is not None
            temp = weather.on(index).temp_degc.to_numpy(dtype=float)
            parts.append(np.column_stack([temp, np.maximum(0.0, HEATING_BASE_DEGC - temp)]) / 10.0)
        return np.hstack(parts)

    def _new_model(self) -> WeightedRidge | HistGradientBoostingRegressor:
        if self.kind == "ridge":
            return WeightedRidge(alpha=RIDGE_ALPHA)
        return HistGradientBoostingRegressor(max_iter=150, learning_rate=0.08, max_leaf_nodes=31, random_state=0)

    def _lag_cols(self, width: int) -> slice:
        """The lag columns of a design `width` columns wide."""
        end = width - (2 if self.use_weather else 0)
        return slice(end - len(LAG_COLUMNS), end)

    def _fit_on(
        self, history: pd.Series, weather: Weather | None, raw: np.ndarray | None = None
    ) -> WeightedRidge | HistGradientBoostingRegressor:
        """Fit on `history`; `raw` is its design without lag imputation if already made (the
        rows of a longer history's design: every feature looks back only)."""
        index = pd.DatetimeIndex(history.index)
        self._lag_means = None
        if raw is None:
            raw = self._design(history, index, weather)
        y = history.to_numpy(dtype=float) / self._scale
        lag_cols = self._lag_cols(raw.shape[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN lag column: mean of y below
            means = np.nanmean(raw[:, lag_cols], axis=0)
        self._lag_means = np.where(np.isfinite(means), means, np.nanmean(y))
        complete = np.isfinite(raw[:, lag_cols]).all(axis=1) & np.isfinite(y)
        if complete.sum() >= MIN_COMPLETE_ROWS:
            # rows whose lags reach before the history would teach the model to distrust lags
            design = raw
            keep = complete & np.isfinite(raw).all(axis=1)
        else:
            design = raw.copy()
            block = design[:, lag_cols]
            design[:, lag_cols] = np.where(np.isnan(block), self._lag_means[None, :], block)
            keep = np.isfinite(y) & np.isfinite(design).all(axis=1)
        if keep.sum() < 96:
            raise InputError("history", "too few complete intervals to fit the learned model", int(keep.sum()))
        model = self._new_model()
        age_days = (index[-1] - index[keep]) / pd.Timedelta(days=1)
        model.fit(design[keep], y[keep], sample_weight=0.5 ** (np.asarray(age_days) / HALF_LIFE_DAYS))
        return model

    def _predict_with(
        self,
        model: WeightedRidge | HistGradientBoostingRegressor,
        history: pd.Series,
        index: pd.DatetimeIndex,
        w: Weather | None,
    ) -> pd.Series:
        design = self._design(history, index, w)
        out = np.full(len(index), np.nan)
        ok = np.isfinite(design).all(axis=1)
        if ok.any():
            out[ok] = model.predict(design[ok]) * self._scale
        return pd.Series(out, index=index, name="power_kw")

    def fit(self, history: pd.Series, weather: Weather | None = None) -> LearnedLoad:
        """Fit on `history` (kW on the UTC grid, NaN = missing); the band comes from refitting
        without the last 14 (or 7) days and forecasting them."""
        # a few thousand rows x ~90 columns: BLAS threads cost more than they bring (3x slower
        # on a busy 2-core machine), so one thread
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(history, weather)

    def _fit(self, history: pd.Series, weather: Weather | None) -> LearnedLoad:
        days = _days_with_values(history)
        if days < MIN_LEARNED_DAYS:
            raise InputError("history", f"the learned model needs {MIN_LEARNED_DAYS} days", f"{days:.1f} days")
        self.history = history
        self.notes = []
        hist_index = pd.DatetimeIndex(history.index)
        self.use_weather = weather is not None and weather.covers(hist_index)
        if weather is not None and not self.use_weather:
            self.notes.append("temperature does not cover the history: calendar and lags only")
        mean = float(np.nanmean(history.to_numpy(dtype=float)))
        self._scale = abs(mean) if mean and np.isfinite(mean) else 1.0
        cal_days = CALIBRATION_DAYS if days >= MIN_LEARNED_DAYS + CALIBRATION_DAYS + 7 else SHORT_CALIBRATION_DAYS
        cut = hist_index[-1] - pd.Timedelta(days=cal_days)
        early, late = history[hist_index <= cut], history[hist_index > cut]
        residuals = pd.Series(dtype=float)
        # one design of the whole history serves both fits and the held-out forecast: features
        # only look back, so its rows are those of the early history's design as well
        self._lag_means = None
        raw = self._design(history, hist_index, weather)
        in_early = np.asarray(hist_index <= cut)
        if _days_with_values(early) >= 7:
            model = self._fit_on(early, weather, raw[in_early])
            predicted = self._predict_rows(model, raw[~in_early], pd.DatetimeIndex(late.index))
            self.holdout_predicted = predicted
            residuals = late - predicted
            naive = (
                late - history.reindex(wall_clock_lag(pd.DatetimeIndex(late.index), SEASON_DAYS, self.tz)).to_numpy()
            )
            both = residuals.notna() & naive.notna()
            if both.any():
                self.holdout_mae = float(residuals[both].abs().mean())
                self.holdout_naive_mae = float(naive[both].abs().mean())
        self._model = self._fit_on(history, weather, raw)
        if residuals.notna().sum() < MIN_RATIO_POINTS:
            # too little held-out data (gaps): in-sample residuals, which make the band too narrow
            residuals = history - self._predict_with(self._model, history, hist_index, weather)
            self.notes.append("band from in-sample residuals (too few held-out days): likely too narrow")
        # the median is the model's own forecast: the held-out days only set the spread (their
        # median residual is that fortnight's bias, e.g. Christmas, not the next days')
        self.band = ResidualQuantiles.fit(residuals, self.quantiles, self.tz).centred()
        return self

    def _predict_rows(
        self, model: WeightedRidge | HistGradientBoostingRegressor, raw: np.ndarray, index: pd.DatetimeIndex
    ) -> pd.Series:
        """Forecast the held-out days from their rows of the full history's design (missing lags
        imputed with the early fit's means). Every lag of a target on local day d lies on day
        d - gap or earlier, so forecasting them all from the full history gives the same features
        as daily origins would: true out-of-sample errors at horizons up to `horizon_h`."""
        design = raw.copy()
        if self._lag_means is not None:
            cols = self._lag_cols(raw.shape[1])
            block = design[:, cols]
            design[:, cols] = np.where(np.isnan(block), self._lag_means[None, :], block)
        out = np.full(len(index), np.nan)
        ok = np.isfinite(design).all(axis=1)
        if ok.any():
            out[ok] = model.predict(design[ok]) * self._scale
        return pd.Series(out, index=index, name="power_kw")

    def predict(self, index: pd.DatetimeIndex, weather: Weather | None = None) -> Forecast:
        """Quantile forecast (kW) for `index`, which must lie within `horizon_h` after the history."""
        _check_target(index, self.history, self.horizon_h)
        assert self._model is not None and self.band is not None
        notes = list(self.notes)
        use = self.use_weather and weather is not None and weather.covers(index)
        if self.use_weather and not use:
            raise InputError("weather", "the model was fitted with temperature; give a forecast covering the horizon")
        point = self._predict_with(self._model, self.history, index, weather)
        return Forecast(self.band.apply(point), self.name, notes=notes)


def forecast_load(
    history: pd.Series,
    index: pd.DatetimeIndex,
    weather: Weather | None = None,
    profile: str = "H25",
    annual_kwh: float | None = None,
    kind: LearnedKind = "ridge",
    horizon_h: float = MAX_HORIZON_H,
    tz: str = DEFAULT_TZ,
) -> Forecast:
    """The load forecast the planner uses: learned model, or the standard-profile cold start when
    the history has less than :data:`MIN_LEARNED_DAYS` days of values (``notes`` says so).

    Parameters
    ----------
    history : measured mean power (kW) on the UTC quarter-hour grid, NaN = missing.
    index : UTC interval starts to forecast, after the history and within `horizon_h`.
    weather : temperature (and GHI) covering history and horizon, optional.
    profile, annual_kwh : BDEW profile and annual energy (kWh/a) for the cold start.
    """
    days = _days_with_values(history)
    if days < MIN_LEARNED_DAYS:
        model = StandardProfile(profile, annual_kwh, tz).fit(history)
        forecast = model.predict(index)
        forecast.notes.insert(0, f"cold start: {days:.1f} days of history (< {MIN_LEARNED_DAYS}), standard profile")
        return forecast
    learned = LearnedLoad(kind, horizon_h, tz).fit(history, weather)
    forecast = learned.predict(index, weather if learned.use_weather else None)
    if learned.holdout_naive_mae < learned.holdout_mae:
        # the evidence of the held-out days says seasonal naive is the better model for this series
        naive = SeasonalNaive(tz).fit(history).predict(index)
        if not naive.quantiles.isna().any().any():
            naive.notes.append(
                f"seasonal naive chosen: held-out MAE {learned.holdout_naive_mae:.4g} kW "
                f"< {learned.name} {learned.holdout_mae:.4g} kW"
            )
            return naive
    return forecast
