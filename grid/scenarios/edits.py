"""Edits of a site: one function per edit kind, each returning a new (Site, SiteInputs) pair.

The baseline is never mutated: :func:`apply_edits` works on a deep copy of the site and on copies of
the input frames, applies the edits in order, reports every problem in one pass (``edits[i].field:
what, got value``), and validates the result like a site file (unique ids, known references).

Edits that add assets derive their input series deterministically:

- added heat pumps: heat demand from :func:`grid.demo.heat_demand_kw` (heating degrees below
  15 degC of the site's ``temp_degc`` x daily shapes, hot water), seeded by the edit's ``seed``;
- added PV: kW/kWp copied from an existing array (see :class:`~grid.scenarios.spec.AddPV`), or a
  pvlib clear-sky profile if the site has no PV;
- added wallboxes: plug-in sessions drawn from the edit's distributions (no series needed).

Units: kW, kWh, kWp, kVA, EUR/kWh; times UTC.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grid.domain import (
    Battery,
    EVCharger,
    EVSession,
    HeatPump,
    Household,
    PVArray,
    Site,
    site_from_dict,
)
from grid.errors import InputError, InputErrors
from grid.scenarios import spec
from grid.series import SiteInputs, read_series_csv

# The same assumptions as the demo generator (grid.demo, imported lazily: it pulls in pvlib and
# demandlib, seconds of start-up for every Dask worker otherwise).
PV_SYSTEM_FACTOR = 0.86  # inverter, wiring, soiling, mismatch: clear-sky PV of sites without any array
PV_MAX_KW_PER_KWP = 1.1
EV_MAX_FILL = 0.8  # energy needed <= this x max_kw x plugged-in hours
MIN_SESSION_H = 1.0  # shorter sessions are dropped


@dataclass
class Draft:
    """The site and inputs being edited (private copies, mutated in place by the edit functions).

    ``base_dir`` is where relative files named in edits (price CSVs) live.
    """

    site: Site
    inputs: SiteInputs
    base_dir: Path


def copy_inputs(inputs: SiteInputs) -> SiteInputs:
    """A deep copy of every series (limit orders and reserves included), so that edits cannot reach
    the baseline's frames."""
    copied: dict[str, Any] = {
        f.name: (value.copy() if isinstance(value, pd.Series | pd.DataFrame | dict) else value)
        for f in dataclasses.fields(inputs)
        for value in [getattr(inputs, f.name)]
    }
    return dataclasses.replace(inputs, **copied)


def apply_edits(
    site: Site, inputs: SiteInputs, edits: list[Any], base_dir: Path | None = None
) -> tuple[Site, SiteInputs]:
    """Apply `edits` in order to copies of `site` and `inputs`; raise :class:`InputErrors` listing
    every edit that cannot be applied (the others are still checked)."""
    draft = Draft(site.model_copy(deep=True), copy_inputs(inputs), base_dir or Path("."))
    problems: list[InputError] = []
    for i, edit in enumerate(edits):
        where = f"edits[{i}]"
        try:
            EDIT_FUNCTIONS[edit.kind](draft, edit, where, i)
        except InputErrors as errs:
            problems.extend(errs.errors)
        except InputError as err:
            problems.append(err)
    if problems:
        raise InputErrors(problems, "scenario edits")
    raw = draft.site.model_dump()
    edited = site_from_dict(raw, base_dir=site.base_dir, context="edited site")
    return edited, draft.inputs


# --- checks shared by the edits -------------------------------------------------------------------


def _connection(site: Site, cid: str | None, where: str) -> None:
    if cid is not None and cid not in {c.id for c in site.connections}:
        raise InputError(f"{where}.connection", f"unknown connection point {cid!r}")


def _feeder(site: Site, cid: str, fid: str | None, where: str) -> None:
    if fid is not None and fid not in {f.id for f in site.connection(cid).feeders}:
        raise InputError(f"{where}.feeder", f"not a feeder of connection {cid}", fid)


