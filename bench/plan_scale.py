"""Benchmark: how much does the Pyomo path cost on top of HiGHS itself?

For sites of 50, 100, 300 and 1,000 households generated like the demo (48 h at 15 min), plan once
and report build, hand-over (Pyomo -> HiGHS), solve and extract seconds; export the *same* LP as MPS
and solve it with plain highspy in the same run as the reference. overhead = (build + hand-over +
solve + extract) / raw solve. Then time the whole demo job (load YAML -> plan JSON written) and end
with one line:

    overhead_300 <ratio> overhead_1000 <ratio> demo_plan_s <seconds>

Each figure is the best of `--repeat` runs (3), the plan's and plain HiGHS's alike, run in turns: on
a shared machine single runs of the same solve differ by 10-20 %. `cpu_overhead` is the same ratio in
process CPU seconds (the plan's whole run against HiGHS's), which a busy machine disturbs less.

Run by hand: .venv/bin/python bench/plan_scale.py [--sizes 50,100,300,1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import highspy

from grid.demo import generate_demo
from grid.domain import load_site
from grid.series import load_inputs
from grid.timeindex import horizon_index
from models.dispatch import build_model
from models.highs import PersistentHighs
from models.solve import plan_site, plan_tables
from models.tables import build_tables

STAGES = ("build_s", "handover_s", "solve_s", "extract_s")
DEMO = Path(__file__).resolve().parent.parent / "data" / "demo" / "site.yaml"


def mps_of(tables, workdir: Path) -> Path:  # type: ignore[no-untyped-def]
    """The LP exactly as HiGHS holds it after the hand-over, written as MPS."""
    loader = PersistentHighs()
    loader.load(build_model(tables))
    path = workdir / "model.mps"
    loader.write_model(str(path))
    return path


def raw_highs(path: Path) -> tuple[float, float, Any]:
    """Wall and CPU seconds of a fresh plain highspy solving the MPS file, and the instance."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(str(path))
    t0, c0 = time.perf_counter(), time.process_time()
    h.run()
    return time.perf_counter() - t0, time.process_time() - c0, h


def one_size(n: int, workdir: Path, repeat: int) -> float:
    site_path = generate_demo(workdir / f"n{n}", n_households=n)
    site = load_site(site_path)
    inputs = load_inputs(site)
    index = horizon_index(inputs.index[0], 48, site.site.resolution_min)
    tables = build_tables(site, inputs, index)
    path = mps_of(tables, workdir)
    best: dict[str, float] = {}
    raw = raw_cpu = plan_cpu = float("inf")
    for _ in range(repeat):  # interleaved, so that a busy spell of the machine hits both sides
        c0 = time.process_time()
        plan = plan_tables(tables)
        plan_cpu = min(plan_cpu, time.process_time() - c0)
        t = {k: v for k, v in plan.timings_s.items() if k in STAGES}
        if not best or sum(t.values()) < sum(best.values()):
            best = t
        wall_s, cpu_s, h = raw_highs(path)
        raw, raw_cpu = min(raw, wall_s), min(raw_cpu, cpu_s)
    lp = h.getLp()
    ratio = sum(best.values()) / raw
    print(
        f"{n:5d} households  cols {lp.num_col_:7d} rows {lp.num_row_:7d}  build {best['build_s']:6.2f}  "
        f"handover {best['handover_s']:6.2f}  "
        f"solve {best['solve_s']:6.2f}  extract {best['extract_s']:5.2f}  raw_highs {raw:6.2f}  overhead {ratio:5.2f}  "
        f"cpu_overhead {plan_cpu / raw_cpu:5.2f}  "
        f"objective {plan.objective_eur:.4f} (raw {h.getInfo().objective_function_value:.4f})",
        flush=True,
    )
    return ratio


def demo_plan_s() -> float:
    """The whole job on the demo: load YAML and inputs, plan 48 h, write the JSON."""
    t0 = time.perf_counter()
    site = load_site(DEMO)
    inputs = load_inputs(site)
    plan = plan_site(site, inputs, horizon_index(inputs.index[0], 48, site.site.resolution_min))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "plan.json").write_text(plan.to_json(indent=1), encoding="utf-8")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,100,300,1000")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs, for both sides")
    args = parser.parse_args()
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            ratios[n] = one_size(n, Path(tmp), args.repeat)
    demo_s = min(demo_plan_s() for _ in range(args.repeat))
    print(
        f"overhead_300 {ratios.get(300, float('nan')):.2f} overhead_1000 {ratios.get(1000, float('nan')):.2f} "
        f"demo_plan_s {demo_s:.2f}"
    )


if __name__ == "__main__":
    main()
