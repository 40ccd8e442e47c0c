"""Invariants every plan must satisfy, checked from the plan's own numbers against the tables."""

from __future__ import annotations

import numpy as np

from models.plan import Plan
from models.tables import Tables

TOL = 1e-5


def close(a: np.ndarray, b: np.ndarray, scale: float = 1.0) -> bool:
    return bool(np.all(np.abs(np.asarray(a) - np.asarray(b)) <= TOL * max(1.0, scale)))


def check_plan(plan: Plan, tab: Tables) -> None:
    assert plan.status in ("optimal", "optimal_with_violations"), plan.message
    # the KPIs are computed from the plan's numbers, independently of the LP objective: they must agree
    if np.isnan(tab.batteries.value_eur_per_kwh).all() and plan.objective_eur is not None:
        total = plan.kpis["cost_eur"] + plan.kpis["penalty_eur"]
        assert abs(total - plan.objective_eur) <= 1e-6 * max(1.0, abs(plan.objective_eur)), (total, plan.objective_eur)
    dt = tab.dt_h
    breaches = {(v.asset, v.step): v.amount for v in plan.violations if v.kind == "import_limit_exceeded"}
    # balance per connection and interval
    for cid in tab.connections.ids:
        conn = plan.connections[cid]
        imp, exp = np.asarray(conn["import_kw"]), np.asarray(conn["export_kw"])
        assert (imp >= -TOL).all() and (exp >= -TOL).all()
        drawn = sum(np.asarray(a["power_kw"]) for a in plan.assets.values() if a["connection"] == cid)
        slack = np.asarray(conn.get("unmet_kw", 0.0)) - np.asarray(conn.get("spill_kw", 0.0))
        scale = float(np.abs(imp).max(initial=1.0))
        assert close(imp - exp, drawn - slack, scale), f"balance broken at {cid}"
        for t in range(tab.T):
            assert imp[t] <= conn["limit_import_kw"][t] + breaches.get((cid, t), 0.0) + TOL * scale
    check_hard_limits(plan, tab)
    # batteries: bounds and SoC continuity
    bat = tab.batteries
    for i, bid in enumerate(bat.ids):
        a = plan.assets[bid]
        ch, dis, soc = (np.asarray(a[k]) for k in ("charge_kw", "discharge_kw", "soc_kwh"))
        assert (ch >= -TOL).all() and (ch <= bat.charge_kw[i] + TOL).all()
        assert (dis >= -TOL).all() and (dis <= bat.discharge_kw[i] + TOL).all()
        below = np.zeros(tab.T + 1)
        for v in plan.violations:
            if v.kind == "soc_below_min" and v.asset == bid and v.step is not None:
                below[v.step + 1] = v.amount
        assert (soc >= bat.soc_min_kwh[i] - below - TOL).all() and (soc <= bat.soc_max_kwh[i] + TOL).all()
        assert len(soc) == tab.T + 1 and abs(soc[0] - bat.initial_kwh[i]) < TOL
        keep = 1 - bat.self_discharge_per_h[i] * dt
        nxt = keep * soc[:-1] + (bat.eta_charge[i] * ch - dis / bat.eta_discharge[i]) * dt
        assert close(soc[1:], nxt, bat.capacity_kwh[i]), f"SoC continuity broken for {bid}"
    # PV within availability
    for i, pid in enumerate(tab.pv.ids):
        gen = -np.asarray(plan.assets[pid]["power_kw"])
        assert (gen >= -TOL).all() and (gen <= tab.pv.available_kw[i] + TOL).all()
        if not tab.pv.curtailable[i]:
            assert close(gen, tab.pv.available_kw[i])
    # heat pumps: bounds and store continuity
    hp = tab.heat_pumps
    for h, hid in enumerate(hp.ids):
        a = plan.assets[hid]
        p, store, unmet = (np.asarray(a[k]) for k in ("power_kw", "soc_kwh", "unmet_heat_kw"))
        assert (p >= -TOL).all() and (p <= hp.electric_kw[h] + TOL).all()
        assert (store >= -TOL).all() and (store <= hp.store_kwh[h] + TOL).all()
        nxt = (1 - hp.loss_per_h[h] * dt) * store[:-1] + (hp.cop[h] * p + unmet - hp.heat_demand_kw[h]) * dt
        assert close(store[1:], nxt, max(hp.store_kwh[h], 1.0)), f"heat store continuity broken for {hid}"
    # EVs: power bounds, energy delivered
    ev = tab.ev
    for c, cid in enumerate(ev.ids):
        a = plan.assets[cid]
        p = np.asarray(a["power_kw"])
        assert (p <= ev.max_kw[c] + TOL).all()
        assert (p >= -TOL).all() or ev.v2g[c]
        for sid, s in a["sessions"].items():
            assert s["delivered_kwh"] + s["missed_kwh"] >= s["required_kwh"] - TOL * 10
            energy = np.asarray(s["energy_kwh"])
            k = ev.session_ids.index(sid)
            assert (energy >= -TOL).all() and (energy <= ev.capacity_kwh[k] + TOL).all()
    # §14a: no group below min(request, guaranteed minimum), except by a reported amount behind a hard limit
    missed_min = {(v.asset, v.step): v.amount for v in plan.violations if v.kind == "par14a_min_not_kept"}
    for group in tab.dimming_groups:
        ids = [{"battery": bat.ids, "ev": ev.ids, "heat_pump": hp.ids}[k][i] for k, i in group.members]
        req = sum(np.asarray(plan.assets[d]["requested_kw"]) for d in ids)
        drawn = sum(
            np.asarray(
                plan.assets[d]["charge_kw"]
                if plan.assets[d]["type"] == "battery"
                else np.clip(plan.assets[d]["power_kw"], 0, None)
            )
            for d in ids
        )
        allowed = np.array([missed_min.get((group.name, t), 0.0) for t in range(tab.T)])
        if len(group.members) == 1 and group.members[0][0] == "ev":  # one slack per session and step
            allowed = np.array(
                [sum(v for (a, s), v in missed_min.items() if a == group.name and s == t) for t in range(tab.T)]
            )
        assert not allowed.any() or group.on_hard_limit, f"minimum missed off a hard limit: {group.name}"
        assert (drawn + allowed >= np.minimum(req, group.min_kw) - 1e-4).all(), f"§14a floor broken for {group.name}"


