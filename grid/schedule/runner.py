"""One planning run for one site: inputs -> plan -> store -> publish, with the clock as a parameter.

:class:`PlanningService` is shared by the scheduler and the API's re-plan trigger. One run per
site at a time (a per-site lock; a run that finds the site busy is skipped, never queued). A
scheduled run first claims its period (the quarter-hour it plans from) in the store, so a
restarted service never plans a period twice. A failed run (input error, solver failure or time
limit, planner crash) stores a failed plan row with the reason and marks the last good plan stale;
set-points keep coming from that plan.
"""

from __future__ import annotations

import datetime as dt
import logging
import pickle
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from grid.domain import Site, load_site
from grid.errors import InputError, InputErrors
from grid.fleet.status import FleetStatus, SiteRun
from grid.schedule import metrics
from grid.schedule.live import (
    StoredStates,
    ended_sessions,
    last_hour_followed,
    limit_orders,
    planned_sessions,
    registered,
    with_orders,
)
from grid.schedule.publish import Publisher
from grid.schedule.setpoints import setpoints
from grid.schedule.state import StateSource, max_age_from_env, resolve_start_state
from grid.schedule.workers import worker_pids, worker_pool
from grid.series import SiteInputs, load_inputs
from grid.store import plans as plan_store
from grid.store import site_versions as site_store
from grid.store.live import LimitOrder
from grid.timeindex import horizon_index, iso
from models.plan import Plan
from models.solve import SolveOptions
from models.warm import plan_site_warm

log = logging.getLogger(__name__)
#: most runs a round (:meth:`PlanningService.run_round`) hands out at once; more wait their turn
ROUND_THREADS = 256

#: inputs_provider(site, start, hours) -> SiteInputs covering [start, start + hours)
InputsProvider = Callable[[Site, pd.Timestamp, float], SiteInputs]
#: how long the ids of the sites stored as data are trusted before the store is read again (s)
SITES_MAX_AGE_S = 5.0
#: an id not seen before is looked up again at most this often (s)
SITES_MIN_REREAD_S = 1.0
#: planner(site, inputs, index, options) -> Plan (models.solve.plan_site; by default
#: models.warm.plan_site_warm, which re-uses the site's model of the previous run where it can)
Planner = Callable[[Site, SiteInputs, pd.DatetimeIndex, SolveOptions], Plan]


def file_inputs(site: Site, start: pd.Timestamp, hours: float) -> SiteInputs:
    """The site's input CSVs cut to the horizon (until forecasts replace them)."""
    return load_inputs(site).window(horizon_index(start, hours, site.site.resolution_min))


@dataclass(frozen=True)
class PlanningConfig:
    """How far ahead to plan (h), the solver's time limit (s) and how many set-point intervals to
    publish."""

    horizon_hours: float = 24.0
    time_limit_s: float | None = 60.0
    publish_intervals: int = 4
    #: solve in a worker process so that a long solve never holds the API's GIL (only for a
    #: picklable planner such as the default ``plan_site``)
    solve_in_subprocess: bool = False
    #: a state measurement older than this is not used (the plan says ``estimated`` or ``assumed``)
    state_max_age: dt.timedelta = field(default_factory=max_age_from_env)


@dataclass
class RunResult:
    """What a run did: ``status`` is a plan status, ``skipped`` or ``failed``."""

    site_id: str
    status: str
    period_start: dt.datetime | None = None
    plan_id: str | None = None
    message: str = ""
    duration_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def floor_period(now: dt.datetime, resolution_min: int) -> pd.Timestamp:
    """Start of the interval containing `now` (UTC)."""
    return pd.Timestamp(now).tz_convert("UTC").floor(f"{resolution_min}min")


@dataclass(frozen=True)
class Executed:
    """A job's result as the executor hands it back: the plan's header and JSON, and where and
    how it was made (see :class:`grid.fleet.status.SiteRun`)."""

    header: dict[str, Any]
    body_json: str
    worker: str
    warm: bool | None = None
    queue_wait_s: float | None = None


class JobExecutor(Protocol):
    """Runs plan jobs elsewhere (a Dask cluster: :class:`grid.fleet.executor.DaskExecutor`).

    The job travels with its input series as data: an executor never reads the site's files."""

    def run(self, job: PlanJob, inputs: SiteInputs) -> Executed: ...

    def close(self) -> None: ...


