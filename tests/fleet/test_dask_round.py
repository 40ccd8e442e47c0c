"""Fleet rounds on a 2-worker LocalCluster: plans equal to serial plans, site affinity and warm
models, a worker killed mid-round, a site with broken input, the model budget.

No sleeps: the worker-death test waits on Dask's own queue and event (:mod:`tests.fleet.gate`).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grid.fleet.executor import DaskExecutor, rendezvous
from grid.fleet.round import plan_round
from grid.fleet.status import GOOD
from grid.series import SiteInputs
from tests.fleet import gate
from tests.fleet.kit import (
    NOW,
    assert_same_plan,
    cluster,
    dask_service,
    fleet,
    fleet_files,
    fleet_inputs,
    latest_body,
    scratch_engine,
    serial_service,
    stored_plans,
)

__all__ = ["cluster", "fleet", "fleet_files", "fleet_inputs"]  # fixtures

pytestmark = pytest.mark.slow
BOUND_S = 120  # a bound on waiting for the cluster, not a timing
WARM_CHECK_EVERY = 4  # warm plans compared with serial ones: every 4th site (test time)
SMALL_ROUND = 6  # sites of the rounds that test one thing besides


def test_round_plans_every_site_as_a_serial_run_would(
    cluster: Any, fleet_files: dict[str, Path], fleet_inputs: dict[str, SiteInputs], tmp_path: Path
) -> None:
    engine = scratch_engine(tmp_path, "dask")
    executor = DaskExecutor(cluster)
    service = dask_service(engine, fleet_files, fleet_inputs, executor)
    reference = serial_service(scratch_engine(tmp_path, "serial"), fleet_files, fleet_inputs)
    sites = sorted(fleet_files)
    first = plan_round(service, NOW)
    assert [r.site_id for r in first.results] == sites
    assert all(r.status in GOOD for r in first.results), [(r.site_id, r.message) for r in first.results]
    workers = {address for address in cluster.scheduler_info(n_workers=-1)["workers"]}
    assert {run.worker for run in first.runs.values()} == workers  # both workers planned
    for site_id in sites:
        run = first.runs[site_id]
        # the site went to its worker by the rendezvous hash, and built its model there
        assert run.worker == executor.worker_for(site_id)
        assert run.warm is False and run.queue_wait_s is not None and run.queue_wait_s >= 0
        assert reference.run(site_id, NOW).status in GOOD
        assert_same_plan(latest_body(engine, site_id), latest_body(reference.engine, site_id))

    # the same period again: every site on the same worker, on its kept model; the same optimum as
    # a serial second run (checked on a few sites; set-points may differ between alternative
    # optima: a warm start may end at another vertex)
    second = plan_round(service, NOW)
    for site_id in sites:
        run = second.runs[site_id]
        assert run.status in GOOD and run.warm is True and run.worker == first.runs[site_id].worker
        assert len(stored_plans(engine, site_id)) == 2
    for site_id in sites[::WARM_CHECK_EVERY]:
        assert reference.run(site_id, NOW).status in GOOD
        assert_same_plan(latest_body(engine, site_id), latest_body(reference.engine, site_id), setpoints=False)


def test_killed_worker_loses_no_run(
    cluster: Any, fleet_files: dict[str, Path], fleet_inputs: dict[str, SiteInputs], tmp_path: Path
) -> None:
    from distributed import Event, Queue, Variable

    engine = scratch_engine(tmp_path, "kill")
    executor = DaskExecutor(cluster, planner=gate.gated_planner)
    service = dask_service(engine, fleet_files, fleet_inputs, executor)
    gated = sorted(fleet_files)[3]
    Variable(gate.SITE, client=cluster).set(gated)
    entered, release = Queue(gate.ENTERED, client=cluster), Event(gate.RELEASE, client=cluster)
    release.clear()
    doomed = executor.worker_for(gated)
    report: list[Any] = []
    round_thread = threading.Thread(target=lambda: report.append(plan_round(service, NOW)))
    round_thread.start()
    try:
        pid = entered.get(timeout=BOUND_S)  # the gated site is being solved by process `pid`
        os.kill(pid, signal.SIGKILL)
    finally:
        release.set()
        round_thread.join(BOUND_S)
    assert not round_thread.is_alive()
    (done,) = report
    assert all(r.status in GOOD for r in done.results), [(r.site_id, r.message) for r in done.results]
    for site_id in fleet_files:
        assert len(stored_plans(engine, site_id)) == 1, site_id  # planned once, stored once
    moved = done.runs[gated]
    assert moved.worker != doomed and moved.warm is False  # rebuilt cold on another worker process

    # its next run is on time, on a live worker
    assert service.run(gated, NOW).status in GOOD
    last = service.status.get(gated)
    assert last is not None and last.worker in cluster.scheduler_info(n_workers=-1)["workers"]


def test_site_with_broken_input_fails_alone_with_its_reason(
    cluster: Any, fleet_files: dict[str, Path], fleet_inputs: dict[str, SiteInputs], tmp_path: Path
) -> None:
    files = {site_id: fleet_files[site_id] for site_id in sorted(fleet_files)[:SMALL_ROUND]}
    broken_id = sorted(files)[4]
    good = fleet_inputs[broken_id]
    base = good.base_load_kw.copy()
    household = str(base.columns[2])
    base.iloc[3, 2] = np.nan  # a hole in one household's load, as a broken feed would leave it
    inputs = {**fleet_inputs, broken_id: dataclasses.replace(good, base_load_kw=base)}
    engine = scratch_engine(tmp_path, "broken")
    service = dask_service(engine, files, inputs, DaskExecutor(cluster))
    report = plan_round(service, NOW)
    failed = [r for r in report.results if r.status == "failed"]
    assert [r.site_id for r in failed] == [broken_id]
    # the reason names the series, the household and the interval (checked on the worker)
    assert "input error" in failed[0].message and f"base_load_kw[{household}]" in failed[0].message
    assert str(base.index[3].isoformat()) in failed[0].message
    assert sum(r.status in GOOD for r in report.results) == len(files) - 1
    assert report.runs[broken_id].failures_in_a_row == 1 and report.runs[broken_id].worker.startswith("tcp://")


def test_evicted_site_plans_cold_and_correctly(
    cluster: Any, fleet_files: dict[str, Path], fleet_inputs: dict[str, SiteInputs], tmp_path: Path
) -> None:
    # a budget below one model: each worker keeps only the model it used last
    executor = DaskExecutor(cluster, budget_mb=1e-3)
    names = executor.workers()
    one = next(iter(names))
    a, b = [s for s in sorted(fleet_files) if rendezvous(s, names) == one][:2]
    engine = scratch_engine(tmp_path, "lru")
    service = dask_service(engine, {a: fleet_files[a], b: fleet_files[b]}, fleet_inputs, executor)
    reference = serial_service(scratch_engine(tmp_path, "ref"), {a: fleet_files[a]}, fleet_inputs)
    runs = []
    for site_id in (a, a, b, a):  # the first run of a also drops every other model of the worker
        assert service.run(site_id, NOW).status in GOOD
        runs.append(service.status.get(site_id))
    assert [r.warm for r in runs[1:] if r is not None] == [True, False, False]  # b evicted a
    assert {r.worker for r in runs if r is not None} == {one}
    for _ in range(3):
        assert reference.run(a, NOW).status in GOOD
    assert_same_plan(latest_body(engine, a), latest_body(reference.engine, a), setpoints=False)
