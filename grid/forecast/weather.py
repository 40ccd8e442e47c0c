"""Weather input of the forecasts: outdoor temperature (degC) and optionally global horizontal
irradiance (GHI, W/m2) on a UTC index, measured (for training) or forecast (for the horizon).

Two ways in:

* CSV ``timestamp,temp_degc[,ghi_w_per_m2]`` (ISO 8601 with offset, strictly increasing, 15-min or
  hourly): :func:`read_weather_csv`;
* Python: ``Weather(temp_degc=series, ghi_w_per_m2=series_or_None)`` with tz-aware indexes.

A value stamped t is the mean over [t, t + resolution). Hourly input is interpolated linearly to
quarter-hours (``Weather.on``); intervals outside the given span are NaN, never extrapolated:
the load model then falls back to calendar-only features and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from grid.errors import InputError
from grid.forecast.inputs import check_axis, parse_stamps

TEMP_RANGE_DEGC = (-50.0, 60.0)
GHI_RANGE_W_PER_M2 = (0.0, 1500.0)
ALLOWED_STEPS_MIN = (15, 60)


#: Share of clear-sky GHI that reaches the ground under full overcast in the linear cloud-cover
#: relation (Larson et al. 2016, the default of pvlib's former ``cloud_cover_to_ghi_linear``), %.
OVERCAST_OFFSET_PCT = 35.0


def cloud_cover_to_ghi(
    cloud_cover_pct: np.ndarray, clear_ghi: np.ndarray, offset_pct: float = OVERCAST_OFFSET_PCT
) -> np.ndarray:
    """GHI (W/m2) from total cloud cover (0-100 %) and clear-sky GHI (W/m2):
    ghi = (offset + (100 - offset) x (1 - cover / 100)) / 100 x clear-sky ghi (Larson et al. 2016,
    as pvlib.forecast did before it was removed): clear sky at 0 %, `offset` % of it at 100 %."""
    cover = np.clip(np.asarray(cloud_cover_pct, dtype=float), 0.0, 100.0)
    return (offset_pct + (100.0 - offset_pct) * (1.0 - cover / 100.0)) / 100.0 * np.asarray(clear_ghi, dtype=float)


@dataclass(frozen=True)
class Weather:
    """Outdoor temperature (degC), optional GHI (W/m2) and optional total cloud cover (%),
    UTC-indexed. PV uses GHI where given, else cloud cover converted to GHI
    (:func:`cloud_cover_to_ghi`), else clear sky."""

    temp_degc: pd.Series
    ghi_w_per_m2: pd.Series | None = None
    cloud_cover_pct: pd.Series | None = None

    def on(self, index: pd.DatetimeIndex) -> Weather:
        """All series on `index` (UTC quarter-hours); coarser input interpolated in time, NaN
        outside the given span."""
        return Weather(
            _on(self.temp_degc, index),
            None if self.ghi_w_per_m2 is None else _on(self.ghi_w_per_m2, index),
            None if self.cloud_cover_pct is None else _on(self.cloud_cover_pct, index),
        )

    def covers(self, index: pd.DatetimeIndex) -> bool:
        """True if the temperature has a value at every interval of `index`."""
        return bool(self.on(index).temp_degc.notna().all())


def _on(series: pd.Series, index: pd.DatetimeIndex) -> pd.Series:
    series = series.copy()
    series.index = pd.DatetimeIndex(series.index).tz_convert("UTC")
    if len(series) == 0:
        return pd.Series(np.nan, index=index, name=series.name)
    if series.index.is_unique:
        # every target is a stamp of the series with a value: nothing to interpolate (the learned
        # load model asks this several times per fit; the general path costs ~10x more)
        pos = series.index.get_indexer(index)
        if len(pos) and (pos >= 0).all():
            picked = series.to_numpy(dtype=float)[pos]
            if np.isfinite(picked).all():
                return pd.Series(picked, index=index, name=series.name)
    inside = (index >= series.index[0]) & (index <= series.index[-1])
    union = series.index.union(index)
    filled = series.reindex(union).interpolate(method="time", limit_area="inside")
    out = filled.reindex(index).where(inside)
    out.name = series.name
    return out


def read_weather_csv(path: str | Path) -> Weather:
    """Read ``timestamp,temp_degc[,ghi_w_per_m2]``; errors name the line and column."""
    path = Path(path)
    name = path.name
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(str(path), f"cannot read CSV ({exc})") from exc
    for column in ("timestamp", "temp_degc"):
        if column not in raw.columns:
            raise InputError(f"{name} line 1", f"has no '{column}' column", list(raw.columns))
    if raw.empty:
        raise InputError(name, "has no data rows")
    stamps = parse_stamps(raw["timestamp"], name)
    check_axis(stamps, name)
    temp = _numbers(raw, "temp_degc", name, TEMP_RANGE_DEGC, "degC")
    ghi = _numbers(raw, "ghi_w_per_m2", name, GHI_RANGE_W_PER_M2, "W/m2") if "ghi_w_per_m2" in raw else None
    return Weather(
        pd.Series(temp, index=stamps, name="temp_degc"),
        None if ghi is None else pd.Series(ghi, index=stamps, name="ghi_w_per_m2"),
    )


def _numbers(raw: pd.DataFrame, column: str, name: str, bounds: tuple[float, float], unit: str) -> np.ndarray:
    values = pd.to_numeric(raw[column].str.strip(), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        i = int(bad[0])
        raise InputError(f"{name} line {i + 2} column {column}", "not a finite number", raw[column].iloc[i])
    out = np.flatnonzero((values < bounds[0]) | (values > bounds[1]))
    if len(out):
        i = int(out[0])
        raise InputError(
            f"{name} line {i + 2} column {column}",
            f"outside {bounds[0]:g}..{bounds[1]:g} {unit} (wrong unit?)",
            float(values[i]),
        )
    return values
