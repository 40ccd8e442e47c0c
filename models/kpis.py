"""Key figures of a plan (EUR, kWh, kW, kg CO2, fractions 0..1).

cost_eur is what the neighbourhood pays over the horizon: energy + grid fees + CO2 + peak charge +
battery throughput - feed-in revenue (at each connection's prices; exports of PV arrays that get no
payment in an interval earn nothing, see ``models.blocks.feed_in``); penalties are reported apart
(penalty_eur: slacks, dimming, and import drawn into a connection's planning reserve) and are zero
in a plan without violations, dimming or reserve in use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from models.dispatch import DispatchModel
    from models.plan import Plan


def compute_kpis(
    dm: DispatchModel, plan: Plan, import_kw: np.ndarray, export_kw: np.ndarray, penalty_eur: float
) -> dict[str, float]:
    """KPIs of `plan`; `penalty_eur` is the cost of its slacks (from the solution). Adds to each of
    the plan's connections its per-interval ``cost_eur`` and ``co2_kg`` (see the comment below)."""
    tab = dm.tables
    dt = tab.dt_h
    pr = tab.prices
    total_import = import_kw.sum(axis=0)
    total_export = export_kw.sum(axis=0)
    import_kwh = float(total_import.sum() * dt)
    export_kwh = float(total_export.sum() * dt)
    consumption_kwh = 0.0
    pv_kwh = curtailed_kwh = throughput_eur = 0.0
    for asset in plan.assets.values():
        power = np.asarray(asset["power_kw"])
        if asset["type"] == "pv":
            pv_kwh += float(-power.sum() * dt)
            curtailed_kwh += float(np.asarray(asset["curtailed_kw"]).sum() * dt)
        elif asset["type"] != "battery":  # storage charging is not final consumption
            consumption_kwh += float(np.clip(power, 0.0, None).sum() * dt)
    bat = tab.batteries
    for i, bid in enumerate(bat.ids):
        a = plan.assets[bid]
        throughput_eur += float(
            (np.asarray(a["charge_kw"]) + np.asarray(a["discharge_kw"])).sum() * dt * bat.throughput_eur_per_kwh[i]
        )
    # prices are per connection (C, T); exports of arrays without payment earn nothing
    paid_export = export_kw - np.array(
        [plan.connections[cid].get("unpaid_export_kw", np.zeros(tab.T)) for cid in tab.connections.ids]
    ).reshape(export_kw.shape)
    energy_eur = float((import_kw * pr.energy_eur_per_kwh).sum() * dt)
    fees_eur = float((import_kw * pr.grid_fee_eur_per_kwh).sum() * dt)
    co2_eur = float((total_import * pr.co2_eur_per_kwh).sum() * dt)
    feed_in_eur = float((paid_export * pr.feed_in_eur_per_kwh).sum() * dt)
    # per connection and interval (what the dashboard sums by local day): energy + grid fees + CO2
    # - feed-in, EUR, and the CO2 emitted, kg; cost_eur = their sum + peak charge + battery wear
    cost_ct = (
        import_kw * (pr.energy_eur_per_kwh + pr.grid_fee_eur_per_kwh + pr.co2_eur_per_kwh)
        - paid_export * pr.feed_in_eur_per_kwh
    ) * dt
    co2_ct = import_kw * pr.co2_g_per_kwh * dt / 1000.0
    for c, cid in enumerate(tab.connections.ids):
        plan.connections[cid]["cost_eur"] = cost_ct[c]
        plan.connections[cid]["co2_kg"] = co2_ct[c]
    peak_eur = float(
        sum(
            pr.peak_charge_eur_per_kw[c] * max(import_kw[c].max(), tab.connections.peak_so_far_kw[c])
            for c in range(len(import_kw))
            if pr.peak_charge_eur_per_kw[c] > 0
        )
    )
    dimmed_kwh = float(sum(d["dimmed_kw"] for d in plan.dimming) * dt)
    penalty_eur += dimmed_kwh * tab.penalties.dimming_eur_per_kwh
    reserve_kwh = float(sum(np.sum(c.get("in_reserve_kw", 0.0)) for c in plan.connections.values()) * dt)
    penalty_eur += reserve_kwh * tab.penalties.reserve_eur_per_kwh
    by_kind: dict[str, float] = {}
    for v in plan.violations:
        key = f"{v.kind}_{v.unit.lower()}"
        by_kind[key] = by_kind.get(key, 0.0) + v.amount
    kpis: dict[str, Any] = {
        "cost_eur": energy_eur + fees_eur + co2_eur + peak_eur + throughput_eur - feed_in_eur,
        "energy_cost_eur": energy_eur,
        "grid_fees_eur": fees_eur,
        "co2_cost_eur": co2_eur,
        "peak_charge_eur": peak_eur,
        "throughput_cost_eur": throughput_eur,
        "feed_in_revenue_eur": feed_in_eur,
        "penalty_eur": penalty_eur,
        "import_kwh": import_kwh,
        "export_kwh": export_kwh,
        "peak_import_kw": float(total_import.max(initial=0.0)),
        "consumption_kwh": consumption_kwh,
        "pv_generation_kwh": pv_kwh,
        "curtailed_kwh": curtailed_kwh,
        "self_consumption": (max(pv_kwh - export_kwh, 0.0) / pv_kwh) if pv_kwh > 0 else 0.0,
        "self_sufficiency": (1.0 - import_kwh / consumption_kwh) if consumption_kwh > 0 else 0.0,
        "co2_kg": float((total_import * pr.co2_g_per_kwh).sum() * dt / 1000.0),
        "unmet_load_kwh": by_kind.get("unmet_load_kwh", 0.0),
        "unmet_heat_kwh": by_kind.get("unmet_heat_kwh", 0.0),
        "ev_energy_missed_kwh": by_kind.get("ev_energy_missed_kwh", 0.0),
        "limit_breach_kwh": dt * sum(v for k, v in by_kind.items() if k.endswith("limit_exceeded_kw")),
        "dimming_events": float(len(plan.dimming)),
        "dimmed_kwh": dimmed_kwh,
        "reserve_used_kwh": reserve_kwh,
        "violations": float(len(plan.violations)),
    }
    return kpis
