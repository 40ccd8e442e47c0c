"""What a Dask worker runs: one planning run of one site, on the models the worker keeps.

Each worker process holds one :class:`ModelLRU`: the last model of each site it planned
(:class:`grid.fleet.parked.ParkingPlanner`: the built model and HiGHS's final basis, not the
HiGHS instance) under a memory budget in MB (models unused for a while go
first, see the class). A site's next run on the same worker re-uses its model (warm); a site
whose model was dropped, or that comes to this worker after its own worker died, is built anew
(cold) and planned as well.

A task carries everything it needs as data (:class:`FleetTask`: the job with the site and its
start state, and the input series): a worker reads no file, so the cluster needs no shared file
system.

The memory of a kept model is estimated from its LP's size: :data:`MODEL_BYTES_PER_ENTRY` bytes per
column and row. Measured on the first 12 sites of fleet seed 1 (24 h at 15 min, 1.2x10^6 columns
and rows in all) as the growth of the process's resident memory while they were planned and kept:
324 bytes each, the model stripped and parked (:mod:`grid.fleet.parked`; 527 bytes unstripped,
about three times as much again with the HiGHS instance kept). ``bench/fleet.py`` measures it
again on the whole fleet.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pandas as pd
from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from grid.domain import Site
from grid.fleet import DEFAULT_BUDGET_MB
from grid.fleet.parked import ParkingPlanner
from grid.schedule.runner import PlanJob, Planner, run_plan_job
from grid.schedule.workers import lower_priority
from grid.series import SiteInputs
from models.plan import Plan
from models.solve import SolveOptions

#: resident memory of a kept model per LP column and row, bytes (see the module docstring)
MODEL_BYTES_PER_ENTRY = 324


#: a kept model unused this long is the first to go when the budget is full, seconds (two runs
#: missed at the default re-plan interval of 15 min)
DEFAULT_IDLE_S = 1800.0


def model_mb(columns: int, rows: int) -> float:
    """Estimated resident memory of a kept model with `columns` and `rows`, MB."""
    return (columns + rows) * MODEL_BYTES_PER_ENTRY / 2**20


class ModelLRU:
    """A planner (``plan_site``'s signature) keeping the sites' models under `budget_mb`.

    After a run, while the kept models exceed the budget: first the models not used for `idle_s`
    seconds go, least recently used first (a site that moved to another worker, or was retired);
    then, if that is not enough, the model just built is not kept. The sites already kept stay
    warm: a round visits every site once, and a plain LRU smaller than the round would drop each
    model just before its site comes again (no warm run at all). A model is kept when it is the
    only one, whatever its size.
    """

    def __init__(self, budget_mb: float = DEFAULT_BUDGET_MB, idle_s: float = DEFAULT_IDLE_S) -> None:
        self.budget_mb = budget_mb
        self.idle_s = idle_s
        self.planner = ParkingPlanner()
        self._sizes: OrderedDict[str, float] = OrderedDict()  # least recently used first
        self._used: dict[str, float] = {}  # site id -> time.monotonic() of its last run
        self._lock = threading.Lock()
        #: sites whose model was dropped to fit the budget, in order
        self.evicted: list[str] = []

    def __call__(
        self, site: Site, inputs: SiteInputs, index: pd.DatetimeIndex, options: SolveOptions | None = None
    ) -> Plan:
        plan = self.planner(site, inputs, index, options)
        dims = self.planner.kept_dimensions(site.id)
        now = time.monotonic()
        with self._lock:
            self._sizes.pop(site.id, None)
            if dims is not None:  # a failed solve keeps no model
                self._sizes[site.id] = model_mb(*dims)
                self._used[site.id] = now
            for other in [s for s in self._sizes if s != site.id]:
                if sum(self._sizes.values()) <= self.budget_mb:
                    break
                if now - self._used[other] >= self.idle_s:
                    self._drop(other)
            if len(self._sizes) > 1 and sum(self._sizes.values()) > self.budget_mb and site.id in self._sizes:
                self._drop(site.id)
        return plan

    def _drop(self, site_id: str) -> None:
        self._sizes.pop(site_id, None)
        self._used.pop(site_id, None)
        self.planner.forget(site_id)
        self.evicted.append(site_id)

    def kept(self) -> dict[str, float]:
        """Site id -> estimated MB of each kept model, least recently used first."""
        with self._lock:
            return dict(self._sizes)


_models: ModelLRU | None = None
_models_lock = threading.Lock()


def worker_models(budget_mb: float = DEFAULT_BUDGET_MB, idle_s: float = DEFAULT_IDLE_S) -> ModelLRU:
    """This process's :class:`ModelLRU` (made at the first call; later calls set its budget)."""
    global _models
    with _models_lock:
        if _models is None:
            _models = ModelLRU(budget_mb, idle_s)
        _models.budget_mb, _models.idle_s = budget_mb, idle_s
        return _models


@dataclass(frozen=True)
class FleetTask:
    """One run of one site as it travels to a worker: the job, its input series, the worker's
    model budget (MB) and when the service handed it to the cluster (Unix time, s)."""

    job: PlanJob
    inputs: SiteInputs
    budget_mb: float
    submitted_at: float
    #: a kept model unused this long goes first when the budget is full (s)
    idle_s: float = DEFAULT_IDLE_S
    #: plans instead of the worker's :class:`ModelLRU` (tests; must be importable on the worker)
    planner: Planner | None = None


@dataclass(frozen=True)
class TaskResult:
    """A finished task: the plan's header and JSON, the worker, warm or cold, the wait for a worker
    (s) and the worker's kept models afterwards (count, estimated MB)."""

    header: dict[str, object]
    body_json: str
    worker: str
    warm: bool | None
    queue_wait_s: float
    kept_models: int
    kept_mb: float


class FleetWorkerPlugin(WorkerPlugin):
    """Loads the planner on every worker of the cluster, and on workers that join later, before
    the first task comes (the first task's wait then counts the queue, not the imports)."""

    name = "quartiere-fleet"

    def __init__(self, budget_mb: float, nice: int = 0) -> None:
        self.budget_mb = budget_mb
        self.nice = nice

    def setup(self, worker: Any) -> None:
        if self.nice:  # an embedded cluster: solves yield the CPU to the service answering polls
            lower_priority(self.nice)
        worker_models(self.budget_mb)


def worker_name() -> str:
    """The address of the Dask worker running the current task (``local`` outside a worker)."""
    try:
        return str(get_worker().address)
    except ValueError:
        return "local"


def plan_task(task: FleetTask) -> TaskResult:
    """Run `task` on this worker (Dask calls this); input errors come back as a failed plan."""
    started = time.time()
    models = worker_models(task.budget_mb, task.idle_s)
    header, body_json = run_plan_job(task.job, None, task.inputs, task.planner or models)
    kept = models.kept()
    warm = header.get("warm_start")
    return TaskResult(
        header,
        body_json,
        worker_name(),
        None if warm is None else bool(warm),
        max(0.0, started - task.submitted_at),
        len(kept),
        sum(kept.values()),
    )
