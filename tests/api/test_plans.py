"""Plans, set-points, ETags and the re-plan trigger against the real app (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grid.errors import InputError
from grid.store import plans as plan_store
from grid.store.apikeys import create_key, list_keys, revoke_key
from models.solve import plan_site
from tests.api.kit import HOURS, Clock, make_app, service


def _plan(app: FastAPI, clock: Clock) -> str:
    result = service(app).run("demo", clock())
    assert result.status in ("optimal", "optimal_with_violations"), result.message
    assert result.plan_id is not None
    return result.plan_id


def test_plan_endpoints(app: FastAPI, client: TestClient, key: dict[str, str], clock: Clock) -> None:
    h = {"X-API-Key": key["operator"]}
    assert client.get("/api/v1/sites/demo/plans/latest", headers=h).status_code == 404  # no plan yet
    plan_id = _plan(app, clock)
    r = client.get("/api/v1/sites/demo/plans/latest", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["plan_id"] == plan_id and body["stale"] is False
    assert body["plan"]["start"] == "2026-01-14T01:00:00+00:00"  # the interval containing 01:07
    assert pd.Timestamp(body["plan"]["end"]) - pd.Timestamp(body["plan"]["start"]) == pd.Timedelta(hours=HOURS)
    etag = r.headers["ETag"]
    assert client.get("/api/v1/sites/demo/plans/latest", headers={**h, "If-None-Match": etag}).status_code == 304
    assert client.get(f"/api/v1/sites/demo/plans/{plan_id}", headers=h).json()["plan_id"] == plan_id
    listed = client.get("/api/v1/sites/demo/plans", headers=h).json()["plans"]
    assert [p["plan_id"] for p in listed] == [plan_id]
    v = client.get(f"/api/v1/sites/demo/plans/{plan_id}/violations", headers=h).json()
    assert isinstance(v["violations"], list) and isinstance(v["dimming"], list)
    mp = client.get(f"/api/v1/sites/demo/plans/{plan_id}/marginal-prices", headers=h).json()
    assert mp["unit"] == "EUR/kWh" and set(mp["connections"]) == {"T1", "T2"}
    assert all(len(series) == HOURS * 4 for series in mp["connections"].values())
    assert client.get("/api/v1/sites/demo/plans/nosuch", headers=h).status_code == 404
    assert client.get("/api/v1/sites/nosuch/plans", headers={"X-API-Key": key["admin_all"]}).status_code == 404


def test_setpoints_current_and_next(app: FastAPI, client: TestClient, key: dict[str, str], clock: Clock) -> None:
    h = {"Authorization": f"Bearer {key['operator']}"}
    plan_id = _plan(app, clock)
    r = client.get("/api/v1/sites/demo/setpoints?horizon=4", headers=h)
    assert r.status_code == 200
    sp = r.json()
    assert sp["plan_id"] == plan_id and sp["stale"] is False
    assert sp["intervals"][0] == "2026-01-14T01:00:00+00:00" and len(sp["intervals"]) == 4
    assert sp["valid_until"] == "2026-01-14T02:00:00+00:00"
    assert sp["assets"] and all(a["type"] != "inflexible_load" for a in sp["assets"].values())
    assert all(len(a["power_kw"]) == 4 for a in sp["assets"].values())
    plan = client.get(f"/api/v1/sites/demo/plans/{plan_id}", headers=h).json()["plan"]
    for aid, asset in sp["assets"].items():
        assert asset["power_kw"] == plan["assets"][aid]["power_kw"][:4]
    clock.advance(30)  # 01:37: the current interval is 01:30
    later = client.get("/api/v1/sites/demo/setpoints?horizon=4", headers=h).json()
    assert later["intervals"][0] == "2026-01-14T01:30:00+00:00"
    clock.advance(24 * 60)  # long after the plan: still an answer, marked stale
    late = client.get("/api/v1/sites/demo/setpoints", headers=h).json()
    assert late["stale"] is True and "plan ended" in late["stale_reason"] and late["assets"]


def test_failed_run_keeps_last_good_plan_stale(
    app: FastAPI, client: TestClient, key: dict[str, str], clock: Clock
) -> None:
    h = {"X-API-Key": key["operator"]}
    good = _plan(app, clock)
    first = client.get("/api/v1/sites/demo/setpoints", headers=h)
    svc = service(app)

    def broken(*_args: object) -> object:
        raise InputError("weather.csv line 7", "not a finite number", "nan")

    svc.inputs_provider = broken  # type: ignore[assignment]
    result = svc.run("demo", clock())
    assert result.status == "failed" and "weather.csv line 7" in result.message
    r = client.get("/api/v1/sites/demo/setpoints", headers={**h, "If-None-Match": first.headers["ETag"]})
    assert r.status_code == 200 and r.headers["ETag"] != first.headers["ETag"]
    sp = r.json()
    assert sp["plan_id"] == good and sp["stale"] is True and "weather.csv line 7" in sp["stale_reason"]
    plans = client.get("/api/v1/sites/demo/plans", headers=h).json()["plans"]
    assert plans[0]["status"] == "failed" and plans[0]["message"] == result.message


def test_trigger_replan_job(app: FastAPI, client: TestClient, key: dict[str, str]) -> None:
    h = {"X-API-Key": key["operator"]}
    r = client.post("/api/v1/sites/demo/plans/trigger", headers=h)
    assert r.status_code == 202
    assert r.headers["Retry-After"] == "2" and r.headers["Location"] == r.json()["job_url"]
    job_id = r.json()["job_id"]
    app.state.ctx.jobs.wait(job_id, 60)
    done = client.get(r.json()["job_url"], headers=h)
    assert done.status_code == 200 and "Retry-After" not in done.headers
    job = done.json()
    assert job["status"] == "succeeded", job
    assert client.get(job["plan_url"], headers=h).json()["plan_id"] == job["plan_id"]
    assert client.get("/api/v1/sites/demo/plans/latest", headers=h).json()["plan_id"] == job["plan_id"]
    assert client.get("/api/v1/sites/demo/jobs/nosuch", headers=h).status_code == 404


def test_unauthenticated(client: TestClient, key: dict[str, str], store: Engine) -> None:
    assert client.get("/api/v1/sites/demo/plans").status_code == 401
    assert client.get("/api/v1/sites/demo/plans", headers={"X-API-Key": "qk_nope_nope"}).status_code == 401
    wrong = key["operator"][:-3] + "xyz"
    assert client.get("/api/v1/sites/demo/plans", headers={"X-API-Key": wrong}).status_code == 401
    key_id = key["operator"].split("_")[1]
    assert revoke_key(store, key_id)
    assert client.get("/api/v1/sites/demo/plans", headers={"X-API-Key": key["operator"]}).status_code == 401
    assert any(k.revoked_at is not None for k in list_keys(store))


def test_key_cache_window(store: Engine, sites: dict[str, Path], clock: Clock) -> None:
    """With ``auth_cache_s`` a verified key is trusted for that long without the database, so a
    revocation takes effect within the window (here: once the cache entry is gone)."""
    app = make_app(store, sites, clock, auth_cache_s=60)
    token = create_key(store, "operator", ["demo"])[1]
    with TestClient(app) as client:
        h = {"X-API-Key": token}
        assert client.get("/api/v1/sites/demo/plans", headers=h).status_code == 200
        assert revoke_key(store, token.split("_")[1])
        assert client.get("/api/v1/sites/demo/plans", headers=h).status_code == 200  # inside the window
        app.state.ctx.auth_cache.clear()  # the window has passed
        assert client.get("/api/v1/sites/demo/plans", headers=h).status_code == 401
        assert app.state.ctx.auth_cache == {}


def test_solve_in_worker_process(store: Engine, sites: dict[str, Path], clock: Clock) -> None:
    """`grid serve` solves in a worker process (polling keeps the GIL); the plan is the same kind."""
    app = make_app(store, sites, clock, solve_in_subprocess=True)
    with TestClient(app):
        svc = service(app)
        assert svc.config.solve_in_subprocess
        result = svc.run("demo", clock())
        assert result.status in ("optimal", "optimal_with_violations"), result.message
        assert set(svc._pools) == {"demo"}  # one worker per site: it keeps the site's model
        again = svc.run("demo", clock())
        assert again.status == result.status
        body = plan_store.plan_body(store, again.plan_id or "")
        assert body["solver"]["warm_start"]  # the worker re-used the model of the first run
    assert svc._pools == {}  # closed with the app


def test_one_job_per_site(store: Engine, sites: dict[str, Path], clock: Clock, key: dict[str, str]) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(*args: Any) -> Any:
        entered.set()
        assert release.wait(60)
        return plan_site(*args)

    app = make_app(store, sites, clock, planner=slow)
    h = {"X-API-Key": key["admin"]}
    with TestClient(app) as client:
        first = client.post("/api/v1/sites/demo/plans/trigger", headers=h).json()
        assert entered.wait(60)
        running = client.get(first["job_url"], headers=h)
        assert running.json()["status"] == "running" and running.headers["Retry-After"] == "2"
        second = client.post("/api/v1/sites/demo/plans/trigger", headers=h)
        assert second.status_code == 202 and second.json()["job_id"] == first["job_id"]
        release.set()
        app.state.ctx.jobs.wait(first["job_id"], 60)
        assert client.get(first["job_url"], headers=h).json()["status"] == "succeeded"
        third = client.post("/api/v1/sites/demo/plans/trigger", headers=h).json()
        assert third["job_id"] != first["job_id"]
        app.state.ctx.jobs.wait(third["job_id"], 60)