def _household(site: Site, hid: str | None, where: str) -> Household | None:
    if hid is None:
        return None
    for home in site.households:
        if home.id == hid:
            return home
    raise InputError(f"{where}.household", f"unknown household {hid!r}")


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def _pick(rng: np.random.Generator, items: list[Any], k: int) -> list[Any]:
    """`k` distinct items in their original order."""
    return [items[i] for i in sorted(rng.choice(len(items), size=k, replace=False))]


# --- one function per edit kind -------------------------------------------------------------------


def scale_pv(draft: Draft, edit: spec.ScalePV, where: str, index: int) -> None:
    """kWp x ``scale`` for every array (at ``connection``); availability per kWp is unchanged."""
    _connection(draft.site, edit.connection, where)
    for arr in draft.site.pv_arrays:
        if edit.connection is None or arr.connection == edit.connection:
            arr.kwp *= edit.scale


def add_pv(draft: Draft, edit: spec.AddPV, where: str, index: int) -> None:
    """One new array with a kW/kWp column derived from the existing arrays (or clear sky)."""
    site = draft.site
    _connection(site, edit.connection, where)
    _feeder(site, edit.connection, edit.feeder, where)
    _household(site, edit.household, where)
    pid = edit.id or f"e{index}-PV"
    pv = draft.inputs.pv_kw_per_kwp
    if edit.profile_from is not None:
        if edit.profile_from not in pv.columns:
            raise InputError(f"{where}.profile_from", f"unknown PV array {edit.profile_from!r}")
        profile = pv[edit.profile_from].to_numpy(dtype=float)
    elif site.pv_arrays:
        same = [a for a in site.pv_arrays if (a.tilt_deg, a.azimuth_deg) == (edit.tilt_deg, edit.azimuth_deg)]
        arrays = same or site.pv_arrays
        kwp = np.array([a.kwp for a in arrays])
        weights = kwp / kwp.sum() if kwp.sum() > 0 else np.full(len(arrays), 1.0 / len(arrays))  # 0 kWp is valid
        profile = pv[[a.id for a in arrays]].to_numpy(dtype=float) @ weights
    else:
        profile = clear_sky_kw_per_kwp(site, draft.inputs.index, edit.tilt_deg, edit.azimuth_deg)
    site.pv_arrays.append(
        PVArray(
            id=pid,
            connection=edit.connection,
            feeder=edit.feeder,
            household=edit.household,
            kwp=edit.kwp,
            tilt_deg=edit.tilt_deg,
            azimuth_deg=edit.azimuth_deg,
            curtailable=edit.curtailable,
        )
    )
    draft.inputs.pv_kw_per_kwp = pv.assign(**{pid: profile})


def clear_sky_kw_per_kwp(site: Site, index: pd.DatetimeIndex, tilt_deg: float, azimuth_deg: float) -> np.ndarray:
    """PV kW/kWp under clear sky (pvlib Ineichen, Hay-Davies POA at interval mid-points) x
    ``PV_SYSTEM_FACTOR``; no clouds and no temperature losses, so an upper bound."""
    import pvlib

    mid = index + pd.Timedelta(minutes=site.site.resolution_min / 2)
    place = pvlib.location.Location(site.site.latitude, site.site.longitude, tz="UTC")
    sun = place.get_solarposition(mid)
    clear = place.get_clearsky(mid, model="ineichen", solar_position=sun)
    poa = pvlib.irradiance.get_total_irradiance(
        tilt_deg,
        azimuth_deg,
        sun["apparent_zenith"],
        sun["azimuth"],
        clear["dni"],
        clear["ghi"],
        clear["dhi"],
        dni_extra=pvlib.irradiance.get_extra_radiation(mid),
        model="haydavies",
    )["poa_global"]
    return np.clip(poa.fillna(0.0).to_numpy() / 1000.0 * PV_SYSTEM_FACTOR, 0.0, PV_MAX_KW_PER_KWP)


