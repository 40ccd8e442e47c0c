"""The LP handed to HiGHS (models.highs, from the Assembly's arrays) is the Pyomo model: entry for
entry what Pyomo's own HiGHS interface compiles from the same model, after a build and after the
model's mutable parameters were refreshed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler
from scipy.sparse import csc_array

from grid.domain import Site
from grid.series import SiteInputs
from models.dispatch import DispatchModel, build_model
from models.dispatch import refresh_model as refresh
from models.highs import PersistentHighs
from tests.models.test_warm import demo, perturbed, tables_at

__all__ = ["demo"]


def ours(opt: PersistentHighs) -> dict[str, Any]:
    """The LP HiGHS holds, rows split as Pyomo's mixed standard form splits them."""
    lp = opt.highs.getLp()
    a = lp.a_matrix_
    matrix = csc_array((a.value_, a.index_, a.start_), shape=(lp.num_row_, lp.num_col_)).tocsr()
    senses, rhs, rows = [], [], []
    for i, (lower, upper) in enumerate(zip(lp.row_lower_, lp.row_upper_, strict=True)):
        parts = [(0, lower)] if lower == upper else [(1, upper), (-1, lower)]
        for sense, bound in parts:
            if np.isfinite(bound):
                senses.append(sense)
                rhs.append(bound)
                rows.append(i)
    return {
        "cost": np.asarray(lp.col_cost_),
        "lower": np.asarray(lp.col_lower_),
        "upper": np.asarray(lp.col_upper_),
        "sense": np.array(senses),
        "rhs": np.array(rhs),
        "matrix": _triplets(matrix[rows]),
    }


def pyomos(dm: DispatchModel) -> dict[str, Any]:
    """Pyomo's standard-form compiler on the model (mixed form: rows as written), columns in the
    model's order; bounds as Pyomo's variables report them."""
    columns = dm.assembly.columns
    info = LinearStandardFormCompiler().write(dm.model, mixed_form=True, column_order=columns)
    assert [id(v) for v in info.columns] == [id(v) for v in columns], "a column Pyomo does not see"
    return {
        "cost": info.c.toarray().ravel(),
        "lower": np.array([-np.inf if v.lb is None else v.lb for v in columns]),
        "upper": np.array([np.inf if v.ub is None else v.ub for v in columns]),
        "sense": np.array([sense for _, sense in info.rows]),
        "rhs": np.asarray(info.rhs, dtype=float),
        "matrix": _triplets(info.A.tocsr()),
    }


def _triplets(matrix: Any) -> np.ndarray:
    """Non-zero entries as (row, column, value), sorted."""
    coo = matrix.tocoo()
    keep = coo.data != 0
    order = np.lexsort((coo.col[keep], coo.row[keep]))
    return np.column_stack([coo.row[keep][order], coo.col[keep][order], coo.data[keep][order]])


def assert_same_lp(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert mine.keys() == theirs.keys()
    for name, values in theirs.items():
        assert mine[name].shape == values.shape, name
        np.testing.assert_allclose(mine[name], values, rtol=1e-12, atol=0, err_msg=name)


def test_the_handed_over_lp_is_what_pyomo_compiles(demo: tuple[Site, SiteInputs]) -> None:
    dm = build_model(tables_at(demo))
    opt = PersistentHighs()
    opt.load(dm)
    mine = ours(opt)
    assert len(mine["matrix"]) > 1000 and len(mine["cost"]) == len(dm.assembly.columns)
    assert_same_lp(mine, pyomos(dm))


@pytest.mark.parametrize(
    "path", ["heat_pumps.cop", "pv.unpaid", "connections.fixed_load_kw", "ev.availability", "ev.max_kw"]
)
def test_an_updated_lp_is_what_pyomo_compiles(demo: tuple[Site, SiteInputs], path: str) -> None:
    """Refresh the Params (bounds, right-hand sides, matrix coefficients, costs move), push the
    update to the loaded HiGHS instance: it holds what Pyomo compiles from the refreshed model."""
    base = tables_at(demo)
    dm = build_model(base)
    opt = PersistentHighs()
    opt.load(dm)
    before = ours(opt)
    refresh(dm, perturbed(base, path, np.random.default_rng(3)))
    opt.update()
    mine = ours(opt)
    assert any(not np.array_equal(before[k], v) for k, v in mine.items()), "the change did not reach HiGHS"
    assert_same_lp(mine, pyomos(dm))


def test_a_reader_sees_the_parameters_in_the_pyomo_model(demo: tuple[Site, SiteInputs]) -> None:
    """Bounds, right-hand sides and coefficients that follow the forecasts are Param expressions
    in the Pyomo model, not copies of their numbers."""
    dm = build_model(tables_at(demo))
    m = dm.model
    assert m.ev.charge[0].ub is not None and m.ev.charge[0].upper is m.ev.max_kw[0, 0]
    assert m.balance[0].upper is m.connections.fixed_net_kw[0, 0]
    m.connections.fixed_net_kw[0, 0] = 123.0
    assert m.balance[0].ub == 123.0
    assert m.ev.max_kw[0, 3].name == "ev.max_kw[0,3]" and m.ev.charge[3].name == "ev.charge[3]"
    assert " ".join(str(m.balance[0].expr).split()).endswith("- heat_pumps.power[0] == connections.fixed_net_kw[0,0]")
