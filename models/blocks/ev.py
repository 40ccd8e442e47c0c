"""EV charging sessions.

Variables exist only on the steps where a car is plugged in (availability a[s,t] > 0):
charge[s,t] in [0, max_kw a[s,t]] kW drawn from the node, and for V2G chargers discharge[s,t] in
the same range fed into it. Energy into the car is efficiency x charge x dt; out of it
discharge / efficiency x dt. By departure the car must hold its initial energy plus the needed
energy; a shortfall is the penalised slack ``missed[s]``. A session that departs after the horizon
must get the share of its need proportional to its plugged time inside the horizon. V2G sessions
track the car's energy e[s,t] within [0, capacity].
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from grid.domain import Penalties
from models.blocks.assembly import Assembly, linear
from models.tables import EVTable


def required_kwh(tab: EVTable, dt_h: float, horizon_start_s: float) -> np.ndarray:
    """Energy each session must receive inside the horizon (kWh)."""
    plugged_h = tab.availability.sum(axis=1) * dt_h
    remaining_h = (tab.departure_s - np.maximum(tab.arrival_s, horizon_start_s)) / 3600.0
    share = np.where(tab.departs_in_horizon, 1.0, np.clip(plugged_h / np.maximum(remaining_h, 1e-9), 0.0, 1.0))
    return tab.needed_kwh * share


def add_ev(m: pyo.ConcreteModel, tab: EVTable, required: np.ndarray, dt_h: float, penalties: Penalties,
           asm: Assembly) -> pyo.Block:
    b = pyo.Block()
    m.ev = b
    S = len(tab.session_ids)
    steps = [(s, int(t)) for s in range(S) for t in np.flatnonzero(tab.availability[s] > 0)]
    # V2G discharging is a flexibility service: only chargers with a contract offer it.
    v2g_sessions = [s for s in range(S) if tab.v2g[tab.session_charger[s]] and tab.flex[tab.session_charger[s]]]
    v2g_set = set(v2g_sessions)
    v2g_steps = [(s, t) for s, t in steps if s in v2g_set]
    b.ST = pyo.Set(initialize=steps, dimen=2)
    b.ST2 = pyo.Set(initialize=v2g_steps, dimen=2)
    ch = tab.session_charger

    def power_bounds(_: pyo.Block, s: int, t: int) -> tuple[float, float]:
        return (0.0, float(tab.max_kw[ch[s]] * tab.availability[s, t]))

    b.charge = pyo.Var(b.ST, bounds=power_bounds)
    b.discharge = pyo.Var(b.ST2, bounds=power_bounds)
    b.missed = pyo.Var(range(S), within=pyo.NonNegativeReals)
    by_session: dict[int, list[int]] = {}
    for s, t in steps:
        by_session.setdefault(s, []).append(t)

    def delivered(s: int) -> tuple[list[float], list[object]]:
        eff = float(tab.efficiency[ch[s]])
        coefs: list[float] = []
        variables: list[object] = []
        for t in by_session.get(s, []):
            coefs.append(eff * dt_h)
            variables.append(b.charge[s, t])
            if s in v2g_set:
                coefs.append(-dt_h / eff)
                variables.append(b.discharge[s, t])
        return coefs, variables

    def need(_: pyo.Block, s: int) -> object:
        coefs, variables = delivered(s)
        return linear([*coefs, 1.0], [*variables, b.missed[s]]) >= float(required[s])

    def room(_: pyo.Block, s: int) -> object:
        coefs, variables = delivered(s)
        return linear(coefs, variables) <= float(tab.capacity_kwh[s] - tab.initial_kwh[s])

    b.need = pyo.Constraint(range(S), rule=need)
    b.room = pyo.Constraint([s for s in range(S) if s not in v2g_set], rule=room)
    # V2G: the car's energy e[s, t] at the start of each plugged step and after the last one.
    e_index = [(s, t) for s in v2g_sessions for t in [*by_session[s], by_session[s][-1] + 1]]

    def energy_bounds(_: pyo.Block, s: int, t: int) -> tuple[float, float]:
        if t == by_session[s][0]:
            return (float(tab.initial_kwh[s]), float(tab.initial_kwh[s]))
        return (0.0, float(tab.capacity_kwh[s]))

    b.energy = pyo.Var(e_index, bounds=energy_bounds)

    def energy_step(_: pyo.Block, s: int, t: int) -> object:
        eff = float(tab.efficiency[ch[s]])
        nxt = t + 1
        if (s, nxt) not in b.energy:  # a session that unplugs and replugs is not modelled; steps are contiguous
            return pyo.Constraint.Skip
        return linear([1.0, -1.0, -eff * dt_h, dt_h / eff],
                      [b.energy[s, nxt], b.energy[s, t], b.charge[s, t], b.discharge[s, t]]) == 0.0

    b.energy_step = pyo.Constraint(b.ST2, rule=energy_step)
    for s, t in steps:
        c = int(ch[s])
        node, feeder = int(tab.at.node[c]), int(tab.at.feeder[c])
        asm.inject(node, feeder, t, 1.0, b.charge[s, t])
        if s in v2g_set:
            asm.inject(node, feeder, t, -1.0, b.discharge[s, t])
    for s in range(S):
        step = int(tab.departure_step[s]) if tab.departs_in_horizon[s] else None
        asm.slack("ev_energy_missed", tab.session_ids[s], b.missed[s], step, "kWh", 1.0, penalties.ev_energy_missed_eur_per_kwh)
    b.by_session = by_session
    b.sessions_of = {int(c): [int(s) for s in np.flatnonzero(ch == c)] for c in np.unique(ch)}
    return b


def device_power(b: pyo.Block, charger: int, t: int) -> tuple[list[float], list[object]]:
    """Charging power of a charger at step t (sum over its sessions) as linear terms."""
    coefs: list[float] = []
    variables: list[object] = []
    for s in b.sessions_of.get(charger, []):
        if (s, t) in b.charge:
            coefs.append(1.0)
            variables.append(b.charge[s, t])
    return coefs, variables
