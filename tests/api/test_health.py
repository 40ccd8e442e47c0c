"""/healthz and /metrics."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.kit import Clock, service


def test_healthz_reports_database_scheduler_and_age(app: FastAPI, client: TestClient, clock: Clock) -> None:
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["database"] is True
    assert h["last_successful_run"] is None and h["mqtt_connected"] is None and h["scheduler_running"] is False
    service(app).run("demo", clock(), trigger="scheduled")
    h = client.get("/healthz").json()
    assert h["last_successful_run"] is not None and h["last_successful_run_age_s"] is not None


def test_metrics(app: FastAPI, client: TestClient, key: dict[str, str], clock: Clock) -> None:
    service(app).run("demo", clock())
    client.get("/api/v1/sites/demo/setpoints", headers={"X-API-Key": key["operator"]})
    client.post("/api/v1/sites/demo/readings", json={"readings": []}, headers={"X-API-Key": key["ingest"]})
    text = client.get("/metrics").text
    for name in (
        "quartiere_plan_duration_seconds_bucket",
        "quartiere_plan_runs_total",
        "quartiere_http_request_duration_seconds_bucket",
        'route="/api/v1/sites/{site}/setpoints"',
    ):
        assert name in text
    assert key["operator"] not in text


def test_openapi_documents_conventions(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    text = doc["info"]["description"]
    assert "[t, t + resolution_min)" in text and "kW" in text and "UTC" in text
    assert all(p.startswith(("/api/v1/", "/healthz", "/metrics")) for p in doc["paths"])
    assert client.get("/docs").status_code == 200
