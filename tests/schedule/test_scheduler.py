"""The APScheduler wiring: jobs persisted in the project database, aligned to quarter-hours, no
overlap settings, one job per site after a restart, and the job function itself."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid.schedule import scheduler as sched
from grid.schedule.runner import PlanningConfig, PlanningService
from grid.store import plans as plan_store


def test_jobs_persisted_aligned_and_not_overlapping(store: Engine, sites: dict[str, Path]) -> None:
    svc = PlanningService(store, sites, PlanningConfig(horizon_hours=3))
    for _restart in range(2):  # a restart replaces the stored jobs instead of adding more
        scheduler = sched.make_scheduler(svc, every_min=15, misfire_grace_s=120, run_now=False)
        scheduler.start(paused=True)
        try:
            jobs = scheduler.get_jobs()
            ids = ["evaluate:demo", "evaluate:north", "replan:demo", "replan:north", sched.SYNC_JOB_ID]
            ids = sorted([*ids, sched.WATCH_ORDERS_JOB_ID, sched.TRAIN_JOB_ID])
            assert sorted(j.id for j in jobs) == ids
            service_wide = (sched.SYNC_JOB_ID, sched.WATCH_ORDERS_JOB_ID, sched.TRAIN_JOB_ID)
            for job in (j for j in jobs if j.id not in service_wide):
                assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 120)
                assert job.next_run_time.minute % 15 == 0
                replan = job.id.startswith("replan:")
                assert job.next_run_time.second == (0 if replan else sched.EVALUATE_AFTER_S)
                name = "scheduled_run" if replan else "scheduled_evaluation"
                assert job.func_ref == f"grid.schedule.scheduler:{name}"
        finally:
            scheduler.shutdown(wait=False)
        with store.connect() as conn:
            assert conn.execute(sa.text(f"SELECT count(*) FROM {sched.JOB_TABLE}")).scalar() == 7


def test_interval_must_divide_the_hour(store: Engine, sites: dict[str, Path]) -> None:
    svc = PlanningService(store, sites)
    with pytest.raises(ValueError, match="divide 60"):
        sched.make_scheduler(svc, every_min=7)


def test_job_function_records_a_failed_period(store: Engine, sites: dict[str, Path]) -> None:
    """With the wall clock the demo inputs (January 2026) do not cover the horizon: the run is
    recorded as failed with the reason, and its period is not run again."""
    svc = PlanningService(store, sites, PlanningConfig(horizon_hours=3))
    sched.make_scheduler(svc, run_now=False)  # registers the service for the job function
    result = sched.scheduled_run("demo")
    assert result is not None and result.status == "failed"
    assert "do not cover the horizon" in result.message
    runs = plan_store.list_runs(store, "demo")
    assert len(runs) == 1 and runs[0].status == "failed" and runs[0].finished_at is not None
    again = sched.scheduled_run("demo")
    same_period = again is not None and again.period_start == runs[0].period_start
    assert again is not None and (again.status == "skipped" or not same_period)
    assert runs[0].period_start <= dt.datetime.now(dt.UTC)


def test_job_for_a_site_no_longer_configured_is_skipped(store: Engine, sites: dict[str, Path]) -> None:
    sched.make_scheduler(PlanningService(store, {"demo": sites["demo"]}), run_now=False)
    assert sched.scheduled_run("north") is None
    assert plan_store.list_runs(store) == []


def test_run_threads_do_not_depend_on_the_sites_at_start(store: Engine, sites: dict[str, Path]) -> None:
    """A service started with one site gets sites later (stored as data): their runs must not
    wait for each other's threads. Eight jobs that can only finish together (a barrier of eight)
    all finish on the scheduler's own executor (with one thread per site at start they could not)."""
    import threading

    from apscheduler.jobstores.memory import MemoryJobStore

    svc = PlanningService(store, {"demo": sites["demo"]}, PlanningConfig(horizon_hours=3))
    scheduler = sched.make_scheduler(svc, run_now=False)
    scheduler.add_jobstore(MemoryJobStore(), "memory")
    parties = 8
    barrier = threading.Barrier(parties, timeout=60)  # a bound on waiting, not a timing
    passed: list[int] = []
    done = threading.Event()

    def together(i: int) -> None:
        barrier.wait()
        passed.append(i)
        if len(passed) == parties:
            done.set()

    scheduler.start()
    try:
        for i in range(parties):
            scheduler.add_job(together, args=(i,), jobstore="memory", id=f"together-{i}")
        assert done.wait(120), f"only {len(passed)} of {parties} jobs ran at once"
        assert sorted(passed) == list(range(parties))
    finally:
        scheduler.shutdown(wait=False)
        sched._scheduler = None
