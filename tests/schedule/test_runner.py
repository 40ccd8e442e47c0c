"""The rolling-horizon run with a controllable clock: periods, no overlap, restarts, failures,
stale plans and ETags. No sleeps: concurrency is driven by events."""

from __future__ import annotations

import pickle
import shutil
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grid.domain import load_site
from grid.errors import InputError, InputErrors
from grid.schedule.inputs import forecast_provider
from grid.schedule.runner import PlanningConfig, PlanningService, file_inputs
from grid.store import plans as plan_store
from grid.store.apikeys import create_key
from grid.store.engine import make_engine
from grid.store.migrate import upgrade
from grid.store.sites import register_site
from models.solve import plan_site
from tests.api.kit import HOURS, Clock, make_app

CONFIG = PlanningConfig(horizon_hours=HOURS, time_limit_s=20)


def _service(engine: Engine, sites: dict[str, Path], **kwargs: Any) -> PlanningService:
    return PlanningService(engine, sites, CONFIG, **kwargs)


def test_scheduled_runs_one_per_period(store: Engine, sites: dict[str, Path], clock: Clock) -> None:
    svc = _service(store, sites)
    first = svc.run("demo", clock(), trigger="scheduled")
    assert first.status.startswith("optimal") and first.period_start == pd.Timestamp("2026-01-14T01:00Z")
    clock.advance(5)  # same quarter-hour: already planned
    again = svc.run("demo", clock(), trigger="scheduled")
    assert again.status == "skipped" and again.message == "period already planned"
    clock.advance(10)  # 01:22 -> the 01:15 period
    nxt = svc.run("demo", clock(), trigger="scheduled")
    assert nxt.status.startswith("optimal") and nxt.period_start == pd.Timestamp("2026-01-14T01:15Z")
    periods = [r.period_start for r in plan_store.list_runs(store, "demo")]
    assert periods == [pd.Timestamp("2026-01-14T01:15Z"), pd.Timestamp("2026-01-14T01:00Z")]


def test_restart_does_not_run_a_period_twice(store: Engine, sites: dict[str, Path], clock: Clock) -> None:
    assert _service(store, sites).run("demo", clock(), trigger="scheduled").status.startswith("optimal")
    calls: list[str] = []

    def counting(*args: Any) -> Any:
        calls.append("plan")
        return plan_site(*args)

    restarted = _service(store, sites, planner=counting)  # a new process on the same database
    assert restarted.run("demo", clock(), trigger="scheduled").status == "skipped"
    assert calls == []
    clock.advance(15)
    assert restarted.run("demo", clock(), trigger="scheduled").status.startswith("optimal")
    assert calls == ["plan"]
    assert len(plan_store.list_plans(store, "demo")) == 2


def test_no_overlapping_runs(store: Engine, sites: dict[str, Path], clock: Clock) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(*args: Any) -> Any:
        entered.set()
        assert release.wait(60)
        return plan_site(*args)

    svc = _service(store, sites, planner=slow)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(svc.run("demo", clock(), trigger="scheduled")))
    worker.start()
    assert entered.wait(60)
    assert svc.busy("demo")
    clock.advance(15)  # the next period comes while the first run is still solving
    overlapping = svc.run("demo", clock(), trigger="scheduled")
    manual = svc.run("demo", clock(), trigger="manual")
    release.set()
    worker.join(60)
    assert overlapping.status == "skipped" and manual.status == "skipped"
    assert results[0].status.startswith("optimal")
    assert svc.run("north", clock()).status.startswith("optimal")  # other sites are not blocked
    assert len(plan_store.list_plans(store, "demo")) == 1


