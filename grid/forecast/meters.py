"""Load forecasts of many meters: per-series model choice by rolling backtest, ensemble, honest bands.

For each series :class:`MeterForecaster` scores the candidates on the last
:data:`CALIBRATION_DAYS` days before the origin, each forecast out of sample (made from values at
least the horizon older than its target, by a model that did not train on those days):

``seasonal_naive``   the same local quarter-hour a week earlier;
``recent_profile``   weighted median of recent weeks (:mod:`grid.forecast.recent`);
``learned_ridge``    the per-series ridge model (:class:`grid.forecast.load.LearnedLoad`), its own
                     held-out fortnight;
``global_lgbm``      the LightGBM model across meters (:mod:`grid.forecast.gbm`), on the days after
                     its training data only;
``ensemble``         the mean of the learned candidates available (ridge, LightGBM, recent profile);
``blend``            :data:`BLEND_WEIGHT` x LightGBM + the rest x the recent profile.

The candidate with the lowest MAE on those days forecasts, where the global model and its blend
are preferred: another candidate's MAE counts :data:`PREFER_GLOBAL` times (a fortnight of one
meter is a noisy judge; the model across meters is the better bet unless clearly beaten). Where
a global model trained up to the origin is given (``forecast_model``), it makes the LightGBM part
of the forecast, while the older one (trained before the calibration days) scores it. The
chosen candidate's 10/90 % band is normalised
conformal on *its* residuals (:meth:`~grid.forecast.quantiles.HorizonConformal.fit_scaled`): per
lead hour a scale (mean absolute residual over all calibration days, the latest weighing most),
and conformal quantiles of the scaled residuals of the latest half of the days
(:data:`BAND_SHARE`), half from the lead hours within +-3 h and half from all leads
(:data:`~grid.forecast.quantiles.LEAD_QUANTILE_SHARE`), read :data:`BAND_MARGIN` further out; leads counted from
simulated daily origins at the real origin's local time of day. Every candidate's
features are at least the horizon old, so its error at a target does not depend on which origin
within the horizon made it: one pass over the calibration days gives the rolling-origin residuals
of all daily origins at once, and the second day of a 48 h horizon has the first day's errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from grid.errors import InputError
from grid.forecast.calendar import DEFAULT_TZ, quarter_hour_of_day, wall_clock_lag
from grid.forecast.gbm import GlobalLoad
from grid.forecast.load import MIN_LEARNED_DAYS, SEASON_DAYS, LearnedLoad
from grid.forecast.quantiles import QUANTILES, Forecast, HorizonConformal
from grid.forecast.recent import recent_profile
from grid.forecast.weather import Weather

CALIBRATION_DAYS = 14
#: Share of the calibration days (the latest ones) whose residuals set the band of the chosen model.
BAND_SHARE = 0.5
#: Residuals a candidate needs on the calibration days to be chosen (two days).
MIN_SCORED = 2 * 96
#: Lead-hour buckets of the band: one day (a 48 h horizon's second day repeats them).
BAND_PERIOD_H = 24.0
#: Widening of the band's levels (10/90 % read as 10 - m / 90 + m % of the scaled calibration
#: residuals, :meth:`~grid.forecast.quantiles.HorizonConformal.fit_scaled`): the next days are less
#: like the last fortnight than the fortnight is like itself (holidays, weather, Easter, and the
#: choice of the best candidate on the same days flatters its residuals). Tuned on the SimBench
#: "tune" split only (40 series x 14 daily origins, fortnights ending 0, 14 and 28 days before the
#: data's end): the least margin that holds every lead hour of the hardest fortnight (Easter, DST)
#: at >= 0.75; 0.04 gave 10-90 % coverage 0.800 / 0.807 / 0.847 and 0.800-0.832 in every lead hour
#: over the three (0.035: 0.735 at 05-06 h in the Easter fortnight).
BAND_MARGIN = 0.04
CANDIDATES = ("seasonal_naive", "recent_profile", "learned_ridge", "global_lgbm", "ensemble", "blend")
#: The global model's share in ``blend`` (the rest: the recent-weeks profile).
BLEND_WEIGHT = 0.6
#: Factor on the calibration MAE of candidates other than ``global_lgbm`` and ``blend`` when
#: either of those is scored.
PREFER_GLOBAL = 1.2
#: BLEND_WEIGHT and PREFER_GLOBAL (and the fresher forecast model) were chosen on the SimBench
#: "tune" split only: 40 series x 14 daily origins in each of the fortnights ending 0, 14 and 28
#: days before the data's end, MAE / seasonal naive pooled over the three: plain choice 0.732;
#: with the blend offered 0.733 (stale model) / 0.731 (fresh); the blend and the preference 0.730
#: (stale) / 0.725 (fresh, weights 0.6-0.7 and factors 1.2-1.3 alike within 0.001).
GLOBAL_CANDIDATES = ("global_lgbm", "blend")


@dataclass
class MeterForecaster:
    """Choose, forecast and band one series at a time (see the module docstring)."""

    horizon_h: float = 24.0
    global_model: GlobalLoad | None = None
    #: a global model trained up to the origin: forecasts the horizon (global_model scores)
    forecast_model: GlobalLoad | None = None
    use_ridge: bool = True
    calibration_days: int = CALIBRATION_DAYS
    tz: str = DEFAULT_TZ
    quantiles: tuple[float, ...] = QUANTILES
    band_margin: float = BAND_MARGIN
    #: which of :data:`CANDIDATES` may be chosen
    allowed: tuple[str, ...] = CANDIDATES
    #: last choice per series id: (model, calibration MAE per candidate)
    chosen: dict[str, tuple[str, dict[str, float]]] = field(default_factory=dict)

    def _candidates(
        self, history: pd.Series, index: pd.DatetimeIndex, series_id: str | None, weather: Weather | None
    ) -> tuple[dict[str, pd.Series], dict[str, pd.Series], list[str]]:
        """Points on the calibration days and on `index` per candidate, and notes."""
        notes: list[str] = []
        end = history.index[-1] + pd.Timedelta(minutes=15)
        cal = pd.DatetimeIndex(history.index[history.index >= end - pd.Timedelta(days=self.calibration_days)])
        past: dict[str, pd.Series] = {}
        ahead: dict[str, pd.Series] = {}
        for target, where in ((past, cal), (ahead, index)):
            week_ago = history.reindex(wall_clock_lag(where, SEASON_DAYS, self.tz)).to_numpy()
            target["seasonal_naive"] = pd.Series(week_ago, index=where)
        past["recent_profile"] = recent_profile(history, cal, self.horizon_h, self.tz)
        ahead["recent_profile"] = recent_profile(history, index, self.horizon_h, self.tz)
        if self.use_ridge and history.notna().sum() / 96 >= MIN_LEARNED_DAYS + self.calibration_days:
            ridge = LearnedLoad("ridge", max(self.horizon_h, (index[-1] - history.index[-1]) / pd.Timedelta(hours=1)))
            ridge.fit(history, weather)
            if len(ridge.holdout_predicted):
                past["learned_ridge"] = ridge.holdout_predicted.reindex(cal)
                ahead["learned_ridge"] = ridge.predict(index, weather if ridge.use_weather else None).median
        if self.global_model is not None:
            seen = self.global_model.out_of_sample_after(series_id)
            fresh = cal[cal > seen] if seen is not None else cal
            if len(fresh) >= MIN_SCORED:
                use = weather if self.global_model.use_weather else None
                past["global_lgbm"] = self.global_model.point(history, fresh, use).reindex(cal)
                newer = self.forecast_model
                if newer is not None and newer.trained_until is not None and newer.trained_until < index[0]:
                    use = weather if newer.use_weather else None
                    ahead["global_lgbm"] = newer.point(history, index, use)
                    notes.append("global model trained up to the origin forecasts; the older one scored it")
                else:
                    ahead["global_lgbm"] = self.global_model.point(history, index, use)
            else:
                notes.append("global model not scored: it trained on the calibration days")
        learned = [k for k in ("learned_ridge", "global_lgbm", "recent_profile") if k in past]
        if len(learned) >= 2:
            past["ensemble"] = pd.concat([past[k] for k in learned], axis=1).mean(axis=1, skipna=False)
            ahead["ensemble"] = pd.concat([ahead[k] for k in learned], axis=1).mean(axis=1, skipna=False)
        if "global_lgbm" in past:
            for target in (past, ahead):
                target["blend"] = BLEND_WEIGHT * target["global_lgbm"] + (1 - BLEND_WEIGHT) * target["recent_profile"]
        return past, ahead, notes

    def forecast(
        self,
        history: pd.Series,
        index: pd.DatetimeIndex,
        series_id: str | None = None,
        weather: Weather | None = None,
    ) -> Forecast:
        """Quantile forecast (kW) of one series for `index` (starting at the origin, after the
        history). Needs at least :data:`CALIBRATION_DAYS` + a week of history."""
        days = history.notna().sum() / 96
        if days < self.calibration_days + SEASON_DAYS:
            raise InputError(
                "history", f"needs {self.calibration_days + SEASON_DAYS} days to choose a model", f"{days:.1f} days"
            )
        origin = index[0]
        past, ahead, notes = self._candidates(history, index, series_id, weather)
        cal = pd.DatetimeIndex(past["recent_profile"].index)
        actual = history.reindex(cal)
        # the band comes from the latest days only: the next day resembles last week more than
        # the week before (tune split, last fortnight: coverage 0.747 from all 14 days, 0.767
        # from the latest 7; choosing on the earlier 7 and banding on the later 7 lost MAE)
        banding = np.asarray(cal >= cal[-1] - (cal[-1] - cal[0]) * BAND_SHARE)
        scores: dict[str, float] = {}
        for name, values in past.items():
            if name not in self.allowed:
                continue
            err = (actual - values).abs()
            if err.notna().sum() >= MIN_SCORED and not ahead[name].isna().any():
                scores[name] = float(err.mean())
        if not scores:
            raise InputError("history", "no candidate model could forecast the calibration days and the horizon")
        judged = dict(scores)
        if any(k in scores for k in GLOBAL_CANDIDATES):
            judged = {k: v if k in GLOBAL_CANDIDATES else v * PREFER_GLOBAL for k, v in scores.items()}
        best = min(judged, key=lambda k: judged[k])
        if series_id is not None:
            self.chosen[series_id] = (best, scores)
        residuals = (actual - past[best]).to_numpy(dtype=float)
        # leads from simulated daily origins at the real origin's local wall-clock time of day
        # (across a DST change the same UTC lead is another local hour: the morning ramp)
        qh_origin = quarter_hour_of_day(pd.DatetimeIndex([origin]), self.tz)[0]
        lead = ((quarter_hour_of_day(cal, self.tz) - qh_origin) % 96 / 4.0) % BAND_PERIOD_H
        age = ((cal[-1] - cal) / pd.Timedelta(days=1)).to_numpy(dtype=float)
        band = HorizonConformal.fit_scaled(
            lead, residuals, banding, self.quantiles, BAND_PERIOD_H, self.band_margin, age_days=age
        )
        frame = band.apply(ahead[best], origin)
        notes.append(f"{best} chosen on {self.calibration_days} days: MAE {scores[best]:.4g} kW")
        return Forecast(frame, best, notes=notes)
