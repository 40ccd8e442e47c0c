"""A fleet round: every site planned once, at the same time, on a Dask cluster.

The round is the planning service's own runs (:meth:`PlanningService.run`, a few per worker at a
time, see :func:`interleaved`), with a :class:`grid.fleet.executor.DaskExecutor` behind them: the
same job (start state, sessions, limit orders), the same stored plan and failed-plan rows as a
scheduled run. Input files are read in
this process, once per site until they change (:class:`CachedFileInputs`), and travel to the
workers as data.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from grid.domain import Site, load_site
from grid.errors import InputError, InputErrors
from grid.fleet.status import SiteRun
from grid.schedule.runner import JobExecutor, PlanningConfig, PlanningService, RunResult
from grid.series import SiteInputs, is_inline, load_inputs
from grid.timeindex import horizon_index

#: runs a round hands to each worker at a time (one solving, the others queued there)
IN_FLIGHT_PER_WORKER = 6


class CachedFileInputs:
    """An inputs provider reading each site's CSV files once while their size and mtime stay."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[tuple[str, int, int], ...], SiteInputs]] = {}
        self._lock = threading.Lock()

    def __call__(self, site: Site, start: pd.Timestamp, hours: float) -> SiteInputs:
        version = _files_version(site)
        with self._lock:
            kept = self._kept.get(site.id)
        if kept is None or kept[0] != version:
            kept = (version, load_inputs(site))
            with self._lock:
                self._kept[site.id] = kept
        return kept[1].window(horizon_index(start, hours, site.site.resolution_min))


def _files_version(site: Site) -> tuple[tuple[str, int, int], ...]:
    out = []
    for name in ("base_load", "pv_availability", "heat_demand", "weather", "prices"):
        rel = getattr(site.inputs, name)
        if rel is None:
            continue
        if is_inline(rel):  # a site stored as data carries its series: they change with its version
            out.append((f"inputs.{name}", len(rel), hash(rel)))
            continue
        path = site.base_dir / rel
        try:
            stat = path.stat()
        except OSError:
            out.append((str(path), -1, -1))  # load_inputs says what is wrong with it
        else:
            out.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


def find_sites(directory: Path) -> dict[str, Path]:
    """Site id -> YAML file of every ``*.yaml`` below `directory` that describes a site (the id
    read from the file); raises :class:`InputError` for two files of one site or none at all."""
    found: dict[str, Path] = {}
    for path in sorted(Path(directory).rglob("*.yaml")):
        try:
            site_id = load_site(path).id
        except (InputError, InputErrors):
            continue  # not a site file (or a broken one: `grid plan --site` says what is wrong)
        if site_id in found:
            raise InputError(str(path), f"describes site {site_id!r} again (also {found[site_id]})")
        found[site_id] = path
    if not found:
        raise InputError(str(directory), "holds no site YAML file")
    return found


def first_interval(site_path: Path) -> dt.datetime:
    """The first interval of a site's input files (UTC): where a round plans from by default."""
    site = load_site(site_path)
    return pd.Timestamp(load_inputs(site).index[0]).to_pydatetime()


@dataclass(frozen=True)
class RoundReport:
    """The results of one round (in site order), each site's :class:`SiteRun` and the wall time."""

    results: list[RunResult]
    runs: dict[str, SiteRun]
    seconds: float

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out


def fleet_service(
    engine: Engine,
    sites: dict[str, Path],
    executor: JobExecutor,
    horizon_hours: float = 24.0,
    time_limit_s: float | None = 60.0,
) -> PlanningService:
    """A planning service over `sites` whose runs go to `executor`, inputs from the site files."""
    config = PlanningConfig(horizon_hours=horizon_hours, time_limit_s=time_limit_s)
    return PlanningService(engine, sites, config, inputs_provider=CachedFileInputs(), executor=executor)


def plan_round(
    service: PlanningService, now: dt.datetime, trigger: str = "manual", per_worker: int = IN_FLIGHT_PER_WORKER
) -> RoundReport:
    """Plan every site of `service` once from the period containing `now`, at most `per_worker`
    runs per worker at a time (see :func:`interleaved`); results in the order of the site ids."""
    t0 = time.perf_counter()
    ids = service.site_ids()  # the settings' sites and those stored as data, less the retired
    order, workers = interleaved(ids, service.executor)
    with ThreadPoolExecutor(max(1, min(len(ids), per_worker * workers)), thread_name_prefix="round") as pool:
        done = dict(zip(order, pool.map(lambda sid: service.run(sid, now, trigger), order), strict=True))
    results = [done[sid] for sid in ids]
    seconds = time.perf_counter() - t0
    snapshot = service.status.snapshot()
    return RoundReport(results, {sid: snapshot[sid] for sid in ids if sid in snapshot}, seconds)


def interleaved(site_ids: list[str], executor: JobExecutor | None) -> tuple[list[str], int]:
    """`site_ids` taking turns between the workers that plan them (``executor.worker_for``, a
    :class:`grid.fleet.executor.DaskExecutor`), and how many workers there are (1 without one).

    A round hands out runs in this order, a few per worker at a time: every worker has work
    queued from the start to the end of the round, while the service's threads (each holding a
    store connection while it reads a run's inputs and stores its plan) stay few. Handing out
    all 200 runs of a generated fleet at once exhausted the store's connection pool (15) on a
    loaded machine."""
    worker_for = getattr(executor, "worker_for", None)
    if worker_for is None:
        return list(site_ids), 1
    queues: dict[str | None, list[str]] = {}
    for sid in site_ids:
        queues.setdefault(worker_for(sid), []).append(sid)
    turns = itertools.zip_longest(*queues.values())
    return [sid for turn in turns for sid in turn if sid is not None], len(queues)