def add_battery(draft: Draft, edit: spec.AddBattery, where: str, index: int) -> None:
    """One new battery; no input series needed."""
    site = draft.site
    _connection(site, edit.connection, where)
    _feeder(site, edit.connection, edit.feeder, where)
    _household(site, edit.household, where)
    charge_kw = edit.charge_kw if edit.charge_kw is not None else 0.5 * edit.capacity_kwh
    site.batteries.append(
        Battery(
            id=edit.id or f"e{index}-BAT",
            connection=edit.connection,
            feeder=edit.feeder,
            household=edit.household,
            capacity_kwh=edit.capacity_kwh,
            charge_kw=charge_kw,
            discharge_kw=edit.discharge_kw if edit.discharge_kw is not None else charge_kw,
            charge_efficiency=edit.charge_efficiency,
            discharge_efficiency=edit.discharge_efficiency,
            initial_soc=edit.initial_soc,
            terminal_soc=edit.terminal_soc,
            flex_contract=edit.flex_contract,
        )
    )


def resize_battery(draft: Draft, edit: spec.ResizeBattery, where: str, index: int) -> None:
    """Capacity and power of one battery x ``scale``, then explicit values."""
    bat = next((b for b in draft.site.batteries if b.id == edit.id), None)
    if bat is None:
        raise InputError(f"{where}.id", f"unknown battery {edit.id!r}")
    if edit.scale is not None:
        bat.capacity_kwh *= edit.scale
        bat.charge_kw *= edit.scale
        bat.discharge_kw *= edit.scale
    for name in ("capacity_kwh", "charge_kw", "discharge_kw"):
        value = getattr(edit, name)
        if value is not None:
            setattr(bat, name, value)


def set_transformer(draft: Draft, edit: spec.SetTransformer, where: str, index: int) -> None:
    """New rating (kVA) or limits (kW) of one connection point."""
    _connection(draft.site, edit.connection, where)
    conn = draft.site.connection(edit.connection)
    if edit.rated_kva is not None:
        conn.rated_kva = edit.rated_kva
        conn.import_limit_kw = conn.export_limit_kw = None  # the new transformer's own rating applies
    for name in ("power_factor", "import_limit_kw", "export_limit_kw", "hard_limits"):
        value = getattr(edit, name)
        if value is not None:
            setattr(conn, name, value)


def set_tariff(draft: Draft, edit: spec.SetTariff, where: str, index: int) -> None:
    """Tariff fields that the edit sets; a constant import price also drops the price series (the
    series would win over it otherwise): a flat tariff, as ``set_prices.constant_eur_per_kwh``."""
    if edit.import_price_eur_per_kwh is not None:
        draft.inputs.price_eur_per_kwh = None
    for name, value in edit.model_dump(exclude={"kind"}, exclude_none=True).items():
        setattr(draft.site.tariff, name, getattr(edit, name) if name == "grid_fee_windows" else value)


def set_prices(draft: Draft, edit: spec.SetPrices, where: str, index: int) -> None:
    """A flat or dynamic energy price (EUR/kWh), then x scale + offset."""
    site, inputs = draft.site, draft.inputs
    if edit.constant_eur_per_kwh is not None:
        inputs.price_eur_per_kwh = None
        site.tariff.import_price_eur_per_kwh = edit.constant_eur_per_kwh
    elif edit.file is not None:
        try:
            frame = read_series_csv(
                draft.base_dir / edit.file, site.site.timezone, site.site.resolution_min, ["price_eur_per_kwh"]
            )
        except InputErrors as errs:
            raise InputErrors([InputError(f"{where}.file: {e.where}", e.what) for e in errs.errors]) from None
        except InputError as err:
            raise InputError(f"{where}.file", err.what, edit.file) from None
        missing = inputs.index.difference(pd.DatetimeIndex(frame.index))
        if len(missing):
            raise InputError(
                f"{where}.file", f"does not cover the inputs: {len(missing)} interval(s) missing", edit.file
            )
        inputs.price_eur_per_kwh = frame["price_eur_per_kwh"].reindex(inputs.index)
    if inputs.price_eur_per_kwh is not None:
        inputs.price_eur_per_kwh = inputs.price_eur_per_kwh * edit.scale + edit.offset_eur_per_kwh
    elif site.tariff.import_price_eur_per_kwh is not None:
        site.tariff.import_price_eur_per_kwh = (
            site.tariff.import_price_eur_per_kwh * edit.scale + edit.offset_eur_per_kwh
        )
    if (inputs.price_eur_per_kwh is not None and (inputs.price_eur_per_kwh < 0).any()) or (
        site.tariff.import_price_eur_per_kwh is not None and site.tariff.import_price_eur_per_kwh < 0
    ):
        # negative prices exist on the market, but a tariff scaled below zero is a typo more often
        raise InputError(f"{where}.offset_eur_per_kwh", "makes the energy price negative", edit.offset_eur_per_kwh)


