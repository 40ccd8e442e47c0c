"""Simulated devices: batteries, heat pumps with their stores and wallboxes with the cars plugged in.

Each interval a device gets a set-point (kW, > 0 drawn from the node) or none, and does what its
physics allows:

* battery: SoC[t+1] = SoC[t] (1 - self-discharge dt) + (eta_c P_ch - P_dis / eta_d) dt, power
  clipped to the ratings and to what the SoC can give or take;
* heat pump: store[t+1] = store[t] (1 - loss dt) + (COP P - heat demand) dt; the house is never
  left cold: a store that would run empty makes the pump run harder (up to its rating), a full
  store makes it run less;
* wallbox: charges the plugged car at most at its rating and never beyond what the car needs.

Without a set-point, or when a device does not comply, it behaves as it would uncontrolled
(:mod:`models.requests`): the car charges at full power on arrival, the heat pump keeps its store
where it is (thermostat), the battery does greedy self-consumption of its household. Which
devices do not comply is drawn once per run (share ``1 - compliance``); every complying device's
power has multiplicative noise of ``noise_sd`` before its physics clips it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from grid.domain import EVSession, Site


def _cop(site: Site, temp_degc: float) -> np.ndarray:
    return np.array(
        [
            np.clip(h.cop.intercept + h.cop.slope_per_degc * temp_degc, h.cop.min_cop, h.cop.max_cop)
            for h in site.heat_pumps
        ]
    )


@dataclass
class Car:
    """A plugged-in car: what it still needs (kWh into the car) and when it leaves (POSIX s)."""

    session: EVSession
    remaining_kwh: float
    departure_s: float
    delivered_kwh: float = 0.0


@dataclass
class StepResult:
    """Realised power per device this interval (kW, > 0 drawn from the node)."""

    battery_kw: np.ndarray
    heat_pump_kw: np.ndarray
    ev_kw: np.ndarray
    pv_kw: np.ndarray  # generation as a negative draw
    unmet_heat_kwh: float


@dataclass
class Fleet:
    """The devices of `site` and their states; see the module docstring."""

    site: Site
    dt_h: float
    compliant: dict[str, bool]
    noise_sd: float
    rng: np.random.Generator
    soc_kwh: np.ndarray = field(init=False)
    store_kwh: np.ndarray = field(init=False)
    store_target_kwh: np.ndarray = field(init=False)
    cars: dict[str, Car] = field(default_factory=dict)  # charger id -> car

    def __post_init__(self) -> None:
        s = self.site
        self.soc_kwh = np.array([b.initial_soc * b.capacity_kwh for b in s.batteries])
        self.store_kwh = np.array([h.initial_store * h.store_kwh for h in s.heat_pumps])
        self.store_target_kwh = self.store_kwh.copy()
        self._bat_home = {b.household: i for i, b in enumerate(s.batteries) if b.household}

    # --- one interval -----------------------------------------------------------------------------

    def step(
        self,
        setpoint_kw: dict[str, float] | None,
        base_kw: np.ndarray,
        pv_avail_kw_per_kwp: np.ndarray,
        heat_kw: np.ndarray,
        temp_degc: float,
    ) -> StepResult:
        """Advance one interval on the truth (`base_kw` per household, PV availability per array,
        heat demand per heat pump, outdoor temperature) following `setpoint_kw` (asset id -> kW;
        None: uncontrolled)."""
        s = self.site
        pv_kw = -pv_avail_kw_per_kwp * np.array([p.kwp for p in s.pv_arrays])
        pv_kw = self._pv(setpoint_kw, pv_kw)
        bat = self._batteries(setpoint_kw, base_kw, pv_kw)
        hp, unmet = self._heat_pumps(setpoint_kw, heat_kw, temp_degc)
        ev = self._evs(setpoint_kw)
        return StepResult(bat, hp, ev, pv_kw, unmet)

    def _wanted(self, setpoint_kw: dict[str, float] | None, asset_id: str) -> float | None:
        """The set-point the device follows (with noise), or None: it does what it wants."""
        if setpoint_kw is None or not self.compliant.get(asset_id, True) or asset_id not in setpoint_kw:
            return None
        value = setpoint_kw[asset_id]
        if self.noise_sd > 0:
            value *= 1.0 + self.noise_sd * float(self.rng.standard_normal())
        return value

    def _pv(self, setpoint_kw: dict[str, float] | None, avail_kw: np.ndarray) -> np.ndarray:
        out = avail_kw.copy()
        for i, p in enumerate(self.site.pv_arrays):
            want = self._wanted(setpoint_kw, p.id) if p.curtailable else None
            if want is not None:  # curtailed: generates at most |set-point|
                out[i] = max(avail_kw[i], min(want, 0.0))
        return out

    def _batteries(self, setpoint_kw: dict[str, float] | None, base_kw: np.ndarray, pv_kw: np.ndarray) -> np.ndarray:
        s, dt = self.site, self.dt_h
        out = np.zeros(len(s.batteries))
        home_net = _home_net(s, base_kw, pv_kw)
        for i, b in enumerate(s.batteries):
            want = self._wanted(setpoint_kw, b.id)
            if want is None:  # greedy self-consumption: charge from surplus, discharge into deficit
                want = -home_net.get(b.household, 0.0) if b.household else 0.0
            soc = self.soc_kwh[i]
            lo, hi = b.soc_min * b.capacity_kwh, b.soc_max * b.capacity_kwh
            if want >= 0:
                p = min(want, b.charge_kw, max(hi - soc, 0.0) / (b.charge_efficiency * dt))
                soc += p * b.charge_efficiency * dt
            else:
                p = -min(-want, b.discharge_kw, max(soc - lo, 0.0) * b.discharge_efficiency / dt)
                soc += p / b.discharge_efficiency * dt
            self.soc_kwh[i] = soc * (1.0 - b.self_discharge_per_h * dt)
            out[i] = p
        return out

    def _heat_pumps(
        self, setpoint_kw: dict[str, float] | None, heat_kw: np.ndarray, temp_degc: float
    ) -> tuple[np.ndarray, float]:
        s, dt = self.site, self.dt_h
        cop = _cop(s, temp_degc)
        out = np.zeros(len(s.heat_pumps))
        unmet = 0.0
        for i, h in enumerate(s.heat_pumps):
            kept = self.store_kwh[i] * (1.0 - h.store_loss_per_h * dt) - heat_kw[i] * dt
            want = self._wanted(setpoint_kw, h.id)
            if want is None:  # thermostat: bring the store back to where it started
                want = (self.store_target_kwh[i] - kept) / (cop[i] * dt)
            # never below empty, never above full, within the rating
            need_kw = -kept / (cop[i] * dt)
            room_kw = (h.store_kwh - kept) / (cop[i] * dt)
            p = float(np.clip(want, max(need_kw, 0.0), max(room_kw, 0.0)))
            p = min(max(p, 0.0), h.electric_kw)
            store = kept + cop[i] * p * dt
            if store < 0.0:
                unmet += -store
                store = 0.0
            self.store_kwh[i] = min(store, h.store_kwh)
            out[i] = p
        return out, unmet

    def _evs(self, setpoint_kw: dict[str, float] | None) -> np.ndarray:
        dt = self.dt_h
        out = np.zeros(len(self.site.ev_chargers))
        for i, c in enumerate(self.site.ev_chargers):
            car = self.cars.get(c.id)
            if car is None:
                continue
            most = min(c.max_kw, car.remaining_kwh / (c.efficiency * dt))
            want = self._wanted(setpoint_kw, c.id)
            p = most if want is None else float(np.clip(want, 0.0, most))
            car.remaining_kwh = max(car.remaining_kwh - p * c.efficiency * dt, 0.0)
            car.delivered_kwh += p * c.efficiency * dt
            out[i] = p
        return out


def _home_net(site: Site, base_kw: np.ndarray, pv_kw: np.ndarray) -> dict[str, float]:
    """Per household: base load + its own PV (negative) in kW."""
    net = {h.id: float(base_kw[i]) for i, h in enumerate(site.households)}
    for j, p in enumerate(site.pv_arrays):
        if p.household is not None and p.household in net:
            net[p.household] += float(pv_kw[j])
    return net


def draw_compliance(site: Site, compliance: float, rng: np.random.Generator) -> dict[str, bool]:
    """Which controllable devices follow their set-points (drawn once per run)."""
    ids = [a.id for a in (*site.batteries, *site.heat_pumps, *site.ev_chargers, *site.pv_arrays)]
    draws = rng.random(len(ids))
    return {aid: bool(d < compliance) for aid, d in zip(ids, draws, strict=True)}
