"""EV charging sessions.

Each charger has a fixed number of session slots (``models.tables.EV_SLOTS_PER_CHARGER``, more
where more sessions overlap the horizon); a slot holds a session or nothing (never plugged in,
nothing needed), and everything a session brings (when it is plugged in, its need, the car's
capacity and energy, V2G consent) enters as mutable Params: a car that arrives or leaves changes
numbers, not the model. Every slot has a variable at every step: charge[s,t] in [0, max_kw a[s,t]] kW
drawn from the node, with a[s,t] in [0, 1] the share of step t the car is plugged in (a mutable
bound: 0 while it is away, so that a horizon moved by one step changes numbers, not the model), and
for V2G chargers with a flexibility contract discharge[s,t] in the same range fed into it. Energy
into the car is efficiency x charge x dt; out of it discharge / efficiency x dt. By departure the
car must hold its initial energy plus the needed energy; a shortfall is the penalised slack
``missed[s]``. A session that departs after the horizon must get the share of its need proportional
to its plugged time inside the horizon.
V2G sessions track the car's energy e[s,k] within [0, capacity] at each step boundary (constant
while the car is away).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from grid.domain import Penalties
from models.blocks.assembly import Assembly, Values
from models.tables import EVTable


def required_kwh(tab: EVTable, dt_h: float, horizon_start_s: float) -> np.ndarray:
    """Energy each session must receive inside the horizon (kWh)."""
    plugged_h = tab.availability.sum(axis=1) * dt_h
    remaining_h = (tab.departure_s - np.maximum(tab.arrival_s, horizon_start_s)) / 3600.0
    share = np.where(tab.departs_in_horizon, 1.0, np.clip(plugged_h / np.maximum(remaining_h, 1e-9), 0.0, 1.0))
    return tab.needed_kwh * share


def plugged_max_kw(tab: EVTable) -> np.ndarray:
    """(S, T) most charging power of each session at each step, kW (0 while the car is away)."""
    return tab.max_kw[tab.session_charger][:, None] * tab.availability if len(tab.session_ids) else tab.availability


def discharge_max_kw(tab: EVTable) -> np.ndarray:
    """(S, T) most V2G discharging power, kW: the plugged maximum where the car consented, else 0."""
    return plugged_max_kw(tab) * tab.v2g_consent[:, None] if len(tab.session_ids) else tab.availability


def departure_steps(tab: EVTable) -> np.ndarray:
    """The step each session's missed energy is reported at (-1: it leaves after the horizon)."""
    return np.where(tab.departs_in_horizon, tab.departure_step, -1)


