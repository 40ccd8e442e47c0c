"""Pyomo's persistent HiGHS interface with a faster hand-over for linear constraints.

`pyomo.contrib.solver.solvers.highs.Highs` walks every constraint expression twice when a model is
loaded (once to collect its variables, once for the standard representation). Profiling the demo
plan showed that hand-over costing more than the HiGHS solve itself. Every constraint our block
builders make is ``LinearExpression <relation> bound``, whose variables and coefficients can be read
straight off the expression, so `PersistentHighs` does exactly that and registers the constraint
with the same bookkeeping as the base class (variable references, mutable coefficients and bounds).
Anything else falls back to the base class, so behaviour is unchanged; only the walk is skipped.

It also reads solution values and duals for whole indexed components as numpy arrays, without
loading every value into the Pyomo variables first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import highspy
import numpy as np
from pyomo.common.numeric_types import native_numeric_types
from pyomo.contrib.solver.common.util import get_objective
from pyomo.contrib.solver.solvers.highs import (
    Highs,
    _MutableConstraintBounds,
    _MutableLinearCoefficient,
    _MutableObjective,
    _MutableObjectiveCoefficient,
    _MutableObjectiveOffset,
)
from pyomo.core.base.constraint import Constraint, ConstraintData
from pyomo.core.base.matrix_constraint import MatrixConstraint
from pyomo.core.base.objective import minimize
from pyomo.core.base.param import Param, ParamData
from pyomo.core.base.sos import SOSConstraint
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.core.expr.numvalue import value


class PersistentHighs(Highs):
    """HiGHS through Pyomo's persistent interface, with a fast path for linear constraints."""

    _cols: np.ndarray | None = None
    _x_cols: tuple[tuple[Any, ...], np.ndarray] | None = None
    #: HiGHS's run clock after the last solve (it keeps running over the solves of one instance), s
    highs_time_s: float = 0.0

    def add_variables(self, variables: list[Any]) -> None:
        """The base class's bookkeeping, reading VarData's slots directly (the base class reads
        _lb/_ub the same way) and the domain interval once per domain."""
        referenced, known = self._referenced_variables, self._vars
        intervals: dict[int, Any] = {}
        for v in variables:
            v_id = id(v)
            if v_id in referenced:
                raise ValueError(f"Variable {v.name} has already been added")
            referenced[v_id] = [{}, {}, None]
            domain = v._domain
            interval = intervals.get(id(domain))
            if interval is None:
                interval = intervals[id(domain)] = domain.get_interval()
            known[v_id] = (v, v._lb, v._ub, v._fixed, interval, v._value)
        self._add_variables(variables)

    def set_objective(self, obj: Any) -> None:
        """Fast path for a linear objective whose terms name each variable once (as the dispatch
        model's does); anything else goes through the base class."""
        terms = _objective_terms(obj)
        state: Any = self  # the base class's attributes, which it leaves unannotated
        if terms is None or state._objective is not None:
            super().set_objective(obj)
            return
        coefs, variables = terms
        new = [v for v in variables if id(v) not in self._referenced_variables]
        if new:
            self.add_variables(new)
        state._objective, state._objective_expr, state._objective_sense = obj, obj.expr, obj.sense
        state._obj_named_expressions = []
        self._vars_referenced_by_obj = variables
        for v in variables:
            self._referenced_variables[id(v)][2] = obj
        self._sol = None
        var_map = self._pyomo_var_to_solver_var_map
        n = len(var_map)
        costs = np.zeros(n)
        mutable = []
        for coef, v in zip(coefs, variables, strict=True):
            col = var_map[id(v)]
            if coef.__class__ in native_numeric_types:
                costs[col] = coef
            else:
                costs[col] = value(coef)
                mutable.append(
                    _MutableObjectiveCoefficient(
                        pyomo_var_id=id(v), var_map=var_map, expr=coef, highs=self._solver_model
                    )
                )
        highs = self._solver_model
        highs.changeObjectiveSense(highspy.ObjSense.kMinimize if obj.sense == minimize else highspy.ObjSense.kMaximize)
        highs.changeColsCost(n, np.arange(n), costs)
        self._mutable_objective = _MutableObjective(
            highs, _MutableObjectiveOffset(expr=0, highs=highs), mutable, [], var_map
        )
        self._mutable_objective.update()

    def add_block(self, block: Any) -> None:
        """As the base class, but whole MatrixConstraints are loaded per component, not per row."""
        params: dict[int, Any] = {}
        for p in block.component_objects(Param, descend_into=True):
            if p.mutable:
                params.update((id(d), d) for d in p.values())
        self.add_parameters(list(params.values()))
        rows: list[ConstraintData] = []
        for comp in block.component_objects(Constraint, descend_into=True, active=True):
            if isinstance(comp, MatrixConstraint) and comp.active:
                self._add_matrix(comp)
            else:
                rows.extend(d for d in comp.values() if d.active)
        if rows:
            self.add_constraints(rows)
        sos = list(block.component_data_objects(SOSConstraint, descend_into=True, active=True))
        if sos:
            self.add_sos_constraints(sos)
        obj = get_objective(block)
        if obj is not None:
            self.set_objective(obj)

    def add_constraints(self, cons: list[ConstraintData]) -> None:
        fast, slow = [], []
        matrices: dict[int, tuple[MatrixConstraint, list[ConstraintData]]] = {}
        for con in cons:
            comp = con.parent_component()
            if isinstance(comp, MatrixConstraint):
                matrices.setdefault(id(comp), (comp, []))[1].append(con)
                continue
            parsed = _parse(con)
            if parsed is None:
                slow.append(con)
            else:
                fast.append(parsed)
        if slow:
            super().add_constraints(slow)
        if fast:
            self._add_linear_constraints(fast)
        for comp, rows in matrices.values():
            if len(rows) == len(comp) and all(r is d for r, d in zip(rows, comp.values(), strict=True)):
                self._add_matrix(comp)
            else:  # a subset of rows: the generic path (expression per row)
                super().add_constraints(rows)

    def _add_variables(self, variables: list[Any]) -> None:
        """Add columns in one call; variables with constant bounds skip the per-variable helper."""
        self._sol = None
        if self._last_results_object is not None:
            self._last_results_object.solution_loader.invalidate()
        var_map = self._pyomo_var_to_solver_var_map
        first = len(var_map)
        n = len(variables)
        lbs = np.empty(n)
        ubs = np.empty(n)
        integer: list[int] = []
        for k, v in enumerate(variables):
            v_id = id(v)
            _, lb, ub, fixed, interval, _ = cast(tuple[Any, ...], self._vars[v_id])  # bounds: float | None | expression
            if not fixed and interval == (None, None, 0) and lb.__class__ in _PLAIN and ub.__class__ in _PLAIN:
                lbs[k] = _bound(lb, -highspy.kHighsInf)
                ubs[k] = _bound(ub, highspy.kHighsInf)
            else:
                lbs[k], ubs[k], vtype = self._process_domain_and_bounds(v_id)
                if vtype != highspy.HighsVarType.kContinuous:
                    integer.append(first + k)
            var_map[v_id] = first + k
        self._solver_model.addVars(n, lbs, ubs)
        if integer:
            self._solver_model.changeColsIntegrality(
                len(integer), np.array(integer), np.array([highspy.HighsVarType.kInteger] * len(integer))
            )

    def _add_matrix(self, comp: MatrixConstraint) -> None:
        """Load a whole MatrixConstraint (lb <= A x <= ub in CSR) with one addRows call, with the
        bookkeeping the base class needs (row maps, mutable coefficients and bounds)."""
        self._sol = None
        if self._last_results_object is not None:
            self._last_results_object.solution_loader.invalidate()
        x = comp._x
        referenced = self._referenced_variables
        var_map = self._pyomo_var_to_solver_var_map
        con_map = self._pyomo_con_to_solver_con_map
        if self._x_cols is None or self._x_cols[0] is not x:  # the blocks share one variable tuple
            new = {id(v): v for v in x if id(v) not in referenced}
            if new:
                self.add_variables(list(new.values()))
            self._x_cols = (x, np.fromiter((var_map[id(v)] for v in x), dtype=np.int64, count=len(x)))
        cols = self._x_cols[1]
        data = comp._A_data
        indices = np.asarray(comp._A_indices, dtype=np.int64)
        index_list = indices.tolist()
        indptr = np.asarray(comp._A_indptr, dtype=np.int64)
        numeric = isinstance(data, np.ndarray) and data.dtype != object
        values = (
            np.asarray(data, dtype=np.double) if numeric else np.array([_bound(c, 0.0) for c in data], dtype=np.double)
        )
        rows = list(comp.values())
        first_row = len(con_map)
        # Per row, the bookkeeping that the base class's update()/remove paths look up. Variable
        # references are kept per (variable, component): matrix rows are immutable and are never
        # removed one by one, so per-row reference lists would only cost time.
        numbers = range(first_row, first_row + len(rows))
        self._active_constraints.update(dict.fromkeys(rows))
        self._named_expressions.update(dict.fromkeys(rows, _NO_VARS))
        self._vars_referenced_by_con.update(dict.fromkeys(rows, _NO_VARS))
        con_map.update(zip(rows, numbers, strict=True))
        self._solver_con_to_pyomo_con_map.update(zip(numbers, rows, strict=True))
        anchor = rows[0] if rows else None  # the component's first row stands for all of them
        for j in np.unique(indices).tolist():
            referenced[id(x[j])][0][anchor] = None
        if not numeric:
            positions = [p for p, c in enumerate(data) if c.__class__ not in native_numeric_types]
            owners = (np.searchsorted(indptr, positions, side="right") - 1).tolist()
            for p, r in zip(positions, owners, strict=True):
                helper = _MutableLinearCoefficient(
                    pyomo_con=rows[r],
                    pyomo_var_id=id(x[index_list[p]]),
                    con_map=con_map,
                    var_map=var_map,
                    expr=data[p],
                    highs=self._solver_model,
                )
                self._mutable_helpers.setdefault(rows[r], []).append(helper)
        lbs = np.array([_bound(b, -highspy.kHighsInf) for b in comp._lower], dtype=np.double)
        ubs = np.array([_bound(b, highspy.kHighsInf) for b in comp._upper], dtype=np.double)
        for i, (lower, upper) in enumerate(zip(comp._lower, comp._upper, strict=True)):
            if lower.__class__ in _PLAIN and upper.__class__ in _PLAIN:
                continue
            helper = _MutableConstraintBounds(
                lower_expr=lower if lower is not None else -highspy.kHighsInf,
                upper_expr=upper if upper is not None else highspy.kHighsInf,
                pyomo_con=rows[i],
                con_map=con_map,
                highs=self._solver_model,
            )
            self._mutable_helpers.setdefault(rows[i], []).append(helper)
        self._solver_model.addRows(
            len(rows), lbs, ubs, len(values), indptr[:-1].astype(np.int32), cols[indices].astype(np.int32), values
        )

    def update(self, timer: Any = None) -> None:
        """Before a re-solve of the same model: push changed mutable parameters (bounds, coefficients,
        objective) and changed variable bounds to HiGHS, which then warm-starts from its last basis.

        The dispatch model's structure is fixed (matrix rows are immutable), so unlike the base
        class this does not look for added or removed constraints; a changed structure needs a new
        model and `set_instance`."""
        changed = []
        for v_id, (v, lb, ub, fixed, interval, val) in self._vars.items():
            if v._lb is not lb or v._ub is not ub or v._fixed != fixed or (fixed and v._value != val):
                self._vars[v_id] = (v, v._lb, v._ub, v._fixed, interval, v._value)
                changed.append(v)
        if changed:
            self._update_variables(changed)
        self.update_parameters()

    def update_parameters(self) -> None:
        """Push every mutable bound, coefficient and cost to HiGHS, in one call per kind where
        HiGHS has one (the base class calls HiGHS once per row, column and cost)."""
        state: Any = self  # the base class's attributes, which it leaves unannotated
        self._sol = None
        if state._last_results_object is not None:
            state._last_results_object.solution_loader.invalidate()
        con_map, var_map = self._pyomo_con_to_solver_con_map, self._pyomo_var_to_solver_var_map
        rows: list[int] = []
        row_bounds: list[tuple[float, float]] = []
        for helpers in state._mutable_helpers.values():
            for helper in helpers:
                if helper.__class__ is _MutableConstraintBounds:
                    rows.append(con_map[helper.con])
                    row_bounds.append((value(helper.lower_expr), value(helper.upper_expr)))
                else:  # a mutable matrix coefficient: HiGHS changes those one at a time
                    helper.update()
        cols: list[int] = []
        col_bounds: list[tuple[float, float]] = []
        for _v, helper in state._mutable_bounds.values():
            cols.append(var_map[helper.pyomo_var_id])
            col_bounds.append((value(helper.lower_expr), value(helper.upper_expr)))
        highs = self._solver_model
        if rows:
            lu = np.array(row_bounds, dtype=np.double)
            highs.changeRowsBounds(len(rows), np.array(rows, dtype=np.int32), lu[:, 0].copy(), lu[:, 1].copy())
        if cols:
            lu = np.array(col_bounds, dtype=np.double)
            highs.changeColsBounds(len(cols), np.array(cols, dtype=np.int32), lu[:, 0].copy(), lu[:, 1].copy())
        objective = state._mutable_objective
        if objective is not None:
            objective.constant.update()
            costs = objective.linear_coefs
            if costs:
                idx = np.fromiter((var_map[c.pyomo_var_id] for c in costs), dtype=np.int32, count=len(costs))
                val = np.fromiter((value(c.expr) for c in costs), dtype=np.double, count=len(costs))
                highs.changeColsCost(len(costs), idx, val)

    def _solution(self) -> Any:
        """The solution the last solve already copied out of HiGHS (fetched only if it did not)."""
        return self._sol if self._sol is not None else self._solver_model.getSolution()

    def write_model(self, path: str) -> None:
        """Write the LP exactly as HiGHS holds it (e.g. .mps), for a reference solve elsewhere."""
        self._solver_model.writeModel(path)

    def _add_linear_constraints(self, parsed: list[tuple[Any, Any, list[Any], list[Any], Any]]) -> None:
        self._sol = None
        if self._last_results_object is not None:
            self._last_results_object.solution_loader.invalidate()
        new_vars: dict[int, Any] = {}
        referenced = self._referenced_variables
        for con, _, _, variables, _ in parsed:
            if con in self._named_expressions:
                raise ValueError(f"Constraint {con.name} has already been added")
            for v in variables:
                if id(v) not in referenced and id(v) not in new_vars:
                    new_vars[id(v)] = v
        if new_vars:
            self.add_variables(list(new_vars.values()))
        var_map = self._pyomo_var_to_solver_var_map
        con_map = self._pyomo_con_to_solver_con_map
        row = len(con_map)
        lbs: list[float] = []
        ubs: list[float] = []
        starts: list[int] = []
        indices: list[int] = []
        values: list[float] = []
        for con, lower, coefs, variables, upper in parsed:
            self._active_constraints[con] = con.expr
            self._named_expressions[con] = []
            self._vars_referenced_by_con[con] = variables
            starts.append(len(values))
            for coef, v in zip(coefs, variables, strict=True):
                v_id = id(v)
                referenced[v_id][0][con] = None
                if coef.__class__ in native_numeric_types:
                    indices.append(var_map[v_id])
                    values.append(coef)
                    continue
                helper = _MutableLinearCoefficient(
                    pyomo_con=con,
                    pyomo_var_id=v_id,
                    con_map=con_map,
                    var_map=var_map,
                    expr=coef,
                    highs=self._solver_model,
                )
                self._mutable_helpers.setdefault(con, []).append(helper)
                indices.append(var_map[v_id])
                values.append(value(coef))
            if not _constant(lower) or not _constant(upper):
                helper = _MutableConstraintBounds(
                    lower_expr=lower if lower is not None else -highspy.kHighsInf,
                    upper_expr=upper if upper is not None else highspy.kHighsInf,
                    pyomo_con=con,
                    con_map=con_map,
                    highs=self._solver_model,
                )
                self._mutable_helpers.setdefault(con, []).append(helper)
            lbs.append(_bound(lower, -highspy.kHighsInf))
            ubs.append(_bound(upper, highspy.kHighsInf))
            con_map[con] = row
            self._solver_con_to_pyomo_con_map[row] = con
            row += 1
        self._solver_model.addRows(
            len(lbs),
            np.array(lbs, dtype=np.double),
            np.array(ubs, dtype=np.double),
            len(values),
            np.array(starts, dtype=np.int32),
            np.array(indices, dtype=np.int32),
            np.array(values, dtype=np.double),
        )

    def var_values(self, variables: Iterable[Any]) -> np.ndarray:
        """Primal values of the given VarData objects, in order (0 for a variable that is in no
        constraint and thus unknown to HiGHS). Reads HiGHS's solution vector directly."""
        if self._cols is None:
            self._cols = np.asarray(self._solution().col_value)
        var_map = self._pyomo_var_to_solver_var_map
        idx = np.fromiter((var_map.get(id(v), -1) for v in variables), dtype=np.int64)
        out = np.zeros(len(idx))
        known = idx >= 0
        out[known] = self._cols[idx[known]]
        return out

    def _reinit(self) -> None:
        super()._reinit()
        self._x_cols = None
        self._cols = None
        self.highs_time_s = 0.0

    def _solve(self) -> Any:
        self._cols = None
        return super()._solve()

    def row_duals(self, con: Any) -> np.ndarray:
        """Duals (d objective / d bound) of every member of an indexed Constraint, in order."""
        duals = np.asarray(self._solution().row_dual)
        con_map = self._pyomo_con_to_solver_con_map
        idx = np.fromiter((con_map[c] for c in con.values()), dtype=np.int64, count=len(con))
        return duals[idx]


