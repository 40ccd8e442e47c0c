"""Heat pumps with thermal stores.

power[h,t] in [0, electric_kw] kW drawn from the node; heat into the store is COP[h,t] x power.
store[h,t] (kWh thermal) is the content at the start of step t, within [0, store_kwh]:

    store[t+1] = (1 - loss_per_h dt) store[t] + (COP[t] power[t] + unmet[t] - demand[t]) dt

``unmet`` (kW thermal) is the penalised slack for heat the plan cannot deliver. The store must end
at least where it started (soft, penalised). A heat pump without a flexibility contract may only
run late, never early: its cumulative energy never exceeds its requested (thermostat) profile's,
tracked by backlog[h,t] >= 0 (kWh of requested energy not yet drawn).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from grid.domain import Penalties
from models.blocks.assembly import Assembly, linear
from models.tables import HeatPumpTable


def add_heat_pumps(m: pyo.ConcreteModel, tab: HeatPumpTable, T: int, dt_h: float, penalties: Penalties,
                   asm: Assembly) -> pyo.Block:
    b = pyo.Block()
    m.heat_pumps = b
    H = len(tab.ids)
    b.H = pyo.RangeSet(0, H - 1) if H else pyo.Set(initialize=[])
    b.T = pyo.RangeSet(0, T - 1)
    b.T1 = pyo.RangeSet(0, T)
    b.cop = pyo.Param(b.H, b.T, mutable=True, initialize=lambda _, h, t: float(tab.cop[h, t]))
    b.demand_kw = pyo.Param(b.H, b.T, mutable=True, initialize=lambda _, h, t: float(tab.heat_demand_kw[h, t]))
    b.initial_kwh = pyo.Param(b.H, mutable=True, initialize=lambda _, h: float(tab.initial_kwh[h]))
    b.power = pyo.Var(b.H, b.T, bounds=lambda _, h, t: (0.0, float(tab.electric_kw[h])))
    b.store = pyo.Var(b.H, b.T1, bounds=lambda _, h, t: (b.initial_kwh[h], b.initial_kwh[h]) if t == 0 else (0.0, float(tab.store_kwh[h])))
    b.unmet = pyo.Var(b.H, b.T, within=pyo.NonNegativeReals)
    keep = 1.0 - tab.loss_per_h * dt_h

    def balance(_: pyo.Block, h: int, t: int) -> object:
        expr = linear(
            [1.0, -float(keep[h]), -dt_h * b.cop[h, t], -dt_h],
            [b.store[h, t + 1], b.store[h, t], b.power[h, t], b.unmet[h, t]],
        )
        return expr == -dt_h * b.demand_kw[h, t]

    b.balance = pyo.Constraint(b.H, b.T, rule=balance)
    b.shortfall = pyo.Var(b.H, within=pyo.NonNegativeReals)
    b.terminal = pyo.Constraint(b.H, rule=lambda _, h: linear([1.0, 1.0], [b.store[h, T], b.shortfall[h]]) >= b.initial_kwh[h])
    inflexible = [h for h in range(H) if not tab.flex[h]]
    b.backlog = pyo.Var([(h, t) for h in inflexible for t in range(T + 1)], bounds=lambda _, h, t: (0.0, 0.0 if t == 0 else None))

    def backlog_step(_: pyo.Block, h: int, t: int) -> object:
        expr = linear([1.0, -1.0, dt_h], [b.backlog[h, t + 1], b.backlog[h, t], b.power[h, t]])
        return expr == float(tab.request_kw[h, t] * dt_h)

    b.backlog_step = pyo.Constraint([(h, t) for h in inflexible for t in range(T)], rule=backlog_step)
    for h in range(H):
        node, feeder = int(tab.at.node[h]), int(tab.at.feeder[h])
        hid = tab.ids[h]
        for t in range(T):
            asm.inject(node, feeder, t, 1.0, b.power[h, t])
            asm.slack("unmet_heat", hid, b.unmet[h, t], t, "kWh", dt_h, penalties.unmet_heat_eur_per_kwh)
        asm.slack("heat_store_shortfall", hid, b.shortfall[h], None, "kWh", 1.0, penalties.terminal_shortfall_eur_per_kwh)
    return b



def device_power(b: pyo.Block, h: int, t: int) -> tuple[list[float], list[object]]:
    return [1.0], [b.power[h, t]]
