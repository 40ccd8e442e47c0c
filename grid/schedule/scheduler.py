"""The APScheduler side: one cron job per site, every `every_min` minutes on the clock's quarter
hours, persisted in the project database (SQLAlchemyJobStore on the store's engine); and one job per
site that evaluates the finished intervals against the plan in force (realised against planned,
:mod:`grid.schedule.performance`) half a minute after each quarter-hour, catching up after a
restart.

Jobs are stored by reference (``grid.schedule.scheduler:scheduled_run`` with the site id), so the
function looks the running :class:`PlanningService` up here instead of pickling it. No overlap:
``max_instances=1`` and ``coalesce=True`` (missed runs collapse into one), plus the per-site lock
and the period claim of the service.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable

import pandas as pd
import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from grid.errors import InputError
from grid.forecast.site import train_global_model
from grid.schedule.performance import evaluate_and_publish
from grid.schedule.runner import PlanningService, RunResult
from grid.store.schema import limit_orders

log = logging.getLogger(__name__)
JOB_TABLE = "apscheduler_jobs"
#: the evaluation runs this long after each quarter-hour (the interval's last telemetry is in)
EVALUATE_EVERY_MIN = 15
EVALUATE_AFTER_S = 30

#: the stored sites are looked at this often for new or retired ones (s); a PUT over the API in
#: this process adds its site's jobs at once
SYNC_SITES_EVERY_S = 60
SYNC_JOB_ID = "sync-sites"
#: how often the limit orders in the store are looked at: one placed or cancelled by another
#: writer (``grid limits add``, another instance, SQL) re-plans its site within this time
WATCH_ORDERS_EVERY_S = 10
WATCH_ORDERS_JOB_ID = "watch-orders"
#: the global LightGBM load model of every site is retrained once a day, at this UTC time
#: (:func:`grid.forecast.site.train_global_model`: seconds per site)
TRAIN_JOB_ID = "train-forecast-models"
TRAIN_AT_UTC = {"hour": 1, "minute": 7}
_orders_seen: dict[str, tuple[object, ...]] = {}

#: threads that run the jobs. A run's thread mostly waits (on its solver process or its Dask task):
#: a fixed number, not one per site, so that sites added later as data get threads too and a
#: fleet of thousands does not mean thousands of threads; beyond it, due jobs wait their turn
#: (the workers behind them are the limit then, not the threads)
RUN_THREADS = 32

_service: PlanningService | None = None
_scheduler: BackgroundScheduler | None = None
_every_min = 15
_misfire_grace_s = 300


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_clock: Callable[[], dt.datetime] = wall_clock


def scheduled_run(site_id: str) -> RunResult | None:
    """The job: plan `site_id` for the current period (by the service's clock, the wall clock
    unless a replay clock was given to :func:`make_scheduler`)."""
    if _service is None:
        log.warning("scheduled run for %s without a running planning service", site_id)
        return None
    if site_id not in _service.site_ids():  # a job left from an earlier configuration, a retired site
        log.warning("scheduled run for site %s, which this service does not plan; skipped", site_id)
        return None
    return _service.run(site_id, _clock(), trigger="scheduled")


def scheduled_evaluation(site_id: str) -> int | None:
    """The job: evaluate the intervals of `site_id` that ended by now (by the service's clock) and
    set the performance gauges; how many intervals, None without a service or for another site."""
    if _service is None or not _service.knows(site_id):
        log.warning("scheduled evaluation for site %s, which no running service plans; skipped", site_id)
        return None
    try:
        return evaluate_and_publish(_service.engine, site_id, _clock())
    except InputError as exc:  # the site is not (yet) in the store: the next run tries again
        log.warning("evaluation of site %s skipped: %s", site_id, exc)
        return None


def job_id(site_id: str) -> str:
    return f"replan:{site_id}"


def evaluation_job_id(site_id: str) -> str:
    return f"evaluate:{site_id}"


def sync_sites() -> list[str]:
    """The job that follows the sites stored as data (``PUT``/``DELETE /api/v1/sites/{site}``,
    ``grid sites import``): adds the jobs of a site stored since (its first run at once) and removes
    those of a retired one. Returns the sites added."""
    scheduler, service = _scheduler, _service
    if scheduler is None or service is None:
        return []
    wanted = set(service.site_ids())
    have = {job.args[0] for job in scheduler.get_jobs() if job.id.startswith(job_id(""))}
    added = sorted(wanted - have)
    for site_id in added:
        log.info("site %s is stored as data: planned from now on", site_id)
        _add_site_jobs(scheduler, site_id, run_now=True)
    for site_id in sorted(have - wanted):
        log.info("site %s is retired or gone: no longer planned", site_id)
        for jid in (job_id(site_id), evaluation_job_id(site_id)):
            if scheduler.get_job(jid) is not None:
                scheduler.remove_job(jid)
    return added


def orders_fingerprint(engine: Engine, site_id: str) -> tuple[object, ...]:
    """What changes when an order of `site_id` is placed or cancelled: (count, newest, last cancel)."""
    t = limit_orders.c
    query = sa.select(sa.func.count(), sa.func.max(t.created_at), sa.func.max(t.cancelled_at)).where(
        t.site_id == site_id
    )
    with engine.connect() as conn:
        return tuple(conn.execute(query).one())


def note_orders(engine: Engine, site_id: str) -> None:
    """Count the orders of `site_id` as seen (the caller re-plans it already: ``POST .../limits``)."""
    _orders_seen[site_id] = orders_fingerprint(engine, site_id)


def watch_orders() -> list[str]:
    """The job: re-plan at once every site whose limit orders changed since last seen, whoever
    stored them; a site whose run is busy is tried again next time. Returns the sites re-planned."""
    service = _service
    if service is None:
        return []
    replanned = []
    for site_id in service.site_ids():
        try:
            now_seen = orders_fingerprint(service.engine, site_id)
        except sa.exc.SQLAlchemyError as exc:  # the database away: the next look tries again
            log.warning("limit orders of %s not read: %s", site_id, exc)
            continue
        before = _orders_seen.setdefault(site_id, now_seen)
        if before == now_seen:
            continue
        result = service.run(site_id, _clock(), trigger="limit_order")
        if result.status != "skipped":
            _orders_seen[site_id] = now_seen
            replanned.append(site_id)
            log.info("limit orders of %s changed: re-planned (%s)", site_id, result.status)
    return replanned


def train_forecast_models() -> list[str]:
    """The daily job: retrain each planned site's global load model from its measurements (by
    the service's clock); the next forecasts choose it where its rolling backtest wins. Returns
    the sites with a new model."""
    service = _service
    if service is None:
        return []
    trained = []
    for site_id in service.site_ids():
        try:
            if train_global_model(service.engine, site_id, pd.Timestamp(_clock())) is not None:
                trained.append(site_id)
        except (InputError, sa.exc.SQLAlchemyError, OSError) as exc:  # the next day tries again
            log.warning("load model of %s not retrained: %s", site_id, exc)
    return trained


def _add_site_jobs(scheduler: BackgroundScheduler, site_id: str, run_now: bool) -> None:
    """The re-plan and the evaluation job of `site_id` (replacing stored ones of the same id)."""
    kwargs = {"next_run_time": dt.datetime.now(dt.UTC)} if run_now else {}
    jobs = (
        ("scheduled_run", CronTrigger(minute=f"*/{_every_min}", second=0, timezone=dt.UTC), job_id, "re-plan"),
        (
            "scheduled_evaluation",
            CronTrigger(minute=f"*/{EVALUATE_EVERY_MIN}", second=EVALUATE_AFTER_S, timezone=dt.UTC),
            evaluation_job_id,
            "evaluate",
        ),
    )
    for func, trigger, make_id, verb in jobs:
        scheduler.add_job(
            f"grid.schedule.scheduler:{func}",
            trigger,
            args=[site_id],
            id=make_id(site_id),
            name=f"{verb} {site_id}",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=_misfire_grace_s,
            **kwargs,
        )


def make_scheduler(
    service: PlanningService,
    every_min: int = 15,
    misfire_grace_s: int = 300,
    run_now: bool = True,
    clock: Callable[[], dt.datetime] | None = None,
) -> BackgroundScheduler:
    """A (not yet started) scheduler with one re-plan job per site of `service`.

    `every_min` must divide 60 so that runs fall on the same minutes every hour.
    """
    if every_min <= 0 or 60 % every_min:
        raise ValueError(f"every_min must divide 60, got {every_min}")
    global _service, _clock, _scheduler, _every_min, _misfire_grace_s
    _service = service
    _clock = clock or wall_clock
    _every_min, _misfire_grace_s = every_min, misfire_grace_s
    site_ids = service.site_ids()
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=service.engine, tablename=JOB_TABLE)},
        executors={"default": ThreadPoolExecutor(RUN_THREADS)},
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": misfire_grace_s},
        timezone=dt.UTC,
    )
    _scheduler = scheduler
    for site_id in site_ids:
        _add_site_jobs(scheduler, site_id, run_now)
    _add_interval_job(scheduler, "sync_sites", SYNC_SITES_EVERY_S, SYNC_JOB_ID, "follow the sites stored as data")
    _orders_seen.clear()
    for site_id in site_ids:  # what is stored now counts as seen: the first runs plan with it
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            note_orders(service.engine, site_id)
    _add_interval_job(
        scheduler, "watch_orders", WATCH_ORDERS_EVERY_S, WATCH_ORDERS_JOB_ID, "re-plan on limit orders from any writer"
    )
    scheduler.add_job(
        "grid.schedule.scheduler:train_forecast_models",
        CronTrigger(**TRAIN_AT_UTC, timezone=dt.UTC),
        id=TRAIN_JOB_ID,
        name="retrain the global load models",
        replace_existing=True,
        max_instances=1,
        coalesce=True,
    )
    return scheduler


def _add_interval_job(scheduler: BackgroundScheduler, func: str, every_s: float, jid: str, name: str) -> None:
    """A service-wide job `func` of this module every `every_s` seconds (replacing a stored one of
    the same id; never two at once, missed runs collapse into one)."""
    scheduler.add_job(
        f"grid.schedule.scheduler:{func}",
        IntervalTrigger(seconds=every_s),
        id=jid,
        name=name,
        replace_existing=True,
        max_instances=1,
        coalesce=True,
    )
