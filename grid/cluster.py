"""Dask clients for the sweeps and the fleet: an existing client, a scheduler's address
(``tcp://host:8786``), or an embedded ``LocalCluster`` of worker processes with one thread each.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

# Settings of the LocalCluster started here (sweeps, fleet rounds):
# - the worker's statistical profiler samples the task thread every 10 ms under the GIL: pure
#   overhead for a batch of Pyomo builds (pure Python) that nobody profiles;
# - the nanny's default environment sets MALLOC_TRIM_THRESHOLD_ (64 KiB). Any explicit value, even
#   a large one, switches off glibc's dynamic mmap threshold, which then stays at 128 KiB: every
#   numpy array of a model build above that is mmap'ed, faulted in and unmapped again (measured
#   on the demo sweep: 3x the system time and 9-11 % more CPU per scenario than the same case in a
#   plain process). The workers' environment below leaves it unset, so they allocate as the
#   serial run does. A nanny also copies its environment into this process's os.environ, so
#   after any default LocalCluster here every later worker would inherit the variable:
#   :func:`local_cluster` takes it out of the environment while its cluster runs;
# - the scheduler's system monitor (psutil every 500 ms, disk I/O included) and the nannies' memory
#   monitors (psutil on each worker every 100 ms) run in this process: prominent in a py-spy sample
#   of its event loop during a fleet round, on the cores the workers solve on. Every 5 s and every
#   1 s (a worker over its memory limit is still stopped); bench/fleet.py measured no drop of the
#   service's CPU per site from it (91 ms before, 94 ms after: within the load's noise).
MALLOC_ENV = "MALLOC_TRIM_THRESHOLD_"
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.nanny.pre-spawn-environ": {
        "OMP_NUM_THREADS": 1,
        "MKL_NUM_THREADS": 1,
        "OPENBLAS_NUM_THREADS": 1,
    },
}


@contextlib.contextmanager
def _unset_env(name: str) -> Iterator[None]:
    """`name` removed from os.environ meanwhile (child processes do not inherit it), then restored."""
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[name] = saved


@contextlib.contextmanager
def local_cluster(n_workers: int, config: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """A client of a fresh LocalCluster of `n_workers` processes, one thread each, configured as
    :data:`LOCAL_CLUSTER_CONFIG` says (the workers allocate memory as a plain process does)."""
    import dask
    from distributed import Client, LocalCluster

    nanny_log = logging.getLogger("distributed.nanny")
    level = nanny_log.level
    try:
        with (
            _unset_env(MALLOC_ENV),
            dask.config.set({**LOCAL_CLUSTER_CONFIG, **(config or {})}),
            LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
            Client(cluster) as client,
        ):
            try:
                yield client
            finally:
                # The cluster closes next. A nanny gives its worker 4 s to exit, then kills it and
                # warns "Worker process still alive after 4.0 seconds, killing": on a busy machine
                # a worker freeing a large model takes longer. It holds no result by then (each
                # one was gathered and stored as it came), so the warning is silenced here only.
                nanny_log.setLevel(logging.ERROR)
    finally:
        nanny_log.setLevel(level)


@contextlib.contextmanager
def dask_client(
    client: Any, n_workers: int, scheduler: str | None, config: Mapping[str, Any] | None = None
) -> Iterator[Any]:
    """The given client, a client of `scheduler`, or a fresh LocalCluster of processes."""
    if client is not None:
        yield client
        return
    if scheduler is not None:
        from distributed import Client

        with Client(scheduler) as remote:
            yield remote
        return
    with local_cluster(n_workers, config) as local:
        yield local
