"""Worker processes that die with the service.

A solver worker holds ~0.4 GB. When the service is killed (kill -9, OOM killer) its
``ProcessPoolExecutor`` cannot stop the workers, and they would live on. Each worker therefore

* asks Linux to SIGKILL it when its parent goes (``prctl(PR_SET_PDEATHSIG)``), and
* watches ``os.getppid()`` from a daemon thread (other systems, and the moment between the fork
  and the prctl call).

``PR_SET_PDEATHSIG`` fires when the *thread* that started the child ends, not only the process, so
the workers are started from one long-lived thread of this module (a request or job thread that
ends later must not take a busy worker with it).

Workers run at a lower CPU priority (``WORKER_NICE``): a solve takes a whole core for seconds,
and on a small machine it must not take it from the process that answers set-point polls.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
PARENT_POLL_S = 1.0
WORKER_NICE = 10  #: added to a worker's nice value (solves yield the CPU to the service process)

_spawner = ThreadPoolExecutor(1, thread_name_prefix="worker-spawner")


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process when `parent_pid` is no longer its parent."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    if os.getppid() != parent_pid:  # the parent died before the prctl call
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()


def start_worker(parent_pid: int) -> None:
    """Worker initializer: :func:`die_with_parent`, and yield the CPU to the service (``WORKER_NICE``)."""
    die_with_parent(parent_pid)
    lower_priority(WORKER_NICE)  # the parent-watch thread too


def lower_priority(increment: int = WORKER_NICE) -> None:
    """Add `increment` to the nice value of every thread of this process (Linux keeps one per
    thread: ``os.nice`` alone would leave the threads already started, such as a Dask worker's
    task thread, at the service's priority); threads started later inherit it."""
    tasks = Path("/proc/self/task")
    tids = [int(t) for t in os.listdir(tasks)] if tasks.is_dir() else [0]
    for tid in tids:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)  # the parent is gone: nobody will read our result


def _noop() -> None:
    return None


def worker_pool() -> ProcessPoolExecutor:
    """A pool of one spawned worker process that dies with this process, already started."""
    pool = ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=start_worker, initargs=(os.getpid(),)
    )
    # the first submit starts the worker, in the calling thread: do it from the long-lived spawner
    _spawner.submit(pool.submit, _noop).result()
    return pool


def worker_pids(pool: ProcessPoolExecutor) -> list[int]:
    """The process ids of `pool`'s workers (tests, health)."""
    processes = getattr(pool, "_processes", None) or {}
    return [int(pid) for pid in processes]
