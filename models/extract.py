"""Read a solved dispatch model back into a Plan: set-points, trajectories, duals, slacks, KPIs."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from grid.timeindex import iso
from models.blocks.par14a import EPS_KW, member_id, member_request
from models.blocks.pv import curtailable_groups
from models.dispatch import DispatchModel
from models.highs import PersistentHighs
from models.kpis import compute_kpis
from models.plan import Plan, Violation

VIOLATION_TOL = 1e-5


def grid_values(sol: PersistentHighs, var: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Values of a densely indexed Var (sorted RangeSet indices) as an array of `shape`."""
    if int(np.prod(shape)) == 0:
        return np.zeros(shape)
    return sol.var_values(var.values()).reshape(shape)


def sparse_values(sol: PersistentHighs, var: Any, shape: tuple[int, int]) -> np.ndarray:
    """Values of a sparsely indexed (i, t) Var as a dense array, zero where it does not exist."""
    out = np.zeros(shape)
    if len(var):
        rows, cols = np.array(list(var.keys()), dtype=int).T
        out[rows, cols] = sol.var_values(var.values())
    return out


def extract_plan(dm: DispatchModel, sol: PersistentHighs, computed_at: pd.Timestamp) -> Plan:
    m, tab = dm.model, dm.tables
    T, dt_h = tab.T, tab.dt_h
    conn = tab.connections
    C = len(conn.ids)
    grid = m.connections
    imp = grid_values(sol, grid.imp, (C, T))
    exp = grid_values(sol, grid.exp, (C, T))
    over_imp = sparse_values(sol, grid.over_import, (C, T))
    over_exp = sparse_values(sol, grid.over_export, (C, T))
    unmet = sparse_values(sol, grid.unmet, (C, T))
    spill = sparse_values(sol, grid.spill, (C, T))
    marginal = sol.row_duals(m.balance).reshape(C, T) / dt_h
    connections: dict[str, dict[str, Any]] = {}
    for c, cid in enumerate(conn.ids):
        connections[cid] = {
            "import_kw": imp[c] + over_imp[c],
            "export_kw": exp[c] + over_exp[c],
            "limit_import_kw": np.full(T, float(pyo.value(grid.limit_import_kw[c]))),
            "limit_export_kw": np.full(T, float(pyo.value(grid.limit_export_kw[c]))),
            "marginal_price_eur_per_kwh": marginal[c],
            "households": int(conn.households[c]),
            "peak_import_kw": float((imp[c] + over_imp[c]).max()),
        }
        if conn.hard_limits[c]:
            connections[cid]["unmet_kw"] = unmet[c]
            connections[cid]["spill_kw"] = spill[c]
    assets: dict[str, dict[str, Any]] = {}
    _loads(tab, assets)
    _pv(sol, m, tab, assets)
    _batteries(sol, m, tab, assets)
    _ev(sol, m, dm, assets)
    _heat_pumps(sol, m, tab, assets)
    dimming = _dimming(tab, assets)
    slack_values = sol.var_values(s.var for s in dm.assembly.slacks)
    violations = _violations(dm, slack_values)
    status = "optimal_with_violations" if violations else "optimal"
    plan = Plan(
        plan_id=uuid.uuid4().hex,
        site=tab.site_id,
        computed_at=computed_at,
        index=tab.index,
        resolution_min=round(dt_h * 60),
        status=status,
        objective_eur=None,
        violations=violations,
        connections=connections,
        assets=assets,
        dimming=dimming,
    )
    penalty_eur = float(slack_values @ np.array([s.cost_eur_per_unit for s in dm.assembly.slacks])) if len(slack_values) else 0.0
    plan.kpis = compute_kpis(dm, plan, imp + over_imp, exp + over_exp, penalty_eur)
    return plan


def _loads(tab: Any, assets: dict[str, dict[str, Any]]) -> None:
    """Inflexible household load, aggregated per connection (the LP never splits it further)."""
    conn = tab.connections
    for c, cid in enumerate(conn.ids):
        if conn.households[c]:
            assets[f"load:{cid}"] = {"type": "inflexible_load", "connection": cid, "households": int(conn.households[c]),
                                     "power_kw": conn.fixed_load_kw[c]}


def _pv(sol: PersistentHighs, m: Any, tab: Any, assets: dict[str, dict[str, Any]]) -> None:
    pv = tab.pv
    gen = pv.available_kw.copy()
    groups = curtailable_groups(pv)
    group_gen = grid_values(sol, m.pv.gen, (len(groups), tab.T))
    for g, (_, _, ix) in enumerate(groups):
        avail = pv.available_kw[ix].sum(axis=0)
        share = np.divide(group_gen[g], avail, out=np.zeros(tab.T), where=avail > 1e-9)
        gen[ix] = pv.available_kw[ix] * share
    for i, pid in enumerate(pv.ids):
        assets[pid] = {"type": "pv", "connection": tab.connections.ids[pv.at.node[i]], "curtailable": bool(pv.curtailable[i]),
                       "power_kw": -gen[i], "available_kw": pv.available_kw[i], "curtailed_kw": pv.available_kw[i] - gen[i]}


