"""Benchmark: what the service adds on top of the bare solve for one re-plan.

On a 300-household site generated like the demo, plan 24 h ahead `--repeat` times directly with
``models.solve.plan_site`` and `--repeat` times through the service path
(:meth:`grid.schedule.runner.PlanningService.run`: site YAML and input CSVs read, plan, plan JSON
stored in SQLite, latest-plan bookkeeping), both with the inputs of the same periods. Medians;
replan_ratio = service / direct. Ends with one line:

    replan_ratio <ratio>

Run by hand: .venv/bin/python bench/replan.py [--households 300] [--hours 24] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from grid.demo import generate_demo
from grid.domain import load_site
from grid.schedule.runner import PlanningConfig, PlanningService, file_inputs
from grid.store.engine import make_engine
from grid.store.migrate import upgrade
from grid.timeindex import horizon_index
from models.solve import SolveOptions, plan_site

START = pd.Timestamp("2026-01-14T01:00:00Z")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=300)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        path = generate_demo(tmp / "site", n_households=args.households, hours=int(args.hours) + 12)
        site = load_site(path)
        engine = make_engine(f"sqlite:///{tmp / 'bench.sqlite'}")
        upgrade(engine)
        direct: list[float] = []
        served: list[float] = []
        service = PlanningService(engine, {site.id: path}, PlanningConfig(horizon_hours=args.hours, time_limit_s=None))
        for i in range(args.repeat):
            start = START + pd.Timedelta(minutes=15 * i)
            t0 = time.perf_counter()
            inputs = file_inputs(site, start, args.hours)
            plan = plan_site(site, inputs, horizon_index(start, args.hours), SolveOptions())
            direct.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            result = service.run(site.id, start.to_pydatetime(), trigger="scheduled")
            served.append(time.perf_counter() - t0)
            assert plan.status != "failed" and result.status != "failed", result.message
        d, s = statistics.median(direct), statistics.median(served)
        print(f"direct plan_site (inputs + plan): median {d:.3f} s over {args.repeat}")
        print(f"service run (site + inputs + plan + store): median {s:.3f} s over {args.repeat}")
    print(f"replan_ratio {s / d:.3f}")


if __name__ == "__main__":
    main()
