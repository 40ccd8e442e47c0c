"""Connection points (transformers) and their feeders: import/export, limits, peak, fixed load.

Per connection c and step t (kW): import[c,t] = imp[c,t] + over_import[c,t] where imp is bounded by
the transformer's import limit and over_import is a penalised breach (only for soft limits); the
same for export. Hard-limit connections instead shed load (unmet) or spill generation, both
penalised. The node balance itself is written by ``models.dispatch``.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from grid.domain import Penalties
from models.blocks.assembly import Assembly, linear
from models.tables import ConnectionTable, PriceTable


def add_connections(
    m: pyo.ConcreteModel,
    tab: ConnectionTable,
    prices: PriceTable,
    fixed_net_kw: np.ndarray,
    dt_h: float,
    penalties: Penalties,
    asm: Assembly,
) -> pyo.Block:
    """Import/export variables and limits for every connection; returns the block.

    `fixed_net_kw` (C, T) is the inflexible net draw per connection (household load minus PV that
    cannot be curtailed), a mutable parameter on the balance's right-hand side.
    """
    b = pyo.Block()
    m.connections = b
    C, T = fixed_net_kw.shape
    b.C = pyo.RangeSet(0, C - 1)
    b.T = pyo.RangeSet(0, T - 1)
    b.fixed_net_kw = pyo.Param(b.C, b.T, mutable=True, initialize=lambda _, c, t: float(fixed_net_kw[c, t]))
    b.limit_import_kw = pyo.Param(b.C, mutable=True, initialize=lambda _, c: float(tab.limit_import_kw[c]))
    b.limit_export_kw = pyo.Param(b.C, mutable=True, initialize=lambda _, c: float(tab.limit_export_kw[c]))
    b.import_price = pyo.Param(b.T, mutable=True, initialize=lambda _, t: float(prices.import_eur_per_kwh[t] + prices.co2_eur_per_kwh[t]))
    b.feed_in_price = pyo.Param(b.T, mutable=True, initialize=lambda _, t: float(prices.feed_in_eur_per_kwh[t]))
    b.imp = pyo.Var(b.C, b.T, bounds=lambda _, c, t: (0, b.limit_import_kw[c]))
    b.exp = pyo.Var(b.C, b.T, bounds=lambda _, c, t: (0, b.limit_export_kw[c]))
    soft = [c for c in range(C) if not tab.hard_limits[c]]
    hard = [c for c in range(C) if tab.hard_limits[c]]
    b.over_import = pyo.Var(soft, b.T, within=pyo.NonNegativeReals)
    b.over_export = pyo.Var(soft, b.T, within=pyo.NonNegativeReals)
    b.unmet = pyo.Var(hard, b.T, within=pyo.NonNegativeReals)
    b.spill = pyo.Var(hard, b.T, within=pyo.NonNegativeReals)
    for c in range(C):
        cid = tab.ids[c]
        for t in range(T):
            asm.cost(b.import_price[t] * dt_h, b.imp[c, t])
            asm.cost(-b.feed_in_price[t] * dt_h, b.exp[c, t])
        if c in soft:
            for t in range(T):
                asm.cost(b.import_price[t] * dt_h, b.over_import[c, t])
                asm.cost(-b.feed_in_price[t] * dt_h, b.over_export[c, t])
                asm.slack("import_limit_exceeded", cid, b.over_import[c, t], t, "kW", 1.0, penalties.limit_breach_eur_per_kwh * dt_h)
                asm.slack("export_limit_exceeded", cid, b.over_export[c, t], t, "kW", 1.0, penalties.limit_breach_eur_per_kwh * dt_h)
        else:
            for t in range(T):
                asm.slack("unmet_load", cid, b.unmet[c, t], t, "kWh", dt_h, penalties.unmet_load_eur_per_kwh)
                asm.slack("excess_generation", cid, b.spill[c, t], t, "kWh", dt_h, penalties.excess_generation_eur_per_kwh)
    if prices.peak_charge_eur_per_kw > 0:
        b.peak_kw = pyo.Var(b.C, bounds=lambda _, c: (float(tab.peak_so_far_kw[c]), None))
        b.peak_def = pyo.Constraint(b.C, b.T, rule=lambda _, c, t: peak_row(b, c, t) <= 0.0)
        for c in range(C):
            asm.cost(prices.peak_charge_eur_per_kw, b.peak_kw[c])
    return b


def peak_row(b: pyo.Block, c: int, t: int) -> object:
    """Import at connection c and step t (kW, including any breach) minus the peak variable."""
    if (c, t) in b.over_import:
        return linear([1.0, 1.0, -1.0], [b.imp[c, t], b.over_import[c, t], b.peak_kw[c]])
    return linear([1.0, -1.0], [b.imp[c, t], b.peak_kw[c]])


def net_exchange(b: pyo.Block, c: int, t: int) -> object:
    """import - export + unmet - spill at connection c, step t (kW): what the assets may draw."""
    coefs, variables = [1.0, -1.0], [b.imp[c, t], b.exp[c, t]]
    if (c, t) in b.over_import:
        coefs += [1.0, -1.0]
        variables += [b.over_import[c, t], b.over_export[c, t]]
    else:
        coefs += [1.0, -1.0]
        variables += [b.unmet[c, t], b.spill[c, t]]
    return coefs, variables


def add_feeders(m: pyo.ConcreteModel, tab: ConnectionTable, fixed_kw: np.ndarray, dt_h: float,
                penalties: Penalties, asm: Assembly) -> pyo.Block:
    """Feeder limits: -export_limit <= fixed + sum(injections) <= import_limit, with penalised
    breaches in both directions (kW). `fixed_kw` (F, T) is the feeder's inflexible net draw."""
    b = pyo.Block()
    m.feeders = b
    F, T = fixed_kw.shape
    b.F = pyo.RangeSet(0, F - 1) if F else pyo.Set(initialize=[])
    b.T = pyo.RangeSet(0, T - 1)
    b.fixed_kw = pyo.Param(b.F, b.T, mutable=True, initialize=lambda _, f, t: float(fixed_kw[f, t]))
    b.over_import = pyo.Var(b.F, b.T, within=pyo.NonNegativeReals)
    b.over_export = pyo.Var(b.F, b.T, within=pyo.NonNegativeReals)

    def upper(_: pyo.Block, f: int, t: int) -> object:
        coefs, variables = asm.feeder_terms.get((f, t), ([], []))
        expr = linear([*coefs, -1.0], [*variables, b.over_import[f, t]])
        return expr <= float(tab.feeder_limit_import_kw[f]) - b.fixed_kw[f, t]

    def lower(_: pyo.Block, f: int, t: int) -> object:
        coefs, variables = asm.feeder_terms.get((f, t), ([], []))
        expr = linear([*coefs, 1.0], [*variables, b.over_export[f, t]])
        return expr >= -float(tab.feeder_limit_export_kw[f]) - b.fixed_kw[f, t]

    b.limit_import = pyo.Constraint(b.F, b.T, rule=upper)
    b.limit_export = pyo.Constraint(b.F, b.T, rule=lower)
    for f in range(F):
        for t in range(T):
            fid = tab.feeder_ids[f]
            asm.slack("feeder_import_limit_exceeded", fid, b.over_import[f, t], t, "kW", 1.0, penalties.limit_breach_eur_per_kwh * dt_h)
            asm.slack("feeder_export_limit_exceeded", fid, b.over_export[f, t], t, "kW", 1.0, penalties.limit_breach_eur_per_kwh * dt_h)
    return b
