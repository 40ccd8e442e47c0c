"""The last run of each site, for ``GET /api/v1/fleet/status`` and ``/metrics``.

Every run the planning service makes is recorded here, whatever executes it (this process, a
site's worker process, a Dask worker): when it started (the service's clock), how long it took,
its status and message, whether it re-used the site's kept model (``warm``), which worker ran it
and how long it waited for one. A site is *late* when its latest good plan starts more than one
re-plan interval before the current period (a run was missed or failed), *failing* when its last
run failed.

With an engine, each run is also stored as its site's last (:mod:`grid.store.site_runs`) and the
stored runs are read back at the first use, so that a restarted service still knows when each site
last ran and which ones are late or failing.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from grid.schedule import metrics
from grid.store import site_runs
from grid.store.plans import GOOD

log = logging.getLogger(__name__)

__all__ = ["GOOD", "FleetStatus", "SiteRun", "is_late"]


@dataclass(frozen=True)
class SiteRun:
    """One finished run of one site (times UTC, durations in seconds)."""

    site_id: str
    period_start: dt.datetime | None
    started_at: dt.datetime
    duration_s: float
    status: str
    message: str = ""
    #: True: the site's kept model was re-used; False: built anew; None: not known (a failed run)
    warm: bool | None = None
    #: where the plan was made: a Dask worker's address, ``pid N`` of a worker process, ``service``
    worker: str = ""
    #: from handing the run to the executor to its start there (None: ran at once, in process)
    queue_wait_s: float | None = None
    #: the latest period with a good plan (this run's when it succeeded)
    last_good_period: dt.datetime | None = None
    failures_in_a_row: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FleetStatus:
    """The last :class:`SiteRun` of each site (thread-safe); also sets the ``quartiere_fleet_*``
    gauges of :mod:`grid.schedule.metrics`. With `engine`, the runs are kept in its store too (see
    the module docstring); a store that cannot be read or written is logged, the runs in memory
    still count."""

    def __init__(self, engine: Engine | None = None) -> None:
        self._runs: dict[str, SiteRun] = {}
        self._lock = threading.Lock()
        self._engine = engine
        self._loaded = engine is None

    def _load(self) -> None:
        """Read the stored runs once (the caller holds the lock); runs recorded since win."""
        if self._loaded:
            return
        assert self._engine is not None
        try:
            stored = site_runs.load_runs(self._engine)
        except SQLAlchemyError as exc:
            log.warning("stored site runs not read (%s); the fleet status starts empty", exc)
            stored = {}
        self._loaded = True
        names = {f.name for f in fields(SiteRun)}
        for site_id, row in stored.items():
            if site_id not in self._runs:
                run = SiteRun(**{k: v for k, v in row.items() if k in names})
                self._runs[site_id] = run
                _export(run)

    def record(self, run: SiteRun) -> SiteRun:
        """Keep `run` as the site's last; returns it with ``last_good_period`` and
        ``failures_in_a_row`` carried over from the site's earlier runs."""
        with self._lock:
            self._load()
            before = self._runs.get(run.site_id)
            good = run.status in GOOD
            run = replace(
                run,
                last_good_period=run.period_start if good else (before.last_good_period if before else None),
                failures_in_a_row=0 if good else (before.failures_in_a_row if before else 0) + 1,
            )
            self._runs[run.site_id] = run
        _export(run)
        if self._engine is not None:
            try:
                site_runs.save_run(self._engine, run.as_dict())
            except SQLAlchemyError as exc:
                log.warning("last run of %s not stored (%s)", run.site_id, exc)
        return run

    def get(self, site_id: str) -> SiteRun | None:
        with self._lock:
            self._load()
            return self._runs.get(site_id)

    def snapshot(self) -> dict[str, SiteRun]:
        with self._lock:
            self._load()
            return dict(self._runs)


def is_late(run: SiteRun | None, now: dt.datetime, every_min: int) -> bool:
    """True when the site has no good plan for the period before the one `now` is in, i.e. its
    latest good plan trails the clock by more than one re-plan interval of `every_min` minutes."""
    if run is None or run.last_good_period is None:
        return True
    step = dt.timedelta(minutes=every_min)
    current = dt.datetime.fromtimestamp((now.timestamp() // step.total_seconds()) * step.total_seconds(), dt.UTC)
    return run.last_good_period < current - step


def _export(run: SiteRun) -> None:
    site = run.site_id
    metrics.FLEET_LAST_RUN.labels(site).set(run.started_at.timestamp())
    if run.last_good_period is not None:
        metrics.FLEET_LAST_PERIOD.labels(site).set(run.last_good_period.timestamp())
    metrics.FLEET_DURATION.labels(site).set(run.duration_s)
    metrics.FLEET_QUEUE_WAIT.labels(site).set(run.queue_wait_s if run.queue_wait_s is not None else 0.0)
    metrics.FLEET_WARM.labels(site).set(1.0 if run.warm else 0.0)
    metrics.FLEET_FAILURES.labels(site).set(run.failures_in_a_row)
    mode = "unknown" if run.warm is None else ("warm" if run.warm else "cold")
    metrics.FLEET_SITE.labels(site).info({"status": run.status, "worker": run.worker, "mode": mode})
