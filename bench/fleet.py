"""Benchmark: planning a fleet of generated sites on Dask, one cold round then one warm round.

The fleet is ``grid fleet generate``'s (50-600 households per site), written as site files; the
service is the planning service of ``grid fleet plan`` (inputs read from the files in this process,
once per site, and sent to the workers as data; plans stored in a scratch SQLite). Each site plans a
24 h horizon: the cold round from the fleet's first quarter-hour (every model built), the warm
round from the next quarter-hour (each site on the worker that kept its model, as long as the
worker's model budget holds it).

Measured on 2 workers with all the sites, then on 1 worker with the first half (as many sites
per worker, so the same share of them keeps its model under the same budget): the ratio of the
two throughputs says what a second worker adds; the service's own CPU seconds per site (this
process: the service's threads and the LocalCluster's scheduler) say where one service process
stops feeding more workers.

Memory: the machine is shared (24 GB for several sessions), so each worker keeps at most
``--budget-mb`` (3000 MB) of models: all of its 100 sites at ~28 MB each (24 h; a kept model is
the built Pyomo model, stripped, and HiGHS's basis, :mod:`grid.fleet.parked`). Sites whose model does not fit
plan cold in the warm round; the mean run time of each kind is then printed, and what a round would
take with every site warm is projected from them.

Memory per kept model: the workers' resident memory after the warm round less theirs before the
first round (the planner loaded), over the number of models they keep; beside it the LRU's estimate
from the models' sizes (``grid.fleet.worker.MODEL_BYTES_PER_ENTRY``).

Ends with one line:

    fleet_sites <n> cold_round_s <s> warm_round_s <s> sites_per_core_per_15min <n> mem_per_site_mb <mb>

(the 2-worker figures; sites per core per 15 min = sites / (warm round x workers) x 900 s).

Run by hand: flock /tmp/bench.lock .venv/bin/python bench/fleet.py [--sites 200] [--budget-mb 3000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grid.fleet.executor import DaskExecutor
from grid.fleet.generate import generate_fleet, write_fleet
from grid.fleet.round import RoundReport, first_interval, fleet_service, plan_round
from grid.fleet.status import GOOD
from grid.store.engine import make_engine
from grid.store.migrate import upgrade

HORIZON_H = 24.0
SEED = 1


def _rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def _kept() -> dict[str, float]:
    from grid.fleet.worker import worker_models

    return worker_models().kept()


@dataclass
class Measured:
    workers: int
    sites: int
    cold: RoundReport
    warm: RoundReport
    cold_cpu_s: float
    warm_cpu_s: float
    rss_before_mb: float
    rss_after_mb: float
    kept_models: int
    kept_estimate_mb: float
    #: mean seconds per stage of a warm round's warm runs on the worker (the plans' ``timings_s``)
    warm_stages_s: dict[str, float]

    @property
    def mem_per_model_mb(self) -> float:
        return (self.rss_after_mb - self.rss_before_mb) / max(1, self.kept_models)

    def sites_per_s(self, report: RoundReport) -> float:
        return self.sites / report.seconds


def measure(sites: dict[str, Path], workers: int, budget_mb: float, folder: Path) -> Measured:
    """A cold and a warm round of `sites` on a fresh LocalCluster of `workers`."""
    engine = make_engine(f"sqlite:///{folder / f'fleet-{workers}.sqlite'}")
    upgrade(engine)
    executor = DaskExecutor.start(None, workers, budget_mb)
    service = fleet_service(engine, sites, executor, HORIZON_H)
    client: Any = executor.client
    try:
        now = first_interval(sites[min(sites)])
        rss_before = sum(client.run(_rss_mb).values())
        cpu = time.process_time()
        cold = plan_round(service, now)
        cold_cpu = time.process_time() - cpu
        cpu = time.process_time()
        warm = plan_round(service, now + dt.timedelta(minutes=15))
        warm_cpu = time.process_time() - cpu
        rss_after = sum(client.run(_rss_mb).values())
        kept = [m for per_worker in client.run(_kept).values() for m in per_worker.values()]
        stages = _stages(engine, [sid for sid, run in warm.runs.items() if run.warm])
    finally:
        service.close()
        engine.dispose()
    return Measured(
        workers, len(sites), cold, warm, cold_cpu, warm_cpu, rss_before, rss_after, len(kept), sum(kept), stages
    )


def _stages(engine: Any, site_ids: list[str]) -> dict[str, float]:
    """Mean seconds per stage (tables, build or refresh, hand-over, solve, extract) of the latest
    plans of `site_ids`, as the worker timed them."""
    from grid.store import plans as plan_store

    sums: dict[str, float] = {}
    for sid in site_ids:
        row = plan_store.latest_good(engine, sid)
        timings = (plan_store.plan_body(engine, row.plan_id).get("timings_s") or {}) if row is not None else {}
        for name, seconds in timings.items():
            sums[name] = sums.get(name, 0.0) + float(seconds)
    return {name: total / max(1, len(site_ids)) for name, total in sums.items()}


def report(m: Measured) -> None:
    for name, rnd, cpu in (("cold", m.cold, m.cold_cpu_s), ("warm", m.warm, m.warm_cpu_s)):
        runs = list(rnd.runs.values())
        good = sum(r.status in GOOD for r in runs)
        warm = sum(1 for r in runs if r.warm)
        waits = sorted(r.queue_wait_s or 0.0 for r in runs)
        print(
            f"{m.workers} worker(s), {m.sites} sites, {name} round: {rnd.seconds:.1f} s "
            f"({m.sites_per_s(rnd):.2f} sites/s), {good} good, {warm} warm; "
            f"queue wait median {waits[len(waits) // 2]:.1f} s; service CPU {cpu:.1f} s "
            f"({1000 * cpu / m.sites:.0f} ms per site)"
        )
    runs = list(m.warm.runs.values())
    warm_s = [r.duration_s - (r.queue_wait_s or 0.0) for r in runs if r.warm]
    cold_s = [r.duration_s - (r.queue_wait_s or 0.0) for r in runs if r.warm is False]
    if warm_s and cold_s:
        mean_warm, mean_cold = sum(warm_s) / len(warm_s), sum(cold_s) / len(cold_s)
        print(
            f"{m.workers} worker(s), warm round: a run (less its queue wait) {mean_warm:.2f} s warm, "
            f"{mean_cold:.2f} s cold; all {m.sites} warm: ~{m.warm.seconds * mean_warm / _mean(warm_s + cold_s):.0f} s "
            "(projected)"
        )
    if m.warm_stages_s:
        stages = ", ".join(f"{name} {1000 * s:.0f}" for name, s in m.warm_stages_s.items())
        print(f"{m.workers} worker(s), warm round, a warm run's stages on the worker (ms, mean): {stages}")
    print(
        f"{m.workers} worker(s): {m.kept_models} models kept, resident {m.rss_before_mb:.0f} -> "
        f"{m.rss_after_mb:.0f} MB: {m.mem_per_model_mb:.0f} MB per kept model "
        f"(LRU estimate {m.kept_estimate_mb / max(1, m.kept_models):.0f} MB)"
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--budget-mb", type=float, default=3000.0, help="kept models per worker, MB")
    parser.add_argument("--one-worker-sites", type=int, default=100, help="sites of the 1-worker rounds")
    parser.add_argument("--skip-one-worker", action="store_true", help="only the 2-worker rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch:
        folder = Path(scratch)
        t0 = time.perf_counter()
        fleet = generate_fleet(args.sites, SEED)
        paths = write_fleet(fleet, folder / "sites", SEED)
        homes = sum(len(s.description["households"]) for s in fleet)
        print(f"generated {len(fleet)} sites ({homes} households) in {time.perf_counter() - t0:.0f} s (not timed)")
        sites = {s.site_id: p for s, p in zip(fleet, paths, strict=True)}
        two = measure(sites, 2, args.budget_mb, folder)
        report(two)
        if not args.skip_one_worker:
            half = dict(sorted(sites.items())[: args.one_worker_sites])
            one = measure(half, 1, args.budget_mb, folder)
            report(one)
            for name in ("cold", "warm"):
                rate1 = one.sites_per_s(getattr(one, name))
                rate2 = two.sites_per_s(getattr(two, name))
                print(f"{name}: 2 workers plan {rate2 / rate1:.2f}x the sites per second of 1 worker")
            service_s = two.warm_cpu_s / two.sites
            print(
                f"one service process at {1000 * service_s:.0f} ms CPU per site feeds at most "
                f"{1 / service_s:.0f} sites/s = {two.sites_per_s(two.warm) / 2:.2f} sites/s per worker x "
                f"{1 / service_s / (two.sites_per_s(two.warm) / 2):.0f} workers"
            )
    per_core = args.sites / (two.warm.seconds * 2) * 900
    print(
        f"fleet_sites {args.sites} cold_round_s {two.cold.seconds:.1f} warm_round_s {two.warm.seconds:.1f} "
        f"sites_per_core_per_15min {per_core:.0f} mem_per_site_mb {two.mem_per_model_mb:.0f}"
    )


if __name__ == "__main__":
    main()
