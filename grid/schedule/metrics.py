"""Prometheus metrics of planning and ingestion (registered once, in the default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

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

# The last planning run of each site (grid.fleet.status): one look says which sites are late
# (last planned period far behind the clock) or failing (failures in a row > 0).
FLEET_LAST_RUN = Gauge(
    "quartiere_fleet_last_run_timestamp_seconds", "When the last run of the site started (service clock).", ["site"]
)
FLEET_LAST_PERIOD = Gauge(
    "quartiere_fleet_last_good_period_timestamp_seconds",
    "Start of the latest period the site has a good plan for (service clock); late when it trails the clock.",
    ["site"],
)
FLEET_DURATION = Gauge("quartiere_fleet_last_run_duration_seconds", "Wall time of the last run, seconds.", ["site"])
FLEET_QUEUE_WAIT = Gauge(
    "quartiere_fleet_last_queue_wait_seconds", "How long the last run waited for a worker, seconds.", ["site"]
)
FLEET_WARM = Gauge("quartiere_fleet_last_run_warm", "1: the last run re-used the kept model, 0: built anew.", ["site"])
FLEET_FAILURES = Gauge("quartiere_fleet_failures_in_a_row", "Failed runs since the last good one.", ["site"])
FLEET_SITE = Info("quartiere_fleet_site", "The last run of the site: status, worker, warm or cold.", ["site"])
