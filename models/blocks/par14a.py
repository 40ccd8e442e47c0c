"""§14a EnWG dimming of controllable devices without a flexibility contract.

For each dimming group g (one device, or all devices behind one EMS) and each step t in which the
group requests power:

    sum_{d in g} power[d, t] >= min(sum_{d in g} requested[d, t], min_kw[g])

(for a lone device, a lower bound on its power variable), so the plan may dim the group down to
its guaranteed minimum but no further (and never a device
that requests less than its minimum). dimmed[d, t] >= requested[d, t] - power[d, t] is penalised at
``penalties.dimming_eur_per_kwh``, more than any price spread, so devices without a contract are
dimmed for congestion only, never shifted for profit. For a battery the §14a power is its charging.

Behind a hard-limit connection the limit is physical and wins: there the floor gets a penalised
slack below[., t] >= 0 (``penalties.below_guaranteed_min_eur_per_kwh``, reported as
``par14a_min_not_kept`` in kW), so that a limit the guaranteed minimum does not fit into never makes
the model infeasible nor makes it shed load that is not there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from grid.domain import Penalties
from models.blocks.assembly import Assembly, runs_of_steps
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


def member_steps(tables: Tables, kind: str, i: int) -> tuple[np.ndarray, np.ndarray]:
    """(step, plugged) of each variable that makes up the device's §14a power, in the order of
    `member_columns`; plugged is False where the variable is held at 0 (an EV session's car away)."""
    if kind != "ev":
        return np.arange(tables.T), np.ones(tables.T, dtype=bool)
    avail = tables.ev.availability
    S, T = avail.shape
    sess, step = np.repeat(np.arange(S), T), np.tile(np.arange(T), S)
    mine = tables.ev.session_charger[sess] == i
    return step[mine], avail[sess[mine], step[mine]] > 0


def dimming_bounds(tables: Tables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numbers of the §14a rows in build order (kW; 0 where nothing is requested): lower bounds
    of lone devices' power at each of their steps, group floors at every step, and each member's
    request at each of its steps. The rows exist at every step whatever is requested, so that a
    new forecast changes only these numbers, never the model's structure."""
    lone: list[np.ndarray] = []
    floor: list[np.ndarray] = []
    dim: list[np.ndarray] = []
    for group in tables.dimming_groups:
        req = np.array([member_request(tables, k, i) for k, i in group.members]).reshape(-1, tables.T)
        total = req.sum(axis=0)
        wanted = np.where(total > EPS_KW, np.minimum(total, group.min_kw), 0.0)
        if len(group.members) == 1:
            steps, plugged = member_steps(tables, *group.members[0])
            lone.append(np.where(plugged, wanted[steps], 0.0))
        else:
            floor.append(wanted)
        for (kind, i), r in zip(group.members, req, strict=True):
            steps, plugged = member_steps(tables, kind, i)
            dim.append(np.where(plugged & (r[steps] > EPS_KW), r[steps], 0.0))
    return tuple(np.concatenate(part) if part else np.zeros(0) for part in (lone, floor, dim))  # type: ignore[return-value]


def add_dimming(m: pyo.ConcreteModel, tables: Tables, penalties: Penalties, asm: Assembly) -> pyo.Block:
    b = pyo.Block()
    m.par14a = b
    T, dt_h = tables.T, tables.dt_h
    # one Param for all three parts (computed once per build or refresh), split in build order: the
    # loop below walks the lone devices' floors, then the groups' floors follow, then the requests
    bounds = asm.param(b, "bounds_kw", lambda t: np.concatenate(dimming_bounds(t))).all()
    lone_at = 0  # next lone device's floors in `bounds`
    floor_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (row, col) pairs per group
    dim_rows: list[tuple[np.ndarray, np.ndarray]] = []
    dim_steps: list[np.ndarray] = []  # the step of each dimmed row, member by member (time layout)
    soft_steps: list[np.ndarray] = []
    soft_at: list[np.ndarray] = []  # floors with a slack (hard-limit connections): their place in `bounds`
    soft_cols: list[int] = []  # ... and the lone devices' columns
    below: list[tuple[str, np.ndarray, np.ndarray]] = []  # (device or group, floor row/soft row, step)
    n_floor = n_dim = 0
    for group in tables.dimming_groups:
        if len(group.members) == 1:  # the floor is a lower bound on the device's own variable
            steps, cols = member_columns(m, tables, *group.members[0])
            mine = lone_at + np.arange(len(cols))
            lone_at += len(cols)
            if group.on_hard_limit:  # ... or a row with a slack behind a hard limit
                below.append((group.name, len(soft_cols) + np.arange(len(cols)), steps))
                soft_cols += cols.tolist()
                soft_steps.append(steps)
                soft_at.append(mine)
            else:
                asm.set_lower(cols, bounds[mine])
        else:
            for kind, i in group.members:
                steps, cols = member_columns(m, tables, kind, i)
                floor_rows.append((n_floor + steps, cols, np.ones(len(cols))))
            if group.on_hard_limit:
                below.append((group.name, -1 - (n_floor + np.arange(T)), np.arange(T)))
            n_floor += T
        for kind, i in group.members:
            steps, cols = member_columns(m, tables, kind, i)
            dim_rows.append((n_dim + np.arange(len(cols)), cols))
            dim_steps.append(steps)
            n_dim += len(cols)
    lone_n, floor_n = lone_at, n_floor
    floor = asm.rows(b, "floor", bounds[lone_n : lone_n + floor_n], None, time=T)  # group floors, T per EMS group
    for rows, cols, coefs in floor_rows:
        floor.add(rows, cols, coefs)
    soft_lb = bounds[np.concatenate(soft_at)] if soft_at else np.zeros(0)
    soft = asm.rows(b, "soft_floor", soft_lb, None, n=len(soft_cols), time=runs_of_steps(soft_steps))
    soft.add(np.arange(len(soft_cols)), np.array(soft_cols, dtype=int), 1.0)
    _add_below_min(b, below, floor, soft, penalties, dt_h, asm)
    dim_time = runs_of_steps(dim_steps)
    b.dimmed_cols = asm.var(b, "dimmed", n_dim, time=dim_time)
    # each member's request per step
    dimmed = asm.rows(b, "dimmed_def", bounds[lone_n + floor_n :], None, time=dim_time)
    for rows, cols in dim_rows:
        dimmed.add(rows, cols, 1.0)
    dimmed.add(np.arange(n_dim), b.dimmed_cols, 1.0)
    asm.cost(b.dimmed_cols, penalties.dimming_eur_per_kwh * dt_h)
    return b


def _add_below_min(
    b: pyo.Block,
    below: list[tuple[str, np.ndarray, np.ndarray]],
    floor: Any,
    soft: Any,
    penalties: Penalties,
    dt_h: float,
    asm: Assembly,
) -> None:
    """One slack (kW) per floor row of a group behind a hard limit: rows >= 0 are rows of `soft`
    (lone devices), rows < 0 are -1 - row of `floor` (EMS groups)."""
    rows = np.concatenate([r for _, r, _ in below]) if below else np.zeros(0, dtype=int)
    time = runs_of_steps([steps for _, _, steps in below])
    b.below_min_cols = asm.var(b, "below_min", len(rows), time=time)
    on_soft = rows >= 0
    soft.add(rows[on_soft], b.below_min_cols[on_soft], 1.0)
    floor.add(-1 - rows[~on_soft], b.below_min_cols[~on_soft], 1.0)
    start = 0
    for name, r, steps in below:
        cols = b.below_min_cols[start : start + len(r)]
        asm.slack(
            "par14a_min_not_kept", name, cols, steps, "kW", 1.0, penalties.below_guaranteed_min_eur_per_kwh * dt_h
        )
        start += len(r)
