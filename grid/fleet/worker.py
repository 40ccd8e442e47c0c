"""What a Dask worker runs: one planning run of one site, on the models the worker keeps.

Each worker process holds one :class:`ModelLRU`: the last model of each site it planned
(:class:`models.warm.WarmPlanner`), least recently used first, under a memory budget in MB. A
site's next run on the same worker re-uses its model (warm); a site whose model was evicted, or
that comes to this worker after its own worker died, is built anew (cold) and planned as well.

A task carries everything it needs as data (:class:`FleetTask`: the job with the site and its
start state, and the input series): a worker reads no file, so the cluster needs no shared file
system.

The memory of a kept model is estimated from its LP's size: :data:`MODEL_BYTES_PER_ENTRY` bytes per
column and row. Measured on demo sites of 50 to 600 households (24 h at 15 min: 1.8x10^4 to
1.6x10^5 columns and rows) as the growth of the process's resident memory when one more model is
kept: 1.09 to 1.18 KB each, the Pyomo objects dominating (HiGHS's copy is a tenth of it).
``bench/fleet.py`` measures it again on the fleet.
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
from grid.schedule.runner import PlanJob, Planner, run_plan_job
from grid.series import SiteInputs
from models.plan import Plan
from models.solve import SolveOptions
from models.warm import WarmPlanner

#: resident memory of a kept model per LP column and row, bytes (see the module docstring)
MODEL_BYTES_PER_ENTRY = 1150


def model_mb(columns: int, rows: int) -> float:
    """Estimated resident memory of a kept model with `columns` and `rows`, MB."""
    return (columns + rows) * MODEL_BYTES_PER_ENTRY / 2**20


class ModelLRU:
    """A planner (``plan_site``'s signature) keeping the sites' models under `budget_mb`.

    After each run the least recently used models are dropped until the kept ones fit the budget;
    the model just used is always kept (a budget below one model keeps exactly one)."""

    def __init__(self, budget_mb: float = DEFAULT_BUDGET_MB) -> None:
        self.budget_mb = budget_mb
        self.planner = WarmPlanner()
        self._sizes: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        #: sites whose model was dropped to fit the budget, oldest first
        self.evicted: list[str] = []

    def __call__(
        self, site: Site, inputs: SiteInputs, index: pd.DatetimeIndex, options: SolveOptions | None = None
    ) -> Plan:
        plan = self.planner(site, inputs, index, options)
        dims = self.planner.kept_dimensions(site.id)
        with self._lock:
            self._sizes.pop(site.id, None)
            if dims is not None:  # a failed solve keeps no model
                self._sizes[site.id] = model_mb(*dims)
            while len(self._sizes) > 1 and sum(self._sizes.values()) > self.budget_mb:
                oldest, _ = self._sizes.popitem(last=False)
                self.planner.forget(oldest)
                self.evicted.append(oldest)
        return plan

    def kept(self) -> dict[str, float]:
        """Site id -> estimated MB of each kept model, least recently used first."""
        with self._lock:
            return dict(self._sizes)


_models: ModelLRU | None = None
_models_lock = threading.Lock()


def worker_models(budget_mb: float = DEFAULT_BUDGET_MB) -> ModelLRU:
    """This process's :class:`ModelLRU` (made at the first call; later calls set its budget)."""
    global _models
    with _models_lock:
        if _models is None:
            _models = ModelLRU(budget_mb)
        _models.budget_mb = budget_mb
        return _models


@dataclass(frozen=True)
class FleetTask:
    """One run of one site as it travels to a worker: the job, its input series, the worker's
    model budget (MB) and when the service handed it to the cluster (Unix time, s)."""

    job: PlanJob
    inputs: SiteInputs
    budget_mb: float
    submitted_at: float
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

    def __init__(self, budget_mb: float) -> None:
        self.budget_mb = budget_mb

    def setup(self, worker: Any) -> None:
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
    models = worker_models(task.budget_mb)
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
