"""Response models of the forecasts endpoints (part of the API contract, next to :mod:`api.schemas`).

Times are ISO 8601 in UTC with offset; a value stamped t covers [t, t + resolution_min). Power in kW,
positive = drawn from the grid; the unit of each forecast is named by its ``quantity``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ForecastRun(BaseModel):
    issued_at: str = Field(description="When the run was made: the forecast origin (UTC).")
    model: str = Field(description="The model's name (learned_ridge, standard_profile, pvlib_clearsky, ...).")
    intervals: int = Field(description="How many intervals of the answer come from this run.")


class ForecastInterval(BaseModel):
    start: str = Field(description="Interval start (UTC); the values cover [start, start + resolution_min).")
    run: int | None = Field(description="Index into `runs` of the run the values come from; null = no run covers it.")
    values: list[float | None] = Field(description="One value per level of `quantiles`, in `unit`; null = not stored.")


class ForecastOut(BaseModel):
    site: str
    target: str = Field(description="site, connection:<id>, pv:<array id>, heat:<heat pump id>, weather, ...")
    quantity: str = Field(description="power_kw, kw_per_kwp, heat_kw or temp_degc.")
    unit: str = Field(description="Unit of the values (kW, kW/kWp, kW thermal, degC).")
    resolution_min: int
    start: str = Field(description="First interval start (UTC).")
    end: str = Field(description="End of the last interval (UTC, exclusive).")
    as_of: str | None = Field(description="Only runs issued at or before this instant (UTC); null = every run.")
    quantiles: list[float] = Field(description="Quantile levels (0..1) of each interval's `values`, ascending.")
    runs: list[ForecastRun] = Field(description="The runs the answer draws on, oldest first.")
    intervals: list[ForecastInterval]


class ForecastTarget(BaseModel):
    target: str
    quantity: str
    unit: str
    start: str = Field(description="First interval start any stored run covers (UTC).")
    end: str = Field(description="End of the last interval any stored run covers (UTC, exclusive).")
    first_issued_at: str
    last_issued_at: str
    runs: int = Field(description="Stored runs (distinct issued_at and model).")
    models: list[str]
    quantiles: list[float] = Field(description="Quantile levels stored (0..1).")


class ForecastTargets(BaseModel):
    site: str
    resolution_min: int
    targets: list[ForecastTarget]
