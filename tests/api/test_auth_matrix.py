"""Every role x every endpoint x own site / other site -> the expected status.

Keys are scoped to site ``demo``; ``north`` is a configured site outside their scope (403 for
everyone, whatever the role). Allowed calls answer their success status; a known key without the
right gets 403.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import FastAPI
from fastapi.testclient import TestClient

from grid.store.forecasts import store_forecast
from tests.api.kit import reading, service

CSV = "meter_id,timestamp,obis,value,unit\nMTR-H003,2026-01-14T00:00:00+00:00,1-0:1.8.0,5.0,kWh\n"

#: endpoint name -> (method, path template, success status, roles allowed besides admin)
ENDPOINTS: dict[str, tuple[str, str, int, set[str]]] = {
    "plans": ("GET", "/plans", 200, {"operator"}),
    "latest": ("GET", "/plans/latest", 200, {"operator"}),
    "plan": ("GET", "/plans/{plan_id}", 200, {"operator"}),
    "violations": ("GET", "/plans/{plan_id}/violations", 200, {"operator"}),
    "prices": ("GET", "/plans/{plan_id}/marginal-prices", 200, {"operator"}),
    "setpoints": ("GET", "/setpoints", 200, {"operator"}),
    "trigger": ("POST", "/plans/trigger", 202, {"operator"}),
    "job": ("GET", "/jobs/{job_id}", 200, {"operator"}),
    "kpis": ("GET", "/kpis", 200, {"manager"}),
    "forecasts": ("GET", "/forecasts", 200, {"manager"}),
    "forecast_targets": ("GET", "/forecasts/targets", 200, {"manager"}),
    "read": ("GET", "/readings", 200, {"manager"}),
    "write": ("POST", "/readings", 200, {"ingest"}),
    "csv": ("POST", "/readings/csv", 200, {"ingest"}),
    "scenario_run": ("POST", "/scenarios", 202, {"planner"}),
    "scenarios": ("GET", "/scenarios", 200, {"planner"}),
    "scenario": ("GET", "/scenarios/{scenario_id}", 200, {"planner"}),
    "scenario_csv": ("GET", "/scenarios/{scenario_id}/comparison.csv", 200, {"planner"}),
}
ROLES = ("operator", "manager", "planner", "ingest", "admin")
READ_PARAMS = {"sensor": "MTR-H001/1-0:1.8.0", "start": "2026-01-14T00:00:00Z", "end": "2026-01-14T01:00:00Z"}
FORECAST_PARAMS = {"start": "2026-01-14T00:00:00Z", "end": "2026-01-14T01:00:00Z"}
SCENARIO = {"name": "pv", "period": {"hours": 1}, "edits": [{"kind": "scale_pv", "scale": 1.5}]}


def _call(client: TestClient, name: str, site: str, token: str, ids: dict[str, str]) -> int:
    method, template, _ok, _roles = ENDPOINTS[name]
    url = f"/api/v1/sites/{site}" + template.format(**ids)
    kwargs: dict[str, Any] = {"headers": {"X-API-Key": token}}
    if name == "read":
        kwargs["params"] = READ_PARAMS
    elif name == "forecasts":
        kwargs["params"] = FORECAST_PARAMS
    elif name == "write":
        kwargs["json"] = {"readings": [reading()]}
    elif name == "csv":
        kwargs["files"] = {"file": ("m.csv", CSV, "text/csv")}
    elif name == "scenario_run":
        kwargs["json"] = SCENARIO
    return client.request(method, url, **kwargs).status_code


def test_auth_matrix(app: FastAPI, client: TestClient, key: dict[str, str]) -> None:
    plan = service(app).run("demo", app.state.ctx.clock())
    median = pd.DataFrame({0.5: [1.0] * 4}, index=pd.date_range(FORECAST_PARAMS["start"], periods=4, freq="15min"))
    store_forecast(app.state.ctx.engine, "demo", "site", median, "2026-01-13T12:00:00Z", "test")
    job, _ = app.state.ctx.jobs.submit("demo")
    app.state.ctx.jobs.wait(job.job_id, 60)
    run = client.post("/api/v1/sites/demo/scenarios", json=SCENARIO, headers={"X-API-Key": key["planner"]}).json()
    app.state.scenario_runner.wait(run["run_id"], 300)
    ids = {"plan_id": plan.plan_id or "", "job_id": job.job_id, "scenario_id": run["run_id"]}
    got: dict[tuple[str, str, str], int] = {}
    want: dict[tuple[str, str, str], int] = {}
    for role in ROLES:
        for name, (_m, _p, ok, allowed) in ENDPOINTS.items():
            for site, own in (("demo", True), ("north", False)):
                got[role, name, site] = _call(client, name, site, key[role], ids)
                want[role, name, site] = ok if own and (role == "admin" or role in allowed) else 403
                if name == "trigger" and got[role, name, site] == 202:
                    for active in list(app.state.ctx.jobs._jobs):
                        app.state.ctx.jobs.wait(active, 60)
    assert {k: v for k, v in got.items() if v != want[k]} == {}
    for name in ENDPOINTS:  # no key at all, or a wrong one: 401 everywhere
        assert _call(client, name, "demo", "", ids) == 401
        assert _call(client, name, "north", "qk_0000_wrong", ids) == 401
    # an admin for every site reaches north too; an unknown site is 404 for it
    assert _call(client, "plans", "north", key["admin_all"], ids) == 200
    assert _call(client, "plans", "nowhere", key["admin_all"], ids) == 404
