"""Scenario runs over the API, on the real app and store: submit (202 + run URL), poll, the KPI
comparison, CSV/Parquet exports, listing, 422s naming the edit and field, the queue limit, and
results that outlive the app (a new app on the same store serves them; runs it left unfinished
are marked failed)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grid.store import scenarios as runs_store
from tests.api.kit import Clock, make_app

#: 2 h of the 12 h test site: a community battery on T1 and twice the PV
SCENARIO: dict[str, Any] = {
    "name": "battery-and-pv",
    "period": {"start": "2026-01-14T00:00:00+01:00", "hours": 2},
    "edits": [
        {"kind": "add_battery", "id": "CB-T1", "connection": "T1", "capacity_kwh": 200},
        {"kind": "scale_pv", "scale": 2.0},
    ],
}


def _runner(app: FastAPI) -> Any:
    return app.state.scenario_runner


def submit(client: TestClient, token: str, body: dict[str, Any], site: str = "demo") -> Any:
    return client.post(f"/api/v1/sites/{site}/scenarios", json=body, headers={"X-API-Key": token})


def finished(app: FastAPI, client: TestClient, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """Submit `body`, wait for the run, return the run as served."""
    answer = submit(client, token, body)
    assert answer.status_code == 202, answer.text
    run = answer.json()
    _runner(app).wait(run["run_id"], 300)
    polled = client.get(run["run_url"], headers={"X-API-Key": token})
    assert polled.status_code == 200
    assert "Retry-After" not in polled.headers
    out: dict[str, Any] = polled.json()
    return out


def test_submit_poll_compare_export(app: FastAPI, client: TestClient, key: dict[str, str]) -> None:
    token = key["planner"]
    answer = submit(client, token, SCENARIO)
    assert answer.status_code == 202, answer.text
    run = answer.json()
    assert answer.headers["Location"] == run["run_url"] == f"/api/v1/sites/demo/scenarios/{run['run_id']}"
    assert answer.headers["Retry-After"] == "2"
    assert run["status"] in ("queued", "running", "succeeded") and run["site"] == "demo"
    assert run["scenario"]["edits"][0]["capacity_kwh"] == 200
    _runner(app).wait(run["run_id"], 300)

    done = client.get(run["run_url"], headers={"X-API-Key": token}).json()
    assert done["status"] == "succeeded", done["message"]
    assert done["scenario_status"] == "optimal"
    assert done["submitted_at"].endswith("+00:00") and done["finished_at"] is not None
    result = done["result"]
    assert result["baseline"]["name"] == "baseline" and result["scenario"]["name"] == "battery-and-pv"
    assert result["scenario"]["kpis"]["hours"] == 2.0
    rows = {r["kpi"]: r for r in result["comparison"]}
    # doubling PV: twice the available PV energy over the same 2 h (an exact ratio of inputs)
    pv = rows["pv_generation_kwh"]
    assert pv["value"] >= pv["baseline"] and pv["delta"] == pv["value"] - pv["baseline"]
    # more storage and more PV never make the optimal plan dearer
    assert rows["objective_eur"]["delta"] <= 1e-6

    # exports: the same numbers as the JSON, as CSV and Parquet
    headers = {"X-API-Key": token}
    assert set(done["exports"]) == {"results.csv", "results.parquet", "comparison.csv", "comparison.parquet"}
    csv = client.get(done["exports"]["comparison.csv"], headers=headers)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(csv.text))
    assert list(table.columns) == ["scenario", "status", "kpi", "baseline", "value", "delta", "delta_rel"]
    cost = table.set_index("kpi").loc["objective_eur"]
    assert cost["value"] == rows["objective_eur"]["value"]
    parquet = client.get(done["exports"]["results.parquet"], headers=headers)
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    results = pd.read_parquet(io.BytesIO(parquet.content))
    assert results["scenario"].tolist() == ["baseline", "battery-and-pv"]
    assert results["status"].tolist() == ["optimal", "optimal"]
    results_csv = pd.read_csv(io.StringIO(client.get(done["exports"]["results.csv"], headers=headers).text))
    assert results_csv["objective_eur"].tolist() == results["objective_eur"].tolist()

    listed = client.get("/api/v1/sites/demo/scenarios", headers=headers).json()
    assert [r["run_id"] for r in listed["runs"]] == [run["run_id"]]
    assert "result" not in listed["runs"][0]


def test_bad_scenario_names_edit_and_field(client: TestClient, key: dict[str, str]) -> None:
    token = key["planner"]
    # shape errors (pydantic): the edit's index, kind and field
    bad = {"name": "bad", "edits": [{"kind": "scale_pv", "scale": 2}, {"kind": "scale_pv", "scale": -1}]}
    answer = submit(client, token, bad)
    assert answer.status_code == 422
    assert [e["loc"] for e in answer.json()["detail"]] == [["body", "edits", 1, "scale_pv", "scale"]]
    # what only the site can tell: unknown battery, unknown connection, a window without inputs
    bad = {
        "name": "bad",
        "period": {"start": "2027-01-01T00:00:00+00:00", "hours": 24},
        "edits": [
            {"kind": "resize_battery", "id": "NO-SUCH-BAT", "scale": 2},
            {"kind": "add_battery", "connection": "T9", "capacity_kwh": 100},
        ],
    }
    detail = submit(client, token, bad).json()["detail"]
    locs = [e["loc"] for e in detail]
    assert ["body", "edits", 0, "id"] in locs
    assert ["body", "edits", 1, "connection"] in locs
    assert all(e["type"] == "input_error" and e["msg"] for e in detail)
    assert "NO-SUCH-BAT" in next(e for e in detail if e["loc"][2] == 0)["msg"]
    window = {"name": "w", "period": {"start": "2027-01-01T00:00:00+00:00", "hours": 24}}
    assert submit(client, token, window).json()["detail"][0]["loc"] == ["body", "period"]
    # files are not read over the API; a baseline or solver cannot be chosen
    prices = {"name": "p", "edits": [{"kind": "set_prices", "file": "/etc/passwd"}]}
    assert submit(client, token, prices).json()["detail"][0]["loc"] == ["body", "edits", 0, "file"]
    foreign = {"name": "f", "baseline": "/etc/site.yaml"}
    assert submit(client, token, foreign).json()["detail"][0]["loc"] == ["body", "baseline"]
    assert runs_store.list_runs(client.app.state.ctx.engine, "demo") == []  # type: ignore[attr-defined]


def test_too_long_and_queue_limit(store: Engine, sites: dict[str, Path], clock: Clock, key: dict[str, str]) -> None:
    app = make_app(store, sites, clock)
    app.state.ctx.settings.scenario_max_hours = 4.0
    app.state.ctx.settings.scenario_queue_max = 1
    token = key["admin"]
    with TestClient(app) as client:
        long = submit(client, token, {"name": "long", "period": {"hours": 6}})
        assert long.status_code == 422
        assert long.json()["detail"][0]["loc"] == ["body", "period"]
        days = {"start": "2026-01-14T00:00:00+01:00", "hours": 3}
        many = submit(client, token, {"name": "days", "representative_days": [days, days]})
        assert many.json()["detail"][0]["loc"] == ["body", "representative_days"]
        # one run still queued for demo (as another request would have left it): the queue is full
        runs_store.create_run(store, "waiting", "demo", "waiting", {"name": "waiting"}, clock())
        assert submit(client, token, SCENARIO).status_code == 429
        assert submit(client, key["admin_all"], SCENARIO, site="north").status_code == 202  # per site
        runs_store.finish_run(store, "waiting", "failed", clock(), message="given up")
        assert submit(client, token, SCENARIO).status_code == 202


def test_results_outlive_the_app(store: Engine, sites: dict[str, Path], clock: Clock, key: dict[str, str]) -> None:
    token = key["planner"]
    app = make_app(store, sites, clock)
    with TestClient(app) as client:
        run = finished(app, client, token, SCENARIO)
    # a run left queued by a service that stopped
    runs_store.create_run(store, "orphan", "demo", "orphan", {"name": "orphan"}, clock())
    again = make_app(store, sites, clock)
    with TestClient(again) as client:
        headers = {"X-API-Key": token}
        served = client.get(run["run_url"], headers=headers).json()
        assert served["result"] == run["result"]
        orphan = client.get("/api/v1/sites/demo/scenarios/orphan", headers=headers).json()
        assert orphan["status"] == "failed" and "interrupted" in orphan["message"]
        assert orphan["exports"] == {}
        assert client.get("/api/v1/sites/demo/scenarios/orphan/results.csv", headers=headers).status_code == 409


def test_other_site_and_unknown_run(client: TestClient, key: dict[str, str]) -> None:
    headers = {"X-API-Key": key["planner"]}
    assert submit(client, key["planner"], SCENARIO, site="north").status_code == 403
    assert submit(client, key["operator"], SCENARIO).status_code == 403
    assert client.get("/api/v1/sites/demo/scenarios/nope", headers=headers).status_code == 404
    assert client.get("/api/v1/sites/demo/scenarios/nope/comparison.csv", headers=headers).status_code == 404


def test_submit_with_the_site_in_the_body(app: FastAPI, client: TestClient, key: dict[str, str]) -> None:
    """``POST /api/v1/scenarios`` (the site named in the body) runs like the site-scoped route and
    checks the key against that site."""
    answer = client.post("/api/v1/scenarios", json={**SCENARIO, "site": "demo"}, headers={"X-API-Key": key["planner"]})
    assert answer.status_code == 202, answer.text
    run = answer.json()
    assert run["site"] == "demo" and answer.headers["Location"] == run["run_url"]
    _runner(app).wait(run["run_id"], 300)
    done = client.get(run["run_url"], headers={"X-API-Key": key["planner"]}).json()
    assert done["status"] == "succeeded" and done["scenario"]["edits"][0]["capacity_kwh"] == 200
    for token, site, status in (
        (key["planner"], "north", 403),
        (key["operator"], "demo", 403),
        (key["admin_all"], "nowhere", 404),
        ("", "demo", 401),
    ):
        got = client.post("/api/v1/scenarios", json={**SCENARIO, "site": site}, headers={"X-API-Key": token})
        assert got.status_code == status, (site, got.text)
    bad = client.post("/api/v1/scenarios", json=SCENARIO, headers={"X-API-Key": key["planner"]})
    assert bad.status_code == 422 and ["body", "site"] in [e["loc"] for e in bad.json()["detail"]]
