"""PV: generation up to the available power; curtailable arrays may produce less.

Curtailable arrays behind the same connection and feeder (and under the same feed-in rule) are
interchangeable in the LP, so the block
decides one generation variable per such group and step (kW, fed into the node) and the plan splits
it back over the group's arrays pro rata to their availability. Arrays that cannot be curtailed are
a fixed injection in the connection's fixed net load (see ``models.dispatch``).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from models.blocks.assembly import Assembly
from models.tables import PVTable


def curtailable_groups(tab: PVTable) -> list[tuple[int, int, np.ndarray]]:
    """(node, feeder, array indices) for every group of curtailable arrays: same connection, feeder
    and negative-price rule (so the arrays of a group are paid for their feed-in in the same steps)."""
    groups: dict[tuple[int, int, str], list[int]] = {}
    for i in np.flatnonzero(tab.curtailable):
        groups.setdefault((int(tab.at.node[i]), int(tab.at.feeder[i]), tab.rule[i]), []).append(int(i))
    return [(n, f, np.array(ix)) for (n, f, _), ix in sorted(groups.items())]


def group_available_kw(tab: PVTable, groups: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """(G, T) available generation of each curtailable group, kW."""
    T = tab.available_kw.shape[1]
    return np.array([tab.available_kw[ix].sum(axis=0) for _, _, ix in groups]).reshape(len(groups), T)


def add_pv(m: pyo.ConcreteModel, tab: PVTable, asm: Assembly) -> pyo.Block:
    """Generation gen[g, t] in [0, available_kw[g, t]] (a mutable bound) for each curtailable group."""
    b = pyo.Block()
    m.pv = b
    groups = curtailable_groups(tab)
    T = tab.available_kw.shape[1]
    G = len(groups)
    available = asm.param(b, "available_kw", lambda t: group_available_kw(t.pv, groups))
    b.gen_cols = asm.var(b, "gen", G * T, 0.0, available.all(), time=T).reshape(G, T)
    node = np.array([n for n, _, _ in groups], dtype=int).reshape(G, 1)
    feeder = np.array([f for _, f, _ in groups], dtype=int).reshape(G, 1)
    asm.inject(node, feeder, np.arange(T), -1.0, b.gen_cols)
    b.groups = groups
    return b
