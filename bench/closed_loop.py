"""Benchmark: the closed loop on the demo site over simulated days, against no control and perfect
foresight (``grid simulate``, :mod:`grid.sim`).

Runs uncontrolled, closed loop (forecasts from the store, 95 % compliance, 2 % noise) and one LP on
the truth over `--days` demo days, `--repeat` times (the figures are deterministic for the seed;
the time is the median). The template store with the demo meter history is built before the
timing (about two minutes once, then cached in `--out`). Ends with one line:

    closed_loop_days <d> overload_uncontrolled <n> overload_closed <n> cost_ratio_vs_perfect <r> s_per_sim_day <s>

overload = intervals in which a transformer is above its limit (measured flows); s_per_sim_day =
wall time of the closed loop per simulated day (median); the line before it gives the CPU time
per simulated day (``cpu_s_per_sim_day``, less disturbed by other load). Take the lock:
``flock /tmp/bench.lock .venv/bin/python bench/closed_loop.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from grid.sim.report import report, table
from grid.sim.run import SimConfig, closed_loop, open_store, perfect, prepare, uncontrolled

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "data" / "demo" / "site.yaml")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--replan-every-min", type=int, default=15)
    parser.add_argument("--compliance", type=float, default=0.95)
    parser.add_argument("--forecasts", choices=("stored", "perfect"), default="stored")
    parser.add_argument("--horizon-hours", type=float, default=24.0)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench-sim")
    args = parser.parse_args()
    config = SimConfig(
        site_path=args.site,
        days=args.days,
        compliance=args.compliance,
        forecasts=args.forecasts,
        horizon_h=args.horizon_hours,
        replan_every_min=args.replan_every_min,
        out_dir=args.out,
    )
    world = prepare(config)
    open_store(world).dispose()  # the template (history ingested) outside the timing
    free = uncontrolled(world)
    times: list[float] = []
    cpu: list[float] = []
    doc: dict = {}
    for _ in range(args.repeat):
        engine = open_store(world)
        t0, c0 = time.perf_counter(), time.process_time()
        closed = closed_loop(world, engine)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        engine.dispose()
        doc = report(world, [free, closed, perfect(world, closed)])
        print(
            f"run {len(times)}: {times[-1]:.1f} s wall, {cpu[-1]:.1f} s CPU (this process, all threads), "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    doc["closed_loop_s"] = [round(t, 1) for t in times]
    doc["closed_loop_cpu_s"] = [round(t, 1) for t in cpu]  # less disturbed by other load than wall time
    (args.out / "bench-report.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(table(doc))
    print(f"cpu_s_per_sim_day {statistics.median(cpu) / args.days:.1f}")
    res = doc["results"]
    print(
        f"closed_loop_days {args.days:g} overload_uncontrolled {res['uncontrolled']['overload_intervals']} "
        f"overload_closed {res['closed']['overload_intervals']} "
        f"cost_ratio_vs_perfect {doc.get('cost_ratio_vs_perfect', float('nan')):.4f} "
        f"s_per_sim_day {statistics.median(times) / args.days:.1f}"
    )


if __name__ == "__main__":
    main()
