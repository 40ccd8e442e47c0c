"""Prometheus metrics of planning and ingestion (registered once, in the default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PLAN_DURATION = Histogram(
    "quartiere_plan_duration_seconds",
    "Wall time of one planning run (inputs, model, solve, store), seconds.",
    ["site", "trigger"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
PLAN_STATUS = Counter("quartiere_plan_runs_total", "Planning runs by final status.", ["site", "trigger", "status"])
INGESTED = Counter("quartiere_ingested_records_total", "Ingested records by outcome.", ["site", "source", "outcome"])
