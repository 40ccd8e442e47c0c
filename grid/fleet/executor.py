"""Plan jobs as tasks on a Dask cluster, each site on "its" worker.

:class:`DaskExecutor` is the :class:`grid.schedule.runner.JobExecutor` of a fleet: the planning
service reads a run's inputs, hands the job and its input series to the cluster as one task
(:func:`grid.fleet.worker.plan_task`), and stores what comes back. The cluster is an embedded
``LocalCluster`` of worker processes by default, or the one a scheduler address names.

Site affinity: each site goes to the worker that wins a rendezvous hash of the site id and the
workers' names over the workers alive now, so that the site's next run finds its model there.
A worker that leaves moves only its own sites (to the others, evenly); a LocalCluster worker that
its nanny restarts keeps its name and gets its sites back (cold: its models died with it). The
restriction is loose (``allow_other_workers``): a task whose worker died is run by another one,
and its future resolves once, so the run is stored once and on time. The embedded cluster does not
steal work (a stolen task would plan cold); give a real cluster's scheduler
``distributed.scheduler.work-stealing: false`` for the same.

One run of a site at a time is the service's per-site lock; runs of different sites are tasks of
their own and run in parallel on as many worker threads as the cluster has.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from typing import Any

from grid.cluster import dask_client
from grid.fleet import DEFAULT_BUDGET_MB
from grid.fleet.worker import DEFAULT_IDLE_S, FleetTask, FleetWorkerPlugin, plan_task
from grid.schedule.runner import Executed, PlanJob, Planner
from grid.schedule.workers import WORKER_NICE
from grid.series import SiteInputs

#: the embedded cluster keeps each task on its site's worker (see the module docstring)
FLEET_CLUSTER_CONFIG = {"distributed.scheduler.work-stealing": False}
#: how long the list of workers is re-used before the scheduler is asked again, seconds
WORKERS_TTL_S = 1.0


def rendezvous(site_id: str, names: dict[str, str]) -> str | None:
    """The address (of `names`: address -> worker name) whose name ranks highest for `site_id`."""
    if not names:
        return None

    def weight(address: str) -> bytes:
        return hashlib.blake2b(f"{site_id}\x00{names[address]}".encode(), digest_size=8).digest()

    return max(names, key=weight)


class DaskExecutor:
    """Runs plan jobs on a Dask cluster (see the module docstring).

    Parameters
    ----------
    client : a ``distributed.Client``, not closed by :meth:`close`.
    budget_mb : memory budget of the kept models of each worker, MB.
    planner : plans on the workers instead of their kept models (tests; importable there).
    idle_s : a kept model unused this long goes first when a worker's budget is full, seconds.
    """

    def __init__(
        self,
        client: Any,
        budget_mb: float = DEFAULT_BUDGET_MB,
        planner: Planner | None = None,
        idle_s: float = DEFAULT_IDLE_S,
    ) -> None:
        self.client = client
        self.budget_mb = budget_mb
        self.idle_s = idle_s
        self.planner = planner
        self._stack = contextlib.ExitStack()
        self._names: dict[str, str] = {}
        self._names_at = -WORKERS_TTL_S
        self._lock = threading.Lock()

    @classmethod
    def start(
        cls, scheduler: str | None = None, n_workers: int = 2, budget_mb: float = DEFAULT_BUDGET_MB
    ) -> DaskExecutor:
        """A client of `scheduler`, or of a new LocalCluster of `n_workers` processes; both closed
        by :meth:`close`."""
        stack = contextlib.ExitStack()
        client = stack.enter_context(dask_client(None, n_workers, scheduler, FLEET_CLUSTER_CONFIG))
        executor = cls(client, budget_mb)
        executor._stack = stack
        # blocks until every worker loaded the planner; an embedded cluster's workers run at a
        # lower CPU priority than the service (as its solver processes do: WORKER_NICE)
        client.register_plugin(FleetWorkerPlugin(budget_mb, WORKER_NICE if scheduler is None else 0))
        return executor

    def workers(self) -> dict[str, str]:
        """Address -> name of the workers alive (asked again after :data:`WORKERS_TTL_S`)."""
        with self._lock:
            if time.monotonic() - self._names_at >= WORKERS_TTL_S:
                info = self.client.scheduler_info(n_workers=-1)["workers"]
                self._names = {address: str(w.get("name", address)) for address, w in info.items()}
                self._names_at = time.monotonic()
            return dict(self._names)

    def worker_for(self, site_id: str) -> str | None:
        """The address of the worker that plans `site_id` while the cluster stays as it is."""
        return rendezvous(site_id, self.workers())

    def run(self, job: PlanJob, inputs: SiteInputs) -> Executed:
        """Plan `job` on its site's worker and wait for the result (raises what the task raised)."""
        worker = self.worker_for(job.site.id)
        task = FleetTask(job, inputs, self.budget_mb, time.time(), self.idle_s, self.planner)
        future = self.client.submit(
            plan_task,
            task,
            key=f"plan-{job.site.id}-{job.start:%Y%m%dT%H%M}-{uuid.uuid4().hex[:8]}",
            pure=False,
            workers=[worker] if worker else None,
            allow_other_workers=True,
        )
        try:
            result = future.result()
        finally:
            future.release()
        return Executed(result.header, result.body_json, result.worker, result.warm, result.queue_wait_s)

    def close(self) -> None:
        """Close the client and the cluster this executor started (not a client given to it)."""
        self._stack.close()
