"""Connection points (transformers) and their feeders: import/export, limits, peak.

Per connection c and step t (kW): import = imp + over_import, where imp is bounded by the (mutable)
import limit of that step (the connection's own, or a grid operator's lower limit order) and
over_import is a penalised breach (soft limits only); the same for export. Hard-limit
connections instead shed load (unmet) or spill generation, both penalised, and both bounded by what
is physically there: unmet[c, t] <= the inflexible household load at c in t, spill[c, t] <= the
generation of PV that cannot be curtailed (mutable bounds). A flexible device's set-point can
therefore never be "paid for" by shedding load that does not exist: when a hard limit binds, the
devices themselves give way (heat pumps report unmet heat, EVs missed energy, §14a devices a missed
minimum), so the set-points always fit the limit. The node balance rows themselves are written by
``models.dispatch`` from every block's injections.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from grid.domain import Penalties
from models.blocks.assembly import Assembly
from models.tables import ConnectionTable, PriceTable, Tables


def fixed_injections(tables: Tables) -> tuple[np.ndarray, np.ndarray]:
    """Inflexible net draw per connection (C, T) and per feeder (F, T), in kW: household load
    minus the generation of PV arrays that cannot be curtailed."""
    conn, pv = tables.connections, tables.pv
    node_kw = conn.fixed_load_kw.copy()
    feeder_kw = conn.feeder_fixed_load_kw.copy()
    fixed = ~pv.curtailable
    np.subtract.at(node_kw, pv.at.node[fixed], pv.available_kw[fixed])
    on_feeder = fixed & (pv.at.feeder >= 0)
    np.subtract.at(feeder_kw, pv.at.feeder[on_feeder], pv.available_kw[on_feeder])
    return node_kw, feeder_kw


def inflexible_generation_kw(tables: Tables) -> np.ndarray:
    """(C, T) generation of PV arrays that cannot be curtailed, per connection, kW (>= 0)."""
    pv = tables.pv
    gen = np.zeros((len(tables.connections.ids), tables.T))
    fixed = ~pv.curtailable
    np.add.at(gen, pv.at.node[fixed], pv.available_kw[fixed])
    return gen


def add_connections(
    m: pyo.ConcreteModel, tab: ConnectionTable, prices: PriceTable, dt_h: float, penalties: Penalties, asm: Assembly
) -> pyo.Block:
    """Import/export variables, limits, costs and the peak for every connection.

    The inflexible net draw per connection (household load minus PV that cannot be curtailed, see
    :func:`fixed_injections`) is the mutable right-hand side of the balance; limits and prices are
    mutable too.
    """
    b = pyo.Block()
    m.connections = b
    C, T = tab.fixed_load_kw.shape
    b.fixed_net_param = asm.param(b, "fixed_net_kw", lambda t: fixed_injections(t)[0])
    limit_import = asm.param(b, "limit_import_kw", lambda t: t.connections.limit_import_kw)
    limit_export = asm.param(b, "limit_export_kw", lambda t: t.connections.limit_export_kw)
    # per connection (C, T): each connection may have its own tariff
    import_price = asm.param(
        b, "import_price", lambda t: t.prices.import_eur_per_kwh + t.prices.co2_eur_per_kwh[None, :]
    )
    b.feed_in_param = asm.param(b, "feed_in_price", lambda t: t.prices.feed_in_eur_per_kwh)
    # (C, T) limits: each step's own (a limit order lowers some), row-major like the columns
    b.imp_cols = asm.var(b, "imp", C * T, 0.0, limit_import.all(), time=T).reshape(C, T)
    b.exp_cols = asm.var(b, "exp", C * T, 0.0, limit_export.all(), time=T).reshape(C, T)
    b.soft = [c for c in range(C) if not tab.hard_limits[c]]
    b.hard = [c for c in range(C) if tab.hard_limits[c]]
    b.over_import_cols = asm.var(b, "over_import", len(b.soft) * T, time=T).reshape(len(b.soft), T)
    b.over_export_cols = asm.var(b, "over_export", len(b.soft) * T, time=T).reshape(len(b.soft), T)
    hard = np.array(b.hard, dtype=int)
    unmet_max = asm.param(b, "unmet_max_kw", lambda t: t.connections.fixed_load_kw[hard].reshape(len(hard), t.T))
    spill_max = asm.param(b, "spill_max_kw", lambda t: inflexible_generation_kw(t)[hard].reshape(len(hard), t.T))
    b.unmet_cols = asm.var(b, "unmet", len(b.hard) * T, 0.0, unmet_max.all(), time=T).reshape(len(b.hard), T)
    b.spill_cols = asm.var(b, "spill", len(b.hard) * T, 0.0, spill_max.all(), time=T).reshape(len(b.hard), T)
    soft = np.array(b.soft, dtype=int)
    asm.cost(b.imp_cols, import_price.all() * dt_h)
    asm.cost(b.over_import_cols, import_price[soft] * dt_h)
    asm.cost(b.exp_cols, -b.feed_in_param.all() * dt_h)
    asm.cost(b.over_export_cols, -b.feed_in_param[soft] * dt_h)
    steps = np.arange(T)
    ids = np.array(tab.ids, dtype=object)
    breach = penalties.limit_breach_eur_per_kwh * dt_h
    for j, c in enumerate(b.soft):
        asm.slack("import_limit_exceeded", ids[c], b.over_import_cols[j], steps, "kW", 1.0, breach)
        asm.slack("export_limit_exceeded", ids[c], b.over_export_cols[j], steps, "kW", 1.0, breach)
    for j, c in enumerate(b.hard):
        asm.slack("unmet_load", ids[c], b.unmet_cols[j], steps, "kWh", dt_h, penalties.unmet_load_eur_per_kwh)
        asm.slack(
            "excess_generation", ids[c], b.spill_cols[j], steps, "kWh", dt_h, penalties.excess_generation_eur_per_kwh
        )
    _add_reserve(b, penalties, dt_h, asm)
    _add_peak(b, tab, prices, asm)
    return b


def _add_reserve(b: pyo.Block, penalties: Penalties, dt_h: float, asm: Assembly) -> None:
    """import[c, t] - in_reserve[c, t] <= limit[c, t] - reserve[c, t], with 0 <= in_reserve <=
    reserve costing ``reserve_eur_per_kwh``: the import above limit - reserve is priced (not a
    violation; a breach of the limit itself stays one)."""
    C, T = b.imp_cols.shape

    def reserve(t: Tables) -> np.ndarray:
        return np.minimum(t.connections.reserve_kw, t.connections.limit_import_kw)

    b.reserve_param = asm.param(b, "reserve_kw", reserve)
    below = asm.param(b, "below_reserve_kw", lambda t: t.connections.limit_import_kw - reserve(t))
    b.in_reserve_cols = asm.var(b, "in_reserve", C * T, 0.0, b.reserve_param.all(), time=T).reshape(C, T)
    asm.cost(b.in_reserve_cols, penalties.reserve_eur_per_kwh * dt_h)
    rows = asm.rows(b, "reserve", [None] * (C * T), below.all(), time=T)
    r = np.arange(C * T).reshape(C, T)
    rows.add(r, b.imp_cols, 1.0)
    rows.add(r, b.in_reserve_cols, -1.0)


def _add_peak(b: pyo.Block, tab: ConnectionTable, prices: PriceTable, asm: Assembly) -> None:
    """peak[k] >= import[c, t] for every connection c with a peak charge (k its ordinal), at least
    the peak already billed; costs peak_charge[c] x peak[k] EUR."""
    T = b.imp_cols.shape[1]
    charged = np.flatnonzero(prices.peak_charge_eur_per_kw > 0)
    b.peak_conns = charged
    if not len(charged):
        return
    K = len(charged)
    b.peak_cols = asm.var(b, "peak_kw", K, tab.peak_so_far_kw[charged])
    asm.cost(b.peak_cols, prices.peak_charge_eur_per_kw[charged])
    rows = asm.rows(b, "peak_def", [None] * (K * T), np.zeros(K * T), time=T)
    r = np.arange(K * T).reshape(K, T)
    rows.add(r, b.imp_cols[charged], 1.0)
    rows.add(r, b.peak_cols[:, None], -1.0)
    soft_row = {c: j for j, c in enumerate(b.soft)}
    for k, c in enumerate(charged.tolist()):
        if c in soft_row:
            rows.add(r[k], b.over_import_cols[soft_row[c]], 1.0)


def add_balance(m: pyo.ConcreteModel, b: pyo.Block, asm: Assembly) -> None:
    """Per connection c and step t: import - export + unmet - spill - sum(injections) == fixed_net."""
    C, T = b.imp_cols.shape
    rows = asm.equal(m, "balance", b.fixed_net_param.all(), time=T)
    r = np.arange(C * T).reshape(C, T)
    rows.add(r, b.imp_cols, 1.0)
    rows.add(r, b.exp_cols, -1.0)
    for j, c in enumerate(b.soft):
        rows.add(r[c], b.over_import_cols[j], 1.0)
        rows.add(r[c], b.over_export_cols[j], -1.0)
    for j, c in enumerate(b.hard):
        rows.add(r[c], b.unmet_cols[j], 1.0)
        rows.add(r[c], b.spill_cols[j], -1.0)
    node, _, t, coef, cols = asm.injections()
    rows.add(node * T + t, cols, -coef)


def add_feeders(
    m: pyo.ConcreteModel, tab: ConnectionTable, dt_h: float, penalties: Penalties, asm: Assembly
) -> pyo.Block:
    """Feeder limits: -export_limit <= fixed + sum(injections) <= import_limit, with penalised breaches
    in both directions (kW). The feeder's inflexible net draw (F, T) is mutable."""
    b = pyo.Block()
    m.feeders = b
    F, T = tab.feeder_fixed_load_kw.shape
    fixed = asm.param(b, "fixed_kw", lambda t: fixed_injections(t)[1]).all()
    b.over_import_cols = asm.var(b, "over_import", F * T, time=T).reshape(F, T)
    b.over_export_cols = asm.var(b, "over_export", F * T, time=T).reshape(F, T)
    ff = np.arange(F * T) // T
    up = asm.rows(b, "limit_import", None, tab.feeder_limit_import_kw[ff] - fixed, time=T)
    low = asm.rows(b, "limit_export", -tab.feeder_limit_export_kw[ff] - fixed, None, time=T)
    _, feeder, t, coef, cols = asm.injections()
    on = feeder >= 0
    for rows in (up, low):
        rows.add(feeder[on] * T + t[on], cols[on], coef[on])
    up.add(np.arange(F * T), b.over_import_cols.ravel(), -1.0)
    low.add(np.arange(F * T), b.over_export_cols.ravel(), 1.0)
    ids = np.array(tab.feeder_ids, dtype=object)
    breach = penalties.limit_breach_eur_per_kwh * dt_h
    steps = np.arange(T)
    for f in range(F):
        asm.slack("feeder_import_limit_exceeded", ids[f], b.over_import_cols[f], steps, "kW", 1.0, breach)
        asm.slack("feeder_export_limit_exceeded", ids[f], b.over_export_cols[f], steps, "kW", 1.0, breach)
    return b
