"""Batteries: charge/discharge power and state of charge.

Power in kW (charge > 0 is drawn from the node, discharge is fed into it), energy in kWh.
soc[b, t] is the state at the *start* of step t; soc[b, T] is the terminal state:

    soc[t+1] = (1 - self_discharge_per_h dt) soc[t] + (eta_c charge[t] - discharge[t] / eta_d) dt

soc[b, 0] is fixed to the (mutable) initial state through its bounds. A battery with self-discharge
has a soft minimum (it may sink below soc_min only if it cannot charge, at a penalty). A terminal
target is soft (shortfall penalised at the battery's own price, or at the hard price for a hard
target) unless the battery values its stored energy, in which case the objective credits
value x soc[T]; both apply with and without a flexibility contract. Batteries
without a contract are never charged or discharged beyond their requested profile; their charging
may only be dimmed (see ``par14a``).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from grid.domain import Penalties
from models.blocks.assembly import Assembly, Values
from models.tables import BatteryTable


def shortfall_slacks(asm: Assembly, kind: str, assets: np.ndarray, cols: np.ndarray, price: np.ndarray) -> None:
    """Register end-of-horizon shortfalls (kWh, not tied to an interval), one slack group per price."""
    for p in np.unique(price):
        mine = price == p
        asm.slack(kind, assets[mine], cols[mine], -1, "kWh", 1.0, float(p))


def add_batteries(
    m: pyo.ConcreteModel, tab: BatteryTable, T: int, dt_h: float, penalties: Penalties, asm: Assembly
) -> pyo.Block:
    b = pyo.Block()
    m.batteries = b
    B = len(tab.ids)
    initial = asm.param(b, "initial_kwh", lambda t: t.batteries.initial_kwh)
    # devices without a contract follow their requested profile (mutable: it moves with the forecasts)
    fixed = np.flatnonzero(~tab.flex)
    request_charge = asm.param(
        b,
        "request_charge_kw",
        lambda t: np.minimum(t.batteries.charge_kw[fixed, None], t.batteries.request_charge_kw[fixed]),
    )
    request_discharge = asm.param(
        b,
        "request_discharge_kw",
        lambda t: np.minimum(t.batteries.discharge_kw[fixed, None], t.batteries.request_discharge_kw[fixed]),
    )
    requested = (fixed[:, None] * T + np.arange(T)).ravel()  # their (battery, step) columns
    charge_ub = Values.of(np.repeat(tab.charge_kw, T), B * T).put(requested, request_charge.all())
    discharge_ub = Values.of(np.repeat(tab.discharge_kw, T), B * T).put(requested, request_discharge.all())
    b.charge_cols = asm.var(b, "charge", B * T, 0.0, charge_ub, time=T).reshape(B, T)
    b.discharge_cols = asm.var(b, "discharge", B * T, 0.0, discharge_ub, time=T).reshape(B, T)
    leaky = tab.self_discharge_per_h > 0
    first = np.arange(B) * (T + 1)  # soc[b, 0] is fixed to the initial state
    soc_lb = Values.of(np.repeat(np.where(leaky, 0.0, tab.soc_min_kwh), T + 1), B * (T + 1)).put(first, initial.all())
    soc_ub = Values.of(np.repeat(tab.soc_max_kwh, T + 1), B * (T + 1)).put(first, initial.all())
    b.soc_cols = asm.var(b, "soc", B * (T + 1), soc_lb, soc_ub, time=T + 1).reshape(B, T + 1)
    keep = 1.0 - tab.self_discharge_per_h * dt_h
    rows = asm.equal(b, "continuity", np.zeros(B * T), time=T)
    r = np.arange(B * T).reshape(B, T)
    rows.add(r, b.soc_cols[:, 1:], 1.0)
    rows.add(r, b.soc_cols[:, :-1], -keep[:, None])
    rows.add(r, b.charge_cols, -(tab.eta_charge * dt_h)[:, None])
    rows.add(r, b.discharge_cols, (dt_h / tab.eta_discharge)[:, None])
    assets = np.array(tab.ids, dtype=object)
    steps = np.arange(T)
    # self-discharge may pull a battery that cannot charge below its minimum: soft minimum there
    lk = np.flatnonzero(leaky)
    b.below_min_cols = asm.var(b, "below_min", len(lk) * T, time=T).reshape(len(lk), T)
    soft = asm.rows(b, "soft_min", np.repeat(tab.soc_min_kwh[lk], T), [None] * (len(lk) * T), time=T)
    soft.add(np.arange(len(lk) * T).reshape(len(lk), T), b.soc_cols[lk, 1:], 1.0)
    soft.add(np.arange(len(lk) * T).reshape(len(lk), T), b.below_min_cols, 1.0)
    for j, i in enumerate(lk.tolist()):
        asm.slack(
            "soc_below_min", assets[i], b.below_min_cols[j], steps, "kWh", 1.0, penalties.terminal_shortfall_eur_per_kwh
        )
    # every battery, with or without a contract, is valued the same way at the horizon's end: taking
    # a contract away only restricts the battery (to its requested profile), it never makes stored
    # energy free
    targeted = np.flatnonzero(~np.isnan(tab.terminal_kwh))
    b.shortfall_cols = asm.var(b, "shortfall", len(targeted))
    own = tab.terminal_is_initial[targeted]
    target = Values.of(np.where(own, np.nan, tab.terminal_kwh[targeted]), len(targeted))
    target.put(np.flatnonzero(own), initial[targeted[own]])
    term = asm.rows(b, "terminal", target, None)
    term.add(np.arange(len(targeted)), b.soc_cols[targeted, T], 1.0)
    term.add(np.arange(len(targeted)), b.shortfall_cols, 1.0)
    shortfall_slacks(
        asm, "terminal_soc_shortfall", assets[targeted], b.shortfall_cols, tab.terminal_penalty_eur_per_kwh[targeted]
    )
    valued = np.flatnonzero(~np.isnan(tab.value_eur_per_kwh))
    asm.cost(b.soc_cols[valued, T], -tab.value_eur_per_kwh[valued])
    asm.cost(b.charge_cols, (tab.throughput_eur_per_kwh * dt_h)[:, None])
    asm.cost(b.discharge_cols, (tab.throughput_eur_per_kwh * dt_h)[:, None])
    node, feeder = tab.at.node[:, None], tab.at.feeder[:, None]
    asm.inject(node, feeder, steps, 1.0, b.charge_cols)
    asm.inject(node, feeder, steps, -1.0, b.discharge_cols)
    return b
