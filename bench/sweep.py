"""Benchmark: a sweep of 8 scenarios of the demo neighbourhood (48 h, 300 households), serially in
this process and on a 2-worker Dask LocalCluster (processes, 1 thread each, HiGHS 1 thread).

The LocalCluster is the one ``run_sweep`` starts (``grid.scenarios.sweep.local_cluster``: worker
profiler off; the workers' glibc allocator left at its defaults, as in the serial process). The 8
scenarios are the baseline plus 7 cases of community battery kWh x added EVs on T2 x PV scale.
The LocalCluster is started, and its workers have imported the scenario code, before the clock
starts (start-up is printed apart and is not in the ratio); every worker still reads the baseline
site itself once, as the serial run does. What is left between the ratio and 2: with both cores
busy each runs ~3 % slower (task CPU seconds dask vs serial; on this VM a pure-Python loop loses
10-15 % too), other processes on the machine (cpu/wall below 1) and the last task's tail.
Ends with one line:

    sweep_speedup <serial seconds / Dask seconds>

Run by hand: .venv/bin/python bench/sweep.py [--workers 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from grid.scenarios.spec import sweep_from_dict
from grid.scenarios.sweep import local_cluster, run_sweep

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo" / "site.yaml"
SWEEP = {
    "name": "bench_sweep",
    "baseline": str(DEMO),
    "period": {"hours": 48},
    "solver": {"threads": 1},
    "edits": [
        {"kind": "add_battery", "id": "CB2-T2", "connection": "T2", "capacity_kwh": "${battery_kwh}"},
        {"kind": "add_evs", "count": "${ev_count}", "connection": "T2", "seed": 1},
        {"kind": "scale_pv", "scale": "${pv_scale}"},
    ],
    "cases": [
        {"battery_kwh": 250, "ev_count": 0, "pv_scale": 1.0},
        {"battery_kwh": 1000, "ev_count": 0, "pv_scale": 1.0},
        {"battery_kwh": 250, "ev_count": 30, "pv_scale": 1.0},
        {"battery_kwh": 1000, "ev_count": 30, "pv_scale": 1.0},
        {"battery_kwh": 250, "ev_count": 0, "pv_scale": 2.0},
        {"battery_kwh": 1000, "ev_count": 30, "pv_scale": 2.0},
        {"battery_kwh": 500, "ev_count": 15, "pv_scale": 1.5},
    ],
}


def _warm() -> None:
    import grid.scenarios.sweep  # noqa: F401 - imported for its start-up cost only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    spec = sweep_from_dict(SWEEP)

    t0 = time.perf_counter()
    serial = run_sweep(spec, serial=True)
    serial_s = time.perf_counter() - t0
    per_case = ", ".join(f"{e.seconds:.1f}" for e in serial.evaluations)
    print(f"serial: {len(serial.evaluations)} scenarios in {serial_s:.2f} s (each: {per_case})")

    t0 = time.perf_counter()
    with local_cluster(args.workers) as client:
        client.run(_warm)
        start_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        parallel = run_sweep(spec, client=client)
        dask_s = time.perf_counter() - t0
    n = len(parallel.evaluations)
    print(f"dask:   {n} scenarios in {dask_s:.2f} s on {args.workers} workers")
    print(f"cluster start-up (not in the ratio): {start_s:.2f} s; with it: {serial_s / (start_s + dask_s):.2f}x")
    same = [a.kpis == b.kpis for a, b in zip(parallel.evaluations, serial.evaluations, strict=True)]
    print("dask per scenario (s): " + ", ".join(f"{e.seconds:.1f}" for e in parallel.evaluations))
    # CPU time / wall time of the workers' tasks: about 1 unless other processes took the cores
    share = sum(e.cpu_seconds for e in parallel.evaluations) / sum(e.seconds for e in parallel.evaluations)
    serial_share = sum(e.cpu_seconds for e in serial.evaluations) / sum(e.seconds for e in serial.evaluations)
    print(f"cpu/wall of the tasks: serial {serial_share:.2f}, dask {share:.2f}")
    serial_cpu = sum(e.cpu_seconds for e in serial.evaluations)
    dask_cpu = sum(e.cpu_seconds for e in parallel.evaluations)
    print(f"task CPU seconds: serial {serial_cpu:.1f}, dask {dask_cpu:.1f}")
    # the rest of the workers' time: task dispatch and the last task running alone (imbalance)
    busy = sum(e.seconds for e in parallel.evaluations) / (args.workers * dask_s)
    print(f"workers busy with tasks: {busy:.0%} of the dask time")
    print(f"identical KPIs: {sum(same)}/{len(same)}; statuses: {sorted({e.status for e in parallel.evaluations})}")
    print(f"sweep_speedup {serial_s / dask_s:.2f}")


if __name__ == "__main__":
    main()
