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
from typing import Any

import highspy
import numpy as np
from pyomo.common.numeric_types import native_numeric_types
from pyomo.contrib.solver.solvers.highs import Highs, _MutableConstraintBounds, _MutableLinearCoefficient
from pyomo.core.base.constraint import ConstraintData
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.core.expr.numvalue import value


class PersistentHighs(Highs):  # type: ignore[misc]
    """HiGHS through Pyomo's persistent interface, with a fast path for linear constraints."""

    _cols: np.ndarray | None = None

    def add_constraints(self, cons: list[ConstraintData]) -> None:
        fast, slow = [], []
        for con in cons:
            parsed = _parse(con)
            if parsed is None:
                slow.append(con)
            else:
                fast.append(parsed)
        if slow:
            super().add_constraints(slow)
        if fast:
            self._add_linear_constraints(fast)

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
                helper = _MutableLinearCoefficient(pyomo_con=con, pyomo_var_id=v_id, con_map=con_map,
                                                   var_map=var_map, expr=coef, highs=self._solver_model)
                self._mutable_helpers.setdefault(con, []).append(helper)
                indices.append(var_map[v_id])
                values.append(value(coef))
            if not _constant(lower) or not _constant(upper):
                helper = _MutableConstraintBounds(
                    lower_expr=lower if lower is not None else -highspy.kHighsInf,
                    upper_expr=upper if upper is not None else highspy.kHighsInf,
                    pyomo_con=con, con_map=con_map, highs=self._solver_model,
                )
                self._mutable_helpers.setdefault(con, []).append(helper)
            lbs.append(_bound(lower, -highspy.kHighsInf))
            ubs.append(_bound(upper, highspy.kHighsInf))
            con_map[con] = row
            self._solver_con_to_pyomo_con_map[row] = con
            row += 1
        self._solver_model.addRows(
            len(lbs), np.array(lbs, dtype=np.double), np.array(ubs, dtype=np.double), len(values),
            np.array(starts, dtype=np.int32), np.array(indices, dtype=np.int32), np.array(values, dtype=np.double),
        )

    def var_values(self, variables: Iterable[Any]) -> np.ndarray:
        """Primal values of the given VarData objects, in order (0 for a variable that is in no
        constraint and thus unknown to HiGHS). Reads HiGHS's solution vector directly."""
        if self._cols is None:
            self._cols = np.asarray(self._solver_model.getSolution().col_value)
        var_map = self._pyomo_var_to_solver_var_map
        idx = np.fromiter((var_map.get(id(v), -1) for v in variables), dtype=np.int64)
        out = np.zeros(len(idx))
        known = idx >= 0
        out[known] = self._cols[idx[known]]
        return out

    def _solve(self) -> Any:
        self._cols = None
        return super()._solve()

    def row_duals(self, con: Any) -> np.ndarray:
        """Duals (d objective / d bound) of every member of an indexed Constraint, in order."""
        duals = np.asarray(self._solver_model.getSolution().row_dual)
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


def _bound(bound: Any, infinite: float) -> float:
    if bound is None:
        return infinite
    return bound if bound.__class__ in native_numeric_types else value(bound)


def _constant(bound: Any) -> bool:
    return bound is None or bound.__class__ in native_numeric_types or not bound.is_potentially_variable() and bound.is_constant()
