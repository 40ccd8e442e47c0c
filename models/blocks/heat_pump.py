"""Heat pumps with thermal stores.

power[h,t] in [0, electric_kw] kW drawn from the node; heat into the store is COP[h,t] x power.
store[h,t] (kWh thermal) is the content at the start of step t, within [0, store_kwh], with
store[h,0] fixed to the (mutable) initial content:

    COP[t] power[t] + unmet[t] - (store[t+1] - (1 - loss_per_h dt) store[t]) / dt = demand[t]

``unmet`` (kW thermal) is the penalised slack for heat the plan cannot deliver, present where demand
comes near the heat pump's capacity and at every step of a heat pump behind a hard-limit connection
(where the limit, not the rating, can stop it; see `needs_unmet_slack`); COP and demand are mutable.
The store must end at least at its terminal level (default: where it started; soft, penalised at
the heat pump's own price or the hard price). A heat pump without a flexibility
contract may only run late, never early: its cumulative energy never exceeds its
requested (thermostat) profile's, tracked by backlog[h,t] >= 0 (kWh requested but not yet drawn).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from grid.domain import Penalties
from models.blocks.assembly import Assembly, Values
from models.blocks.battery import shortfall_slacks
from models.tables import HeatPumpTable


def add_heat_pumps(
    m: pyo.ConcreteModel, tab: HeatPumpTable, T: int, dt_h: float, penalties: Penalties, asm: Assembly
) -> pyo.Block:
    b = pyo.Block()
    m.heat_pumps = b
    H = len(tab.ids)
    cop = asm.param(b, "cop", lambda t: t.heat_pumps.cop)
    demand = asm.param(b, "demand_kw", lambda t: t.heat_pumps.heat_demand_kw)
    initial = asm.param(b, "initial_kwh", lambda t: t.heat_pumps.initial_kwh)
    b.power_cols = asm.var(b, "power", H * T, 0.0, np.repeat(tab.electric_kw, T), time=T).reshape(H, T)
    first = np.arange(H) * (T + 1)  # store[h, 0] is fixed to the initial content
    store_lb = Values.of(0.0, H * (T + 1)).put(first, initial.all())
    store_ub = Values.of(np.repeat(tab.store_kwh, T + 1), H * (T + 1)).put(first, initial.all())
    b.store_cols = asm.var(b, "store", H * (T + 1), store_lb, store_ub, time=T + 1).reshape(H, T + 1)
    # Unmet heat is only possible where demand (plus store losses) comes near what the heat pump can
    # deliver; elsewhere running at demand / COP always covers it, so no slack is needed there.
    b.unmet_mask = needs_unmet_slack(tab)
    b.unmet_cols = asm.var(b, "unmet", int(b.unmet_mask.sum()), time=np.nonzero(b.unmet_mask))
    keep = 1.0 - tab.loss_per_h * dt_h
    rows = asm.equal(b, "balance", demand.all(), time=T)
    r = np.arange(H * T).reshape(H, T)
    rows.add(r, b.power_cols, cop.all())
    rows.add(r[b.unmet_mask], b.unmet_cols, 1.0)
    rows.add(r, b.store_cols[:, 1:], -1.0 / dt_h)
    rows.add(r, b.store_cols[:, :-1], (keep / dt_h)[:, None])
    b.shortfall_cols = asm.var(b, "shortfall", H)
    own = tab.terminal_is_initial
    target = Values.of(np.where(own, np.nan, tab.terminal_kwh), H).put(np.flatnonzero(own), initial[own])
    term = asm.rows(b, "terminal", target, None)
    term.add(np.arange(H), b.store_cols[:, T], 1.0)
    term.add(np.arange(H), b.shortfall_cols, 1.0)
    _add_backlog(b, tab, T, dt_h, asm)
    node, feeder = tab.at.node[:, None], tab.at.feeder[:, None]
    steps = np.arange(T)
    asm.inject(node, feeder, steps, 1.0, b.power_cols)
    ids = np.array(tab.ids, dtype=object)
    hh, tt = np.nonzero(b.unmet_mask)
    asm.slack("unmet_heat", ids[hh], b.unmet_cols, tt, "kWh", dt_h, penalties.unmet_heat_eur_per_kwh)
    shortfall_slacks(asm, "heat_store_shortfall", ids, b.shortfall_cols, tab.terminal_penalty_eur_per_kwh)
    return b


UNMET_HEADROOM = 0.8


def needs_unmet_slack(tab: HeatPumpTable) -> np.ndarray:
    """(H, T) mask of steps where heat can go unmet: every step of a heat pump behind a hard-limit
    connection (the limit may leave it no power at all), elsewhere where the heat demand plus the
    full store's losses exceeds UNMET_HEADROOM x COP x rating. The headroom keeps the model valid
    when a later forecast raises demand a little (a larger change needs a rebuild)."""
    losses = (tab.loss_per_h * tab.store_kwh)[:, None]
    near = tab.heat_demand_kw + losses > UNMET_HEADROOM * tab.cop * tab.electric_kw[:, None]
    return near | tab.on_hard_limit[:, None]


def _add_backlog(b: pyo.Block, tab: HeatPumpTable, T: int, dt_h: float, asm: Assembly) -> None:
    """backlog[t+1] = backlog[t] + (requested[t] - power[t]) dt >= 0, backlog[0] = 0, for heat pumps
    without a flexibility contract (requested energy is a mutable Param)."""
    inflexible = np.flatnonzero(~tab.flex)
    n = len(inflexible)
    request = asm.param(b, "request_kwh", lambda t: t.heat_pumps.request_kw[inflexible] * dt_h)
    ub = np.full((n, T + 1), np.nan)
    ub[:, 0] = 0.0
    b.backlog_cols = asm.var(b, "backlog", n * (T + 1), 0.0, ub.ravel(), time=T + 1).reshape(n, T + 1)
    rows = asm.equal(b, "backlog_step", request.all(), time=T)
    r = np.arange(n * T).reshape(n, T)
    rows.add(r, b.backlog_cols[:, 1:], 1.0)
    rows.add(r, b.backlog_cols[:, :-1], -1.0)
    rows.add(r, b.power_cols[inflexible], dt_h)
