"""§14a EnWG dimming of controllable devices without a flexibility contract.

For each dimming group g (one device, or all devices behind one EMS) and each step t in which the
group requests power:

    sum_{d in g} power[d, t] >= min(sum_{d in g} requested[d, t], min_kw[g])

(for a lone device, a lower bound on its power variable), so the plan may dim the group down to
its guaranteed minimum but no further (and never a device
that requests less than its minimum). dimmed[d, t] >= requested[d, t] - power[d, t] is penalised at
``penalties.dimming_eur_per_kwh``, more than any price spread, so devices without a contract are
dimmed for congestion only, never shifted for profit. For a battery the §14a power is its charging.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from grid.domain import Penalties
from models.blocks.assembly import Assembly
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


def member_id(tables: Tables, kind: str, i: int) -> str:
    return {"battery": tables.batteries.ids, "ev": tables.ev.ids, "heat_pump": tables.heat_pumps.ids}[kind][i]


def member_columns(m: pyo.ConcreteModel, tables: Tables, kind: str, i: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, columns) of the variables that make up the device's §14a power."""
    if kind == "battery":
        return np.arange(tables.T), m.batteries.charge_cols[i]
    if kind == "heat_pump":
        return np.arange(tables.T), m.heat_pumps.power_cols[i]
    sess, step = m.ev.steps
    mine = tables.ev.session_charger[sess] == i
    return step[mine], m.ev.charge_cols[mine]


def add_dimming(m: pyo.ConcreteModel, tables: Tables, penalties: Penalties, asm: Assembly) -> pyo.Block:
    b = pyo.Block()
    m.par14a = b
    T, dt_h = tables.T, tables.dt_h
    floor_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (row, col) pairs per group
    floor_lb: list[float] = []
    dim_rows: list[tuple[np.ndarray, np.ndarray]] = []
    dim_lb: list[float] = []
    n_dim = 0
    for group in tables.dimming_groups:
        req = np.array([member_request(tables, k, i) for k, i in group.members])
        total = req.sum(axis=0)
        active = np.flatnonzero(total > EPS_KW)
        if len(group.members) == 1:  # the floor is a lower bound on the device's own variable
            steps, cols = member_columns(m, tables, *group.members[0])
            for t, col in zip(steps.tolist(), cols.tolist(), strict=True):
                if total[t] > EPS_KW:
                    asm.columns[col].setlb(float(min(total[t], group.min_kw)))
            active = active[:0]
        row_of_step = np.full(T, -1)
        row_of_step[active] = len(floor_lb) + np.arange(len(active))
        floor_lb += np.minimum(total[active], group.min_kw).tolist()
        for j, (kind, i) in enumerate(group.members):
            steps, cols = member_columns(m, tables, kind, i)
            on = row_of_step[steps] >= 0
            floor_rows.append((row_of_step[steps[on]], cols[on], np.ones(int(on.sum()))))
            wanted = np.flatnonzero(req[j] > EPS_KW)
            dim_row_of_step = np.full(T, -1)
            dim_row_of_step[wanted] = n_dim + np.arange(len(wanted))
            dim_lb += req[j][wanted].tolist()
            on = dim_row_of_step[steps] >= 0
            dim_rows.append((dim_row_of_step[steps[on]], cols[on]))
            n_dim += len(wanted)
    floor = asm.rows(b, "floor", floor_lb, [None] * len(floor_lb))
    for rows, cols, coefs in floor_rows:
        floor.add(rows, cols, coefs)
    b.dimmed_cols = asm.var(b, "dimmed", n_dim)
    dimmed = asm.rows(b, "dimmed_def", dim_lb, [None] * n_dim)
    for rows, cols in dim_rows:
        dimmed.add(rows, cols, 1.0)
    dimmed.add(np.arange(n_dim), b.dimmed_cols, 1.0)
    asm.cost(b.dimmed_cols, penalties.dimming_eur_per_kwh * dt_h)
    return b
