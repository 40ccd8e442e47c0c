"""Feed-in payment under the German negative-price rules: exports of a PV array that gets no
payment in an interval must not earn (or pay) the feed-in price.

The LP balances connections, not households, so which array's energy leaves the connection is not
determined by the physics. The block splits each connection's export x[c, t] (import block's
``exp + over_export``) into a part that earns the feed-in price and ``unpaid[c, t]`` (kW) that does
not, for every connection with an array under a rule other than ``none``:

    0 <= unpaid[c, t] <= x[c, t]
    unpaid[c, t] <= sum of the generation of arrays unpaid at t                       (i)
    x[c, t] - unpaid[c, t] <= generation of arrays paid at t + storage discharge     (ii)

and the objective adds feed_in[c, t] x unpaid[c, t] x dt (taking back the revenue the connection
block credited on all of x). With a positive feed-in price (ii) binds: the paid export is at most
what paid arrays and storage (batteries, V2G) feed in, i.e. the connection's own consumption is
served first by the arrays that are not paid, as a household serves its own load from its array
before it exports. With a negative feed-in price (direct marketing at a negative spot price) (i)
binds: only energy of unpaid arrays escapes the negative price. Both are linear; whether an array
is paid at t (0/1 per group and step) and the generation of arrays that cannot be curtailed are
mutable Params, so a new day-ahead price re-uses the model. Units: kW, EUR/kWh.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from models.blocks.assembly import Assembly
from models.tables import Tables


def ruled_connections(tables: Tables) -> np.ndarray:
    """Connections with at least one array under a negative-price rule (structure)."""
    pv = tables.pv
    ruled = np.array([r != "none" for r in pv.rule], dtype=bool)
    return np.unique(pv.at.node[ruled]) if ruled.any() else np.zeros(0, dtype=int)


def fixed_generation_kw(tables: Tables, conns: np.ndarray, unpaid: bool) -> np.ndarray:
    """(K, T) generation of arrays that cannot be curtailed at each of `conns`, of those unpaid (or
    paid) at each step, kW."""
    pv = tables.pv
    share = pv.unpaid if unpaid else 1.0 - pv.unpaid
    gen = np.zeros((len(tables.connections.ids), tables.T))
    fixed = ~pv.curtailable
    np.add.at(gen, pv.at.node[fixed], (share * pv.available_kw)[fixed])
    return gen[conns].reshape(len(conns), tables.T)


def group_unpaid(tables: Tables, groups: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """(G, T) 1 where the curtailable group is unpaid (its arrays share one rule), else 0."""
    return np.array([tables.pv.unpaid[ix[0]] for _, _, ix in groups]).reshape(len(groups), tables.T)


def add_feed_in(m: pyo.ConcreteModel, tables: Tables, asm: Assembly) -> pyo.Block:
    b = pyo.Block()
    m.feed_in = b
    T, dt_h = tables.T, tables.dt_h
    grid, groups = m.connections, m.pv.groups
    conns = ruled_connections(tables)
    K = len(conns)
    b.conns = conns
    row_of = np.full(len(tables.connections.ids), -1)
    row_of[conns] = np.arange(K)
    b.unpaid_cols = asm.var(b, "unpaid_export", K * T, time=T).reshape(K, T)
    if not K:
        return b
    group_unpaid_share = asm.param(b, "group_unpaid", lambda t: group_unpaid(t, groups))
    group_paid_share = asm.param(b, "group_paid", lambda t: 1.0 - group_unpaid(t, groups))
    neg_fixed_unpaid = asm.param(b, "neg_fixed_unpaid_kw", lambda t: -fixed_generation_kw(t, conns, True))
    neg_fixed_paid = asm.param(b, "neg_fixed_paid_kw", lambda t: -fixed_generation_kw(t, conns, False))
    r = np.arange(K * T).reshape(K, T)
    export = asm.rows(b, "within_export", np.zeros(K * T), None, time=T)  # x - unpaid >= 0
    unpaid = asm.rows(b, "unpaid_gen", neg_fixed_unpaid.all(), None, time=T)
    paid = asm.rows(b, "paid_sources", neg_fixed_paid.all(), None, time=T)
    soft = {c: j for j, c in enumerate(grid.soft)}
    for k, c in enumerate(conns.tolist()):
        for rows, sign in ((export, 1.0), (paid, -1.0)):
            rows.add(r[k], grid.exp_cols[c], sign)
            if c in soft:
                rows.add(r[k], grid.over_export_cols[soft[c]], sign)
    export.add(r, b.unpaid_cols, -1.0)
    unpaid.add(r, b.unpaid_cols, -1.0)
    paid.add(r, b.unpaid_cols, 1.0)
    # curtailable PV groups: unpaid ones count in (i), paid ones in (ii), with mutable 0/1 coefficients
    gen_cols = m.pv.gen_cols
    for g, (node, _, _) in enumerate(groups):
        k = row_of[node]
        if k < 0:
            continue
        unpaid.add(r[k], gen_cols[g], group_unpaid_share[g])
        paid.add(r[k], gen_cols[g], group_paid_share[g])
    # every other source feeding the node (battery and V2G discharge) counts as paid
    node, _, t, coef, cols = asm.injections()
    pv_cols = np.isin(cols, gen_cols.ravel())
    source = (coef < 0) & ~pv_cols & (row_of[node] >= 0)
    paid.add(row_of[node[source]] * T + t[source], cols[source], -coef[source])
    asm.cost(b.unpaid_cols, grid.feed_in_param[conns] * dt_h)
    return b
