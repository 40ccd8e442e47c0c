"""Plain numeric tables the LP is built from: one table per asset type, arrays over the horizon.

`build_tables` turns a validated :class:`~grid.domain.Site` and its :class:`~grid.series.SiteInputs`
into these tables for one horizon; the block builders in ``models.blocks`` read nothing else.
Units: kW, kWh, EUR/kWh, EUR/kW; arrays are shaped (assets, T) or (T,). Power signs follow
``grid.domain``: positive = drawn from the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from grid.domain import (
    Battery,
    ConnectionPoint,
    EVCharger,
    FeedInRules,
    HeatPump,
    Par14aSettings,
    Penalties,
    PVArray,
    Site,
)
from grid.errors import InputError
from grid.series import SiteInputs, constant_or_series
from models.requests import battery_requests, ev_requests, heat_pump_requests


@dataclass
class Placement:
    """Where each asset of a table is connected: connection index and feeder index (-1 = none)."""

    node: np.ndarray
    feeder: np.ndarray


@dataclass
class ConnectionTable:
    ids: list[str]
    limit_import_kw: np.ndarray  # (C, T): the connection's limit, lowered where an order applies
    limit_export_kw: np.ndarray  # (C, T)
    hard_limits: np.ndarray
    peak_so_far_kw: np.ndarray
    fixed_load_kw: np.ndarray  # (C, T) inflexible household load
    reserve_kw: np.ndarray  # (C, T) planning reserve under the import limit (>= 0, see SiteInputs)
    households: list[int]  # households per connection
    feeder_ids: list[str]
    feeder_node: np.ndarray
    feeder_limit_import_kw: np.ndarray
    feeder_limit_export_kw: np.ndarray
    feeder_fixed_load_kw: np.ndarray  # (F, T)


@dataclass
class PVTable:
    """PV arrays with their available generation (kW, >= 0, within the export cap); whether each
    may be curtailed; which negative-price rule applies and where it takes the feed-in payment."""

    ids: list[str]
    at: Placement
    curtailable: np.ndarray
    available_kw: np.ndarray  # (P, T) >= 0, generation available (capped at export_cap_kw)
    export_cap_kw: np.ndarray  # (P,) 60 % rule (no smart-meter gateway); inf: no cap
    rule: list[str]  # negative_price_rule in effect ("none", "quarter_hour", "Nh")
    unpaid: np.ndarray  # (P, T) 1 where the array's exports earn no feed-in payment, else 0


@dataclass
class BatteryTable:
    ids: list[str]
    at: Placement
    capacity_kwh: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    eta_charge: np.ndarray
    eta_discharge: np.ndarray
    soc_min_kwh: np.ndarray
    soc_max_kwh: np.ndarray
    initial_kwh: np.ndarray
    terminal_kwh: np.ndarray  # NaN: no target (value of stored energy instead)
    terminal_is_initial: np.ndarray  # the target is "end where you started" (follows initial_kwh)
    value_eur_per_kwh: np.ndarray  # NaN: no value (target instead)
    terminal_penalty_eur_per_kwh: np.ndarray  # price of a kWh short of the target (hard: the hard price)
    self_discharge_per_h: np.ndarray
    throughput_eur_per_kwh: np.ndarray
    flex: np.ndarray
    request_charge_kw: np.ndarray  # (B, T) requested profile of devices without a contract
    request_discharge_kw: np.ndarray


@dataclass
class EVTable:
    """Chargers and their session slots (see `EV_SLOTS_PER_CHARGER`; an empty slot has the id "").
    A session's availability a[s,t] in [0,1] is the share of interval t during which the car is
    plugged in."""

    ids: list[str]
    at: Placement
    max_kw: np.ndarray
    v2g: np.ndarray
    efficiency: np.ndarray
    flex: np.ndarray
    session_ids: list[str]
    session_charger: np.ndarray
    availability: np.ndarray  # (S, T)
    departure_step: np.ndarray  # index of the last plugged interval, or T-1 if after the horizon
    departs_in_horizon: np.ndarray
    capacity_kwh: np.ndarray
    initial_kwh: np.ndarray
    needed_kwh: np.ndarray
    arrival_s: np.ndarray  # POSIX seconds
    departure_s: np.ndarray
    request_kw: np.ndarray  # (S, T) uncontrolled charging profile
    v2g_consent: np.ndarray  # (S,) the car may be discharged (where the charger can and has a contract)


@dataclass
class HeatPumpTable:
    ids: list[str]
    at: Placement
    electric_kw: np.ndarray
    cop: np.ndarray  # (H, T)
    store_kwh: np.ndarray
    loss_per_h: np.ndarray
    initial_kwh: np.ndarray
    terminal_kwh: np.ndarray  # end-of-horizon level the store should reach (kWh thermal); NaN: initial_kwh
    terminal_is_initial: np.ndarray  # the target is "end where you started" (follows initial_kwh)
    terminal_penalty_eur_per_kwh: np.ndarray  # price of a kWh short of it (hard: the hard price)
    heat_demand_kw: np.ndarray  # (H, T) thermal
    flex: np.ndarray
    request_kw: np.ndarray  # (H, T) electric, thermostat-driven
    on_hard_limit: np.ndarray  # (H,) behind a hard-limit connection: unmet heat possible at every step


@dataclass
class PriceTable:
    """Prices per connection (C, T) (the site's tariff, overridden by a connection's own), EUR/kWh;
    CO2 and the day-ahead price are the same everywhere (T,)."""

    import_eur_per_kwh: np.ndarray  # energy price + grid fee, (C, T)
    energy_eur_per_kwh: np.ndarray  # (C, T)
    grid_fee_eur_per_kwh: np.ndarray  # (C, T)
    feed_in_eur_per_kwh: np.ndarray  # (C, T)
    co2_g_per_kwh: np.ndarray  # (T,)
    co2_eur_per_kwh: np.ndarray  # (T,)
    spot_eur_per_kwh: np.ndarray  # (T,) day-ahead price (negative-price rules)
    peak_charge_eur_per_kw: np.ndarray  # (C,)


@dataclass
class DimmingGroup:
    """§14a: devices without a flexibility contract that share one guaranteed minimum.

    members are (kind, index) with kind in {"battery", "ev", "heat_pump"}; min_kw is the group's
    guaranteed minimum (a lone device: its own; behind one EMS: 4.2 + (n-1) GZF(n) 4.2 kW).
    """

    name: str
    members: list[tuple[str, int]]
    min_kw: float
    on_hard_limit: bool = False  # a member sits behind a hard-limit connection: the minimum may be missed


@dataclass
class Tables:
    site_id: str
    index: pd.DatetimeIndex
    dt_h: float
    connections: ConnectionTable
    pv: PVTable
    batteries: BatteryTable
    ev: EVTable
    heat_pumps: HeatPumpTable
    prices: PriceTable
    penalties: Penalties
    dimming_groups: list[DimmingGroup] = field(default_factory=list)

    @property
    def T(self) -> int:  # noqa: N802 - the conventional name of the horizon length
        return len(self.index)


def build_tables(site: Site, inputs: SiteInputs, index: pd.DatetimeIndex) -> Tables:
    """All tables for `site` over `index` (UTC interval starts on the site's resolution)."""
    window = inputs.for_site(site, index)
    dt_h = site.site.resolution_min / 60.0
    conn_pos = {c.id: i for i, c in enumerate(site.connections)}
    feeder_pos: dict[str, int] = {}
    for c in site.connections:
        for f in c.feeders:
            feeder_pos[f.id] = len(feeder_pos)

    def place(assets: Sequence[Any]) -> Placement:
        return Placement(
            node=np.array([conn_pos[a.connection] for a in assets], dtype=int),
            feeder=np.array([feeder_pos[a.feeder] if a.feeder else -1 for a in assets], dtype=int),
        )

    connections = _connections(site, window, place(site.households), feeder_pos)
    prices = _prices(site, window, index)
    pv = _pv(site, window, place(site.pv_arrays), prices.spot_eur_per_kwh, dt_h)
    batteries = _batteries(site, window, place(site.batteries), dt_h)
    ev = _ev(site, index, place(site.ev_chargers), dt_h)
    heat_pumps = _heat_pumps(site, window, place(site.heat_pumps))
    tables = Tables(
        site_id=site.id,
        index=index,
        dt_h=dt_h,
        connections=connections,
        pv=pv,
        batteries=batteries,
        ev=ev,
        heat_pumps=heat_pumps,
        prices=prices,
        penalties=site.penalties,
    )
    tables.dimming_groups = dimming_groups(site, site.par14a)
    return tables


def _connections(site: Site, inputs: SiteInputs, homes: Placement, feeder_pos: dict[str, int]) -> ConnectionTable:
    C, F, T = len(site.connections), len(feeder_pos), len(inputs.index)
    load = inputs.base_load_kw.to_numpy(dtype=float).T if site.households else np.zeros((0, T))
    fixed = np.zeros((C, T))
    np.add.at(fixed, homes.node, load)
    feeder_fixed = np.zeros((F, T))
    on_feeder = homes.feeder >= 0
    np.add.at(feeder_fixed, homes.feeder[on_feeder], load[on_feeder])
    feeders = [(f, ci) for ci, c in enumerate(site.connections) for f in c.feeders]
    return ConnectionTable(
        ids=[c.id for c in site.connections],
        limit_import_kw=_limits([c.limit_import_kw for c in site.connections], inputs.ordered_import_kw, T),
        limit_export_kw=_limits([c.limit_export_kw for c in site.connections], inputs.ordered_export_kw, T),
        hard_limits=np.array([c.hard_limits for c in site.connections]),
        peak_so_far_kw=np.array([c.peak_so_far_kw for c in site.connections]),
        fixed_load_kw=fixed,
        reserve_kw=_reserve(inputs.reserve_kw, C, T),
        households=np.bincount(homes.node, minlength=C).tolist(),
        feeder_ids=[f.id for f, _ in feeders],
        feeder_node=np.array([ci for _, ci in feeders], dtype=int),
        feeder_limit_import_kw=np.array([f.import_limit_kw for f, _ in feeders]),
        feeder_limit_export_kw=np.array([f.export_limit_kw for f, _ in feeders]),
        feeder_fixed_load_kw=feeder_fixed,
    )


def _reserve(reserve: pd.DataFrame | None, C: int, T: int) -> np.ndarray:
    """(C, T) planning reserve in kW (0 where none is given)."""
    if reserve is None or not C:
        return np.zeros((C, T))
    return np.nan_to_num(reserve.to_numpy(dtype=float).T, nan=0.0).clip(min=0.0)


def _limits(own_kw: list[float], ordered: pd.DataFrame | None, T: int) -> np.ndarray:
    """(C, T) limits in kW: each connection's own, or a limit order's where it is lower."""
    limits = np.repeat(np.asarray(own_kw, dtype=float).reshape(-1, 1), T, axis=1)
    if ordered is not None and len(own_kw):
        orders = ordered.to_numpy(dtype=float).T
        limits = np.where(np.isnan(orders), limits, np.minimum(limits, orders))
    return limits


def _pv(site: Site, inputs: SiteInputs, at: Placement, spot: np.ndarray, dt_h: float) -> PVTable:
    arrays, T = site.pv_arrays, len(inputs.index)
    kwp = np.array([p.kwp for p in arrays])
    avail = inputs.pv_kw_per_kwp.to_numpy(dtype=float).T if arrays else np.zeros((0, T))
    cap = np.array([export_cap_kw(p, site.feed_in_rules) for p in arrays])
    rules = [negative_price_rule(p, site.feed_in_rules) for p in arrays]
    return PVTable(
        ids=[p.id for p in arrays],
        at=at,
        curtailable=np.array([p.curtailable for p in arrays], dtype=bool),
        available_kw=np.minimum(np.clip(avail, 0.0, None) * kwp[:, None], cap[:, None]) if len(kwp) else avail,
        export_cap_kw=cap,
        rule=rules,
        unpaid=np.array([unpaid_steps(r, spot, dt_h) for r in rules], dtype=float).reshape(len(arrays), T),
    )


def negative_price_rule(array: PVArray, rules: FeedInRules) -> str:
    """The array's own rule, else by commissioning date: ``quarter_hour`` for arrays of at least
    ``rules.min_kwp`` commissioned from ``rules.negative_price_from``, ``none`` otherwise."""
    if array.negative_price_rule is not None:
        return array.negative_price_rule
    new = array.commissioned is not None and array.commissioned >= rules.negative_price_from
    return "quarter_hour" if new and array.kwp >= rules.min_kwp else "none"


def export_cap_kw(array: PVArray, rules: FeedInRules) -> float:
    """kW the array may feed in: ``no_gateway_cap_factor`` x kWp for an array of at least
    ``min_kwp`` commissioned from ``no_gateway_cap_from`` without a smart-meter gateway, else inf."""
    new = array.commissioned is not None and array.commissioned >= rules.no_gateway_cap_from
    if new and not array.smart_meter_gateway and array.kwp >= rules.min_kwp:
        return rules.no_gateway_cap_factor * array.kwp
    return float("inf")


def unpaid_steps(rule: str, spot: np.ndarray, dt_h: float) -> np.ndarray:
    """(T,) 1.0 where an array under `rule` gets no feed-in payment: every interval with a negative
    day-ahead price (``quarter_hour``), every interval of a run of negative prices lasting at least N
    hours (``Nh``; runs are judged within the horizon), nowhere (``none``)."""
    negative = spot < 0
    if rule == "none":
        return np.zeros(len(spot))
    if rule == "quarter_hour":
        return negative.astype(float)
    hours = float(rule.removesuffix("h"))
    out = np.zeros(len(spot))
    start = None
    for t, neg in enumerate([*negative.tolist(), False]):
        if neg and start is None:
            start = t
        elif not neg and start is not None:
            if (t - start) * dt_h >= hours - 1e-9:
                out[start:t] = 1.0
            start = None
    return out


def _batteries(site: Site, inputs: SiteInputs, at: Placement, dt_h: float) -> BatteryTable:
    bats = site.batteries
    cap = np.array([b.capacity_kwh for b in bats])

    def arr(attr: str) -> np.ndarray:
        return np.array([getattr(b, attr) for b in bats], dtype=float)

    terminal = np.array(
        [
            np.nan
            if b.stored_energy_value_eur_per_kwh is not None
            else (b.terminal_soc if b.terminal_soc is not None else b.initial_soc)
            for b in bats
        ],
        dtype=float,
    )
    value = np.array(
        [b.stored_energy_value_eur_per_kwh if b.stored_energy_value_eur_per_kwh is not None else np.nan for b in bats],
        dtype=float,
    )
    req_ch, req_dis = battery_requests(site, inputs, dt_h)
    return BatteryTable(
        ids=[b.id for b in bats],
        at=at,
        capacity_kwh=cap,
        charge_kw=arr("charge_kw"),
        discharge_kw=arr("discharge_kw"),
        eta_charge=arr("charge_efficiency"),
        eta_discharge=arr("discharge_efficiency"),
        soc_min_kwh=arr("soc_min") * cap if bats else cap,
        soc_max_kwh=arr("soc_max") * cap if bats else cap,
        initial_kwh=arr("initial_soc") * cap if bats else cap,
        terminal_kwh=terminal * cap if bats else cap,
        terminal_is_initial=np.array(
            [b.terminal_soc is None and b.stored_energy_value_eur_per_kwh is None for b in bats], dtype=bool
        ),
        value_eur_per_kwh=value,
        terminal_penalty_eur_per_kwh=terminal_penalties(
            bats, site.penalties, site.penalties.terminal_shortfall_eur_per_kwh
        ),
        self_discharge_per_h=arr("self_discharge_per_h"),
        throughput_eur_per_kwh=arr("throughput_cost_eur_per_kwh"),
        flex=np.array([b.flex_contract for b in bats], dtype=bool),
        request_charge_kw=req_ch,
        request_discharge_kw=req_dis,
    )


#: session slots each charger has in the model (more where more sessions overlap the horizon): a car
#: that arrives takes a free slot, so arrivals and departures move numbers, not the model's structure
EV_SLOTS_PER_CHARGER = 2


def _ev(site: Site, index: pd.DatetimeIndex, at: Placement, dt_h: float) -> EVTable:
    """Chargers and their session slots: slot k of a charger holds its k-th session overlapping
    the horizon (by arrival) or, empty (id ""), nothing: never plugged in, nothing needed."""
    chargers = site.ev_chargers
    pos = {c.id: i for i, c in enumerate(chargers)}
    T = len(index)
    starts = index.as_unit("s").asi8
    step_s = round(dt_h * 3600)
    horizon_start = int(starts[0]) if T else 0
    horizon_end = int(starts[-1]) + step_s if T else 0
    by_charger: list[list[tuple[Any, np.ndarray, int]]] = [[] for _ in chargers]
    for s in sorted(site.ev_sessions, key=lambda s: (pd.Timestamp(s.arrival), s.id)):
        arr_s = int(pd.Timestamp(s.arrival).timestamp())
        dep_s = int(pd.Timestamp(s.departure).timestamp())
        overlap = np.clip(np.minimum(starts + step_s, dep_s) - np.maximum(starts, arr_s), 0, step_s) / step_s
        if overlap.sum() > 0:
            by_charger[pos[s.charger]].append((s, overlap, dep_s))
    slots: list[tuple[int, Any, np.ndarray, int]] = []
    for c, mine in enumerate(by_charger):
        for k in range(max(EV_SLOTS_PER_CHARGER, len(mine))):
            if k < len(mine):
                slots.append((c, *mine[k]))
            else:
                slots.append((c, None, np.zeros(T), horizon_start))
    S = len(slots)
    ids = [s.id if s is not None else "" for _, s, _, _ in slots]
    avail = np.array([o for _, _, o, _ in slots]).reshape(S, T)
    charger = np.array([c for c, _, _, _ in slots], dtype=int)
    numbers = np.array(_slot_numbers(slots, horizon_start), dtype=float).reshape(S, 4)
    cap, init, needed, arrival = numbers[:, 0], numbers[:, 1], numbers[:, 2], numbers[:, 3]
    consent = np.array([s is None or s.v2g_consent for _, s, _, _ in slots], dtype=bool)
    departs = np.array([dep <= horizon_end for _, _, _, dep in slots], dtype=bool)
    last = np.array([int(np.flatnonzero(o > 0)[-1]) if o.any() else 0 for _, _, o, _ in slots], dtype=int)
    max_kw = np.array([c.max_kw for c in chargers])
    eff = np.array([c.efficiency for c in chargers])
    req = ev_requests(
        avail,
        max_kw[charger] if S else np.zeros(0),
        eff[charger] if S else np.zeros(0),
        needed,
        dt_h,
    )
    return EVTable(
        ids=[c.id for c in chargers],
        at=at,
        max_kw=max_kw,
        v2g=np.array([c.v2g for c in chargers], dtype=bool),
        efficiency=eff,
        flex=np.array([c.flex_contract for c in chargers], dtype=bool),
        session_ids=ids,
        session_charger=charger,
        availability=avail,
        departure_step=last,
        departs_in_horizon=departs,
        capacity_kwh=cap,
        initial_kwh=init,
        needed_kwh=needed,
        arrival_s=arrival,
        departure_s=np.array([float(dep) for _, _, _, dep in slots]),
        request_kw=req,
        v2g_consent=consent,
    )


def _slot_numbers(slots: list[tuple[int, Any, np.ndarray, int]], horizon_start: int) -> list[tuple[float, ...]]:
    """(car capacity kWh, initial energy kWh, needed kWh, arrival POSIX s) per slot; zeros (and the
    horizon's start) for an empty one. Without a capacity the car takes exactly what it needs."""
    out: list[tuple[float, ...]] = []
    for _, s, _, _ in slots:
        if s is None:
            out.append((0.0, 0.0, 0.0, float(horizon_start)))
            continue
        cap = s.capacity_kwh if s.capacity_kwh is not None else s.energy_needed_kwh
        init = (s.initial_soc or 0.0) * s.capacity_kwh if s.capacity_kwh is not None else 0.0
        out.append((cap, init, s.energy_needed_kwh, pd.Timestamp(s.arrival).timestamp()))
    return out


def _heat_pumps(site: Site, inputs: SiteInputs, at: Placement) -> HeatPumpTable:
    hps = site.heat_pumps
    T = len(inputs.index)
    temp = inputs.temp_degc.to_numpy(dtype=float)
    cop = np.array(
        [np.clip(h.cop.intercept + h.cop.slope_per_degc * temp, h.cop.min_cop, h.cop.max_cop) for h in hps]
    ).reshape(len(hps), T)
    demand = inputs.heat_demand_kw.to_numpy(dtype=float).T if hps else np.zeros((0, T))
    store = np.array([h.store_kwh for h in hps])
    loss = np.array([h.store_loss_per_h for h in hps])
    initial = np.array([h.initial_store for h in hps]) * store
    electric = np.array([h.electric_kw for h in hps])
    return HeatPumpTable(
        ids=[h.id for h in hps],
        at=at,
        electric_kw=electric,
        cop=cop,
        store_kwh=store,
        loss_per_h=loss,
        initial_kwh=initial,
        terminal_kwh=np.array([np.nan if h.terminal_store is None else h.terminal_store for h in hps]) * store,
        terminal_is_initial=np.array([h.terminal_store is None for h in hps], dtype=bool),
        terminal_penalty_eur_per_kwh=terminal_penalties(
            hps, site.penalties, site.penalties.heat_store_shortfall_eur_per_kwh
        ),
        heat_demand_kw=demand,
        flex=np.array([h.flex_contract for h in hps], dtype=bool),
        request_kw=heat_pump_requests(demand, cop, electric, loss, initial),
        on_hard_limit=np.array([site.connection(h.connection).hard_limits for h in hps], dtype=bool),
    )


def _prices(site: Site, inputs: SiteInputs, index: pd.DatetimeIndex) -> PriceTable:
    tariff = site.tariff
    site_energy = constant_or_series(
        inputs.price_eur_per_kwh, tariff.import_price_eur_per_kwh, index, "tariff.import_price_eur_per_kwh"
    )
    co2 = constant_or_series(inputs.co2_g_per_kwh, tariff.co2_g_per_kwh, index, "tariff.co2_g_per_kwh")
    spot = inputs.spot_eur_per_kwh.to_numpy(dtype=float) if inputs.spot_eur_per_kwh is not None else site_energy
    site_feed_in = _feed_in(tariff.feed_in_price_eur_per_kwh, inputs, spot, "tariff.feed_in_price_eur_per_kwh")
    energy, fee, feed_in, peak = [], [], [], []
    for i, conn in enumerate(site.connections):
        own = conn.tariff
        if own is not None and own.import_price_eur_per_kwh is not None:
            energy.append(np.full(len(index), own.import_price_eur_per_kwh))
        else:
            energy.append(site_energy)
        fee.append(grid_fee(site, index, conn))
        if own is not None and own.feed_in_price_eur_per_kwh is not None:
            where = f"connections[{i}].tariff.feed_in_price_eur_per_kwh"
            feed_in.append(_feed_in(own.feed_in_price_eur_per_kwh, inputs, spot, where, own=True))
        else:
            feed_in.append(site_feed_in)
        own_peak = own.peak_charge_eur_per_kw if own is not None else None
        peak.append(tariff.peak_charge_eur_per_kw if own_peak is None else own_peak)
    C, T = len(site.connections), len(index)
    energy_ct, fee_ct = np.array(energy).reshape(C, T), np.array(fee).reshape(C, T)
    return PriceTable(
        import_eur_per_kwh=energy_ct + fee_ct,
        energy_eur_per_kwh=energy_ct,
        grid_fee_eur_per_kwh=fee_ct,
        feed_in_eur_per_kwh=np.array(feed_in).reshape(C, T),
        co2_g_per_kwh=co2,
        co2_eur_per_kwh=co2 * tariff.co2_price_eur_per_t / 1e6,
        spot_eur_per_kwh=spot,
        peak_charge_eur_per_kw=np.array(peak, dtype=float),
    )


def _feed_in(price: float | str, inputs: SiteInputs, spot: np.ndarray, where: str, own: bool = False) -> np.ndarray:
    """Feed-in price per interval: the day-ahead price for ``"spot"``, else the inputs' feed-in
    series (site tariff only) or the constant. ``"spot"`` next to a feed-in series is ambiguous."""
    if price == "spot":
        if inputs.feed_in_eur_per_kwh is not None and not own:
            raise InputError(where, "is 'spot' but the prices input also has a feed_in_eur_per_kwh column", price)
        return spot.astype(float)
    if inputs.feed_in_eur_per_kwh is not None and not own:
        return inputs.feed_in_eur_per_kwh.to_numpy(dtype=float)
    return np.full(len(spot), float(price))


def terminal_penalties(assets: Sequence[Battery | HeatPump], penalties: Penalties, default: float) -> np.ndarray:
    """EUR per kWh short of each asset's end-of-horizon target: the hard price for a hard target,
    else the asset's own penalty, else `default`."""
    return np.array(
        [
            penalties.hard_terminal_eur_per_kwh
            if a.terminal_hard
            else (a.terminal_penalty_eur_per_kwh if a.terminal_penalty_eur_per_kwh is not None else default)
            for a in assets
        ],
        dtype=float,
    )


def grid_fee(site: Site, index: pd.DatetimeIndex, conn: ConnectionPoint | None = None) -> np.ndarray:
    """Grid fee per interval (EUR/kWh) at `conn` (its own tariff's fields, else the site's): the
    standard fee, replaced inside the daily windows, which are local wall-clock times (so they
    follow DST)."""
    tariff, own = site.tariff, conn.tariff if conn is not None else None
    standard = own.grid_fee_eur_per_kwh if own is not None and own.grid_fee_eur_per_kwh is not None else None
    windows = own.grid_fee_windows if own is not None and own.grid_fee_windows is not None else None
    fee = np.full(len(index), tariff.grid_fee_eur_per_kwh if standard is None else standard)
    local = index.tz_convert(ZoneInfo(site.site.timezone))
    minutes = np.asarray(local.hour * 60 + local.minute)
    for w in tariff.grid_fee_windows if windows is None else windows:
        a, b = w.start.hour * 60 + w.start.minute, w.end.hour * 60 + w.end.minute
        inside = (minutes >= a) & (minutes < b) if a < b else (minutes >= a) | (minutes < b)
        fee[inside] = w.fee_eur_per_kwh
    return fee


def device_min_kw(kind: str, rating_kw: float, rules: Par14aSettings) -> float:
    """Guaranteed §14a minimum of one device (kW): its full rating if it is not a controllable
    device (rating <= threshold), 0.4 x rating for heat pumps above 11 kW, else 4.2 kW."""
    if rating_kw <= rules.threshold_kw:
        return rating_kw
    if kind == "heat_pump" and rating_kw > rules.large_hp_kw:
        return rules.large_hp_factor * rating_kw
    return rules.min_kw


def gzf(n: int, rules: Par14aSettings) -> float:
    """Simultaneity factor GZF(n) for n >= 2 devices behind one EMS (the last value repeats)."""
    if n < 2:
        raise InputError("par14a.gzf", "is defined for n >= 2 devices", n)
    return rules.gzf[min(n - 2, len(rules.gzf) - 1)]


def ems_min_kw(members: list[tuple[str, float]], rules: Par14aSettings) -> float:
    """Aggregate §14a minimum behind one EMS: first term 4.2 kW (or 0.4 x the rating of a heat
    pump above 11 kW, if larger), plus (n-1) x GZF(n) x 4.2 kW."""
    n = len(members)
    first = max(
        [rules.min_kw] + [rules.large_hp_factor * r for k, r in members if k == "heat_pump" and r > rules.large_hp_kw]
    )
    if n == 1:
        return device_min_kw(members[0][0], members[0][1], rules)
    return first + (n - 1) * gzf(n, rules) * rules.min_kw


def dimming_groups(site: Site, rules: Par14aSettings) -> list[DimmingGroup]:
    """Groups of §14a devices without a flexibility contract (EMS groups, else one per device)."""
    devices: list[tuple[str, int, Battery | EVCharger | HeatPump, float]] = []
    devices += [("battery", i, b, b.charge_kw) for i, b in enumerate(site.batteries) if not b.flex_contract]
    devices += [("ev", i, c, c.max_kw) for i, c in enumerate(site.ev_chargers) if not c.flex_contract]
    devices += [("heat_pump", i, h, h.electric_kw) for i, h in enumerate(site.heat_pumps) if not h.flex_contract]
    by_ems: dict[str, list[tuple[str, int, float]]] = {}
    hard_ems: dict[str, bool] = {}
    groups: list[DimmingGroup] = []
    for kind, i, dev, rating in devices:
        controllable = rating > rules.threshold_kw
        hard = site.connection(dev.connection).hard_limits
        if dev.ems is not None and controllable:
            by_ems.setdefault(dev.ems, []).append((kind, i, rating))
            hard_ems[dev.ems] = hard_ems.get(dev.ems, False) or hard
        else:
            groups.append(DimmingGroup(dev.id, [(kind, i)], device_min_kw(kind, rating, rules), hard))
    for name, members in by_ems.items():
        groups.append(
            DimmingGroup(
                f"ems:{name}",
                [(k, i) for k, i, _ in members],
                ems_min_kw([(k, r) for k, _, r in members], rules),
                hard_ems[name],
            )
        )
    return groups