def _parse(con: ConstraintData) -> tuple[Any, Any, list[Any], list[Any], Any] | None:
    """(constraint, lower, coefficients, variables, upper) of a constraint whose body is a pure
    LinearExpression without a constant term, else None."""
    lower, body, upper = con.to_bounded_expression()
    if body.__class__ is not LinearExpression:
        return None
    coefs, variables = [], []
    for arg in body.args:
        if arg.__class__ is not MonomialTermExpression:
            return None
        coef, var = arg.args
        coefs.append(coef)
        variables.append(var)
    return con, lower, coefs, variables, upper


_PLAIN = {float, int, type(None)}
_NO_VARS: tuple[Any, ...] = ()  # shared by all matrix rows; never mutated


def _objective_terms(obj: Any) -> tuple[list[Any], list[Any]] | None:
    """(coefficients, variables) of a LinearExpression objective with distinct variables, else None."""
    if obj is None or obj.expr.__class__ is not LinearExpression:
        return None
    coefs, variables = [], []
    for arg in obj.expr.args:
        if arg.__class__ is not MonomialTermExpression:
            return None
        coefs.append(arg.args[0])
        variables.append(arg.args[1])
    if len({id(v) for v in variables}) != len(variables):
        return None
    return coefs, variables


def _bound(bound: Any, infinite: float) -> float:
    if bound is None:
        return infinite
    if bound.__class__ in native_numeric_types:
        return bound
    if bound.__class__ is ParamData:
        return bound._value  # the slot behind ParamData.value, without the call overhead
    return value(bound)


def _constant(bound: Any) -> bool:
    return (
        bound is None
        or bound.__class__ in native_numeric_types
        or (not bound.is_potentially_variable() and bound.is_constant())
    )