def test_failures_keep_last_good_plan_stale_and_etag_follows_plan(
    store: Engine, sites: dict[str, Path], clock: Clock
) -> None:
    outcomes: list[Any] = ["plan"]

    def planner(*args: Any) -> Any:
        what = outcomes.pop(0)
        if what == "input":
            raise InputErrors([InputError("prices.csv line 9", "not a finite number", "x")])
        if what == "crash":
            raise RuntimeError("solver process died")
        if what == "timeout":
            options = args[3]
            options.time_limit_s = 1e-9  # HiGHS stops at once: a failed plan, as after a real timeout
            options.highs_options = {"presolve": "off"}
        return plan_site(*args)

    app = make_app(store, sites, clock, planner=planner)
    token = create_key(store, "operator", ["demo"])[1]
    svc = app.state.ctx.service
    etags: list[str] = []
    with TestClient(app) as client:

        def poll() -> dict[str, Any]:
            r = client.get("/api/v1/sites/demo/setpoints", headers={"X-API-Key": token})
            assert r.status_code == 200
            etags.append(r.headers["ETag"])
            assert (
                client.get(
                    "/api/v1/sites/demo/setpoints", headers={"X-API-Key": token, "If-None-Match": r.headers["ETag"]}
                ).status_code
                == 304
            )
            return r.json()

        good = svc.run("demo", clock(), trigger="scheduled")
        first = poll()
        assert first["plan_id"] == good.plan_id and not first["stale"]
        assert poll()["plan_id"] == good.plan_id and etags[-1] == etags[-2]  # unchanged plan, same ETag

        for n, kind in enumerate(("input", "crash", "timeout"), start=1):
            outcomes.append(kind)
            failed = svc.run("demo", clock().replace(minute=15 * n), trigger="scheduled")
            assert failed.status == "failed", kind
            sp = poll()
            assert sp["plan_id"] == good.plan_id and sp["stale"] is True, kind
            assert failed.message in sp["stale_reason"]
        assert etags[2] != etags[1]  # the first failure made it stale: a new version
        assert len(set(etags[2:])) == 3  # each failure names a new reason: a new version
        stale_etag = etags[-1]
        assert poll()["stale"] and etags[-1] == stale_etag  # nothing happened: same version
        outcomes.append("plan")
        fresh = svc.run("demo", clock().replace(minute=59), trigger="manual")
        assert fresh.status.startswith("optimal")
        now = poll()
        assert now["plan_id"] == fresh.plan_id and not now["stale"] and etags[-1] not in etags[:-1]
    runs = plan_store.list_runs(store, "demo")
    assert [r.status for r in runs[:3]] == ["failed", "failed", "failed"]
    assert "prices.csv line 9" in runs[2].message and "solver process died" in runs[1].message
    failed_rows = [p for p in plan_store.list_plans(store, "demo") if p.status == "failed"]
    assert len(failed_rows) == 3 and all(p.message for p in failed_rows)


def test_worker_process_plans_with_inputs_read_here_or_there(
    tmp_path: Path, sites: dict[str, Path], clock: Clock
) -> None:
    """In a worker process: a provider that can travel (module function, forecasts on a database
    file) reads the inputs there; one that cannot (a closure) reads them here and ships them."""
    engine = make_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    upgrade(engine)
    register_site(engine, load_site(sites["demo"]))
    config = PlanningConfig(horizon_hours=HOURS, time_limit_s=20, solve_in_subprocess=True)
    read_here: list[str] = []

    def closure(site: Any, start: pd.Timestamp, hours: float) -> Any:
        read_here.append(site.id)
        return file_inputs(site, start, hours)

    for provider in (file_inputs, forecast_provider(engine), closure):
        svc = PlanningService(engine, {"demo": sites["demo"]}, config, inputs_provider=provider)
        try:
            result = svc.run("demo", clock())
        finally:
            svc.close()
        assert result.status.startswith("optimal"), (provider, result.message)
    assert read_here == ["demo"]


def test_forecast_provider_travels_as_its_database_url(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'f.sqlite'}")
    travelled = pickle.loads(pickle.dumps(forecast_provider(engine)))
    assert str(travelled.engine.url) == str(engine.url)
    with pytest.raises(TypeError, match="in-memory"):
        pickle.dumps(forecast_provider(make_engine("sqlite://")))


def test_site_file_is_read_again_only_when_it_changed(tmp_path: Path, sites: dict[str, Path]) -> None:
    path = tmp_path / "site.yaml"
    shutil.copytree(sites["demo"].parent, tmp_path, dirs_exist_ok=True)
    engine = make_engine("sqlite://")
    upgrade(engine)  # the service looks for a stored version of the site first
    svc = PlanningService(engine, {"demo": path}, CONFIG)
    first = svc.site("demo")
    assert svc.site("demo") is first  # unchanged file: the same object, no parse
    path.write_text(path.read_text(encoding="utf-8").replace("name: ", "name: Renamed ", 1), "utf-8")
    changed = svc.site("demo")
    assert changed is not first and changed.site.name.startswith("Renamed")
