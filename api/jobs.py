"""Re-plan jobs started over the API: run in a small thread pool, one job per site at a time.

Jobs live in memory (a restart forgets them; the plans they made are in the store).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from grid.schedule.runner import PlanningService

ACTIVE = ("queued", "running")


@dataclass
class Job:
    """One re-plan request. ``status``: queued, running, succeeded, failed or skipped."""

    job_id: str
    site_id: str
    status: str
    submitted_at: dt.datetime
    finished_at: dt.datetime | None = None
    plan_id: str | None = None
    plan_status: str | None = None
    message: str = ""
    trigger: str = "manual"  # manual, limit_order (a grid-operator order came or was cancelled)


class JobManager:
    def __init__(self, service: PlanningService, clock: Callable[[], dt.datetime], workers: int = 2) -> None:
        self.service = service
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="replan")
        self._jobs: dict[str, Job] = {}
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def submit(self, site_id: str, trigger: str = "manual") -> tuple[Job, bool]:
        """Start a job for `site_id`, or return the one already active; (job, created).

        A job still queued takes the run it would start anyway; one already running may have read
        its inputs before the change that asks for this one, so a new job is queued behind it."""
        with self._lock:
            for job in self._jobs.values():
                if job.site_id == site_id and (
                    job.status == "queued" or (job.status in ACTIVE and trigger == "manual")
                ):
                    return job, False
            job = Job(uuid.uuid4().hex, site_id, "queued", self.clock(), trigger=trigger)
            self._jobs[job.job_id] = job
            self._futures[job.job_id] = self._pool.submit(self._run, job)
            return job, True

    def _run(self, job: Job) -> None:
        job.status = "running"
        try:
            result = self.service.run(job.site_id, self.clock(), trigger=job.trigger, wait=job.trigger != "manual")
        except Exception as exc:  # recorded on the job; the pool thread must survive
            job.status, job.message = "failed", f"{type(exc).__name__}: {exc}"
        else:
            job.plan_id, job.plan_status, job.message = result.plan_id, result.status, result.message
            job.status = {"skipped": "skipped", "failed": "failed"}.get(result.status, "succeeded")
        job.finished_at = self.clock()

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def wait(self, job_id: str, timeout_s: float | None = None) -> Job | None:
        """Block until the job is done (for tests and the CLI)."""
        future = self._futures.get(job_id)
        if future is not None:
            future.result(timeout_s)
        return self._jobs.get(job_id)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
