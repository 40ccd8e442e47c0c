"""``GET /api/v1/fleet/status`` and the ``quartiere_fleet_*`` metrics: late and failing sites at a
glance (admin only)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from grid.errors import PlanError
from grid.schedule import metrics
from models.warm import WarmPlanner
from tests.api.kit import Clock, make_app, service


@pytest.fixture
def fleet_client(store: Engine, sites: dict[str, Path], clock: Clock) -> Any:
    """The app with a planner that keeps models (its own: none from other tests) and crashes for
    site ``north``."""
    warm = WarmPlanner()

    def crashes_for_north(*args: Any) -> Any:
        if args[0].id == "north":
            raise PlanError("north: the solver library is broken")
        return warm(*args)

    with TestClient(make_app(store, sites, clock, planner=crashes_for_north)) as client:
        yield client


def _status(client: TestClient, key: str) -> Any:
    response = client.get("/api/v1/fleet/status", headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    return response.json()


def test_late_and_failing_sites_at_a_glance(fleet_client: TestClient, key: dict[str, str], clock: Clock) -> None:
    before = _status(fleet_client, key["admin_all"])
    assert before["late"] == ["demo", "north"] and before["failing"] == []  # nothing planned yet
    svc = service(fleet_client.app)  # type: ignore[arg-type]
    assert svc.run("demo", clock()).status.startswith("optimal")
    assert svc.run("north", clock()).status == "failed"
    body = _status(fleet_client, key["admin_all"])
    assert body["executor"] == "service" and body["replan_every_min"] == 15
    assert body["late"] == ["north"] and body["failing"] == ["north"]
    north, demo = body["sites"]  # late and failing sites first
    assert north["site"] == "north" and north["failures_in_a_row"] == 1 and north["mode"] == "unknown"
    assert "planner error: PlanError: north: the solver library is broken" in north["message"]
    assert demo["site"] == "demo" and demo["status"].startswith("optimal") and demo["mode"] == "cold"
    assert demo["worker"] == "service" and demo["period_start"] == "2026-01-14T01:00:00Z"
    assert demo["last_good_period"] == demo["period_start"] and demo["duration_s"] > 0

    clock.advance(15)  # 01:22: the 01:00 plan is the one before the current period, still on time
    assert _status(fleet_client, key["admin_all"])["late"] == ["north"]
    clock.advance(15)  # 01:37: no plan for 01:15 -> late
    assert _status(fleet_client, key["admin_all"])["late"] == ["demo", "north"]
    assert svc.run("demo", clock()).status.startswith("optimal")
    again = _status(fleet_client, key["admin_all"])
    assert again["late"] == ["north"] and again["sites"][1]["mode"] == "warm"  # the kept model


def test_only_admins_see_the_fleet_and_only_their_sites(fleet_client: TestClient, key: dict[str, str]) -> None:
    for role in ("operator", "manager", "planner", "ingest"):
        answer = fleet_client.get("/api/v1/fleet/status", headers={"X-API-Key": key[role]})
        assert answer.status_code == 403, role
    assert fleet_client.get("/api/v1/fleet/status").status_code == 401
    assert [s["site"] for s in _status(fleet_client, key["admin"])["sites"]] == ["demo"]  # scoped to demo


def test_metrics_per_site(fleet_client: TestClient, key: dict[str, str], clock: Clock) -> None:
    svc = service(fleet_client.app)  # type: ignore[arg-type]
    svc.run("demo", clock())
    svc.run("north", clock())
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(fleet_client.get("/metrics").text)
        for s in family.samples
        if s.name.startswith("quartiere_fleet_")
    }
    period = dt.datetime(2026, 1, 14, 1, 0, tzinfo=dt.UTC).timestamp()  # T0 01:07 -> the 01:00 period
    demo, north = (("site", "demo"),), (("site", "north"),)
    assert samples["quartiere_fleet_last_good_period_timestamp_seconds", demo] == period
    assert samples["quartiere_fleet_last_run_timestamp_seconds", demo] == clock().timestamp()
    assert samples["quartiere_fleet_last_run_warm", demo] == 0.0
    assert samples["quartiere_fleet_failures_in_a_row", demo] == 0.0
    assert samples["quartiere_fleet_failures_in_a_row", north] == 1.0
    assert samples["quartiere_fleet_last_run_duration_seconds", demo] > 0
    info = (("mode", "unknown"), ("site", "north"), ("status", "failed"), ("worker", "service"))
    assert samples["quartiere_fleet_site_info", info] == 1.0


def test_the_status_survives_a_restart(
    fleet_client: TestClient, store: Engine, sites: dict[str, Path], key: dict[str, str], clock: Clock
) -> None:
    svc = service(fleet_client.app)  # type: ignore[arg-type]
    assert svc.run("demo", clock()).status.startswith("optimal")
    assert svc.run("north", clock()).status == "failed"
    before = _status(fleet_client, key["admin_all"])
    with TestClient(make_app(store, sites, clock)) as restarted:  # a new service on the same store
        after = _status(restarted, key["admin_all"])
    assert after["late"] == ["north"] and after["failing"] == ["north"]
    assert after["sites"] == before["sites"]  # when, which period, how long, warm or cold, worker
    demo = after["sites"][1]
    assert demo["mode"] == "cold" and demo["worker"] == "service" and demo["duration_s"] > 0


def test_metrics_after_a_restart_show_the_stored_runs(
    fleet_client: TestClient, store: Engine, sites: dict[str, Path], clock: Clock
) -> None:
    svc = service(fleet_client.app)  # type: ignore[arg-type]
    assert svc.run("demo", clock()).status.startswith("optimal")
    metrics.FLEET_LAST_RUN.clear()  # a new process: no gauge set yet
    with TestClient(make_app(store, sites, clock)) as restarted:  # no run, no status request
        text = restarted.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples["quartiere_fleet_last_run_timestamp_seconds", (("site", "demo"),)] == clock().timestamp()
