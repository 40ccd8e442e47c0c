"""Response model of ``GET /sites/{site}/performance``: realised against planned (see
:mod:`grid.schedule.performance`). kW are means over an interval (> 0 drawn from the grid), kWh,
EUR, shares 0..1. A figure over no measured interval is null, never 0; every entity says how many of
its intervals were measured and how many are missing."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ConnectionPerformance(BaseModel):
    intervals: int = Field(description="Intervals of the period.")
    planned_intervals: int = Field(description="Intervals with a plan in force.")
    measured_intervals: int
    missing_intervals: int = Field(description="Intervals without a measured import (not evaluated ones too).")
    intervals_above_limit: int = Field(description="Measured import above the limit in force.")
    kwh_above_limit: float | None = Field(description="Energy imported above the limit, kWh.")
    import_kwh: float | None = Field(description="Measured import, kWh (null: nothing measured).")
    planned_import_kwh: float | None = Field(description="Import of the plans in force, kWh.")
    peak_import_kw: float | None
    cost_eur: float | None = Field(description="Measured import x the published price of each interval, EUR.")
    priced_intervals: int
    unpriced_intervals: int = Field(description="Measured intervals without a published price (not in cost_eur).")


class AssetPerformance(BaseModel):
    type: str = Field(description="battery, heat_pump, ev_charger, pv.")
    rating_kw: float | None
    tolerance_kw: float | None = Field(description="A set-point is followed within max(0.1 kW, 5 % of the rating).")
    intervals: int
    setpoint_intervals: int = Field(description="Intervals with a set-point of the plan in force.")
    measured_intervals: int = Field(description="Intervals with a set-point and measured power.")
    missing_intervals: int = Field(description="Intervals with a set-point but no telemetry.")
    mean_abs_deviation_kw: float | None = Field(description="Mean |measured - set-point|, kW.")
    followed_intervals: int
    followed_share: float | None = Field(description="followed_intervals / measured_intervals.")
    measured_kwh: float | None
    setpoint_kwh: float | None
    dimmed_intervals: int = Field(description="Intervals with a §14a dimming in the plan in force.")
    dimmed_kwh: float | None


class SessionPerformance(BaseModel):
    charger: str
    arrival: str
    departure: str = Field(description="Departure, or the plug-out if earlier.")
    requested_kwh: float | None
    delivered_kwh: float | None = Field(description="Charger telemetry over the session's intervals in the period.")
    planned_kwh: float | None
    intervals: int
    measured_intervals: int
    missing_intervals: int
    within_period: bool = Field(description="False: part of the session lies outside the period.")


class Tolerance(BaseModel):
    min_kw: float
    share_of_rating: float


class DimmingPerformance(BaseModel):
    intervals: int = Field(description="Device-intervals with a §14a dimming in the plan in force.")
    dimmed_kwh: float | None
    devices: dict[str, int]


class PerformanceTotals(BaseModel):
    intervals_above_limit: int
    kwh_above_limit: float | None
    import_kwh: float | None
    cost_eur: float | None


class Performance(BaseModel):
    site: str
    start: str
    end: str
    resolution_min: int
    intervals: int
    evaluated_intervals: int
    not_evaluated_intervals: int = Field(description="Intervals the evaluation has not stored yet (count as missing).")
    planned_intervals: int
    tolerance: Tolerance
    connections: dict[str, ConnectionPerformance]
    assets: dict[str, AssetPerformance]
    ev_sessions: dict[str, SessionPerformance]
    dimming: DimmingPerformance
    totals: PerformanceTotals
