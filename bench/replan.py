"""Benchmark: warm re-plan on the kept model vs a cold build and solve of the same horizon.

On the demo neighbourhood (300 households, `data/demo`), plan `--hours` ahead once, then
`--repeat` times with new forecasts for the same horizon (household load and PV scaled by seeded
noise of a few percent, as a forecast update moves them): each time through
``models.warm.WarmPlanner`` (refresh the kept model's parameters, re-solve from HiGHS's last
basis) and through ``models.solve.plan_site`` (build the model and solve it from scratch). Both
include the tables and the plan extraction. Medians; replan_ratio = warm / cold. Also reported:
the rolling case (the horizon moved by one interval, 2 x `--repeat` times), where the kept model is
re-used while the same EV sessions overlap the horizon.

Ends with one line:

    replan_ratio <ratio>

Run by hand: .venv/bin/python bench/replan.py [--hours 24] [--repeat 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from grid.domain import load_site
from grid.series import load_inputs
from grid.timeindex import horizon_index
from models.solve import plan_site
from models.warm import WarmPlanner

ROOT = Path(__file__).resolve().parent.parent
START = pd.Timestamp("2026-01-14T06:00:00Z")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "data" / "demo" / "site.yaml")
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    site = load_site(args.site)
    inputs = load_inputs(site)
    index = horizon_index(START, args.hours, site.site.resolution_min)
    rng = np.random.default_rng(20261125)
    planner = WarmPlanner()
    planner(site, inputs, index)  # the first run builds the model it keeps
    warm: list[float] = []
    cold: list[float] = []
    for _ in range(args.repeat):
        noise = rng.normal(1.0, 0.05, size=inputs.base_load_kw.shape).clip(0.8, 1.2)
        update = dataclasses.replace(
            inputs,
            base_load_kw=inputs.base_load_kw * noise,
            pv_kw_per_kwp=inputs.pv_kw_per_kwp * float(rng.uniform(0.8, 1.2)),
        )
        t0 = time.perf_counter()
        again = planner(site, update, index)
        warm.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fresh = plan_site(site, update, index)
        cold.append(time.perf_counter() - t0)
        assert again.solver["warm_start"], "the forecast update changed the model's structure"
        gap = abs((again.objective_eur or 0.0) - (fresh.objective_eur or 0.0))
        assert gap <= 1e-6 * max(1.0, abs(fresh.objective_eur or 0.0)), (again.objective_eur, fresh.objective_eur)
        parts = ", ".join(f"{k} {v:.3f}" for k, v in again.timings_s.items())
        print(f"warm {warm[-1]:.3f} s ({parts}); cold {cold[-1]:.3f} s; objective {fresh.objective_eur:.4f} EUR")
    w, c = statistics.median(warm), statistics.median(cold)
    print(f"same horizon, new forecasts: warm median {w:.3f} s, cold median {c:.3f} s over {args.repeat}")
    hits: list[float] = []
    misses: list[float] = []
    rolled_cold: list[float] = []
    for step in range(1, args.repeat * 2 + 1):
        moved = horizon_index(START + pd.Timedelta(minutes=15 * step), args.hours, site.site.resolution_min)
        t0 = time.perf_counter()
        plan = planner(site, inputs, moved)
        (hits if plan.solver["warm_start"] else misses).append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plan_site(site, inputs, moved)
        rolled_cold.append(time.perf_counter() - t0)
    rc = statistics.median(rolled_cold)
    hit_s = f"median {statistics.median(hits):.3f} s = {statistics.median(hits) / rc:.2f} of cold" if hits else "-"
    print(
        f"rolling by one interval ({len(hits) + len(misses)} runs, cold median {rc:.3f} s): "
        f"{len(hits)} re-used the model ({hit_s}), {len(misses)} built anew "
        "(an EV session entered or left the horizon)"
    )
    print(f"replan_ratio {w / c:.3f}")


if __name__ == "__main__":
    main()
