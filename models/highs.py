"""The hand-over of a built dispatch model to HiGHS (highspy), kept for warm re-solves.

The dispatch model's constraints are MatrixConstraints and its objective one LinearExpression, and
the :class:`~models.blocks.assembly.Assembly` that built them keeps the same LP as arrays in the
model's row and column order (:class:`~models.blocks.assembly.StandardForm`), with the places
where mutable Params enter. `PersistentHighs.load` hands those arrays over with one ``passModel``
(the matrix column-wise, the form HiGHS keeps; scipy converts the rows); `PersistentHighs.update`
reads every mutable Param back from the Pyomo model, evaluates bounds, right-hand sides, coefficients and costs
as whole arrays and pushes only the entries that changed, after which HiGHS re-solves from its last
basis. ``tests/models/test_handover.py`` compares the LP HiGHS holds, entry for entry, with the one
Pyomo's own HiGHS interface compiles from the same model, after a build and after updates.

Pyomo's interface (`pyomo.contrib.solver.solvers.highs.Highs`) gives the same LP but walks ~10^5
Pyomo objects to get there and runs HiGHS in a thread with Python interrupt callbacks; on the demo
that cost more than the solve itself. Here ``run`` is HiGHS's own, so Ctrl-C waits for the solve.

A rolling re-plan solves the same LP over a horizon that starts `k` steps later: every column and row
of a time series then stands for the step after the one it stood for, and the last basis, taken as
it is, is a poor start. :meth:`PersistentHighs.shift_basis` gives HiGHS the basis in which (entity,
t) takes the status (entity, t + k) had (the assembly's time layout,
:meth:`~models.blocks.assembly.StandardForm.shift_source`); columns now fixed (a state's initial
point, an EV charger while the car is away) are nonbasic; HiGHS completes the basis (too many or too
few basic, singular) as it does any basis from elsewhere. Measured on generated fleet sites (24 h at
15 min): a third to a half of the simplex iterations of the unshifted basis.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

import highspy
import numpy as np
from pyomo.common.tee import capture_output
from pyomo.contrib.solver.common.results import TerminationCondition
from scipy.sparse import csr_array

if TYPE_CHECKING:
    from models.dispatch import DispatchModel

_STATUS = {
    highspy.HighsModelStatus.kOptimal: TerminationCondition.convergenceCriteriaSatisfied,
    highspy.HighsModelStatus.kInfeasible: TerminationCondition.provenInfeasible,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: TerminationCondition.infeasibleOrUnbounded,
    highspy.HighsModelStatus.kUnbounded: TerminationCondition.unbounded,
    highspy.HighsModelStatus.kObjectiveBound: TerminationCondition.objectiveLimit,
    highspy.HighsModelStatus.kObjectiveTarget: TerminationCondition.objectiveLimit,
    highspy.HighsModelStatus.kTimeLimit: TerminationCondition.maxTimeLimit,
    highspy.HighsModelStatus.kIterationLimit: TerminationCondition.iterationLimit,
    highspy.HighsModelStatus.kLoadError: TerminationCondition.error,
    highspy.HighsModelStatus.kModelError: TerminationCondition.error,
    highspy.HighsModelStatus.kPresolveError: TerminationCondition.error,
    highspy.HighsModelStatus.kSolveError: TerminationCondition.error,
    highspy.HighsModelStatus.kPostsolveError: TerminationCondition.error,
}


_BANNER_SHOWN = [False]
#: HiGHS's basis statuses by their number (kLower 0, kBasic 1, kUpper 2, kZero 3, kNonbasic 4)
_BASIS_STATUS = tuple(sorted(highspy.HighsBasisStatus.__members__.values(), key=int))
_LOWER, _BASIC, _UPPER, _ZERO = 0, 1, 2, 3
#: where basis files go for a moment (memory, where there is such a file system)
_SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
_COLWISE = int(highspy.MatrixFormat.kColwise)
_MINIMIZE = int(highspy.ObjSense.kMinimize)


class PersistentHighs:
    """One HiGHS instance holding one dispatch model's LP (see the module docstring)."""

    def __init__(self) -> None:
        if _BANNER_SHOWN[0]:
            self.highs = highspy.Highs()
        else:  # HiGHS prints its banner on stdout with the first instance of a process
            with capture_output(capture_fd=True):
                self.highs = highspy.Highs()
            _BANNER_SHOWN[0] = True
        self.highs.setOptionValue("output_flag", False)
        self.model: DispatchModel | None = None
        self._pushed: dict[str, np.ndarray] = {}
        self._solution: Any = None
        self._cols: np.ndarray | None = None

    # --- hand-over -----------------------------------------------------------------------------------

    def load(self, dm: DispatchModel) -> None:
        """Hand `dm`'s LP to HiGHS (replacing whatever it held)."""
        form = dm.assembly.form
        if form is None:
            raise ValueError("the model is not finalised")
        arrays = form.evaluate(dm.assembly.param_values())
        # column-wise, as HiGHS keeps it (scipy's conversion is faster than HiGHS's own from rows
        # and gives the same arrays); the array overload reads numpy buffers directly (a HighsLp's
        # fields copy element by element through Python); integrality all-continuous: an LP
        matrix = csr_array((arrays["coef"], form.indices, form.indptr), shape=(form.num_row, form.num_col)).tocsc()
        h: Any = self.highs
        status = h.passModel(
            form.num_col,
            form.num_row,
            matrix.nnz,
            _COLWISE,
            _MINIMIZE,
            0.0,
            arrays["cost"],
            _finite(arrays["col_lower"]),
            _finite(arrays["col_upper"]),
            _finite(arrays["row_lower"]),
            _finite(arrays["row_upper"]),
            matrix.indptr[:-1].astype(np.int32),
            matrix.indices.astype(np.int32),
            matrix.data,
            np.zeros(form.num_col, dtype=np.int32),
        )
        if status == highspy.HighsStatus.kError:
            raise ValueError(f"HiGHS rejected the model {dm.model.name}")
        self.model = dm
        self._pushed = arrays
        self._solution = None

    def update(self) -> None:
        """Push the model's current mutable parameters to HiGHS (only entries that changed); the
        next solve starts from HiGHS's last basis. The structure must be the loaded one."""
        if self.model is None:
            raise ValueError("no model loaded")
        form = self.model.assembly.form
        assert form is not None
        new = form.evaluate(self.model.assembly.param_values())
        old = self._pushed
        h: Any = self.highs  # highspy's stubs lack some of the bulk methods
        for kind, lower, upper in (("col", "col_lower", "col_upper"), ("row", "row_lower", "row_upper")):
            changed = np.flatnonzero((new[lower] != old[lower]) | (new[upper] != old[upper]))
            if len(changed):
                change = h.changeColsBounds if kind == "col" else h.changeRowsBounds
                change(
                    len(changed),
                    changed.astype(np.int32),
                    _finite(new[lower][changed]),
                    _finite(new[upper][changed]),
                )
        changed = np.flatnonzero(new["cost"] != old["cost"])
        if len(changed):
            h.changeColsCost(len(changed), changed.astype(np.int32), new["cost"][changed])
        changed = np.flatnonzero(new["coef"] != old["coef"])
        if len(changed):  # HiGHS changes matrix entries one at a time
            rows = form.coef_rows(changed).tolist()
            for r, c, v in zip(rows, form.indices[changed].tolist(), new["coef"][changed].tolist(), strict=True):
                h.changeCoeff(r, c, v)
        self._pushed = new
        self._solution = None

    def shift_basis(self, k: int) -> bool:
        """Replace HiGHS's basis by the last one shifted `k` steps forward in time (see the module
        docstring): for a horizon that starts `k` steps after the one of the last solve. False (the
        basis left as it is) when there is no valid basis."""
        if self.model is None or k <= 0:
            return False
        form = self.model.assembly.form
        assert form is not None
        h: Any = self.highs
        statuses = basis_statuses(h, form.num_col, form.num_row)
        if statuses is None:
            return False
        col, row = shifted_basis(form.shift_source(k), *statuses, self._pushed)
        # alien: HiGHS makes it a basis (as many basic as rows, nonsingular)
        if not set_basis_statuses(h, col, row, alien=True):
            return False
        self._solution = None
        return True

    # --- solve and results ----------------------------------------------------------------------------

    def run(self, time_limit_s: float | None, threads: int | None, options: dict[str, Any]) -> None:
        """Solve (from the last basis, if any) within `time_limit_s` of this solve.

        HiGHS compares ``time_limit`` with the instance's run time summed over every ``run`` so
        far: a kept instance would stop at the limit once its warm solves together had taken it
        (every ~60 s of solving: in the closed loop about once a simulated day at 15-min re-plans,
        each time a failed warm solve and a cold rebuild). The limit is set past what it has run."""
        h = self.highs
        limit = float(h.getRunTime()) + float(time_limit_s) if time_limit_s is not None else highspy.kHighsInf
        h.setOptionValue("time_limit", limit)
        if threads is not None:
            h.setOptionValue("threads", int(threads))
        for key, value in options.items():
            h.setOptionValue(key, value)
        self._solution = None
        self._cols = None
        h.run()

    def termination(self) -> TerminationCondition:
        """HiGHS's model status in the terms of Pyomo's solver interface (as before this hand-over)."""
        return _STATUS.get(self.highs.getModelStatus(), TerminationCondition.unknown)

    def objective(self) -> float:
        return float(self.highs.getInfo().objective_function_value)

    def _sol(self) -> Any:
        if self._solution is None:
            self._solution = self.highs.getSolution()
        return self._solution

    def col_values(self) -> np.ndarray:
        """Primal value of every column, in the model's global column order."""
        if self._cols is None:
            self._cols = np.asarray(self._sol().col_value)
        return self._cols

    def row_duals(self, component: Any) -> np.ndarray:
        """Duals (d objective / d bound) of the rows of a constraint component, in order."""
        assert self.model is not None
        rows = self.model.assembly.row_range(component)
        return np.asarray(self._sol().row_dual)[rows.start : rows.stop]

    def row_values(self, component: Any) -> np.ndarray:
        """Activities (the rows' left-hand sides at the solution) of a constraint component, in order."""
        assert self.model is not None
        rows = self.model.assembly.row_range(component)
        return np.asarray(self._sol().row_value)[rows.start : rows.stop]

    def version(self) -> tuple[int, int, int]:
        h = self.highs
        return (h.versionMajor(), h.versionMinor(), h.versionPatch())

    def write_model(self, path: str) -> None:
        """Write the LP exactly as HiGHS holds it (e.g. .mps), for a reference solve elsewhere."""
        self.highs.writeModel(path)


