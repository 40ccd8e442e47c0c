"""The solver processes and the embedded Dask cluster of `grid serve` solve at a lower CPU
priority than the service that answers set-point polls, on every thread of each worker (Linux
keeps a nice value per thread)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grid.fleet.executor import DaskExecutor
from grid.schedule.workers import WORKER_NICE

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="per-thread nice values: Linux")


def thread_nice_values() -> list[int]:
    """The nice value of every thread of the calling process."""
    return [os.getpriority(os.PRIO_PROCESS, int(tid)) for tid in os.listdir("/proc/self/task")]


def test_embedded_workers_yield_the_cpu_to_the_service() -> None:
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    executor = DaskExecutor.start(None, n_workers=1, budget_mb=100.0)
    try:
        per_worker = executor.client.run(thread_nice_values)
        in_task = executor.client.submit(thread_nice_values, pure=False).result()
    finally:
        executor.close()
    assert per_worker, "no worker answered"
    for address, values in per_worker.items():
        assert len(values) > 1 and min(values) >= min(19, ours + WORKER_NICE), (address, values)
    assert min(in_task) >= min(19, ours + WORKER_NICE), in_task
    assert os.getpriority(os.PRIO_PROCESS, 0) == ours  # the service itself is untouched


def test_solver_process_threads_yield_the_cpu_to_the_service() -> None:
    """The one-process-per-site pool: every thread of its worker (the parent watch included)."""
    from grid.schedule.workers import worker_pool

    ours = os.getpriority(os.PRIO_PROCESS, 0)
    pool = worker_pool()
    try:
        values = pool.submit(thread_nice_values).result()
    finally:
        pool.shutdown()
    assert len(values) > 1 and min(values) >= min(19, ours + WORKER_NICE), values
