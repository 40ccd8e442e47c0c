"""What block builders hand to the dispatch model: variables, rows, node injections, costs, slacks.

The LP is assembled the way PyPSA/linopy do it, vectorised over assets and time steps: each block
adds flat-indexed Pyomo variables and describes its constraints as sparse coefficient triplets in
numpy, which become one Pyomo ``MatrixConstraint`` per row group (lb <= A x <= ub over the model's
global variable list). That skips Pyomo's per-constraint expression objects, which profiling showed
cost more than HiGHS's own solve. Bounds and coefficients that change between rolling runs may be
mutable Params; they stay Params inside the matrix and are updated by the persistent solver.

Units: injections are kW drawn from a node (positive = consumption); cost coefficients are EUR per
unit of the variable (already multiplied by dt_h for powers); slack amounts are value x scale in unit.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyomo.environ as pyo
from pyomo.core.base.matrix_constraint import MatrixConstraint
from pyomo.core.base.param import ParamData
from pyomo.core.expr.numeric_expr import LinearExpression

if TYPE_CHECKING:
    from models.tables import Tables

Bound = float | None | Any  # a number, no bound, or a (mutable) Param expression
#: computes a mutable parameter's values from the tables (the same function builds and refreshes it)
ParamSource = Callable[["Tables"], np.ndarray]


class LinearRows(MatrixConstraint):
    """Pyomo's MatrixConstraint (lb <= A x <= ub, A in CSR) with the iteration signature that
    current Pyomo blocks call (``values(sort)``); the stock class only has Mapping's."""

    def keys(self, sort: Any = None, ordered: Any = None) -> Any:
        return range(len(self._data))

    def values(self, sort: Any = None, ordered: Any = None) -> Any:
        return iter(self._data)

    def items(self, sort: Any = None, ordered: Any = None) -> Any:
        return enumerate(self._data)


@dataclass
class RowGroup:
    """Rows lower <= A x <= upper collected as COO triplets until the model is finalised."""

    block: Any
    name: str
    lower: list[Bound]
    upper: list[Bound]
    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    coefs: list[np.ndarray] = field(default_factory=list)

    def add(self, rows: Any, cols: Any, coefs: Any) -> None:
        """Add coefficients (broadcast to a common shape); `coefs` may be an object ndarray of Params."""
        objects = isinstance(coefs, np.ndarray) and coefs.dtype == object  # Params (mutable coefficients)
        r, c, k = np.broadcast_arrays(
            np.asarray(rows), np.asarray(cols), coefs if objects else np.asarray(coefs, dtype=float)
        )
        self.rows.append(r.ravel())
        self.cols.append(c.ravel())
        self.coefs.append(k.ravel())


@dataclass
class SlackTable:
    kind: list[str] = field(default_factory=list)
    asset: list[str] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    steps: list[np.ndarray] = field(default_factory=list)
    unit: list[str] = field(default_factory=list)
    scale: list[np.ndarray] = field(default_factory=list)
    cost: list[np.ndarray] = field(default_factory=list)


