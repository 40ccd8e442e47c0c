"""Requested (uncontrolled) profiles of §14a devices without a flexibility contract.

Such a device does what it would do on its own; the plan may only dim it. These functions say what
"on its own" means, in kW drawn from the node (positive = consumption):

- EV: charge at full power from arrival until the needed energy is in the car;
- heat pump: thermostat-driven, cover the heat demand (plus store losses) as it arises, capped at
  the electric rating;
- home battery: greedy self-consumption of its household (charge from PV surplus, discharge into the
  household's deficit); a battery without a household idles.
"""

from __future__ import annotations

import numpy as np

from grid.domain import Site
from grid.series import SiteInputs


def ev_requests(
    availability: np.ndarray, max_kw: np.ndarray, efficiency: np.ndarray, needed_kwh: np.ndarray, dt_h: float
) -> np.ndarray:
    """Uncontrolled charging power (S, T) in kW: full power while plugged in until
    ``needed_kwh`` (energy into the car = power x efficiency x dt) is delivered."""
    req = np.zeros_like(availability)
    remaining = needed_kwh.astype(float).copy()
    for t in range(availability.shape[1]):
        cap_kw = max_kw * availability[:, t]
        power = np.minimum(cap_kw, remaining / (efficiency * dt_h))
        req[:, t] = power
        remaining = np.maximum(remaining - power * efficiency * dt_h, 0.0)
    return req


def heat_pump_requests(
    demand_kw: np.ndarray, cop: np.ndarray, electric_kw: np.ndarray, loss_per_h: np.ndarray, initial_kwh: np.ndarray
) -> np.ndarray:
    """Thermostat-driven electric power (H, T) in kW: (heat demand + store loss at its initial
    level) / COP, capped at the rating."""
    heat = demand_kw + (loss_per_h * initial_kwh)[:, None]
    return np.minimum(heat / cop, electric_kw[:, None])


def battery_requests(site: Site, inputs: SiteInputs, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy self-consumption (charge, discharge) profiles (B, T) in kW, both >= 0, for batteries
    without a flexibility contract; zeros for the others (the plan schedules them)."""
    T = len(inputs.index)
    charge = np.zeros((len(site.batteries), T))
    discharge = np.zeros((len(site.batteries), T))
    pv_by_home: dict[str, np.ndarray] = {}
    for p in site.pv_arrays:
        if p.household is not None:
            gen = inputs.pv_kw_per_kwp[p.id].to_numpy(dtype=float) * p.kwp
            pv_by_home[p.household] = pv_by_home.get(p.household, 0.0) + gen
    for b, bat in enumerate(site.batteries):
        if bat.flex_contract or bat.household is None:
            continue
        net = inputs.base_load_kw[bat.household].to_numpy(dtype=float) - pv_by_home.get(bat.household, 0.0)
        soc = bat.initial_soc * bat.capacity_kwh
        lo, hi = bat.soc_min * bat.capacity_kwh, bat.soc_max * bat.capacity_kwh
        for t in range(T):
            if net[t] < 0:
                p = min(-net[t], bat.charge_kw, max(hi - soc, 0.0) / (bat.charge_efficiency * dt_h))
                charge[b, t] = p
                soc += p * bat.charge_efficiency * dt_h
            else:
                p = min(net[t], bat.discharge_kw, max(soc - lo, 0.0) * bat.discharge_efficiency / dt_h)
                discharge[b, t] = p
                soc -= p / bat.discharge_efficiency * dt_h
            soc *= 1.0 - bat.self_discharge_per_h * dt_h
    return charge, discharge