def set_par14a(draft: Draft, edit: spec.SetPar14a, where: str, index: int) -> None:
    """§14a settings that the edit sets."""
    for name, value in edit.model_dump(exclude={"kind"}, exclude_none=True).items():
        setattr(draft.site.par14a, name, value)


def set_flex_contract(draft: Draft, edit: spec.SetFlexContract, where: str, index: int) -> None:
    """``flex_contract = value`` for the selected devices."""
    site = draft.site
    _connection(site, edit.connection, where)
    lists: dict[str, list[Any]] = {
        "battery": site.batteries,
        "ev_charger": site.ev_chargers,
        "heat_pump": site.heat_pumps,
    }
    chosen = [d for kind in edit.devices for d in lists[kind]]
    if edit.ids is not None:
        known = {d.id for d in chosen}
        unknown = [i for i in edit.ids if i not in known]
        if unknown:
            raise InputError(f"{where}.ids", f"unknown device(s) of kinds {', '.join(edit.devices)}", unknown)
        chosen = [d for d in chosen if d.id in set(edit.ids)]
    for device in chosen:
        if edit.connection is None or device.connection == edit.connection:
            device.flex_contract = edit.value


def _private_homes(site: Site, connection: str | None) -> list[Household]:
    return [h for h in site.households if h.profile != "G25" and (connection is None or h.connection == connection)]


def heat_pump_rollout(draft: Draft, edit: spec.HeatPumpRollout, where: str, index: int) -> None:
    """Heat pumps for ``share`` of the homes without one, sized as in the demo; heat demand from
    the site's temperature (see :func:`grid.demo.heat_demand_kw`)."""
    from grid import demo

    site, inputs = draft.site, draft.inputs
    _connection(site, edit.connection, where)
    has_hp = {h.household for h in site.heat_pumps}
    eligible = [h for h in _private_homes(site, edit.connection) if h.id not in has_hp]
    rng = _rng(edit.seed, "heat_pump_rollout")
    chosen = _pick(rng, eligible, round(edit.share * len(eligible)))
    low, high = sorted(edit.annual_heat_kwh)
    new: list[dict[str, Any]] = []
    for home in chosen:
        heat = float(round(rng.uniform(low, high), -2))
        kw = float(np.clip(round(heat / demo.HP_FULL_LOAD_H, 1), *demo.HP_KW_RANGE))
        store = float(round(np.interp(heat, demo.HP_HEAT_KWH_RANGE, demo.HP_STORE_KWH_RANGE)))
        hp = HeatPump(
            id=f"e{index}-HP-{home.id}",
            connection=home.connection,
            feeder=home.feeder,
            household=home.id,
            electric_kw=kw,
            store_kwh=store,
            annual_heat_kwh=heat,
            flex_contract=bool(rng.random() < edit.flex_contract_share),
        )
        site.heat_pumps.append(hp)
        new.append({"id": hp.id, "annual_heat_kwh": heat})
    if new:
        demand = demo.heat_demand_kw(new, inputs.temp_degc, edit.seed)
        inputs.heat_demand_kw = pd.concat([inputs.heat_demand_kw, demand.set_axis(inputs.index)], axis=1)


def _wallbox_owners(site: Site) -> set[str]:
    """Households that have a wallbox: named by ``household`` or, as the demo's chargers do, by a
    household id inside the charger id (``EV-H046``, ``EV-H105-2``)."""
    homes = {h.id for h in site.households}
    owners = {c.household for c in site.ev_chargers if c.household is not None}
    owners |= {part for c in site.ev_chargers for part in c.id.split("-") if part in homes}
    return owners