class Assembly:
    """Global variable list, row groups, node injections, objective terms and slacks of one model."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.params: list[tuple[Any, ParamSource]] = []
        self.columns: list[Any] = []
        self.groups: list[RowGroup] = []
        self._inj: list[tuple[np.ndarray, ...]] = []
        self._cost_cols: list[np.ndarray] = []
        self._cost_coefs: list[np.ndarray] = []
        self._param_costs: list[tuple[int, Any]] = []
        self.slacks: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, str, float, float]] = []
        self._slack_steps: list[tuple[int, ParamSource]] = []

    # --- variables ---------------------------------------------------------------------------------

    def var(self, block: Any, name: str, n: int, lb: Any = 0.0, ub: Any = None) -> np.ndarray:
        """Add `n` variables as ``block.<name>[0..n-1]`` with bounds (scalars, arrays, or sequences
        holding Params); return their global column numbers."""
        scalar_lb = lb if _is_number(lb) or lb is None else None
        scalar_ub = ub if _is_number(ub) or ub is None else None
        index = pyo.RangeSet(0, n - 1) if n else pyo.Set(initialize=[])
        var = pyo.Var(index, dense=True, bounds=(_num(scalar_lb), _num(scalar_ub)))
        setattr(block, name, var)
        data = list(var.values())
        for setter, bound, scalar in (("setlb", lb, scalar_lb), ("setub", ub, scalar_ub)):
            if bound is None or scalar is not None:
                continue
            for v, b in zip(data, _bounds(bound), strict=True):
                getattr(v, setter)(b)
        start = len(self.columns)
        self.columns.extend(data)
        return np.arange(start, start + n)

    # --- mutable parameters ----------------------------------------------------------------------------

    def param(self, block: Any, name: str, source: ParamSource) -> Any:
        """Add ``block.<name>``, a mutable Param indexed like the array ``source(tables)`` returns
        (a 0-d array is not allowed), and remember `source` so that :meth:`refresh` can set it anew."""
        values = np.asarray(source(self.tables), dtype=float)
        param = pyo.Param(*[range(n) for n in values.shape], mutable=True)
        setattr(block, name, param)
        # Pyomo's initialisation validates every key and value one by one (10x the cost of the
        # ParamData objects themselves); the keys are the index set's own, in its order
        data = param._data
        for key, v in zip(_keys(values.shape), values.ravel().tolist(), strict=True):
            d = ParamData(param)
            d._value = v
            data[key] = d
        self.params.append((param, source))
        return param

    def refresh(self, tables: Tables) -> None:
        """Set every mutable parameter from `tables` (same structure as the model was built for);
        a parameter whose shape changed raises ValueError."""
        for param, source in self.params:
            values = np.asarray(source(tables), dtype=float).ravel()
            data = list(param.values())
            if len(data) != len(values):
                raise ValueError(f"{param.name}: {len(values)} values for {len(data)} parameters")
            for p, v in zip(data, values.tolist(), strict=True):
                p._value = v  # the slot behind set_value (a float is always a valid value of a Param)
        for i, source in self._slack_steps:
            kind, assets, cols, _, unit, scale, cost = self.slacks[i]
            self.slacks[i] = (kind, assets, cols, np.asarray(source(tables)).ravel(), unit, scale, cost)
        self.tables = tables

    # --- rows ------------------------------------------------------------------------------------------

    def rows(
        self, block: Any, name: str, lower: Sequence[Bound] | np.ndarray, upper: Sequence[Bound] | np.ndarray
    ) -> RowGroup:
        """Start a group of len(lower) rows named ``block.<name>``; fill it with `RowGroup.add`."""
        group = RowGroup(block, name, _bounds(lower), _bounds(upper))
        self.groups.append(group)
        return group

    def equal(self, block: Any, name: str, rhs: Sequence[Bound] | np.ndarray) -> RowGroup:
        values = _bounds(rhs)
        return self.rows(block, name, values, values)

    # --- node injections, costs, slacks -----------------------------------------------------------------

    def inject(self, node: Any, feeder: Any, t: Any, coef: Any, cols: Any) -> None:
        """Register coef x var kW drawn from connection `node` (and `feeder` if >= 0) at step t."""
        arrays = np.broadcast_arrays(
            np.asarray(node), np.asarray(feeder), np.asarray(t), np.asarray(coef, dtype=float), np.asarray(cols)
        )
        self._inj.append(tuple(a.ravel() for a in arrays))

    def injections(self) -> tuple[np.ndarray, ...]:
        """(node, feeder, t, coef, col) of every registered injection."""
        if not self._inj:
            return tuple(np.zeros(0, dtype=int if i != 3 else float) for i in range(5))
        return tuple(np.concatenate([part[i] for part in self._inj]) for i in range(5))

    def cost(self, cols: Any, coefs: Any) -> None:
        """Add coef x var EUR to the objective (numbers)."""
        c, k = np.broadcast_arrays(np.asarray(cols), np.asarray(coefs, dtype=float))
        self._cost_cols.append(c.ravel())
        self._cost_coefs.append(k.ravel())

    def cost_param(self, col: int, coef: Any) -> None:
        """Add coef x var EUR with a mutable coefficient (a Param expression)."""
        self._param_costs.append((int(col), coef))

    def slack(
        self,
        kind: str,
        assets: Any,
        cols: Any,
        steps: Any,
        unit: str,
        scale: float,
        penalty: float,
        steps_source: ParamSource | None = None,
    ) -> None:
        """Register penalised slacks: each costs penalty x scale EUR per unit of the variable and is
        reported as a violation of value x scale `unit` at `steps` (-1: not tied to one interval;
        `steps_source` computes them anew from refreshed tables when they depend on the data)."""
        a, c, s = np.broadcast_arrays(np.asarray(assets, dtype=object), np.asarray(cols), np.asarray(steps))
        if steps_source is not None:
            self._slack_steps.append((len(self.slacks), steps_source))
        self.slacks.append((kind, a.ravel(), c.ravel(), s.ravel(), unit, scale, penalty * scale))
        self.cost(c.ravel(), penalty * scale)

    # --- finalise ----------------------------------------------------------------------------------------

    def finalize(self, m: pyo.ConcreteModel) -> None:
        """Create every row group as a MatrixConstraint over the global variable list and set the
        objective (minimise)."""
        x = tuple(self.columns)
        for g in self.groups:
            n = len(g.lower)
            rows = np.concatenate(g.rows) if g.rows else np.zeros(0, dtype=int)
            cols = np.concatenate(g.cols) if g.cols else np.zeros(0, dtype=int)
            coefs = np.concatenate(g.coefs) if g.coefs else np.zeros(0)
            order = np.lexsort((cols, rows))
            rows, cols, coefs = rows[order], cols[order], coefs[order]
            indptr = np.searchsorted(rows, np.arange(n + 1))
            data = coefs.tolist() if coefs.dtype == object else coefs
            setattr(g.block, g.name, LinearRows(data, cols, indptr, g.lower, g.upper, x))
        cols = np.concatenate(self._cost_cols) if self._cost_cols else np.zeros(0, dtype=int)
        coefs = np.concatenate(self._cost_coefs) if self._cost_coefs else np.zeros(0)
        total = np.bincount(cols, weights=coefs, minlength=len(x))
        # one term per variable: a numeric cost folds into the variable's mutable coefficient
        param: dict[int, Any] = {}
        for c, k in self._param_costs:
            param[c] = param[c] + k if c in param else k
        for c in param:
            if total[c]:
                param[c] = param[c] + float(total[c])
                total[c] = 0.0
        used = np.flatnonzero(total)
        linear_vars = [x[i] for i in used] + [x[c] for c in param]
        linear_coefs = [float(total[i]) for i in used] + list(param.values())
        m.objective = pyo.Objective(
            expr=LinearExpression(constant=0.0, linear_coefs=linear_coefs, linear_vars=linear_vars), sense=pyo.minimize
        )


def _keys(shape: tuple[int, ...]) -> list[Any]:
    """Param index keys in row-major order: ints for 1-d, tuples otherwise."""
    if len(shape) == 1:
        return list(range(shape[0]))
    return list(itertools.product(*(range(n) for n in shape)))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating)


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _float_bounds(values: np.ndarray) -> list[float | None]:
    """A numeric array as bounds, NaN meaning none."""
    as_list = values.astype(float).tolist()
    if np.isnan(values).any():
        return [None if v != v else v for v in as_list]
    return as_list


_NUMBER_TYPES = (int, float, np.integer, np.floating)


def _bounds(values: Sequence[Bound] | np.ndarray) -> list[Bound]:
    """Bounds as floats, None (no bound; also for NaN) or the given Param expressions."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return _float_bounds(values)
    return [_one_bound(v) for v in values]


def _one_bound(v: Bound) -> Bound:
    if v.__class__ is float:
        return None if v != v else v
    if v is None or not isinstance(v, _NUMBER_TYPES):
        return v
    f = float(v)
    return None if f != f else f
