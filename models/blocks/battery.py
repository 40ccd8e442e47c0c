"""Batteries: charge/discharge power and state of charge.

Power in kW (charge > 0 is drawn from the node, discharge is fed into it), energy in kWh.
soc[b, t] is the state at the *start* of step t; soc[b, T] is the terminal state:

    soc[t+1] = (1 - self_discharge_per_h dt) soc[t] + (eta_c charge[t] - discharge[t] / eta_d) dt

A battery with self-discharge has a soft minimum (it may sink below soc_min only if it cannot
charge, at a penalty). A terminal target is soft (shortfall penalised) unless the battery values its stored energy, in
which case the objective credits value x soc[T]. Batteries without a flexibility contract may only
be dimmed on the charging side below their requested profile, and never discharge beyond it.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from grid.domain import Penalties
from models.blocks.assembly import Assembly, linear
from models.tables import BatteryTable


def add_batteries(m: pyo.ConcreteModel, tab: BatteryTable, T: int, dt_h: float, penalties: Penalties,
                  asm: Assembly) -> pyo.Block:
    b = pyo.Block()
    m.batteries = b
    B = len(tab.ids)
    b.B = pyo.RangeSet(0, B - 1) if B else pyo.Set(initialize=[])
    b.T = pyo.RangeSet(0, T - 1)
    b.T1 = pyo.RangeSet(0, T)
    b.initial_kwh = pyo.Param(b.B, mutable=True, initialize=lambda _, i: float(tab.initial_kwh[i]))

    def charge_ub(_: pyo.Block, i: int, t: int) -> tuple[float, float]:
        cap = tab.charge_kw[i] if tab.flex[i] else min(tab.charge_kw[i], tab.request_charge_kw[i, t])
        return (0.0, float(cap))

    def discharge_ub(_: pyo.Block, i: int, t: int) -> tuple[float, float]:
        cap = tab.discharge_kw[i] if tab.flex[i] else min(tab.discharge_kw[i], tab.request_discharge_kw[i, t])
        return (0.0, float(cap))

    b.charge = pyo.Var(b.B, b.T, bounds=charge_ub)
    b.discharge = pyo.Var(b.B, b.T, bounds=discharge_ub)
    # Self-discharge can pull a battery that may not charge below its minimum, so for those the
    # minimum is soft (shortfall penalised and reported); otherwise it is a plain bound.
    leaky = [i for i in range(B) if tab.self_discharge_per_h[i] > 0]
    leaky_set = set(leaky)

    def soc_bounds(_: pyo.Block, i: int, t: int) -> tuple[object, object]:
        if t == 0:  # the initial state is fixed through its (mutable) bounds
            return (b.initial_kwh[i], b.initial_kwh[i])
        return (0.0 if i in leaky_set else float(tab.soc_min_kwh[i]), float(tab.soc_max_kwh[i]))

    b.soc = pyo.Var(b.B, b.T1, bounds=soc_bounds)
    b.below_min = pyo.Var([(i, t) for i in leaky for t in range(1, T + 1)], within=pyo.NonNegativeReals)
    b.soft_min = pyo.Constraint(list(b.below_min.index_set()),
                                rule=lambda _, i, t: linear([1.0, 1.0], [b.soc[i, t], b.below_min[i, t]]) >= float(tab.soc_min_kwh[i]))
    keep = 1.0 - tab.self_discharge_per_h * dt_h

    def continuity(_: pyo.Block, i: int, t: int) -> object:
        expr = linear(
            [1.0, -float(keep[i]), -float(tab.eta_charge[i] * dt_h), float(dt_h / tab.eta_discharge[i])],
            [b.soc[i, t + 1], b.soc[i, t], b.charge[i, t], b.discharge[i, t]],
        )
        return expr == 0.0

    b.continuity = pyo.Constraint(b.B, b.T, rule=continuity)
    targeted = [i for i in range(B) if tab.flex[i] and not np.isnan(tab.terminal_kwh[i])]
    b.shortfall = pyo.Var(targeted, within=pyo.NonNegativeReals)
    b.terminal = pyo.Constraint(targeted, rule=lambda _, i: linear([1.0, 1.0], [b.soc[i, T], b.shortfall[i]]) >= float(tab.terminal_kwh[i]))
    for i in range(B):
        node, feeder = int(tab.at.node[i]), int(tab.at.feeder[i])
        for t in range(T):
            asm.inject(node, feeder, t, 1.0, b.charge[i, t])
            asm.inject(node, feeder, t, -1.0, b.discharge[i, t])
            if tab.throughput_eur_per_kwh[i] > 0:
                asm.cost(float(tab.throughput_eur_per_kwh[i] * dt_h), b.charge[i, t])
                asm.cost(float(tab.throughput_eur_per_kwh[i] * dt_h), b.discharge[i, t])
        if tab.flex[i] and not np.isnan(tab.value_eur_per_kwh[i]):
            asm.cost(-float(tab.value_eur_per_kwh[i]), b.soc[i, T])
    for i, t in b.below_min:
        asm.slack("soc_below_min", tab.ids[i], b.below_min[i, t], t - 1, "kWh", 1.0, penalties.terminal_shortfall_eur_per_kwh)
    for i in targeted:
        asm.slack("terminal_soc_shortfall", tab.ids[i], b.shortfall[i], None, "kWh", 1.0, penalties.terminal_shortfall_eur_per_kwh)
    return b


def device_power(b: pyo.Block, i: int, t: int) -> tuple[list[float], list[object]]:
    """The §14a-relevant (charging) power of battery i at step t as linear terms."""
    return [1.0], [b.charge[i, t]]
