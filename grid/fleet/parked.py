"""Kept models without their HiGHS instance: the basis is what a warm re-solve needs.

A solved HiGHS instance holds the LP, its scaled copy, the simplex factorisation, edge weights and
work arrays: on generated fleet sites (24 h at 15 min) three quarters of a kept model's memory, the
Pyomo model and its standard form the rest. Between two runs of a site a Dask worker keeps only
the built model and the final basis (one status byte per column and row): :class:`ParkedHighs`.
At the next run the refreshed LP is handed to a new HiGHS instance (``passModel``, the standard
form's arrays, as after a build) and the saved basis set, so HiGHS re-solves from the same basis as
the kept instance would: the same simplex iterations and the same optimum (measured on the first 5
sites of fleet seed 1: identical iteration counts and objectives, a quarter of the memory, the
hand-over a few ms longer, the new factorisation cheaper than the kept instance's update). When the
horizon moved, the planner then shifts that basis in time (``PersistentHighs.shift_basis``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from models.blocks.assembly import LinearRows
from models.dispatch import DispatchModel
from models.highs import PersistentHighs, basis_statuses, set_basis_statuses
from models.warm import WarmPlanner


class ParkedHighs(PersistentHighs):
    """A :class:`PersistentHighs` whose HiGHS instance was dropped after its solve, keeping the
    model and the final basis; its next :meth:`update` loads the model's current LP into a new
    instance and sets that basis (then it is an ordinary persistent solver again)."""

    def __init__(self, solver: PersistentHighs) -> None:  # no HiGHS instance made here
        if solver.model is None:
            raise ValueError("no model loaded")
        self.model = solver.model
        form = solver.model.assembly.form
        assert form is not None
        # int8 statuses read from HiGHS's basis file (highspy's lists of enum objects take ~0.7 us
        # a column or row to read and 8 bytes each to keep); None: no valid basis to keep
        self._basis = basis_statuses(solver.highs, form.num_col, form.num_row)
        self._parked = True
        self.highs: Any = None
        self._pushed: dict[str, np.ndarray] = {}
        self._solution = None
        self._cols = None

    def update(self) -> None:
        if not self._parked:
            super().update()
            return
        model, basis = self.model, self._basis
        assert model is not None
        PersistentHighs.__init__(self)  # a new HiGHS instance, every attribute as a new solver's
        self._basis, self._parked = None, False
        self.load(model)  # the refreshed parameters: nothing left for update to push
        if basis is not None:
            set_basis_statuses(self.highs, *basis)


class ParkingPlanner(WarmPlanner):
    """A :class:`WarmPlanner` that keeps each site's model with a :class:`ParkedHighs`."""

    def _keep(self, site_id: str, key: str, dm: DispatchModel, solver: PersistentHighs) -> None:
        parked = ParkedHighs(solver)
        strip(dm)
        super()._keep(site_id, key, dm, parked)

    def kept_dimensions(self, site_id: str) -> tuple[int, int] | None:
        """(columns, rows) of the LP kept for `site_id`, None when none is kept."""
        with self._lock:
            kept = self._kept.get(site_id)
        if kept is None or kept.model.assembly.form is None:
            return None
        return kept.model.assembly.form.num_col, kept.model.assembly.form.num_row


_EMPTY = np.zeros(0)


def strip(dm: DispatchModel) -> None:
    """Drop the parts of a solved model that only building it and handing it over needed: the
    variable objects (the LP's columns are numbered; a warm run reads their values from HiGHS), the
    rows' bound lists and coefficients (the standard form keeps them as arrays) and the objective expression
    (the costs are the standard form's). What a warm run uses stays: the mutable Params, the
    standard form, the blocks' column numbers and the row components' sizes."""
    m = dm.model
    for var in m.component_objects(pyo.Var, descend_into=True):
        var._data = {}
    for rows in m.component_objects(pyo.Constraint, descend_into=True):
        if isinstance(rows, LinearRows):
            n = len(rows)
            rows._x = ()
            rows._A_data = rows._A_indices = _EMPTY  # the standard form keeps the matrix
            rows._A_indptr = _EMPTY
            rows._lower = rows._upper = range(n)
            rows.__dict__.pop("_rows", None)
    if m.component("objective") is not None:
        m.del_component("objective")
    dm.assembly.columns = []
