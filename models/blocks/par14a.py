"""§14a EnWG dimming of controllable devices without a flexibility contract.

For each dimming group g (one device, or all devices behind one EMS) and each step t in which the
group requests power:

    sum_{d in g} power[d, t] >= min(sum_{d in g} requested[d, t], min_kw[g])

so the plan may dim the group down to its guaranteed minimum but no further (and never a device
that requests less than its minimum). dimmed[d, t] >= requested[d, t] - power[d, t] is penalised at
``penalties.dimming_eur_per_kwh``, more than any price spread, so devices without a contract are
dimmed for congestion only, never shifted for profit.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from grid.domain import Penalties
from models.blocks import battery, ev, heat_pump
from models.blocks.assembly import Assembly, linear
from models.tables import Tables

EPS_KW = 1e-6


def member_request(tables: Tables, kind: str, i: int) -> np.ndarray:
    """Requested profile (T,) in kW of one device."""
    if kind == "battery":
        return tables.batteries.request_charge_kw[i]
    if kind == "ev":
        on = tables.ev.session_charger == i
        return tables.ev.request_kw[on].sum(axis=0) if on.any() else np.zeros(tables.T)
    return tables.heat_pumps.request_kw[i]


def member_power(m: pyo.ConcreteModel, tables: Tables, kind: str, i: int, t: int) -> tuple[list[float], list[object]]:
    if kind == "battery":
        return battery.device_power(m.batteries, i, t)
    if kind == "ev":
        return ev.device_power(m.ev, i, t)
    return heat_pump.device_power(m.heat_pumps, i, t)


def member_id(tables: Tables, kind: str, i: int) -> str:
    return {"battery": tables.batteries.ids, "ev": tables.ev.ids, "heat_pump": tables.heat_pumps.ids}[kind][i]


def add_dimming(m: pyo.ConcreteModel, tables: Tables, penalties: Penalties, asm: Assembly) -> pyo.Block:
    b = pyo.Block()
    m.par14a = b
    T, dt_h = tables.T, tables.dt_h
    floors: list[tuple[int, int, float]] = []  # (group, t, floor_kw)
    dim_index: list[tuple[int, int, int]] = []  # (group, member position, t)
    requests = {}
    for g, group in enumerate(tables.dimming_groups):
        req = np.array([member_request(tables, k, i) for k, i in group.members])
        requests[g] = req
        total = req.sum(axis=0)
        floors += [(g, t, float(min(total[t], group.min_kw))) for t in np.flatnonzero(total > EPS_KW)]
        dim_index += [(g, j, int(t)) for j in range(len(group.members)) for t in np.flatnonzero(req[j] > EPS_KW)]
    b.dimmed = pyo.Var(dim_index, within=pyo.NonNegativeReals)

    def floor(_: pyo.Block, g: int, t: int, kw: float) -> object:
        coefs: list[float] = []
        variables: list[object] = []
        for kind, i in tables.dimming_groups[g].members:
            c, v = member_power(m, tables, kind, i, t)
            coefs += c
            variables += v
        return linear(coefs, variables) >= kw

    def dimmed(_: pyo.Block, g: int, j: int, t: int) -> object:
        kind, i = tables.dimming_groups[g].members[j]
        coefs, variables = member_power(m, tables, kind, i, t)
        return linear([*coefs, 1.0], [*variables, b.dimmed[g, j, t]]) >= float(requests[g][j, t])

    floor_kw = {(g, t): kw for g, t, kw in floors}
    b.floor = pyo.Constraint(list(floor_kw), rule=lambda blk, g, t: floor(blk, g, t, floor_kw[g, t]))
    b.dimmed_def = pyo.Constraint(dim_index, rule=dimmed)
    for key in dim_index:
        asm.cost(penalties.dimming_eur_per_kwh * dt_h, b.dimmed[key])
    b.requests = requests
    b.floor_kw = floor_kw
    return b
