"""Response models of the scenario routes (the request is :class:`grid.scenarios.spec.ScenarioBody`).

KPI names carry their units (``cost_eur``, ``peak_import_kw.T2``, ``hours_above_limit_h``); times
are ISO 8601 in UTC with offset.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class EvaluationOut(BaseModel):
    name: str = Field(description="``baseline`` or the scenario's name.")
    status: str = Field(description="optimal, optimal_with_violations, invalid, failed or error.")
    message: str = Field(description="Why the evaluation is not optimal (empty otherwise).")
    params: dict[str, Any]
    kpis: dict[str, float | None] = Field(description="Aggregated over the windows (weighted); null = not finite.")
    windows: list[dict[str, Any]] = Field(description="Per evaluation window: start (UTC), weight and its KPIs.")
    seconds: float = Field(description="Wall time of the evaluation, seconds.")
    cpu_seconds: float = Field(description="CPU time of the evaluation, seconds.")


class ComparisonRow(BaseModel):
    scenario: str
    status: str
    kpi: str = Field(description="KPI name with its unit, e.g. cost_eur or peak_import_kw.T2.")
    baseline: float | None
    value: float | None
    delta: float | None = Field(description="value - baseline, in the KPI's unit.")
    delta_rel: float | None = Field(description="delta / |baseline|; null when the baseline is 0.")


class ScenarioResultOut(BaseModel):
    baseline: EvaluationOut
    scenario: EvaluationOut
    comparison: list[ComparisonRow] = Field(description="Every KPI against the baseline (empty if not solved).")


class ScenarioRunSummary(BaseModel):
    run_id: str
    site: str
    name: str
    status: str = Field(description="queued, running, succeeded or failed (no result, or the scenario did not solve).")
    scenario_status: str | None = Field(description="The scenario's evaluation status once it ran.")
    message: str
    submitted_at: str
    started_at: str | None
    finished_at: str | None
    run_url: str = Field(description="This run (poll it until status is succeeded or failed).")


class ScenarioRunOut(ScenarioRunSummary):
    scenario: dict[str, Any] = Field(description="The scenario as submitted.")
    result: ScenarioResultOut | None = Field(description="Baseline, scenario and comparison once finished.")
    exports: dict[str, str] = Field(
        description="URLs of results.csv/.parquet (one row per evaluation) and comparison.csv/.parquet, once finished."
    )


class ScenarioRunList(BaseModel):
    site: str
    runs: list[ScenarioRunSummary]
