"""Read a solved dispatch model back into a Plan: set-points, trajectories, duals, slacks, KPIs."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from grid.timeindex import iso
from models.blocks.grid import fixed_injections
from models.blocks.par14a import EPS_KW, member_id, member_request
from models.blocks.pv import curtailable_groups
from models.dispatch import DispatchModel
from models.highs import PersistentHighs
from models.kpis import compute_kpis
from models.plan import Plan, Violation

VIOLATION_TOL = 1e-5


def extract_plan(dm: DispatchModel, sol: PersistentHighs, computed_at: pd.Timestamp) -> Plan:
    """The plan of a solved model; `sol` is the solver that solved it."""
    m, tab = dm.model, dm.tables
    x = sol.col_values()  # every column's value, in the model's global order
    T, dt_h = tab.T, tab.dt_h
    conn = tab.connections
    C = len(conn.ids)
    grid = m.connections
    imp, exp = x[grid.imp_cols], x[grid.exp_cols]
    over_imp, over_exp, unmet, spill = (np.zeros((C, T)) for _ in range(4))
    over_imp[grid.soft] = x[grid.over_import_cols]
    over_exp[grid.soft] = x[grid.over_export_cols]
    unmet[grid.hard] = x[grid.unmet_cols]
    spill[grid.hard] = x[grid.spill_cols]
    marginal = sol.row_duals(m.balance).reshape(C, T) / dt_h
    connections: dict[str, dict[str, Any]] = {}
    for c, cid in enumerate(conn.ids):
        connections[cid] = {
            "import_kw": imp[c] + over_imp[c],
            "export_kw": exp[c] + over_exp[c],
            "limit_import_kw": np.array([pyo.value(grid.limit_import_kw[c, t]) for t in range(T)], dtype=float),
            "limit_export_kw": np.array([pyo.value(grid.limit_export_kw[c, t]) for t in range(T)], dtype=float),
            "marginal_price_eur_per_kwh": marginal[c],
            "households": int(conn.households[c]),
            "peak_import_kw": float((imp[c] + over_imp[c]).max()),
        }
        if conn.reserve_kw[c].any():  # planned with a reserve under the limit (forecast uncertainty)
            connections[cid]["reserve_kw"] = np.minimum(conn.reserve_kw[c], conn.limit_import_kw[c])
            connections[cid]["in_reserve_kw"] = x[grid.in_reserve_cols[c]]
        if conn.hard_limits[c]:
            connections[cid]["unmet_kw"] = unmet[c]
            connections[cid]["spill_kw"] = spill[c]
    _feeders(dm, sol, x, connections)
    unpaid = x[m.feed_in.unpaid_cols]
    for k, c in enumerate(m.feed_in.conns.tolist()):
        connections[conn.ids[c]]["unpaid_export_kw"] = unpaid[k]
    assets: dict[str, dict[str, Any]] = {}
    _loads(tab, assets)
    _pv(x, m, tab, assets)
    _batteries(x, m, tab, assets)
    _ev(x, m, dm, assets)
    _heat_pumps(x, m, tab, assets)
    dimming = _dimming(tab, assets)
    violations, penalty_eur = _violations(dm, x)
    plan = Plan(
        plan_id=uuid.uuid4().hex,
        site=tab.site_id,
        computed_at=computed_at,
        index=tab.index,
        resolution_min=round(dt_h * 60),
        status="optimal_with_violations" if violations else "optimal",
        objective_eur=None,
        violations=violations,
        connections=connections,
        assets=assets,
        dimming=dimming,
    )
    plan.kpis = compute_kpis(dm, plan, imp + over_imp, exp + over_exp, penalty_eur)
    return plan


def _feeders(dm: DispatchModel, sol: PersistentHighs, x: np.ndarray, connections: dict[str, dict[str, Any]]) -> None:
    """Each feeder's planned net draw (kW, > 0 from its transformer, < 0 fed back) and limits, under
    its connection's ``feeders``. The limit rows read ``sum(injections) - over_import <= limit -
    fixed``, so the draw is the row's activity + over_import + the inflexible net draw."""
    tab, b = dm.tables, dm.model.feeders
    conn = tab.connections
    F, T = conn.feeder_fixed_load_kw.shape
    if F == 0:
        return
    activity = sol.row_values(b.limit_import).reshape(F, T)
    net_kw = activity + x[b.over_import_cols] + fixed_injections(tab)[1]
    for f, fid in enumerate(conn.feeder_ids):
        feeders = connections[conn.ids[int(conn.feeder_node[f])]].setdefault("feeders", {})
        feeders[fid] = {
            "net_kw": net_kw[f],
            "limit_import_kw": float(conn.feeder_limit_import_kw[f]),
            "limit_export_kw": float(conn.feeder_limit_export_kw[f]),
        }


def _loads(tab: Any, assets: dict[str, dict[str, Any]]) -> None:
    """Inflexible household load, aggregated per connection (the LP never splits it further)."""
    conn = tab.connections
    for c, cid in enumerate(conn.ids):
        if conn.households[c]:
            assets[f"load:{cid}"] = {
                "type": "inflexible_load",
                "connection": cid,
                "households": int(conn.households[c]),
                "power_kw": conn.fixed_load_kw[c],
            }


