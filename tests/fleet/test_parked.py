"""Kept models without their HiGHS instance (:mod:`grid.fleet.parked`): the next run re-solves
from the saved basis on the stripped model and finds what a fresh build finds."""

from __future__ import annotations

import pandas as pd
import pytest

from grid.demo import generate_demo
from grid.domain import load_site
from grid.fleet.parked import ParkedHighs, ParkingPlanner
from grid.series import load_inputs
from grid.timeindex import horizon_index
from models.solve import SolveOptions, plan_site

OPTIONS = SolveOptions(time_limit_s=60)


def test_a_parked_model_plans_the_next_period_as_a_fresh_build(tmp_path: pytest.TempPathFactory) -> None:
    site = load_site(generate_demo(tmp_path, seed=3, n_households=12, hours=8))  # type: ignore[arg-type]
    inputs = load_inputs(site)
    planner = ParkingPlanner()
    for step in range(3):  # cold, then warm twice on the parked, stripped model
        index = horizon_index(inputs.index[0] + pd.Timedelta(minutes=15 * step), 4.0, 15)
        plan = planner(site, inputs.window(index), index, OPTIONS)
        kept = planner._kept[site.id]
        assert isinstance(kept.solver, ParkedHighs) and kept.solver.highs is None  # only the basis kept
        assert plan.solver["warm_start"] is (step > 0)
        fresh = plan_site(site, inputs.window(index), index, OPTIONS)
        assert plan.status == fresh.status
        assert plan.objective_eur == pytest.approx(fresh.objective_eur, rel=1e-7)
        for cid, conn in fresh.connections.items():
            assert plan.connections[cid]["limit_import_kw"] == pytest.approx(conn["limit_import_kw"])
    assert planner.shifted_runs == 2  # each warm run from the parked basis shifted by one step
    assert planner.kept_dimensions(site.id) == (
        kept.model.assembly.form.num_col,  # type: ignore[union-attr]
        kept.model.assembly.form.num_row,  # type: ignore[union-attr]
    )
