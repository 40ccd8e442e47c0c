"""After a crash: orphaned scheduler runs are failed and planned again, health notices an old last
run, solver workers die with a kill -9 of `grid serve`, stale upload directories are removed."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from api.uploads import PREFIX, clean_stale_uploads, upload_dir
from grid.private_services import alive, descendants, free_port
from grid.store.plans import INTERRUPTED, claim_period, list_runs
from tests.api.kit import HOURS, T0, Clock, make_app, service

BOUND_S = 120.0  # a bound on waiting for a condition, not a timing


def until(condition: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.2)  # poll interval


def test_orphaned_run_is_failed_and_planned_again(store: Engine, sites: dict[str, Path], clock: Clock) -> None:
    period = dt.datetime(2026, 1, 14, 1, 0, tzinfo=dt.UTC)  # T0 = 01:07 lies in this quarter-hour
    assert claim_period(store, "demo", period, clock())  # a run that was killed mid-solve
    app = make_app(store, sites, clock)
    svc = service(app)
    assert svc.run("demo", clock(), trigger="scheduled").status == "skipped"  # before the start: still "running"
    with TestClient(app):  # the start marks it failed
        (run,) = list_runs(store, "demo")
        assert run.status == "failed" and run.message == INTERRUPTED
        again = svc.run("demo", clock(), trigger="scheduled")
        assert again.status.startswith("optimal"), again
        (run,) = list_runs(store, "demo")
        assert run.status == again.status and run.plan_id == again.plan_id
        assert svc.run("demo", clock(), trigger="scheduled").status == "skipped"  # planned now: once only


def test_health_degraded_when_the_last_good_run_is_old(store: Engine, sites: dict[str, Path], clock: Clock) -> None:
    settings = Settings(
        sites={"demo": sites["demo"]},
        horizon_hours=HOURS,
        scheduler_enabled=True,
        mqtt_enabled=False,
        replan_every_min=15,
    )
    app = create_app(settings, engine=store, clock=clock, migrate=False)
    with TestClient(app) as client:
        until(lambda: client.get("/healthz").json()["last_successful_run"] is not None, "the run at start")
        app.state.ctx.scheduler.pause()  # no cron run on a wall-clock quarter-hour may reset the age
        assert client.get("/healthz").json()["status"] == "ok"
        clock.advance(29)  # the run finished at T0: 29 min < 2 x 15 min
        assert client.get("/healthz").json()["status"] == "ok"
        clock.advance(2)  # 31 min > 30 min: two runs missed
        health = client.get("/healthz").json()
        assert health["status"] == "degraded" and "twice" in health["problems"][0]


@pytest.mark.parametrize("planning", ["process-per-site", "embedded-dask"])
def test_workers_die_with_a_killed_service(planning: str, sites: dict[str, Path], tmp_path: Path) -> None:
    """kill -9 of `grid serve`: its solver processes (one per site, or the embedded Dask cluster's
    worker processes and the resource tracker) end too."""
    port = free_port()
    env = {
        **os.environ,
        "GRID_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite'}",
        "GRID_SITES": json.dumps({"demo": str(sites["demo"])}),
        "GRID_HORIZON_HOURS": str(HOURS),
        "GRID_CLOCK_START": T0.isoformat(),
        "GRID_MQTT_ENABLED": "false",
        "GRID_SOLVE_IN_SUBPROCESS": "true",
        "GRID_PORT": str(port),
        "GRID_DASK_WORKERS": "2" if planning == "embedded-dask" else "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from grid.cli import app; app()", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def planned() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").json()["last_successful_run"] is not None
            except httpx.HTTPError:
                assert proc.poll() is None, "grid serve exited"
                return False

        until(planned, "the scheduled run at start (in a worker process)")
        workers = descendants(proc.pid)
        assert len(workers) >= (2 if planning == "embedded-dask" else 1), f"worker processes: {workers}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        until(lambda: not any(alive(p) for p in workers), f"workers {workers} to die with the service")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stale_upload_directories_are_removed(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)  # a process that has exited
    stale = tmp_path / f"{PREFIX}{dead_pid}-abc"
    (stale / "big.csv").parent.mkdir()
    (stale / "big.csv").write_text("meter_id,timestamp\n")
    live = tmp_path / f"{PREFIX}{os.getpid()}-def"  # ours: in use
    live.mkdir()
    other = tmp_path / "someone-else"
    other.mkdir()
    assert clean_stale_uploads(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and other.exists()
    with upload_dir() as tmp:
        assert tmp.name.startswith(f"{PREFIX}{os.getpid()}-")
    assert not tmp.exists()
