"""Prometheus metrics of planning and ingestion (registered once, in the default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PLAN_DURATION = Histogram(
    "quartiere_plan_duration_seconds",
    "Wall time of one planning run (inputs, model, solve, store), seconds.",
    ["site", "trigger"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
PLAN_STATUS = Counter("quartiere_plan_runs_total", "Planning runs by final status.", ["site", "trigger", "status"])
INGESTED = Counter("quartiere_ingested_records_total", "Ingested records by outcome.", ["site", "source", "outcome"])

# Realised against planned over the last 24 h of finished intervals (grid.schedule.performance);
# `entity` is a connection, an asset or an EV session. NaN: nothing measured.
_PERF = ["site", "entity"]
PERF_ABOVE_LIMIT_INTERVALS = Gauge(
    "quartiere_performance_intervals_above_limit", "Intervals with measured import above the limit.", _PERF
)
PERF_ABOVE_LIMIT_KWH = Gauge("quartiere_performance_kwh_above_limit", "Energy imported above the limit, kWh.", _PERF)
PERF_IMPORT_KWH = Gauge("quartiere_performance_import_kwh", "Measured import of a connection, kWh.", _PERF)
PERF_COST_EUR = Gauge("quartiere_performance_cost_eur", "Realised energy cost of a connection, EUR.", _PERF)
PERF_MISSING_INTERVALS = Gauge(
    "quartiere_performance_missing_intervals", "Intervals without a measurement (not counted as 0).", _PERF
)
PERF_DEVIATION_KW = Gauge(
    "quartiere_performance_mean_abs_deviation_kw", "Mean |measured - set-point| of an asset, kW.", _PERF
)
PERF_FOLLOWED_SHARE = Gauge(
    "quartiere_performance_followed_share", "Share of measured intervals an asset followed its set-point.", _PERF
)
PERF_DIMMED_INTERVALS = Gauge(
    "quartiere_performance_dimmed_intervals", "Intervals with a §14a dimming in the plan in force.", _PERF
)
PERF_EV_DELIVERED_KWH = Gauge(
    "quartiere_performance_ev_delivered_kwh", "Energy delivered to an EV session, kWh.", _PERF
)
PERF_EV_REQUESTED_KWH = Gauge("quartiere_performance_ev_requested_kwh", "Energy an EV session requested, kWh.", _PERF)