def _pv(x: np.ndarray, m: Any, tab: Any, assets: dict[str, dict[str, Any]]) -> None:
    pv = tab.pv
    gen = pv.available_kw.copy()
    group_gen = x[m.pv.gen_cols]
    for g, (_, _, ix) in enumerate(curtailable_groups(pv)):
        avail = pv.available_kw[ix].sum(axis=0)
        share = np.divide(group_gen[g], avail, out=np.zeros(tab.T), where=avail > 1e-9)
        gen[ix] = pv.available_kw[ix] * share
    for i, pid in enumerate(pv.ids):
        assets[pid] = {
            "type": "pv",
            "connection": tab.connections.ids[pv.at.node[i]],
            "curtailable": bool(pv.curtailable[i]),
            "power_kw": -gen[i],
            "available_kw": pv.available_kw[i],
            "curtailed_kw": pv.available_kw[i] - gen[i],
        }
        if np.isfinite(pv.export_cap_kw[i]):
            assets[pid]["export_cap_kw"] = float(pv.export_cap_kw[i])
        if pv.rule[i] != "none":
            assets[pid]["negative_price_rule"] = pv.rule[i]
            assets[pid]["feed_in_unpaid"] = pv.unpaid[i]


def _batteries(x: np.ndarray, m: Any, tab: Any, assets: dict[str, dict[str, Any]]) -> None:
    bat = tab.batteries
    charge, discharge, soc = x[m.batteries.charge_cols], x[m.batteries.discharge_cols], x[m.batteries.soc_cols]
    for i, bid in enumerate(bat.ids):
        assets[bid] = {
            "type": "battery",
            "connection": tab.connections.ids[bat.at.node[i]],
            "flex_contract": bool(bat.flex[i]),
            "power_kw": charge[i] - discharge[i],
            "charge_kw": charge[i],
            "discharge_kw": discharge[i],
            "soc_kwh": soc[i],
            "capacity_kwh": float(bat.capacity_kwh[i]),
        }


def _ev(x: np.ndarray, m: Any, dm: DispatchModel, assets: dict[str, dict[str, Any]]) -> None:
    tab = dm.tables
    ev = tab.ev
    S = len(ev.session_ids)
    charge = np.zeros((S, tab.T))
    discharge = np.zeros((S, tab.T))
    sess, step = m.ev.steps
    charge[sess, step] = x[m.ev.charge_cols]
    sess2, step2 = m.ev.v2g_steps
    discharge[sess2, step2] = x[m.ev.discharge_cols]
    missed = x[m.ev.missed_cols]
    for c, cid in enumerate(ev.ids):
        mine = np.flatnonzero(ev.session_charger == c)
        eff = float(ev.efficiency[c])
        sessions = {}
        for s in mine:
            if not ev.session_ids[s]:  # an empty slot
                continue
            flow = (charge[s] * eff - discharge[s] / eff) * tab.dt_h
            sessions[ev.session_ids[s]] = {
                "needed_kwh": float(ev.needed_kwh[s]),  # the need the plan was given (all of it)
                "required_kwh": float(dm.ev_required_kwh[s]),  # the part due inside the horizon
                "delivered_kwh": float(flow.sum()),
                "missed_kwh": float(missed[s]),
                "departs_in_horizon": bool(ev.departs_in_horizon[s]),
                "energy_kwh": ev.initial_kwh[s] + np.concatenate([[0.0], np.cumsum(flow)]),
            }
        assets[cid] = {
            "type": "ev_charger",
            "connection": tab.connections.ids[ev.at.node[c]],
            "flex_contract": bool(ev.flex[c]),
            "v2g": bool(ev.v2g[c]),
            "max_kw": float(ev.max_kw[c]),
            "power_kw": charge[mine].sum(axis=0) - discharge[mine].sum(axis=0),
            "sessions": sessions,
        }


def _heat_pumps(x: np.ndarray, m: Any, tab: Any, assets: dict[str, dict[str, Any]]) -> None:
    hp = tab.heat_pumps
    b = m.heat_pumps
    power, store = x[b.power_cols], x[b.store_cols]
    unmet = np.zeros_like(power)
    unmet[b.unmet_mask] = x[b.unmet_cols]
    for h, hid in enumerate(hp.ids):
        assets[hid] = {
            "type": "heat_pump",
            "connection": tab.connections.ids[hp.at.node[h]],
            "flex_contract": bool(hp.flex[h]),
            "power_kw": power[h],
            "heat_kw": power[h] * hp.cop[h],
            "heat_demand_kw": hp.heat_demand_kw[h],
            "unmet_heat_kw": unmet[h],
            "cop": hp.cop[h],
            "soc_kwh": store[h],
            "capacity_kwh": float(hp.store_kwh[h]),
        }


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
                events.append(
                    {
                        "device": did,
                        "group": group.name,
                        "start": stamps[t],
                        "step": int(t),
                        "requested_kw": round(float(requested[t]), 6),
                        "power_kw": round(float(drawn[t]), 6),
                        "dimmed_kw": round(float(dimmed[t]), 6),
                    }
                )
    return events


def _violations(dm: DispatchModel, x: np.ndarray) -> tuple[list[Violation], float]:
    """Every slack above tolerance as a Violation, and the total penalty cost (EUR)."""
    stamps = [iso(t) for t in dm.tables.index]
    out = []
    penalty = 0.0
    for kind, assets, cols, steps, unit, scale, cost in dm.assembly.slacks:
        values = x[cols]
        penalty += float(values.sum() * cost)
        for k in np.flatnonzero(values > VIOLATION_TOL):
            step = int(steps[k])
            out.append(
                Violation(
                    kind,
                    str(assets[k]),
                    stamps[step] if step >= 0 else None,
                    round(float(values[k]) * scale, 6),
                    unit,
                    step if step >= 0 else None,
                )
            )
    return out, penalty
