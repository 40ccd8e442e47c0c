"""Forecasts of household load, PV and heat demand with 10/50/90 % quantiles (15 min, <= 48 h).

Modules (one model family each): :mod:`~grid.forecast.load` (seasonal naive, BDEW standard
profile cold start, learned ridge model), :mod:`~grid.forecast.pv` (pvlib from array geometry,
calibrated on measured PV), :mod:`~grid.forecast.heat` (heating-degree model per heat pump),
:mod:`~grid.forecast.quantiles` (the :class:`Forecast` result, residual quantiles, no crossing),
:mod:`~grid.forecast.backtest` (rolling origin, MAE/RMSE/MASE/pinball/coverage, CSV + PNG),
:mod:`~grid.forecast.site` (site mode: store -> forecasts -> ``forecasts`` table -> the planner's
``SiteInputs``), :mod:`~grid.forecast.cli` (``grid forecast backtest|run``).

Conventions: UTC quarter-hours inside; a value at t covers [t, t + 15 min); kW (positive =
drawn from the grid), kW/kWp, kW thermal, degC, W/m2. Local time (Europe/Berlin) only decides
quarter-hour of day and day type; DST days have 92/100 quarter-hours and are never assumed 96.

Weather input (temperature for load and heat, irradiance for PV):

* CSV ``timestamp,temp_degc[,ghi_w_per_m2]``, ISO 8601 with offset, 15-min or hourly:
  ``grid.forecast.weather.read_weather_csv(path)`` or ``--temperature`` / ``--weather``;
* Python: ``Weather(temp_degc=series, ghi_w_per_m2=series_or_None)`` with tz-aware indexes,
  passed to ``forecast_load(..., weather=)``, ``PVForecaster.forecast(..., weather)``,
  ``run_site(..., weather=)`` and ``forecast_inputs(..., weather=)``.

The learned load model uses temperature only when it covers both the history and the horizon
(else calendar and lags, noted); heat demand needs a temperature forecast (else the last measured
day is repeated, noted); PV uses GHI when given, else clear sky.
"""

from grid.forecast.quantiles import QUANTILES, Forecast
from grid.forecast.weather import Weather

__all__ = ["QUANTILES", "Forecast", "Weather"]
