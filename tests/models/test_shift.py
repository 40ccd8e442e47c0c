"""A warm re-plan whose horizon moved starts from the last basis shifted in time (models.highs,
``PersistentHighs.shift_basis``): the time layout the blocks declare maps each column and row to the
one of the same entity k steps later, and the shifted start reaches the optimum a fresh build of the
same tables reaches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grid.domain import Site
from grid.series import SiteInputs
from grid.timeindex import horizon_index
from models.dispatch import build_model
from models.highs import PersistentHighs, basis_statuses, shifted_basis
from models.solve import plan_site, solve_model
from models.warm import WarmPlanner, horizon_shift
from tests.models.invariants import check_plan
from tests.models.test_warm import HOURS, START, demo, tables_at

__all__ = ["demo"]


def test_the_time_layout_maps_each_column_and_row_to_its_entity_k_steps_later(demo: tuple[Site, SiteInputs]) -> None:
    dm = build_model(tables_at(demo))
    form, m = dm.assembly.form, dm.model
    assert form is not None
    T = dm.tables.T
    cols, rows = form.shift_source(0)
    assert (cols == np.arange(form.num_col)).all() and (rows == np.arange(form.num_row)).all()
    for k in (1, 4):
        cols, rows = form.shift_source(k)
        soc, charge = m.batteries.soc_cols, m.batteries.charge_cols  # (B, T + 1), (B, T)
        assert (cols[soc[:, : T + 1 - k]] == soc[:, k:]).all()
        assert (cols[soc[:, T + 1 - k :]] == soc[:, [T]]).all()  # the tail: the last step's
        assert (cols[charge[:, : T - k]] == charge[:, k:]).all()
        assert (cols[charge[:, T - k :]] == charge[:, [T - 1]]).all()
        store = m.heat_pumps.store_cols
        assert (cols[store[:, 1 : T + 1 - k]] == store[:, 1 + k :]).all()
        # EV slots: each slot's steps move within the slot
        sess, _ = m.ev.steps
        charge_ev = m.ev.charge_cols
        for s in np.unique(sess)[:3]:
            mine = charge_ev[sess == s]
            assert (cols[mine[: T - k]] == mine[k:]).all()
        # no time axis: itself
        for fixed in (m.batteries.shortfall_cols, m.heat_pumps.shortfall_cols, m.ev.missed_cols):
            assert (cols[fixed] == fixed).all()
        balance = dm.assembly.row_range(m.batteries.continuity)
        r = np.arange(balance.start, balance.stop).reshape(-1, T)
        assert (rows[r[:, : T - k]] == r[:, k:]).all()
        need = dm.assembly.row_range(m.ev.need)
        assert (rows[need.start : need.stop] == np.arange(need.start, need.stop)).all()


def test_shifted_statuses_fit_the_new_bounds() -> None:
    """Statuses (HiGHS numbers: 0 lower, 1 basic, 2 upper, 3 zero) taken from the sources; a
    nonbasic status never at an infinite bound; a fixed column (lower = upper) never basic."""
    inf = np.inf
    arrays = {
        "col_lower": np.array([0.0, -inf, 0.0, 5.0, -inf]),
        "col_upper": np.array([1.0, 3.0, inf, 5.0, inf]),
        "row_lower": np.array([-inf, 0.0]),
        "row_upper": np.array([2.0, inf]),
    }
    col = np.array([1, 0, 2, 1, 0], dtype=np.int8)
    row = np.array([0, 2], dtype=np.int8)
    sources = (np.array([1, 1, 2, 3, 4]), np.array([0, 1]))
    new_col, new_row = shifted_basis(sources, col, row, arrays)
    # col 0 takes col 1's "lower" (finite there); col 1 "lower" at -inf -> upper; col 2 "upper" at
    # +inf -> lower; col 3 basic but fixed -> lower; col 4 free -> zero
    assert new_col.tolist() == [0, 2, 0, 0, 3]
    assert new_row.tolist() == [2, 0]  # row 0 at -inf below -> upper; row 1 at +inf above -> lower
    assert col.tolist() == [1, 0, 2, 1, 0]  # the given statuses are not changed


def test_horizon_shift() -> None:
    index = horizon_index(START, HOURS, 15)
    assert horizon_shift(index, index) == 0
    assert horizon_shift(index, horizon_index(START + pd.Timedelta(minutes=15), HOURS, 15)) == 1
    assert horizon_shift(index, horizon_index(START + pd.Timedelta(hours=1), HOURS, 15)) == 4
    assert horizon_shift(index, horizon_index(START - pd.Timedelta(minutes=15), HOURS, 15)) == 0  # earlier
    assert horizon_shift(index, horizon_index(START + pd.Timedelta(minutes=10), HOURS, 5)[::3]) == 0  # off the grid
    assert horizon_shift(index, horizon_index(START + pd.Timedelta(hours=HOURS), HOURS, 15)) == 0  # past it
    assert horizon_shift(index, horizon_index(START, HOURS + 1, 15)) == 0  # another length


@pytest.mark.parametrize("k", [1, 4])
def test_a_shifted_warm_start_finds_the_fresh_optimum(demo: tuple[Site, SiteInputs], k: int) -> None:
    site, inputs = demo
    shifted, plain = WarmPlanner(), WarmPlanner(shift=False)
    for step in range(3):  # cold, then two warm runs k steps later each
        index = horizon_index(START + pd.Timedelta(minutes=15 * k * step), HOURS, site.site.resolution_min)
        plan = shifted(site, inputs, index)
        unshifted = plain(site, inputs, index)
        fresh = plan_site(site, inputs, index)
        assert plan.solver["warm_start"] is (step > 0)
        assert plan.objective_eur == pytest.approx(fresh.objective_eur, rel=1e-7, abs=1e-6)
        assert unshifted.objective_eur == pytest.approx(fresh.objective_eur, rel=1e-7, abs=1e-6)
        check_plan(plan, tables_at(demo, index[0]))
        for name in ("cost_eur", "penalty_eur"):
            assert plan.kpis[name] == pytest.approx(fresh.kpis[name], rel=1e-6, abs=1e-4), name
        assert len(plan.violations) == len(fresh.violations)
        # set-points and flows are an optimum of the same LP, not always the same vertex: the demo's
        # LP has alternative optima (batteries that may take turns, exports at equal prices), and
        # a warm start from the unshifted basis ends at another vertex than a fresh solve as well
    assert shifted.warm_runs == 2 and shifted.shifted_runs == 2
    assert plain.warm_runs == 2 and plain.shifted_runs == 0


def test_a_horizon_the_basis_cannot_follow_is_solved_as_before(demo: tuple[Site, SiteInputs]) -> None:
    """The same horizon again (new numbers): warm, not shifted; another horizon length: a new
    structure, built cold; a horizon that starts earlier: warm from the basis as it was."""
    site, inputs = demo
    planner = WarmPlanner()
    index = horizon_index(START, HOURS, site.site.resolution_min)
    planner(site, inputs, index)
    again = planner(site, inputs, index)
    assert again.solver["warm_start"] and planner.shifted_runs == 0
    longer = horizon_index(START + pd.Timedelta(minutes=15), HOURS + 1, site.site.resolution_min)
    cold = planner(site, inputs, longer)
    assert not cold.solver["warm_start"] and planner.cold_runs == 2 and planner.shifted_runs == 0
    assert cold.objective_eur == pytest.approx(plan_site(site, inputs, longer).objective_eur, rel=1e-7)
    earlier = horizon_index(START, HOURS + 1, site.site.resolution_min)
    back = planner(site, inputs, earlier)
    assert back.solver["warm_start"] and planner.shifted_runs == 0
    assert back.objective_eur == pytest.approx(plan_site(site, inputs, earlier).objective_eur, rel=1e-7)


def test_the_basis_read_from_highs_is_its_basis(demo: tuple[Site, SiteInputs]) -> None:
    outcome = solve_model(build_model(tables_at(demo)))
    h = outcome.solver.highs
    read = basis_statuses(h, h.getNumCol(), h.getNumRow())
    assert read is not None
    basis = h.getBasis()
    assert read[0].tolist() == [int(s) for s in basis.col_status]
    assert read[1].tolist() == [int(s) for s in basis.row_status]
    assert (read[0] == 1).sum() + (read[1] == 1).sum() == h.getNumRow()
    assert basis_statuses(PersistentHighs().highs, 0, 0) is None  # no basis yet
