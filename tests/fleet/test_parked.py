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
from models.dispatch import build_model
from models.highs import PersistentHighs, basis_statuses
from models.solve import SolveOptions, plan_site
from models.tables import build_tables

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


def test_a_parked_basis_is_restored_as_it_was(tmp_path: pytest.TempPathFactory) -> None:
    """The parked int8 statuses go back into the new instance unchanged, and the same LP re-solves
    from them without an iteration."""
    site = load_site(generate_demo(tmp_path, seed=3, n_households=12, hours=8))  # type: ignore[arg-type]
    inputs = load_inputs(site)
    index = horizon_index(inputs.index[0], 4.0, 15)
    tables = build_tables(site, inputs.window(index), index)
    dm = build_model(tables)
    solver = PersistentHighs()
    solver.load(dm)
    solver.run(60.0, None, {})
    form = dm.assembly.form
    assert form is not None
    solved = basis_statuses(solver.highs, form.num_col, form.num_row)
    assert solved is not None and (solved[0] == 1).sum() + (solved[1] == 1).sum() == form.num_row
    parked = ParkedHighs(solver)
    parked.update()  # a new instance, the LP and the parked basis
    restored = basis_statuses(parked.highs, form.num_col, form.num_row)
    assert restored is not None
    assert (restored[0] == solved[0]).all() and (restored[1] == solved[1]).all()
    parked.run(60.0, None, {})
    assert parked.highs.getInfo().simplex_iteration_count == 0
    assert parked.objective() == pytest.approx(solver.objective(), rel=1e-9)