def basis_statuses(h: Any, num_col: int, num_row: int) -> tuple[np.ndarray, np.ndarray] | None:
    """HiGHS's current basis as two int8 arrays (column and row statuses, HiGHS's numbers), None
    when it has no valid basis.

    highspy hands a basis over as Python lists of enum objects (~0.7 us per column or row: 0.16 s
    for a fleet site of 230 000); HiGHS's own basis file, one ``<name> <status>`` line per column
    and row after three header lines, is written and read in a few ms: each status is the digit
    before a line's end."""
    with tempfile.TemporaryDirectory(prefix="quartiere-basis-", dir=_SCRATCH) as folder:
        path = os.path.join(folder, "basis.bas")
        if h.writeBasis(path) == highspy.HighsStatus.kError:  # a warning: no solution yet
            return None
        with open(path, "rb") as f:
            text = np.frombuffer(f.read(), dtype=np.uint8)
    ends = np.flatnonzero(text == ord("\n"))
    if len(ends) != 4 + num_col + num_row or bytes(text[ends[0] + 1 : ends[1]]) != b"Valid":
        return None
    last = text[ends - 1].astype(np.int8) - ord("0")
    col, row = last[3 : 3 + num_col], last[4 + num_col :]
    if ((col < 0) | (col > 4)).any() or ((row < 0) | (row > 4)).any():
        return None
    return col, row


