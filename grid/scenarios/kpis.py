"""Scenario KPIs: the plan's key figures, transformer loading in the plan and in an uncontrolled
reference, and their weighted aggregation over evaluation windows.

Names carry units (``_eur``, ``_kwh``, ``_kw``, ``_h``, ``_kg``); per-transformer figures are
``<name>.<connection id>`` (``peak_import_kw.T2``). Fractions are 0..1.

Uncontrolled reference (per connection and interval, kW, positive = import): inflexible household
load + every wallbox charging at full power from arrival until its energy is in
(:func:`models.requests.ev_requests`) + every heat pump thermostat-driven
(:func:`models.requests.heat_pump_requests`) + every home battery doing greedy self-consumption
of its household and community batteries idle (:func:`models.requests.battery_requests`, applied
as if no battery had a flexibility contract) - all available PV (nothing curtailed). Import is the
positive part of that net load.

"Above the limit" counts intervals whose import exceeds the connection's import limit by more
than ``LIMIT_TOL_KW``; ``hours_above_limit_h`` sums the hours over transformers (transformer-hours)
and ``energy_above_limit_kwh`` the energy above the limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grid.domain import Site
from grid.series import SiteInputs
from models.plan import Plan
from models.requests import battery_requests
from models.tables import Tables

LIMIT_TOL_KW = 1e-4

# weighted sums unless listed here: peaks take the maximum over windows, ratios are recomputed
PEAK_PREFIXES = ("peak_import_kw", "uncontrolled_peak_import_kw")
RATIOS = ("self_consumption", "self_sufficiency")
DROPPED = ("violations",)  # counted by kind instead (unmet, missed, breach)


def uncontrolled_import_kw(site: Site, inputs: SiteInputs, tables: Tables) -> np.ndarray:
    """Import (C, T) in kW of the uncontrolled reference (see the module docstring).

    `inputs` must be the window the tables were built on (``inputs.window(tables.index)``).
    """
    C, T = len(tables.connections.ids), tables.T
    net = tables.connections.fixed_load_kw.copy()
    ev = tables.ev
    if len(ev.session_ids):
        per_charger = np.zeros((len(ev.ids), T))
        np.add.at(per_charger, ev.session_charger, ev.request_kw)
        np.add.at(net, ev.at.node, per_charger)
    hp = tables.heat_pumps
    np.add.at(net, hp.at.node, hp.request_kw)
    if site.batteries:
        uncontrolled = site.model_copy(
            update={"batteries": [b.model_copy(update={"flex_contract": False}) for b in site.batteries]}
        )
        charge, discharge = battery_requests(uncontrolled, inputs, tables.dt_h)
        np.add.at(net, tables.batteries.at.node, charge - discharge)
    np.add.at(net, tables.pv.at.node, -tables.pv.available_kw)
    assert net.shape == (C, T)
    return np.clip(net, 0.0, None)


def overload(import_kw: np.ndarray, limit_kw: np.ndarray, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Hours (C,) and energy (C,) in kWh above the per-connection import limit, (C,) or (C, T)."""
    excess = import_kw - (limit_kw[:, None] if limit_kw.ndim == 1 else limit_kw)
    above = excess > LIMIT_TOL_KW
    return above.sum(axis=1) * dt_h, np.where(above, excess, 0.0).sum(axis=1) * dt_h


def window_kpis(plan: Plan, tables: Tables, reference_import_kw: np.ndarray) -> dict[str, float]:
    """KPIs of one window's plan (see the module docstring); `reference_import_kw` (C, T) is the
    uncontrolled import."""
    kpis: dict[str, float] = {k: float(v) for k, v in plan.kpis.items() if k not in DROPPED}
    kpis["objective_eur"] = float(plan.objective_eur) if plan.objective_eur is not None else float("nan")
    kpis["hours"] = tables.T * tables.dt_h
    conn = tables.connections
    planned = np.array([np.asarray(plan.connections[cid]["import_kw"], dtype=float) for cid in conn.ids])
    for prefix, imports in (("", planned), ("uncontrolled_", reference_import_kw)):
        hours, energy = overload(imports, conn.limit_import_kw, tables.dt_h)
        kpis[f"{prefix}hours_above_limit_h"] = float(hours.sum())
        kpis[f"{prefix}energy_above_limit_kwh"] = float(energy.sum())
        if prefix:
            kpis[f"{prefix}import_kwh"] = float(imports.sum() * tables.dt_h)
            kpis[f"{prefix}peak_import_kw"] = float(imports.sum(axis=0).max(initial=0.0))
        for c, cid in enumerate(conn.ids):
            kpis[f"{prefix}peak_import_kw.{cid}"] = float(imports[c].max(initial=0.0))
            kpis[f"{prefix}hours_above_limit_h.{cid}"] = float(hours[c])
            kpis[f"{prefix}energy_above_limit_kwh.{cid}"] = float(energy[c])
    return kpis


def aggregate(windows: list[tuple[dict[str, float], float]]) -> dict[str, float]:
    """Combine (kpis, weight) of several windows: weighted sums, maxima of peaks, ratios
    recomputed from the weighted energies (self-consumption = (PV - export) / PV, self-sufficiency
    = 1 - import / consumption, as in :mod:`models.kpis`)."""
    keys: dict[str, None] = {}
    for kpis, _ in windows:
        keys.update(dict.fromkeys(kpis))
    out: dict[str, Any] = {}
    for key in keys:
        values = [(k.get(key, 0.0), w) for k, w in windows]
        if key.startswith(PEAK_PREFIXES):
            out[key] = max(v for v, _ in values)
        elif key not in RATIOS:
            out[key] = sum(v * w for v, w in values)
    pv, export = out.get("pv_generation_kwh", 0.0), out.get("export_kwh", 0.0)
    imported, consumed = out.get("import_kwh", 0.0), out.get("consumption_kwh", 0.0)
    out["self_consumption"] = max(pv - export, 0.0) / pv if pv > 0 else 0.0
    out["self_sufficiency"] = 1.0 - imported / consumed if consumed > 0 else 0.0
    out["weight"] = sum(w for _, w in windows)
    return out