class PlanningService:
    """Plans sites on demand or on schedule; see the module docstring.

    Where a run's solve happens: in this process, in one worker process per site
    (``config.solve_in_subprocess``; the single-site default of ``grid serve``), or with an
    `executor` on a Dask cluster, where the service only reads the inputs, stores and publishes.
    """

    def __init__(
        self,
        engine: Engine,
        sites: Mapping[str, Path],
        config: PlanningConfig | None = None,
        inputs_provider: InputsProvider = file_inputs,
        planner: Planner = plan_site_warm,
        publisher: Publisher | None = None,
        state_source: StateSource | None = None,
        executor: JobExecutor | None = None,
    ) -> None:
        self.engine = engine
        self.sites = dict(sites)
        self.config = config or PlanningConfig()
        self.inputs_provider = inputs_provider
        self.planner = planner
        self.publisher = publisher
        #: the latest measured state of each storage asset (from the store's telemetry by default)
        self.state_source: StateSource = state_source or StoredStates(engine)
        self._locks = {sid: threading.Lock() for sid in self.sites}
        #: site id -> (newest stored version, retired) as last read (:meth:`refresh_sites`)
        self._stored: dict[str, tuple[int, bool]] = {}
        self._stored_read_at: float | None = None
        #: called with the site id after each stored plan (the API drops its cached latest plan)
        self.listeners: list[Callable[[str], None]] = []
        self._pools: dict[str, ProcessPoolExecutor] = {}
        self._pool_lock = threading.Lock()
        self._provider_travels: bool | None = None
        self._site_cache: dict[str, tuple[tuple[Any, int], Site]] = {}
        self.executor = executor
        #: the last run of each site (``GET /api/v1/fleet/status``, ``quartiere_fleet_*`` metrics)
        self.status = FleetStatus(engine)

    def _pool(self, site_id: str) -> ProcessPoolExecutor:
        with self._pool_lock:  # one worker per site, so that the site's kept model lives there
            pool = self._pools.get(site_id)
            if pool is None:
                pool = self._pools[site_id] = worker_pool()  # dies with this process
            return pool

    def _run_job(self, job: PlanJob) -> Executed:
        """Run `job` here, on the executor, or in the site's worker process (inputs, solve and
        encoding there, so that the API process only stores the result)."""
        if self.executor is not None:  # the inputs travel as data: workers share no file system
            return self.executor.run(job, self.inputs_provider(job.site, job.start, job.hours))
        if not self.config.solve_in_subprocess:
            return executed_here(run_plan_job(job, self.inputs_provider, None, self.planner), "service")
        if self._provider_travels is None:
            self._provider_travels = _picklable(self.inputs_provider)
        provider: InputsProvider | None = self.inputs_provider
        inputs: SiteInputs | None = None
        if not self._provider_travels:  # e.g. a closure: read the inputs here, ship them
            provider, inputs = None, self.inputs_provider(job.site, job.start, job.hours)
        pool = self._pool(job.site.id)
        try:
            result = pool.submit(run_plan_job, job, provider, inputs, self.planner).result()
        except BrokenProcessPool:  # the worker died (killed, out of memory): the next run starts a new one
            with self._pool_lock:
                self._pools.pop(job.site.id, None)
            raise
        pids = worker_pids(pool)
        return executed_here(result, f"pid {pids[0]}" if pids else "worker process")

    def recover(self, now: dt.datetime) -> list[str]:
        """At start: mark the runs a killed earlier process left ``running`` as failed (the
        scheduler's next run may plan their period again); returns the sites they were for."""
        orphans = plan_store.fail_orphaned_runs(self.engine, now)
        for run in orphans:
            log.warning(
                "run of %s for %s was interrupted (started %s); marked failed, it is planned again",
                run.site_id,
                iso(run.period_start),
                iso(run.started_at),
            )
        return sorted({run.site_id for run in orphans})

    def worker_pids(self) -> list[int]:
        """Process ids of the solver workers (one per site that planned in a worker)."""
        with self._pool_lock:
            return [pid for pool in self._pools.values() for pid in worker_pids(pool)]

    def close(self) -> None:
        """Stop the solver worker processes (if any) and the executor."""
        with self._pool_lock:
            for pool in self._pools.values():
                pool.shutdown(wait=True, cancel_futures=True)
            self._pools.clear()
        if self.executor is not None:
            self.executor.close()

    def _lock(self, site_id: str) -> threading.Lock:
        with self._pool_lock:
            lock = self._locks.get(site_id)
            if lock is None:
                lock = self._locks[site_id] = threading.Lock()
            return lock

    def busy(self, site_id: str) -> bool:
        return self._lock(site_id).locked()

    def resolution_min(self, site_id: str) -> int:
        return self.site(site_id).site.resolution_min

    def refresh_sites(self, max_age_s: float = 0.0) -> dict[str, tuple[int, bool]]:
        """Site id -> (newest version, retired) of the sites stored as data, read from the store
        unless read within `max_age_s` seconds."""
        now = time.monotonic()
        if self._stored_read_at is None or now - self._stored_read_at >= max_age_s:
            self._stored = site_store.version_numbers(self.engine)
            self._stored_read_at = now
        return self._stored

    def site_ids(self) -> list[str]:
        """The sites this service plans: those of its settings (YAML files) and those stored as
        data, less the retired ones."""
        stored = self.refresh_sites()
        active = {sid for sid, (_v, retired) in stored.items() if not retired}
        retired = {sid for sid, (_v, gone) in stored.items() if gone}
        return sorted((set(self.sites) | active) - retired)

    def knows(self, site_id: str, max_age_s: float = SITES_MAX_AGE_S) -> bool:
        """True for a site of the settings or stored as data (retired too: its plans stay readable);
        the stored ids are read at most every `max_age_s` seconds, and again for an id not seen.
        While the store cannot be read, the ids read last count (and it is tried again only after
        `max_age_s`), so that requests for the sites of the settings never wait on it."""
        if site_id in self.sites:
            return True
        try:
            if site_id in self.refresh_sites(max_age_s):
                return True
            return site_id in self.refresh_sites(min(max_age_s, SITES_MIN_REREAD_S))
        except SQLAlchemyError as exc:
            log.warning("stored sites not read (%s); using the %d known", type(exc).__name__, len(self._stored))
            self._stored_read_at = time.monotonic()
            return site_id in self._stored

    def site(self, site_id: str) -> Site:
        """The site's description: its newest version stored as data (read again when the store has
        a newer one), else its YAML file (read again only when the file changed: size or mtime)."""
        stored = site_store.version_of(self.engine, site_id)
        if stored is not None:
            number, retired = stored
            if retired:
                raise InputError("site", "is retired (PUT a new version to plan it again)", site_id)
            kept = self._site_cache.get(site_id)
            if kept is None or kept[0] != ("store", number):
                current = site_store.current_site(self.engine, site_id)
                if current is None:  # retired in between
                    raise InputError("site", "is retired (PUT a new version to plan it again)", site_id)
                kept = self._site_cache[site_id] = (("store", current.version), current.site())
            return kept[1]
        if site_id not in self.sites:
            raise InputError("site", "unknown site: neither in the settings nor stored", site_id)
        path = self.sites[site_id]
        try:
            stat = path.stat()
        except OSError:
            return load_site(path)  # says what is wrong with the path
        changed = (stat.st_mtime_ns, stat.st_size)
        kept = self._site_cache.get(site_id)
        if kept is None or kept[0] != changed:
            kept = self._site_cache[site_id] = (changed, load_site(path))
        return kept[1]

    def run(self, site_id: str, now: dt.datetime, trigger: str = "manual", wait: bool = False) -> RunResult:
        """Plan `site_id` from the interval containing `now`. ``trigger="scheduled"`` claims the
        period first and skips it if it was already planned. While a run for the site is in
        progress the call is skipped, or with `wait` waits for it (a run whose inputs changed
        after that run read them: a limit order)."""
        lock = self._lock(site_id)
        if not lock.acquire(blocking=wait):
            return RunResult(site_id, "skipped", message="a run for this site is in progress")
        try:
            return self._run_locked(site_id, now, trigger)
        finally:
            lock.release()

    def _run_locked(self, site_id: str, now: dt.datetime, trigger: str) -> RunResult:
        t0 = time.perf_counter()
        site: Site | None = None
        try:
            site = self.site(site_id)
            res = site.site.resolution_min
        except (InputError, InputErrors) as exc:
            res = 15
            error: str | None = f"site file: {exc}"
        else:
            error = None
        period = floor_period(now, res)
        if trigger == "scheduled" and not plan_store.claim_period(self.engine, site_id, period.to_pydatetime(), now):
            return RunResult(site_id, "skipped", period.to_pydatetime(), message="period already planned")
        done = self._plan(site, site_id, period, error, now)
        duration = time.perf_counter() - t0
        row = plan_store.save_plan(self.engine, done.header, trigger, duration, plan_json=done.body_json)
        for listener in self.listeners:
            listener(site_id)
        metrics.PLAN_DURATION.labels(site_id, trigger).observe(duration)
        metrics.PLAN_STATUS.labels(site_id, trigger, row.status).inc()
        if trigger == "scheduled":
            plan_store.finish_period(
                self.engine, site_id, period.to_pydatetime(), now, row.status, row.plan_id, row.message
            )
        if row.status == "failed":
            log.warning("planning run for %s failed: %s", site_id, row.message)
        started = pd.Timestamp(now).tz_convert("UTC").to_pydatetime()
        self.status.record(
            SiteRun(
                site_id,
                period.to_pydatetime(),
                started,
                duration,
                row.status,
                row.message,
                done.warm if row.status != "failed" else None,
                done.worker,
                done.queue_wait_s,
            )
        )
        self.publish(site_id, now)
        return RunResult(site_id, row.status, period.to_pydatetime(), row.plan_id, row.message, duration)

    def _plan(
        self, site: Site | None, site_id: str, period: pd.Timestamp, error: str | None, now: dt.datetime
    ) -> Executed:
        """The run's plan (header, JSON, where it was made); a failed plan's when anything goes wrong."""
        hours = self.config.horizon_hours
        if site is not None:
            try:
                return self._run_job(self._job(site, period, hours, now))
            except (InputError, InputErrors) as exc:
                error = f"input error: {exc}"
            except Exception as exc:  # a crashing planner must not stop the service; it is recorded
                log.exception("planner crashed for site %s", site_id)
                error = f"planner error: {type(exc).__name__}: {exc}"
        return executed_here(encoded(failed_body(site_id, period, hours, error or "unknown error")), "service")

    def run_round(self, site_ids: list[str], now: dt.datetime, trigger: str = "manual") -> list[RunResult]:
        """Plan every site of `site_ids` once, all at the same time (one thread per site hands
        its job to the executor and stores the result; a site already running is skipped).
        Results in the order of `site_ids`."""
        if not site_ids:
            return []
        with ThreadPoolExecutor(min(len(site_ids), ROUND_THREADS), thread_name_prefix="round") as pool:
            return list(pool.map(lambda sid: self.run(sid, now, trigger), site_ids))

    def _job(self, site: Site, period: pd.Timestamp, hours: float, now: dt.datetime) -> PlanJob:
        """The run's job: the site at its start state (measured, estimated or assumed), with the
        EV sessions and limit orders the store holds for the horizon."""
        end = period + pd.Timedelta(hours=hours)
        previous = plan_store.latest_good(self.engine, site.id)
        body = plan_store.kept_plan_body(self.engine, previous.plan_id) if previous is not None else None
        in_store = registered(self.engine, site.id)  # else a plain site file: no live data to read
        if in_store:
            sessions, needs = planned_sessions(self.engine, site, period, end, body)
            sessions_from, ended = "store (session events)", ended_sessions(self.engine, site, body, period)
        else:
            sessions, needs = list(site.ev_sessions), {}
            sessions_from, ended = "site file (the site is not registered in the store)", []
        site = site.model_copy(update={"ev_sessions": sessions})
        at = pd.Timestamp(now).tz_convert("UTC")
        measured = self.state_source(site, at)
        start = resolve_start_state(site, period, measured, body, self.config.state_max_age, at)
        warnings = list(start.warnings)
        warnings += [
            f"{e['session_id']} at {e['charger']} left at {e['plugged_out_at']}, before its expected departure:"
            f" {e['missed_kwh']:.2f} of {e['requested_kwh']:.2f} kWh not delivered ({e['source']})"
            for e in ended
        ]
        for warning in warnings:
            log.info("%s: %s", site.id, warning)
        return PlanJob(
            start.site,
            period,
            hours,
            self.config.time_limit_s,
            {aid: s.as_dict() for aid, s in start.states.items()},
            tuple(warnings),
            tuple(limit_orders(self.engine, site, period, end)) if in_store else (),
            {"ev_sessions": f"{sessions_from}: {len(sessions)} in the horizon"},
            needs,
            tuple(ended),
            last_hour_followed(self.engine, site, period) if in_store else None,
            at,
        )

    def publish(self, site_id: str, now: dt.datetime) -> bool:
        """Publish the set-points of the latest good plan (with its stale state); False if none."""
        if self.publisher is None:
            return False
        row = plan_store.latest_good(self.engine, site_id)
        if row is None:
            return False
        body = plan_store.kept_plan_body(self.engine, row.plan_id)
        points = setpoints(body, now, self.config.publish_intervals, row.stale, row.stale_reason)
        try:
            self.publisher.publish(site_id, points)
        except (OSError, RuntimeError) as exc:  # the broker being away must not fail the run
            log.warning("publishing set-points of %s failed: %s", site_id, exc)
            return False
        return True