def set_basis_statuses(h: Any, col: np.ndarray, row: np.ndarray, alien: bool = False) -> bool:
    """Give HiGHS the basis of column and row statuses `col`, `row` (HiGHS's numbers, as
    :func:`basis_statuses` reads them); `alien`: one HiGHS is to complete (the count of basic
    columns and rows or its rank may be off). False when HiGHS refuses it."""
    basis = highspy.HighsBasis()
    basis.col_status = list(map(_BASIS_STATUS.__getitem__, col.tolist()))
    basis.row_status = list(map(_BASIS_STATUS.__getitem__, row.tolist()))
    basis.valid = True
    basis.alien = alien
    return bool(h.setBasis(basis) != highspy.HighsStatus.kError)


def shifted_basis(
    sources: tuple[np.ndarray, np.ndarray], col: np.ndarray, row: np.ndarray, arrays: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Column and row statuses (HiGHS's numbers) taken from `sources` (the column and row each
    stands for, ``StandardForm.shift_source``), made to fit the bounds in `arrays` (the LP's
    current ``evaluate``): a nonbasic status never at an infinite bound, a fixed column never basic.
    The number of basic columns and rows may differ from the number of rows (an alien basis)."""
    col, row = col[sources[0]], row[sources[1]]
    for status, lower, upper in (
        (col, arrays["col_lower"], arrays["col_upper"]),
        (row, arrays["row_lower"], arrays["row_upper"]),
    ):
        lo, up = np.isfinite(lower), np.isfinite(upper)
        at_lower, at_upper = status == _LOWER, status == _UPPER
        status[at_lower & ~lo] = _UPPER
        status[at_upper & ~up] = _LOWER
        status[(at_lower | at_upper) & ~lo & ~up] = _ZERO
    fixed = (arrays["col_lower"] == arrays["col_upper"]) & (col == _BASIC)
    col[fixed] = _LOWER
    return col, row


def _finite(values: np.ndarray) -> np.ndarray:
    """HiGHS's infinity for +-inf (HiGHS treats anything beyond 1e20 as infinite anyway)."""
    return np.clip(values, -highspy.kHighsInf, highspy.kHighsInf)
