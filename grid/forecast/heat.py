"""Heat demand (kW thermal) per heat pump from outdoor temperature: a heating-degree model.

heat_kw(t) = dhw_kw + slope_kw_per_k x max(0, base_degc - T(t))

From a heat pump's annual heat (kWh/a; if not given, electric kW x :data:`FULL_LOAD_H`), split
into hot water (:data:`DHW_SHARE`, flat over the year) and space heat spread over the heating
degree days of a typical year (:data:`HEATING_DEGREE_DAYS_K_D`, base 15 degC, Darmstadt), or fitted
by least squares on measured heat with :meth:`HeatingDegreeModel.fit`. The band is the fitted
residual spread, or a presumed +-:data:`DEFAULT_RELATIVE_BAND` without measurements.

The planner turns heat into electricity itself with the site's COP(T) curve
(:class:`grid.domain.COPCurve`); :func:`cop` gives the same numbers for reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from grid.domain import COPCurve, HeatPump
from grid.errors import InputError
from grid.forecast.quantiles import QUANTILES, Forecast, ResidualQuantiles, quantile_frame

BASE_DEGC = 15.0
HEATING_DEGREE_DAYS_K_D = 2600.0
DHW_SHARE = 0.15
FULL_LOAD_H = 2200.0
HOURS_PER_YEAR = 8760.0
HOURS_PER_DAY = 24.0
#: Relative 10/90 % spread without measurements (presumption): 0.8 .. 1.2 x the median.
DEFAULT_RELATIVE_BAND = 0.2


@dataclass
class HeatingDegreeModel:
    """heat_kw = dhw_kw + slope_kw_per_k x max(0, base_degc - T)."""

    slope_kw_per_k: float
    dhw_kw: float
    base_degc: float = BASE_DEGC
    band: ResidualQuantiles | None = None
    source: str = "annual heat"

    @classmethod
    def from_annual(
        cls, annual_heat_kwh: float, hdd_k_d: float = HEATING_DEGREE_DAYS_K_D, dhw_share: float = DHW_SHARE
    ) -> HeatingDegreeModel:
        """From annual heat (kWh/a) and the heating degree days of a typical year (K d)."""
        if annual_heat_kwh <= 0:
            raise InputError("annual_heat_kwh", "must be > 0", annual_heat_kwh)
        return cls(
            slope_kw_per_k=(1 - dhw_share) * annual_heat_kwh / (hdd_k_d * HOURS_PER_DAY),
            dhw_kw=dhw_share * annual_heat_kwh / HOURS_PER_YEAR,
        )

    @classmethod
    def for_heat_pump(cls, hp: HeatPump) -> HeatingDegreeModel:
        annual = hp.annual_heat_kwh if hp.annual_heat_kwh is not None else hp.electric_kw * FULL_LOAD_H
        model = cls.from_annual(annual)
        model.source = "annual heat" if hp.annual_heat_kwh is not None else f"electric kW x {FULL_LOAD_H:g} h"
        return model

    @classmethod
    def fit(cls, heat_kw: pd.Series, temp_degc: pd.Series, base_degc: float = BASE_DEGC) -> HeatingDegreeModel:
        """Least squares on measured heat (kW thermal) and temperature (degC) on the same index."""
        both = pd.DataFrame({"h": heat_kw, "t": temp_degc.reindex(heat_kw.index)}).dropna()
        if len(both) < 96:
            raise InputError("heat_kw", "needs at least a day of measured heat with temperature", len(both))
        degrees = np.maximum(0.0, base_degc - both["t"].to_numpy())
        design = np.column_stack([np.ones(len(both)), degrees])
        (dhw, slope), *_ = np.linalg.lstsq(design, both["h"].to_numpy(), rcond=None)
        model = cls(float(max(slope, 0.0)), float(max(dhw, 0.0)), base_degc, source="fitted")
        model.band = ResidualQuantiles.fit(both["h"] - model.point(both["t"]), QUANTILES)
        return model

    def point(self, temp_degc: pd.Series) -> pd.Series:
        degrees = np.maximum(0.0, self.base_degc - temp_degc.to_numpy(dtype=float))
        return pd.Series(self.dhw_kw + self.slope_kw_per_k * degrees, index=temp_degc.index, name="heat_kw")

    def predict(self, temp_degc: pd.Series) -> Forecast:
        """Quantile forecast of heat demand (kW thermal, >= 0) for a temperature forecast."""
        if temp_degc.isna().any():
            raise InputError("temp_degc", "the temperature forecast has gaps", int(temp_degc.isna().sum()))
        point = self.point(temp_degc)
        index = pd.DatetimeIndex(temp_degc.index)
        notes = [f"heating-degree model from {self.source}"]
        if self.band is not None:
            frame = self.band.apply(point)
        else:
            factors = np.interp(QUANTILES, (0.1, 0.5, 0.9), (1 - DEFAULT_RELATIVE_BAND, 1.0, 1 + DEFAULT_RELATIVE_BAND))
            frame = quantile_frame(point.to_numpy()[:, None] * factors[None, :], index, QUANTILES)
            notes.append("heat band: presumed +-20 % (no measured heat)")
        return Forecast(frame.clip(lower=0.0), "heating_degree", "kW", notes)


def cop(curve: COPCurve, temp_degc: pd.Series) -> pd.Series:
    """COP(T) = intercept + slope x T clipped to [min_cop, max_cop], as the LP computes it."""
    values = np.clip(
        curve.intercept + curve.slope_per_degc * temp_degc.to_numpy(dtype=float), curve.min_cop, curve.max_cop
    )
    return pd.Series(values, index=temp_degc.index, name="cop")


def forecast_heat(heat_pumps: list[HeatPump], temp_degc: pd.Series) -> dict[str, Forecast]:
    """Heat demand forecasts (kW thermal) per heat pump id."""
    return {hp.id: HeatingDegreeModel.for_heat_pump(hp).predict(temp_degc) for hp in heat_pumps}
