"""Request and response models: the API contract (the OpenAPI document is generated from here).

Conventions: power in kW, positive = drawn from the grid (consumption, charging), negative = fed
in (generation, discharging); energy in kWh; prices in EUR/kWh. Times are ISO 8601 in UTC with
offset; a value stamped t covers the interval [t, t + resolution_min).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PlanSummary(BaseModel):
    plan_id: str
    site: str
    computed_at: str = Field(description="When the plan was computed (UTC, ISO 8601).")
    start: str = Field(description="First interval start (UTC).")
    end: str = Field(description="End of the last interval (UTC, exclusive).")
    status: str = Field(description="optimal, optimal_with_violations or failed.")
    stale: bool = Field(description="True when a later run failed or the plan has run out.")
    stale_reason: str
    objective_eur: float | None = Field(description="LP objective, EUR.")
    message: str = Field(description="Why a failed run failed.")
    trigger: str = Field(description="scheduled or manual.")
    duration_s: float | None = Field(description="Wall time of the run, seconds.")


class PlanList(BaseModel):
    site: str
    plans: list[PlanSummary]


class PlanOut(PlanSummary):
    plan: dict[str, Any] = Field(description="The full plan (README 'Plan format'): set-points, duals, KPIs.")


class Violations(BaseModel):
    plan_id: str
    violations: list[dict[str, Any]] = Field(description="{kind, asset, start, amount, unit, step}.")
    dimming: list[dict[str, Any]] = Field(description="Every §14a dimming: {device, group, start, step, dimmed_kw}.")


class MarginalPrices(BaseModel):
    plan_id: str
    unit: str = "EUR/kWh"
    intervals: list[str] = Field(description="Interval starts (UTC); each value covers [t, t + resolution).")
    connections: dict[str, list[float | None]] = Field(
        description="Marginal value of energy (dual of the power balance) per connection and interval, EUR/kWh."
    )


class AssetSetpoints(BaseModel):
    type: str
    connection: str | None
    power_kw: list[float | None] = Field(description="kW per interval; > 0 drawn from the grid, < 0 fed in.")


class Setpoints(BaseModel):
    site: str
    plan_id: str
    status: str
    computed_at: str
    valid_until: str = Field(description="End of the last interval given (UTC).")
    stale: bool
    stale_reason: str
    resolution_min: int
    intervals: list[str] = Field(description="Interval starts (UTC), the current one first.")
    assets: dict[str, AssetSetpoints]


class JobOut(BaseModel):
    job_id: str
    site: str
    status: str = Field(description="queued, running, succeeded, failed or skipped (a run was already going).")
    submitted_at: str
    finished_at: str | None
    plan_id: str | None
    plan_status: str | None
    plan_url: str | None
    message: str
    job_url: str


class Kpis(BaseModel):
    site: str
    plan_id: str
    computed_at: str
    stale: bool
    kpis: dict[str, float | None] = Field(description="cost_eur, self_consumption, peak_import_kw, co2_kg, ...")


class ReadingsPayload(BaseModel):
    """Bulk readings. Each item: ``meter_id`` + ``obis`` (or ``sensor``), ``ts`` (ISO 8601 with
    offset; the interval start, or the instant of a cumulative register), ``value``, ``unit``
    (kWh, kW, ...) and optionally ``quality``."""

    readings: list[Any] = Field(
        description="Reading objects; each one is accepted or rejected on its own.",
        examples=[
            [
                {
                    "meter_id": "MTR-H001",
                    "obis": "1-0:1.8.0",
                    "ts": "2026-01-15T00:15:00+01:00",
                    "value": 1234.5,
                    "unit": "kWh",
                }
            ]
        ],
    )


class RejectedOut(BaseModel):
    line: int | None
    where: str = Field(description="Where the record was: payload path (readings[3]) or file line.")
    field: str
    value: str | None
    reason: str
    raw: str


class IngestReportOut(BaseModel):
    batch_id: int | None
    rows_read: int
    accepted: int
    duplicates: int
    revised: int
    rejected: list[RejectedOut]
    flags: list[dict[str, Any]]


class Readings(BaseModel):
    site: str
    sensor: str | None
    kind: str | None
    quantity: str
    intervals: list[str]
    values: list[float | None] = Field(description="kW (power) or kWh per interval (energy); null = no data.")


class Health(BaseModel):
    status: str = Field(description="ok or degraded.")
    database: bool
    scheduler_running: bool
    last_successful_run: str | None
    last_successful_run_age_s: float | None
    mqtt_connected: bool | None = Field(description="null when MQTT publishing is off.")
    mqtt_stalled: bool | None = Field(
        default=None,
        description="Set-point messages wait longer than GRID_MQTT_PUBLISH_DEADLINE_S for the broker; null when off.",
    )
    mqtt_unacked: int | None = Field(default=None, description="Set-point messages not yet acknowledged by the broker.")
    problems: list[str] = Field(default_factory=list, description="Why the status is degraded (empty when ok).")