def add_ev(m: pyo.ConcreteModel, tab: EVTable, dt_h: float, penalties: Penalties, asm: Assembly) -> pyo.Block:
    b = pyo.Block()
    m.ev = b
    S, T = tab.availability.shape
    ch = tab.session_charger
    sess, step = np.repeat(np.arange(S), T), np.tile(np.arange(T), S)  # every (session, step), by session
    v2g = tab.v2g[ch] & tab.flex[ch] if S else np.zeros(0, dtype=bool)  # V2G is a contracted service
    eff = tab.efficiency[ch] if S else np.zeros(0)
    ub = asm.param(b, "max_kw", lambda t: plugged_max_kw(t.ev)).all()  # (session, step), by session
    b.steps = (sess, step)
    b.charge_cols = asm.var(b, "charge", len(sess), 0.0, ub, time=(sess, step))
    on2 = v2g[sess] if S else np.zeros(0, dtype=bool)
    b.v2g_steps = (sess[on2], step[on2])
    # a Param for the V2G slots only: their steps, slot by slot, are the discharge columns' order
    v2g_slots = np.flatnonzero(v2g)
    discharge_ub = asm.param(b, "discharge_max_kw", lambda t: discharge_max_kw(t.ev)[v2g_slots]).all()
    b.discharge_cols = asm.var(b, "discharge", int(on2.sum()), 0.0, discharge_ub, time=b.v2g_steps)
    b.missed_cols = asm.var(b, "missed", S)
    required = asm.param(b, "required_kwh", lambda t: required_kwh(t.ev, t.dt_h, t.index[0].timestamp()))
    delivered = eff[sess] * dt_h
    need = asm.rows(b, "need", required.all(), None)
    need.add(sess, b.charge_cols, delivered)
    need.add(sess[on2], b.discharge_cols, -dt_h / eff[sess[on2]])
    need.add(np.arange(S), b.missed_cols, 1.0)
    plain = np.flatnonzero(~v2g)
    room_kwh = asm.param(b, "room_kwh", lambda t: t.ev.capacity_kwh - t.ev.initial_kwh).all()
    room = asm.rows(b, "room", [None] * len(plain), room_kwh[plain])
    row_of = np.full(S, -1)
    row_of[plain] = np.arange(len(plain))
    keep = row_of[sess] >= 0
    room.add(row_of[sess[keep]], b.charge_cols[keep], delivered[keep])
    _add_v2g_energy(b, tab, sess, step, on2, eff, dt_h, asm)
    charger = ch[sess]
    asm.inject(tab.at.node[charger], tab.at.feeder[charger], step, 1.0, b.charge_cols)
    charger2 = ch[sess[on2]]
    asm.inject(tab.at.node[charger2], tab.at.feeder[charger2], step[on2], -1.0, b.discharge_cols)
    asm.slack(
        "ev_energy_missed",
        np.array(tab.session_ids, dtype=object),
        b.missed_cols,
        departure_steps(tab),
        "kWh",
        1.0,
        penalties.ev_energy_missed_eur_per_kwh,
        steps_source=lambda t: departure_steps(t.ev),
        assets_source=lambda t: np.array(t.ev.session_ids, dtype=object),
    )
    b.sessions_of = {int(c): [int(s) for s in np.flatnonzero(ch == c)] for c in np.unique(ch)}
    return b


def _add_v2g_energy(
    b: pyo.Block,
    tab: EVTable,
    sess: np.ndarray,
    step: np.ndarray,
    on2: np.ndarray,
    eff: np.ndarray,
    dt_h: float,
    asm: Assembly,
) -> None:
    """e[after] = e[before] + (eff charge - discharge / eff) dt for each plugged step of a V2G session;
    the point before its first step is fixed to the car's initial energy; all within [0, capacity].

    A session's plugged steps are contiguous, so with j the position among all V2G steps and k the
    session's ordinal, the energy point before step j is j + k and the one after it j + k + 1."""
    v_sess = sess[on2]
    n = len(v_sess)
    first = np.r_[True, v_sess[1:] != v_sess[:-1]] if n else np.zeros(0, dtype=bool)
    before = np.arange(n) + np.cumsum(first) - 1
    after = before + 1
    n_points = n + int(first.sum())
    session_of_point = np.zeros(n_points, dtype=int)
    session_of_point[before] = v_sess
    session_of_point[after] = v_sess
    point_step = np.zeros(n_points, dtype=int)  # the step boundary of each point (time layout)
    point_step[before] = step[on2]
    point_step[after] = step[on2] + 1
    capacity = asm.param(b, "capacity_kwh", lambda t: t.ev.capacity_kwh).all()
    initial = asm.param(b, "initial_kwh", lambda t: t.ev.initial_kwh).all()
    start = before[first]
    rest = np.setdiff1d(np.arange(n_points), start)
    lb = Values.of(0.0, n_points).put(start, initial[v_sess[first]])
    ub = Values.of(0.0, n_points).put(start, initial[v_sess[first]]).put(rest, capacity[session_of_point[rest]])
    b.energy_cols = asm.var(b, "energy", n_points, lb, ub, time=(session_of_point, point_step))
    rows = asm.equal(b, "energy_step", np.zeros(n), time=(v_sess, step[on2]))
    r = np.arange(n)
    rows.add(r, b.energy_cols[after], 1.0)
    rows.add(r, b.energy_cols[before], -1.0)
    rows.add(r, b.charge_cols[on2], -eff[v_sess] * dt_h)
    rows.add(r, b.discharge_cols, dt_h / eff[v_sess])