def add_evs(draft: Draft, edit: spec.AddEVs, where: str, index: int) -> None:
    """``count`` new wallboxes on homes without one, with evening sessions (see :class:`AddEVs`)."""
    site, inputs = draft.site, draft.inputs
    _connection(site, edit.connection, where)
    owners = _wallbox_owners(site)
    eligible = [h for h in _private_homes(site, edit.connection) if h.id not in owners]
    if edit.count > len(eligible):
        at = f" at {edit.connection}" if edit.connection else ""
        raise InputError(f"{where}.count", f"only {len(eligible)} household(s){at} without a wallbox", edit.count)
    rng = _rng(edit.seed, "add_evs")
    homes = _pick(rng, eligible, edit.count)
    tz = site.site.timezone
    step = pd.Timedelta(minutes=site.site.resolution_min)
    begin, end = inputs.index[0], inputs.index[-1] + step
    first = begin.tz_convert(tz).normalize().tz_localize(None) - pd.Timedelta(days=1)
    days = pd.date_range(first, end.tz_convert(tz).tz_localize(None).normalize(), freq="D")
    energy = edit.energy_kwh
    sigma = np.sqrt(np.log1p((energy.sd / energy.mean) ** 2)) if energy.mean > 0 else 0.0
    for home in homes:
        cid = f"e{index}-EV-{home.id}"
        site.ev_chargers.append(
            EVCharger(
                id=cid,
                connection=home.connection,
                feeder=home.feeder,
                household=home.id,
                max_kw=edit.max_kw,
                flex_contract=bool(rng.random() < edit.flex_contract_share),
            )
        )
        for day in days:
            # one stream per home and local date: a day's session does not depend on the span
            day_rng = _rng(edit.seed, f"add_evs/{home.id}/{day.date().isoformat()}")
            plug = day_rng.random() < edit.plug_in_share
            arrive_h = _clipped(day_rng, edit.arrival_h)
            leave_h = _clipped(day_rng, edit.departure_h)
            mu = np.log(max(energy.mean, 1e-9)) - sigma**2 / 2
            need = float(np.clip(day_rng.lognormal(mu, sigma), energy.min, energy.max))
            arrive = _wall(day, arrive_h, tz, step)
            leave = min(_wall(day + pd.Timedelta(days=1), leave_h, tz, step), end)
            hours = (leave - arrive) / pd.Timedelta(hours=1)
            if not plug or arrive < begin or arrive >= end or hours < MIN_SESSION_H:
                continue
            site.ev_sessions.append(
                EVSession(
                    id=f"{cid}-{day.date().isoformat()}",
                    charger=cid,
                    arrival=arrive.to_pydatetime(),
                    departure=leave.to_pydatetime(),
                    energy_needed_kwh=round(min(need, EV_MAX_FILL * edit.max_kw * hours), 1),
                )
            )


def _clipped(rng: np.random.Generator, dist: spec.ClippedNormal) -> float:
    return float(np.clip(rng.normal(dist.mean, dist.sd), dist.min, dist.max))


def _wall(day: pd.Timestamp, hour: float, tz: str, step: pd.Timedelta) -> pd.Timestamp:
    """Local wall time `hour` on naive `day`, rounded to the grid, in UTC (DST gaps shift forward)."""
    wall = (day + pd.Timedelta(hours=hour)).round(step)
    return wall.tz_localize(tz, nonexistent="shift_forward", ambiguous=False).tz_convert("UTC")


EDIT_FUNCTIONS: dict[str, Callable[[Draft, Any, str, int], None]] = {
    "add_evs": add_evs,
    "add_battery": add_battery,
    "resize_battery": resize_battery,
    "scale_pv": scale_pv,
    "add_pv": add_pv,
    "set_transformer": set_transformer,
    "set_tariff": set_tariff,
    "set_prices": set_prices,
    "heat_pump_rollout": heat_pump_rollout,
    "set_par14a": set_par14a,
    "set_flex_contract": set_flex_contract,
}