def check_hard_limits(plan: Plan, tab: Tables) -> None:
    """On a hard-limit connection: import and export within their limits; unmet load at most the
    inflexible load there, spill at most the generation of PV that cannot be curtailed; so the
    flexible set-points together never draw more than the import limit plus that generation, nor
    feed in more than the export limit plus the inflexible load."""
    conn, pv = tab.connections, tab.pv
    for c, cid in enumerate(conn.ids):
        if not conn.hard_limits[c]:
            continue
        data = plan.connections[cid]
        imp, exp = np.asarray(data["import_kw"]), np.asarray(data["export_kw"])
        unmet, spill = np.asarray(data["unmet_kw"]), np.asarray(data["spill_kw"])
        scale = max(1.0, float(conn.limit_import_kw[c].max()), float(conn.limit_export_kw[c].max()))
        assert (imp <= np.asarray(data["limit_import_kw"]) + TOL * scale).all(), f"hard import limit broken at {cid}"
        assert (exp <= np.asarray(data["limit_export_kw"]) + TOL * scale).all(), f"hard export limit broken at {cid}"
        load = conn.fixed_load_kw[c]
        fixed_pv = (pv.at.node == c) & ~pv.curtailable
        gen = pv.available_kw[fixed_pv].sum(axis=0) if fixed_pv.any() else np.zeros(tab.T)
        assert (unmet <= load + TOL * scale).all(), f"unmet load above the load at {cid}"
        assert (spill <= gen + TOL * scale).all(), f"spill above the inflexible generation at {cid}"
        flexible = sum(
            (
                np.asarray(a["power_kw"])
                for a in plan.assets.values()
                if a["connection"] == cid
                and a["type"] != "inflexible_load"
                and not (a["type"] == "pv" and not a["curtailable"])
            ),
            np.zeros(tab.T),
        )
        assert (flexible <= conn.limit_import_kw[c] + gen + TOL * scale).all(), f"set-points exceed the limit at {cid}"
        assert (flexible >= -conn.limit_export_kw[c] - load - TOL * scale).all(), (
            f"set-points exceed the limit at {cid}"
        )