def _batteries(sol: PersistentHighs, m: Any, tab: Any, assets: dict[str, dict[str, Any]]) -> None:
    bat = tab.batteries
    B = len(bat.ids)
    charge = grid_values(sol, m.batteries.charge, (B, tab.T))
    discharge = grid_values(sol, m.batteries.discharge, (B, tab.T))
    soc = grid_values(sol, m.batteries.soc, (B, tab.T + 1))
    for i, bid in enumerate(bat.ids):
        assets[bid] = {"type": "battery", "connection": tab.connections.ids[bat.at.node[i]], "flex_contract": bool(bat.flex[i]),
                       "power_kw": charge[i] - discharge[i], "charge_kw": charge[i], "discharge_kw": discharge[i],
                       "soc_kwh": soc[i], "capacity_kwh": float(bat.capacity_kwh[i])}


def _ev(sol: PersistentHighs, m: Any, dm: DispatchModel, assets: dict[str, dict[str, Any]]) -> None:
    tab = dm.tables
    ev = tab.ev
    S = len(ev.session_ids)
    charge = sparse_values(sol, m.ev.charge, (S, tab.T))
    discharge = sparse_values(sol, m.ev.discharge, (S, tab.T))
    missed = sol.var_values(m.ev.missed.values())
    for c, cid in enumerate(ev.ids):
        mine = np.flatnonzero(ev.session_charger == c)
        power = charge[mine].sum(axis=0) - discharge[mine].sum(axis=0)
        sessions = {}
        for s in mine:
            eff = float(ev.efficiency[c])
            delivered = float((charge[s] * eff - discharge[s] / eff).sum() * tab.dt_h)
            sessions[ev.session_ids[s]] = {
                "required_kwh": float(dm.ev_required_kwh[s]), "delivered_kwh": delivered,
                "missed_kwh": float(missed[s]),
                "departs_in_horizon": bool(ev.departs_in_horizon[s]),
                "energy_kwh": (ev.initial_kwh[s] + np.concatenate([[0.0], np.cumsum((charge[s] * eff - discharge[s] / eff) * tab.dt_h)])),
            }
        assets[cid] = {"type": "ev_charger", "connection": tab.connections.ids[ev.at.node[c]], "flex_contract": bool(ev.flex[c]),
                       "v2g": bool(ev.v2g[c]), "max_kw": float(ev.max_kw[c]), "power_kw": power, "sessions": sessions}


def _heat_pumps(sol: PersistentHighs, m: Any, tab: Any, assets: dict[str, dict[str, Any]]) -> None:
    hp = tab.heat_pumps
    H = len(hp.ids)
    power = grid_values(sol, m.heat_pumps.power, (H, tab.T))
    store = grid_values(sol, m.heat_pumps.store, (H, tab.T + 1))
    unmet = grid_values(sol, m.heat_pumps.unmet, (H, tab.T))
    for h, hid in enumerate(hp.ids):
        assets[hid] = {"type": "heat_pump", "connection": tab.connections.ids[hp.at.node[h]], "flex_contract": bool(hp.flex[h]),
                       "power_kw": power[h], "heat_kw": power[h] * hp.cop[h], "heat_demand_kw": hp.heat_demand_kw[h],
                       "unmet_heat_kw": unmet[h], "cop": hp.cop[h], "soc_kwh": store[h], "capacity_kwh": float(hp.store_kwh[h])}


def _dimming(tab: Any, assets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Attach requested_kw/dimmed_kw to §14a devices and list every dimming (device, interval, kW)."""
    events: list[dict[str, Any]] = []
    stamps = [iso(t) for t in tab.index]
    for group in tab.dimming_groups:
        for kind, i in group.members:
            did = member_id(tab, kind, i)
            requested = member_request(tab, kind, i)
            asset = assets[did]
            drawn = asset["charge_kw"] if kind == "battery" else np.clip(asset["power_kw"], 0.0, None)
            dimmed = np.clip(requested - drawn, 0.0, None)
            dimmed[dimmed < EPS_KW * 10] = 0.0
            asset["requested_kw"] = requested
            asset["dimmed_kw"] = dimmed
            asset["dimming_group"] = group.name
            asset["guaranteed_min_kw"] = group.min_kw
            for t in np.flatnonzero(dimmed > 0):
                events.append({"device": did, "group": group.name, "start": stamps[t], "step": int(t),
                               "requested_kw": round(float(requested[t]), 6), "power_kw": round(float(drawn[t]), 6),
                               "dimmed_kw": round(float(dimmed[t]), 6)})
    return events


def _violations(dm: DispatchModel, values: np.ndarray) -> list[Violation]:
    stamps = [iso(t) for t in dm.tables.index]
    out = []
    for k in np.flatnonzero(values > VIOLATION_TOL):
        slack, value = dm.assembly.slacks[k], float(values[k])
        start = stamps[slack.step] if slack.step is not None else None
        out.append(Violation(slack.kind, slack.asset, start, round(value * slack.scale, 6), slack.unit, slack.step))
    return out
