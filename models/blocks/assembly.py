"""What block builders hand to the dispatch model: node injections, cost terms and slacks.

Injections are power drawn from a node in kW (positive = consumption). Cost terms are EUR per
unit of the variable over the whole interval, i.e. already multiplied by dt_h where the variable is
a power. Slacks are variables whose non-zero value becomes a named violation in the plan.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pyomo.core.expr.numeric_expr import LinearExpression


@dataclass
class Slack:
    """A slack variable and what its value means: amount = value x scale, in `unit`."""

    kind: str
    asset: str
    var: Any
    step: int | None
    unit: str
    scale: float = 1.0
    cost_eur_per_unit: float = 0.0


@dataclass
class Assembly:
    node_terms: dict[tuple[int, int], tuple[list[Any], list[Any]]] = field(default_factory=lambda: defaultdict(lambda: ([], [])))
    feeder_terms: dict[tuple[int, int], tuple[list[Any], list[Any]]] = field(default_factory=lambda: defaultdict(lambda: ([], [])))
    cost_coefs: list[Any] = field(default_factory=list)
    cost_vars: list[Any] = field(default_factory=list)
    slacks: list[Slack] = field(default_factory=list)

    def inject(self, node: int, feeder: int, t: int, coef: float, var: Any) -> None:
        """Register `coef x var` kW drawn from connection `node` (and `feeder` if >= 0) at step t."""
        coefs, variables = self.node_terms[node, t]
        coefs.append(coef)
        variables.append(var)
        if feeder >= 0:
            coefs, variables = self.feeder_terms[feeder, t]
            coefs.append(coef)
            variables.append(var)

    def cost(self, coef: Any, var: Any) -> None:
        """Add `coef x var` EUR to the objective (coef may be a mutable Param expression)."""
        self.cost_coefs.append(coef)
        self.cost_vars.append(var)

    def slack(self, kind: str, asset: str, var: Any, step: int | None, unit: str, scale: float, penalty: float) -> None:
        """Register a penalised slack: cost `penalty x scale` EUR per unit of `var`."""
        self.slacks.append(Slack(kind, asset, var, step, unit, scale, penalty * scale))
        self.cost(penalty * scale, var)

    def node_expr(self, node: int, t: int) -> LinearExpression:
        coefs, variables = self.node_terms.get((node, t), ([], []))
        return linear(coefs, variables)

    def feeder_expr(self, feeder: int, t: int) -> LinearExpression:
        coefs, variables = self.feeder_terms.get((feeder, t), ([], []))
        return linear(coefs, variables)


def linear(coefs: list[Any], variables: list[Any], constant: float = 0.0) -> LinearExpression:
    """A Pyomo LinearExpression built directly (no operator overloading, no simplification pass)."""
    return LinearExpression(constant=constant, linear_coefs=list(coefs), linear_vars=list(variables))