def failed_body(site_id: str, start: pd.Timestamp, hours: float, message: str) -> dict[str, Any]:
    """A failed plan's JSON when no Plan object exists (input error, crash)."""
    end = start + pd.Timedelta(hours=hours)
    return {
        "plan_id": uuid.uuid4().hex,
        "site": site_id,
        "computed_at": iso(pd.Timestamp.now(tz="UTC").floor("s")),
        "start": iso(start),
        "end": iso(end),
        "resolution_min": None,
        "status": "failed",
        "message": message,
        "objective_eur": None,
        "kpis": {},
        "violations": [],
        "dimming": [],
        "intervals": [],
        "connections": {},
        "assets": {},
        "solver": {},
        "timings_s": {},
        "warnings": [],
    }


@dataclass(frozen=True)
class PlanJob:
    """What one run plans: `site` (its storage assets at their start state) from `start` (UTC, on
    the grid) for `hours`; `initial_states` (asset id -> the plan JSON's ``initial_state``) and
    `warnings` go into the plan as they are; `limit_orders` lower the connections' limits."""

    site: Site
    start: pd.Timestamp
    hours: float
    time_limit_s: float | None
    initial_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    limit_orders: tuple[LimitOrder, ...] = ()
    #: where inputs the provider does not know of came from (the plan's ``inputs``)
    sources: dict[str, str] = field(default_factory=dict)
    #: per EV session: requested, delivered so far, remaining kWh and how that is known
    session_needs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: sessions that ended early since the previous plan, with the energy they missed
    ended_sessions: tuple[dict[str, Any], ...] = ()
    #: how well the plans of the last hour were followed (the plan's ``followed``)
    followed: dict[str, Any] | None = None
    #: the service's clock at the run (a replay or simulated clock in the demo): the plan's
    #: ``computed_at``, so that "which plan was in force" is judged on one clock
    now: pd.Timestamp | None = None


HEADER_KEYS = ("plan_id", "site", "computed_at", "start", "end", "status", "objective_eur", "message")


def encoded(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(the keys the plans table indexes and ``warm_start``, the whole plan as JSON)."""
    header = {k: body.get(k) for k in HEADER_KEYS}
    header["warm_start"] = (body.get("solver") or {}).get("warm_start")
    return header, plan_store.plan_text(body)


def executed_here(result: tuple[dict[str, Any], str], worker: str) -> Executed:
    """A :func:`run_plan_job` result made by `worker` without waiting for it."""
    header, body_json = result
    return Executed(header, body_json, worker, header.get("warm_start"))


def run_plan_job(
    job: PlanJob, provider: InputsProvider | None, inputs: SiteInputs | None, planner: Planner
) -> tuple[dict[str, Any], str]:
    """Inputs (from `provider` unless given), plan, JSON: everything but storing. Runs in the
    service process or in a site's worker process; input errors come back as a failed plan."""
    try:
        if inputs is None:
            assert provider is not None
            inputs = provider(job.site, job.start, job.hours)
        index = horizon_index(job.start, job.hours, job.site.site.resolution_min)
        inputs = with_orders(inputs.window(index), job.limit_orders, job.site.site.resolution_min)
        plan = planner(job.site, inputs, index, SolveOptions(time_limit_s=job.time_limit_s))
        body = plan.to_dict()
        body["inputs"] = {**inputs.sources, **job.sources}
    except (InputError, InputErrors) as exc:
        body = failed_body(job.site.id, job.start, job.hours, f"input error: {exc}")
    return encoded(with_run_context(body, job))


def with_run_context(body: dict[str, Any], job: PlanJob) -> dict[str, Any]:
    """`body` with each asset's ``initial_state``, the job's warnings and the limit orders it
    keeps (a failed plan keeps its warnings: they may say why it failed)."""
    assets = body.get("assets") or {}
    for asset_id, state in job.initial_states.items():
        if asset_id in assets:
            assets[asset_id]["initial_state"] = state
    for asset in assets.values():
        for session_id, session in (asset.get("sessions") or {}).items():
            if session_id in job.session_needs:
                session["need_state"] = job.session_needs[session_id]
    body["ev_sessions_ended"] = list(job.ended_sessions)
    body["followed"] = job.followed
    if job.now is not None:
        body["computed_at"] = iso(pd.Timestamp(job.now).tz_convert("UTC").floor("s"))
    body["warnings"] = [*body.get("warnings", []), *job.warnings]
    body["limit_orders"] = [order.as_dict() for order in job.limit_orders]
    body.setdefault("inputs", dict(job.sources))
    return body


def _picklable(obj: Any) -> bool:
    try:
        pickle.dumps(obj)
    except (pickle.PicklingError, TypeError, AttributeError):
        return False
    return True
