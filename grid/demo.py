"""Synthetic demo neighbourhood ("Quartier Demo", Darmstadt): site YAML and input CSVs.

Everything here is synthetic but built from public models: BDEW 2025 standard load profiles from
``demandlib`` for household load, Ineichen clear-sky GHI x a cloud factor and then the forecaster's pvlib
path (Erbs, Hay-Davies, Faiman) for PV, a heating-degree
model for heat demand, and hand-shaped January weather and day-ahead prices. All randomness comes
from ``numpy.random.default_rng`` seeded with ``(seed, stream)``, so the same arguments always give
the same bytes, and the weather and price series do not depend on the number of households.

Design: per 300 households one *pair* of transformers. The first of a pair (T1, 630 kVA) serves the
older part of the quarter with few wallboxes and heat pumps and has headroom; the second (T2,
400 kVA -> 380 kW) serves a newer street with many wallboxes and heat pumps and is congested on
winter evenings if nothing is controlled. Sites with other household counts get ``round(n / 300)``
pairs with kVA scaled by households per pair, so that they stay similarly loaded.

Regenerate the shipped demo with ``python -m grid.demo data/demo``; see ``data/demo/PROVENANCE.md``.
Series: a value stamped t (UTC) covers [t, t + 15 min). Units: kW, kWh, kW/kWp, degC, W/m2,
EUR/kWh, g/kWh.
"""

from __future__ import annotations

import argparse
import functools
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import holidays
import numpy as np
import pandas as pd
import pvlib
import yaml
from demandlib import bdew

from grid.domain import ConnectionPoint, COPCurve, Site, load_site
from grid.forecast.pv import plane_kw_per_kwp, split_ghi
from grid.series import SiteInputs, load_inputs
from grid.timeindex import horizon_index

# --- the site -------------------------------------------------------------------------------------

DEFAULT_SEED = 20261125
SITE_ID = "demo"
SITE_NAME = "Demo-Quartier Darmstadt (synthetic)"
TIMEZONE = "Europe/Berlin"
LATITUDE_DEG = 49.87
LONGITUDE_DEG = 8.65
ALTITUDE_M = 144.0
RESOLUTION_MIN = 15
DT_H = RESOLUTION_MIN / 60
HOUSEHOLDS_PER_PAIR = 300


@dataclass(frozen=True)
class TransformerDesign:
    """One transformer role within a pair, sized for ``HOUSEHOLDS_PER_PAIR`` households.

    Rates are devices per household on this transformer; ``feeder_shares`` split its households
    over its feeders; a feeder's limit (kW) is transformer limit x share x ``FEEDER_HEADROOM``.
    """

    rated_kva: float
    household_share: float
    pv_rate: float
    ev_charger_rate: float
    heat_pump_rate: float
    feeder_shares: tuple[float, float]
    community_battery: bool


# T1: older streets, a third of the homes, few wallboxes and heat pumps, ample headroom.
# T2: new-build street, two thirds of the homes, most PV, wallboxes and heat pumps: congested.
PAIR_DESIGN = (
    TransformerDesign(
        rated_kva=630.0,
        household_share=0.33,
        pv_rate=0.25,
        ev_charger_rate=0.04,
        heat_pump_rate=0.08,
        feeder_shares=(0.55, 0.45),
        community_battery=False,
    ),
    TransformerDesign(
        rated_kva=400.0,
        household_share=0.67,
        pv_rate=0.475,
        ev_charger_rate=0.22,
        heat_pump_rate=0.38,
        feeder_shares=(0.55, 0.45),
        community_battery=True,
    ),
)
FEEDER_HEADROOM = 1.5
# transformer limits = rated_kva x this (the schema's default power factor)
DEFAULT_POWER_FACTOR: float = ConnectionPoint.model_fields["power_factor"].default
KVA_ROUNDING = 5.0

# --- households and their assets ------------------------------------------------------------------

ANNUAL_KWH_MEAN = 3500.0
ANNUAL_KWH_SD = 1000.0
ANNUAL_KWH_RANGE = (1500.0, 6000.0)
BUSINESS_SHARE = 0.02
BUSINESS_KWH_RANGE = (4000.0, 6000.0)
BATTERY_SHARE = 0.15
PV_KWP_TRIANGLE = (5.0, 8.0, 15.0)  # min, mode, max
PV_TILTS_DEG = (15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0)
PV_AZIMUTHS_DEG = (90.0, 135.0, 150.0, 165.0, 180.0, 195.0, 210.0, 225.0, 270.0)
PV_CURTAILABLE_SHARE = 0.85
BATTERY_KWH_RANGE = (5.0, 15.0)
BATTERY_C_RATE = 0.4  # kW per kWh, then clipped to BATTERY_KW_RANGE
BATTERY_KW_RANGE = (3.0, 5.0)
BATTERY_EFFICIENCY = 0.95
BATTERY_INITIAL_SOC_RANGE = (0.2, 0.8)
COMMUNITY_BATTERY_SOC = 0.5  # initial and terminal
COMMUNITY_BATTERY_KWH = 500.0
COMMUNITY_BATTERY_KW = 250.0
WALLBOX_KW = 11.0
WALLBOX_FAST_KW = 22.0
WALLBOX_FAST_SHARE = 0.07
V2G_SHARE = 0.08
DOUBLE_WALLBOX_SHARE = 0.05  # of wallboxes: second wallbox in the same home, one EMS for both
EMS_SHARE = 0.3  # of homes with a wallbox and a heat pump
FLEX_CONTRACT_SHARE = 0.5
HP_HEAT_KWH_RANGE = (8000.0, 20000.0)
HP_FULL_LOAD_H = 2200.0  # annual heat / electric rating, a sizing rule of thumb
HP_KW_RANGE = (3.0, 9.0)
HP_KW_NOISE = 0.4
HP_STORE_KWH_RANGE = (10.0, 30.0)  # grows with annual heat
HP_STORE_NOISE_KWH = 3.0
HP_INITIAL_STORE_RANGE = (0.3, 0.7)
LARGE_HP_PER_HOUSEHOLD = 1 / 200
LARGE_HP_KW = 12.0
COP_INTERCEPT_RANGE = (3.0, 3.4)
COP_SLOPE_PER_DEGC = 0.08

# --- EV sessions (local wall-clock hours) ---------------------------------------------------------

SESSIONS_AT_START_RATE = 0.1  # per wallbox: car already plugged in when the data begin
EVENING_SESSION_RATE = 0.55  # per wallbox and day
DAYTIME_SESSION_RATE = 0.06  # per wallbox and day
EVENING_ARRIVAL_H = (18.0, 0.8, 16.25, 21.0)  # mean, sd, min, max
MORNING_DEPARTURE_H = (7.25, 0.6, 5.5, 9.0)
DAYTIME_ARRIVAL_H = (9.5, 12.5)
DAYTIME_DURATION_H = (2.5, 6.0)
DAYTIME_LATEST_DEPARTURE_H = 16.0
EV_ENERGY_KWH = {"evening": (22.0, 7.0), "daytime": (8.0, 3.0), "start": (10.0, 4.0)}
EV_ENERGY_RANGE_KWH = (4.0, 35.0)
EV_MAX_FILL = 0.8  # energy needed <= this x max_kw x plugged-in hours
V2G_CAPACITY_KWH = (58.0, 64.0, 77.0)
V2G_INITIAL_SOC_RANGE = (0.25, 0.55)
V2G_SOC_CEILING = 0.9
MIN_SESSION_H = 1.0

# --- weather, load shapes, prices -----------------------------------------------------------------

TEMP_DAILY_MEAN_DEGC = (-0.5, 2.0)
TEMP_HALF_RANGE_DEGC = (3.0, 5.0)
TEMP_MIN_HOUR, TEMP_MAX_HOUR = 7.5, 14.5
TEMP_NOISE_DEGC = 0.3
TEMP_NOISE_PHI = 0.9
TEMP_RANGE_CLOUD_WEIGHT = 0.4  # overcast days swing less: half range x (1 - w + w x cloud)
CLOUD_DAILY_LEVEL = (0.25, 0.85)  # clear-sky index, January: mostly overcast
CLOUD_MIN = 0.08
CLOUD_TAU_H = 3.0
CLOUD_NOISE = 0.7
DEMANDLIB_ANNUAL_KWH = 1e6  # demandlib's profiles are kW for 1 GWh per year
HOURS_PER_DAY = 24
HOURS_PER_YEAR = 8760.0
BASE_MAX_SHIFT_STEPS = 2
BASE_NOISE_SIGMA = 0.25
BASE_NOISE_PHI = 0.7
HEAT_BASE_DEGC = 15.0
HEATING_DEGREE_DAYS_K_D = 2600.0  # base 15 degC, Darmstadt, typical year (assumed)
DHW_SHARE = 0.15  # of annual heat
HEAT_NOISE_SIGMA = 0.1
HEAT_NOISE_PHI = 0.8
HEAT_MAX_SHIFT_STEPS = 2
# Daily shapes by local hour 0..23 (normalised to mean 1 where used).
# fmt: off
SPACE_HEAT_SHAPE = (0.75, 0.75, 0.75, 0.75, 0.8, 0.95, 1.2, 1.25, 1.15, 1.0, 0.95, 0.9,
                    0.9, 0.9, 0.9, 0.95, 1.05, 1.2, 1.3, 1.3, 1.2, 1.05, 0.9, 0.8)
DHW_SHAPE = (0.2, 0.1, 0.1, 0.1, 0.2, 0.6, 1.8, 2.4, 1.7, 1.0, 0.8, 0.9,
             1.1, 0.8, 0.6, 0.6, 0.8, 1.3, 2.0, 2.4, 2.0, 1.3, 0.7, 0.4)
DAY_AHEAD_EUR_PER_MWH = (95, 88, 84, 82, 84, 92, 112, 138, 150, 140, 125, 114,
                         106, 104, 110, 122, 140, 162, 170, 160, 140, 122, 112, 102)
# fmt: on
DAY_AHEAD_DAY_SD = 10.0
DAY_AHEAD_NOISE_SD = 4.0
DAY_AHEAD_NOISE_PHI = 0.6
DAY_AHEAD_RANGE = (55.0, 190.0)
QUARTER_RAMP_GAIN = 1.6  # > 1: quarter-hours overshoot the hourly trend (saw-tooth)
EUR_PER_MWH_TO_EUR_PER_KWH = 1e-3
SUPPLIER_ADDER_EUR_PER_KWH = 0.15  # margin, levies, VAT share; grid fee is in the tariff
CO2_RANGE_G_PER_KWH = (200.0, 500.0)
CO2_AT_LOW_PRICE = (80.0, 250.0)  # EUR/MWh, g/kWh
CO2_PER_EUR_PER_MWH = 2.2
CO2_NOISE = 15.0


class _Flow(dict[str, Any]):
    """A mapping written in YAML flow style: one line per asset."""


TARIFF: dict[str, Any] = {
    "import_price_eur_per_kwh": None,
    "feed_in_price_eur_per_kwh": 0.082,
    "grid_fee_eur_per_kwh": 0.09,
    "grid_fee_windows": [
        _Flow(start="17:00", end="20:00", fee_eur_per_kwh=0.14),  # §14a module 3 "high"
        _Flow(start="00:00", end="06:00", fee_eur_per_kwh=0.03),  # §14a module 3 "low"
    ],
    "peak_charge_eur_per_kw": 0.5,
    "co2_price_eur_per_t": 80.0,
}
INPUT_FILES = {
    "base_load": "base_load.csv",
    "pv_availability": "pv_availability.csv",
    "heat_demand": "heat_demand.csv",
    "weather": "weather.csv",
    "prices": "prices.csv",
}
DECIMALS = 4


# --- entry point ----------------------------------------------------------------------------------


def generate_demo(
    out_dir: Path,
    seed: int = DEFAULT_SEED,
    n_households: int = 300,
    start: str = "2026-01-14T00:00:00+01:00",
    hours: int = 48,
) -> Path:
    """Write ``site.yaml`` and the five input CSVs of a synthetic quarter into `out_dir`.

    Parameters
    ----------
    out_dir : directory to create or overwrite files in.
    seed : seed of every random choice; same arguments -> identical files.
    n_households : number of households (50..1000 tested).
    start : first interval, ISO 8601 with offset; on the 15-minute grid.
    hours : length of the series (h).

    Returns
    -------
    Path of the written ``site.yaml``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = horizon_index(pd.Timestamp(start), hours, RESOLUTION_MIN)
    weather = make_weather(index, seed)
    site = make_site(index, seed, n_households)
    frames = {
        "base_load": base_load_kw(site["households"], index, seed),
        "pv_availability": pv_availability_kw_per_kwp(site["pv_arrays"], weather),
        "heat_demand": heat_demand_kw(site["heat_pumps"], weather["temp_degc"], seed),
        "weather": weather[["temp_degc", "ghi_w_per_m2"]],
        "prices": make_prices(index, seed),
    }
    for key, frame in frames.items():
        write_csv(frame, out_dir / INPUT_FILES[key])
    path = out_dir / "site.yaml"
    path.write_text(site_yaml(site, seed, n_households), encoding="utf-8")
    return path


def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent random stream per purpose, so that e.g. prices do not depend on n."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


# --- site assets ----------------------------------------------------------------------------------


def make_site(index: pd.DatetimeIndex, seed: int, n_households: int) -> dict[str, Any]:
    """The site as plain data in the schema of :class:`grid.domain.Site` (kW, kWh, kVA)."""
    if n_households < 1:
        raise ValueError(f"n_households must be >= 1, got {n_households}")
    rng = _rng(seed, "assets")
    connections, homes = _connections_and_homes(rng, n_households)
    pv_arrays, batteries = _pv_and_batteries(rng, homes)
    chargers = _ev_chargers(rng, homes)
    heat_pumps = _heat_pumps(rng, homes)
    _ems_groups(rng, homes, chargers, heat_pumps, batteries)
    batteries += _community_batteries(connections)
    return {
        "site": {
            "id": SITE_ID,
            "name": SITE_NAME,
            "timezone": TIMEZONE,
            "latitude": LATITUDE_DEG,
            "longitude": LONGITUDE_DEG,
            "resolution_min": RESOLUTION_MIN,
        },
        "connections": connections,
        "households": [_Flow({k: v for k, v in h.items() if not k.startswith("_")}) for h in homes],
        "pv_arrays": pv_arrays,
        "batteries": batteries,
        "ev_chargers": chargers,
        "ev_sessions": _ev_sessions(_rng(seed, "ev_sessions"), chargers, index),
        "heat_pumps": heat_pumps,
        "tariff": TARIFF,
        "inputs": INPUT_FILES,
    }


def _connections_and_homes(rng: np.random.Generator, n: int) -> tuple[list[dict], list[dict]]:
    """Transformer pairs (kVA scaled by households per pair) and the households below them."""
    n_pairs = max(1, round(n / HOUSEHOLDS_PER_PAIR))
    width = max(3, len(str(n)))
    connections: list[dict] = []
    homes: list[dict] = []
    for pair, members in enumerate(np.array_split(np.arange(n), n_pairs)):
        n_first = round(len(members) * PAIR_DESIGN[0].household_share)
        for role, design in enumerate(PAIR_DESIGN):
            cid = f"T{2 * pair + role + 1}"
            mine = members[:n_first] if role == 0 else members[n_first:]
            conn = _connection(cid, design, len(members))
            connections.append(conn)
            homes += _homes(rng, cid, design, conn["feeders"], [f"H{i + 1:0{width}d}" for i in mine])
    return connections, homes


def _connection(cid: str, design: TransformerDesign, n_pair: int) -> dict[str, Any]:
    """A transformer with its feeders; kVA and feeder limits (kW) scale with households."""
    kva = max(
        KVA_ROUNDING,
        round(design.rated_kva * n_pair / HOUSEHOLDS_PER_PAIR / KVA_ROUNDING) * KVA_ROUNDING,
    )
    limit_kw = kva * DEFAULT_POWER_FACTOR
    feeders = []
    for j, share in enumerate(design.feeder_shares):
        feeder_kw = float(round(limit_kw * share * FEEDER_HEADROOM))
        feeders.append(_Flow(id=f"{cid}-F{j + 1}", import_limit_kw=feeder_kw, export_limit_kw=feeder_kw))
    return {"id": cid, "rated_kva": float(kva), "feeders": feeders}


def _homes(
    rng: np.random.Generator,
    cid: str,
    design: TransformerDesign,
    feeders: list[dict],
    ids: list[str],
) -> list[dict]:
    """Households of one transformer: feeder, annual kWh (lognormal, clipped), a few businesses."""
    n = len(ids)
    sigma = np.sqrt(np.log1p((ANNUAL_KWH_SD / ANNUAL_KWH_MEAN) ** 2))
    annual = np.clip(rng.lognormal(np.log(ANNUAL_KWH_MEAN) - sigma**2 / 2, sigma, n), *ANNUAL_KWH_RANGE)
    business = rng.random(n) < BUSINESS_SHARE
    annual[business] = rng.uniform(*BUSINESS_KWH_RANGE, business.sum())
    cut = round(n * design.feeder_shares[0])
    feeder_of = np.where(rng.permutation(n) < cut, 0, 1)
    return [
        {
            "id": hid,
            "connection": cid,
            "feeder": feeders[feeder_of[i]]["id"],
            "meter_id": f"MTR-{hid}",
            "annual_kwh": float(round(annual[i], -1)),
            "profile": "G25" if business[i] else "H25",
            "_design": design,
        }
        for i, hid in enumerate(ids)
    ]


def _placed(home: dict, id: str, **fields: Any) -> _Flow:
    """An asset at the household's connection point and feeder."""
    return _Flow(id=id, connection=home["connection"], feeder=home["feeder"], **fields)


def _pick(rng: np.random.Generator, items: list[Any], k: int) -> list[Any]:
    """`k` distinct items (or all of them), in their original order."""
    k = min(max(k, 0), len(items))
    return [items[i] for i in sorted(rng.choice(len(items), size=k, replace=False))]


def _by_connection(homes: list[dict], private: bool) -> list[list[dict]]:
    """Homes grouped by connection point, in order; without businesses (G25) if `private`."""
    groups: dict[str, list[dict]] = {}
    for home in homes:
        if not (private and home["profile"] == "G25"):
            groups.setdefault(home["connection"], []).append(home)
    return list(groups.values())


def _at_rate(group: list[dict], rate: str) -> int:
    """How many of a (non-empty) group get a device at its transformer's design `rate`."""
    return round(getattr(group[0]["_design"], rate) * len(group))


def _pv_and_batteries(
    rng: np.random.Generator, homes: list[dict], battery_share: float = BATTERY_SHARE
) -> tuple[list[dict], list[dict]]:
    """Rooftop PV per transformer at its design rate (~40% overall), batteries on `battery_share`
    of all homes (~15%; all with PV); sets the P25/S25 profiles."""
    pv_homes = []
    for mine in _by_connection(homes, private=True):
        pv_homes += _pick(rng, mine, _at_rate(mine, "pv_rate"))
    bat_homes = _pick(rng, pv_homes, round(battery_share * len(homes)))
    arrays: list[dict[str, Any]] = []
    batteries: list[dict[str, Any]] = []
    for home in pv_homes:
        home["profile"] = "P25"
        arrays.append(
            _placed(
                home,
                id=f"PV-{home['id']}",
                household=home["id"],
                kwp=float(round(rng.triangular(*PV_KWP_TRIANGLE), 1)),
                tilt_deg=float(rng.choice(PV_TILTS_DEG)),
                azimuth_deg=float(rng.choice(PV_AZIMUTHS_DEG)),
                curtailable=bool(rng.random() < PV_CURTAILABLE_SHARE),
            )
        )
    for home in bat_homes:
        home["profile"] = "S25"
        kwh = float(round(rng.uniform(*BATTERY_KWH_RANGE) * 2) / 2)
        kw = float(np.clip(round(BATTERY_C_RATE * kwh, 1), *BATTERY_KW_RANGE))
        batteries.append(
            _placed(
                home,
                id=f"BAT-{home['id']}",
                household=home["id"],
                capacity_kwh=kwh,
                charge_kw=kw,
                discharge_kw=kw,
                charge_efficiency=BATTERY_EFFICIENCY,
                discharge_efficiency=BATTERY_EFFICIENCY,
                initial_soc=float(round(rng.uniform(*BATTERY_INITIAL_SOC_RANGE), 2)),
                flex_contract=True,
            )
        )
    return arrays, batteries


def _ev_chargers(rng: np.random.Generator, homes: list[dict]) -> list[dict]:
    """Wallboxes (11 kW) per transformer at its design rate; a few homes have two, a few single
    wallboxes are V2G or 22 kW."""
    chargers: list[dict[str, Any]] = []
    for mine in _by_connection(homes, private=True):
        n_boxes = _at_rate(mine, "ev_charger_rate")
        n_double = round(DOUBLE_WALLBOX_SHARE * n_boxes)
        owners = _pick(rng, mine, n_boxes - n_double)
        for home in owners:
            home["_chargers"] = 1
        for home in _pick(rng, owners, n_double):
            home["_chargers"] = 2
        for home in owners:
            suffixes = ["-1", "-2"] if home["_chargers"] == 2 else [""]
            flex = bool(rng.random() < FLEX_CONTRACT_SHARE)
            chargers += [
                _placed(
                    home,
                    id=f"EV-{home['id']}{suffix}",
                    max_kw=WALLBOX_KW,
                    v2g=False,
                    flex_contract=flex,
                )
                for suffix in suffixes
            ]
    singles = [c for c in chargers if not c["id"].endswith(("-1", "-2"))]
    special = _pick(rng, singles, round((V2G_SHARE + WALLBOX_FAST_SHARE) * len(chargers)))
    n_v2g = round(V2G_SHARE * len(chargers))
    for k in rng.permutation(len(special)):
        if n_v2g > 0:
            special[k]["v2g"], n_v2g = True, n_v2g - 1
        else:
            special[k]["max_kw"] = WALLBOX_FAST_KW
    return chargers


def _heat_pumps(rng: np.random.Generator, homes: list[dict]) -> list[dict]:
    """Air-to-water heat pumps per transformer at its design rate; one or two large (> 11 kW)."""
    pumps: list[dict[str, Any]] = []
    for mine in _by_connection(homes, private=False):
        for home in _pick(rng, mine, _at_rate(mine, "heat_pump_rate")):
            heat = float(round(rng.uniform(*HP_HEAT_KWH_RANGE), -2))
            kw = float(np.clip(round(heat / HP_FULL_LOAD_H + rng.normal(0.0, HP_KW_NOISE), 1), *HP_KW_RANGE))
            store = np.interp(heat, HP_HEAT_KWH_RANGE, HP_STORE_KWH_RANGE)
            store = np.clip(store + rng.normal(0, HP_STORE_NOISE_KWH), *HP_STORE_KWH_RANGE)
            cop = _Flow(
                intercept=float(round(rng.uniform(*COP_INTERCEPT_RANGE), 2)),
                slope_per_degc=COP_SLOPE_PER_DEGC,
            )
            pumps.append(
                _placed(
                    home,
                    id=f"HP-{home['id']}",
                    household=home["id"],
                    electric_kw=kw,
                    cop=cop,
                    store_kwh=float(round(store)),
                    initial_store=float(round(rng.uniform(*HP_INITIAL_STORE_RANGE), 2)),
                    annual_heat_kwh=heat,
                    flex_contract=bool(rng.random() < FLEX_CONTRACT_SHARE),
                )
            )
    n_large = max(1, round(len(homes) * LARGE_HP_PER_HOUSEHOLD))
    for pump in _pick(rng, pumps, n_large):
        pump.update(
            electric_kw=LARGE_HP_KW,
            annual_heat_kwh=HP_HEAT_KWH_RANGE[1],
            store_kwh=HP_STORE_KWH_RANGE[1],
        )
    return pumps


def _ems_groups(
    rng: np.random.Generator,
    homes: list[dict],
    chargers: list[dict],
    heat_pumps: list[dict],
    batteries: list[dict],
) -> None:
    """Put all controllable devices of some homes behind one EMS (same flex contract for all):
    every home with two wallboxes, and ~30% of homes with a wallbox and a heat pump."""
    with_hp = {p["household"] for p in heat_pumps}
    both = [h for h in homes if h.get("_chargers") == 1 and h["id"] in with_hp]
    chosen = {h["id"] for h in homes if h.get("_chargers") == 2}
    chosen |= {h["id"] for h in _pick(rng, both, round(EMS_SHARE * len(both)))}
    owner_of = {c["id"]: c["id"].split("-")[1] for c in chargers}
    flex = {hid: bool(rng.random() < FLEX_CONTRACT_SHARE) for hid in sorted(chosen)}
    for device in [*chargers, *heat_pumps, *batteries]:
        hid = device.get("household") or owner_of.get(device["id"])
        if hid in chosen:
            device.update(ems=f"EMS-{hid}", flex_contract=flex[hid])


def _community_batteries(connections: list[dict]) -> list[dict]:
    """One neighbourhood battery on each congested transformer, scaled like its kVA."""
    out: list[dict[str, Any]] = []
    for pair in range(len(connections) // 2):
        for role, design in enumerate(PAIR_DESIGN):
            conn = connections[2 * pair + role]
            if not design.community_battery:
                continue
            scale = conn["rated_kva"] / design.rated_kva
            out.append(
                _Flow(
                    id=f"CB-{conn['id']}",
                    connection=conn["id"],
                    capacity_kwh=float(round(COMMUNITY_BATTERY_KWH * scale)),
                    charge_kw=float(round(COMMUNITY_BATTERY_KW * scale)),
                    discharge_kw=float(round(COMMUNITY_BATTERY_KW * scale)),
                    charge_efficiency=BATTERY_EFFICIENCY,
                    discharge_efficiency=BATTERY_EFFICIENCY,
                    initial_soc=COMMUNITY_BATTERY_SOC,
                    terminal_soc=COMMUNITY_BATTERY_SOC,
                    flex_contract=True,
                )
            )
    return out


# --- EV sessions ----------------------------------------------------------------------------------


def _ev_sessions(rng: np.random.Generator, chargers: list[dict], index: pd.DatetimeIndex) -> list[dict]:
    """Plug-in sessions inside the data window: cars plugged in at the start, daytime visits and
    evening arrivals leaving next morning (departures after the window end are cut to it).

    Per transformer and day the same share of wallboxes gets a session, so that the evening peak
    lands where the design puts it. Times on the 15-minute grid.
    """
    begin, end = index[0], index[-1] + pd.Timedelta(minutes=RESOLUTION_MIN)
    days = pd.date_range(begin.tz_convert(TIMEZONE).date(), end.tz_convert(TIMEZONE).date(), freq="D")
    plans: list[tuple[dict, pd.Timestamp, pd.Timestamp, str]] = []
    for cid in dict.fromkeys(c["connection"] for c in chargers):
        mine = [c for c in chargers if c["connection"] == cid]
        for box in _pick(rng, mine, round(SESSIONS_AT_START_RATE * len(mine))):
            plans.append((box, begin, _local(days[0], _draw_h(rng, MORNING_DEPARTURE_H)), "start"))
        for day in days:
            for box in _pick(rng, mine, round(DAYTIME_SESSION_RATE * len(mine))):
                arrive_h = rng.uniform(*DAYTIME_ARRIVAL_H)
                leave_h = min(arrive_h + rng.uniform(*DAYTIME_DURATION_H), DAYTIME_LATEST_DEPARTURE_H)
                plans.append((box, _local(day, arrive_h), _local(day, leave_h), "daytime"))
            for box in _pick(rng, mine, round(EVENING_SESSION_RATE * len(mine))):
                leave = _local(day + pd.Timedelta(days=1), _draw_h(rng, MORNING_DEPARTURE_H))
                plans.append((box, _local(day, _draw_h(rng, EVENING_ARRIVAL_H)), leave, "evening"))
    sessions = []
    for box, arrive, leave, kind in plans:
        leave = min(leave, end)
        if arrive < begin or leave - arrive < pd.Timedelta(hours=MIN_SESSION_H):
            continue
        sessions.append(_session(rng, box, arrive, leave, kind))
    sessions.sort(key=lambda s: (s["arrival"], s["charger"]))
    width = max(3, len(str(len(sessions))))
    return [_Flow(id=f"S{i + 1:0{width}d}", **s) for i, s in enumerate(sessions)]


def _draw_h(rng: np.random.Generator, spec: tuple[float, float, float, float]) -> float:
    """A local hour of day from a clipped normal (mean, sd, min, max)."""
    mean, sd, low, high = spec
    return float(np.clip(rng.normal(mean, sd), low, high))


def _local(day: pd.Timestamp, hour: float) -> pd.Timestamp:
    """Wall time `hour` on the naive date `day` in Europe/Berlin, rounded to the grid, in UTC."""
    wall = (day + pd.Timedelta(hours=hour)).round(f"{RESOLUTION_MIN}min")
    return _utc_of_wall(wall)


@functools.lru_cache(maxsize=4096)
def _utc_of_wall(wall: pd.Timestamp) -> pd.Timestamp:
    """The UTC instant of a Europe/Berlin wall time (kept: a fleet of sites asks for the same few
    hundred quarter-hours thousands of times)."""
    return wall.tz_localize(TIMEZONE, nonexistent="shift_forward", ambiguous=False).tz_convert("UTC")


def _session(
    rng: np.random.Generator, box: dict, arrive: pd.Timestamp, leave: pd.Timestamp, kind: str
) -> dict[str, Any]:
    """Energy needed (kWh, lognormal per kind, feasible at the wallbox); V2G cars get a battery."""
    mean, sd = EV_ENERGY_KWH[kind]
    sigma = np.sqrt(np.log1p((sd / mean) ** 2))
    need = float(np.clip(rng.lognormal(np.log(mean) - sigma**2 / 2, sigma), *EV_ENERGY_RANGE_KWH))
    hours = (leave - arrive) / pd.Timedelta(hours=1)
    need = min(need, EV_MAX_FILL * box["max_kw"] * hours)
    out: dict[str, Any] = {
        "charger": box["id"],
        "arrival": arrive.isoformat(),
        "departure": leave.isoformat(),
    }
    if box["v2g"]:
        capacity = float(rng.choice(V2G_CAPACITY_KWH))
        soc = float(round(rng.uniform(*V2G_INITIAL_SOC_RANGE), 2))
        need = min(need, (V2G_SOC_CEILING - soc) * capacity)
        out.update(capacity_kwh=capacity, initial_soc=soc)
    out["energy_needed_kwh"] = float(round(need, 1))
    return out


# --- time series ----------------------------------------------------------------------------------


def _local_hour(index: pd.DatetimeIndex) -> np.ndarray:
    """Hour of day (0..24, fractional) in Europe/Berlin of each interval start."""
    local = index.tz_convert(TIMEZONE)
    return np.asarray(local.hour + local.minute / 60.0, dtype=float)


def _ar1(rng: np.random.Generator, n_steps: int, n_series: int, phi: float) -> np.ndarray:
    """Stationary AR(1) noise with unit variance, shape (n_steps, n_series)."""
    shocks = rng.standard_normal((n_steps, n_series))
    out = np.empty_like(shocks)
    out[0] = shocks[0]
    scale = np.sqrt(1.0 - phi**2)
    for t in range(1, n_steps):
        out[t] = phi * out[t - 1] + scale * shocks[t]
    return out


def _daily_levels(rng: np.random.Generator, index: pd.DatetimeIndex, low: float, high: float) -> np.ndarray:
    """A uniform level per local day, interpolated linearly between local noons (no jumps)."""
    local = index.tz_convert(TIMEZONE)
    first = local[0].normalize() - pd.Timedelta(days=1)
    n_days = (local[-1].normalize() - first).days + 2
    noons = [(first + pd.Timedelta(days=d, hours=12)).tz_convert("UTC") for d in range(n_days)]
    x_noon = np.array([ts.timestamp() for ts in noons])
    # seconds whatever the index's unit (pandas 3 parses strings to microseconds: asi8 // 1e9 then
    # put every interval before the first noon, and the whole period got the first day's level)
    x = np.asarray((index - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1), dtype=float)
    return np.interp(x, x_noon, rng.uniform(low, high, n_days))


def make_weather(index: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    """January weather at Darmstadt on `index`: temp_degc, cloud_factor (clear-sky index, 0..1),
    ghi_w_per_m2 (clear-sky GHI x cloud factor, W/m2), and the clear sky and solar position at
    the interval mid-points (columns clear_*, zenith, azimuth, dni_extra) for the PV model."""
    rng = _rng(seed, "weather")
    cloud_level = _daily_levels(rng, index, *CLOUD_DAILY_LEVEL)
    latent = np.log(cloud_level / (1 - cloud_level))
    latent += CLOUD_NOISE * _ar1(rng, len(index), 1, np.exp(-DT_H / CLOUD_TAU_H))[:, 0]
    cloud = CLOUD_MIN + (1 - CLOUD_MIN) / (1 + np.exp(-latent))
    frame = _sun_and_clear_sky(index)
    frame["temp_degc"] = _temperature_degc(rng, index, cloud_level)
    frame["cloud_factor"] = cloud
    frame["ghi_w_per_m2"] = frame["clear_ghi"] * cloud
    return frame


def _temperature_degc(rng: np.random.Generator, index: pd.DatetimeIndex, cloud_level: np.ndarray) -> np.ndarray:
    """Air temperature (degC): daily mean +- half range on two half-cosines (minimum at 07:30,
    maximum at 14:30 local), smaller swings on overcast days, plus smooth noise."""
    phase = (_local_hour(index) - TEMP_MIN_HOUR) % HOURS_PER_DAY
    warm = TEMP_MAX_HOUR - TEMP_MIN_HOUR
    shape = np.where(
        phase < warm,
        -np.cos(np.pi * phase / warm),
        np.cos(np.pi * (phase - warm) / (HOURS_PER_DAY - warm)),
    )
    mean = _daily_levels(rng, index, *TEMP_DAILY_MEAN_DEGC)
    damping = 1 - TEMP_RANGE_CLOUD_WEIGHT + TEMP_RANGE_CLOUD_WEIGHT * cloud_level
    half_range = _daily_levels(rng, index, *TEMP_HALF_RANGE_DEGC) * damping
    noise = TEMP_NOISE_DEGC * _ar1(rng, len(index), 1, TEMP_NOISE_PHI)[:, 0]
    return mean + half_range * shape + noise


def _sun_and_clear_sky(index: pd.DatetimeIndex) -> pd.DataFrame:
    """Solar position and Ineichen clear-sky irradiance (W/m2, Linke turbidity from pvlib's
    climatology) at the mid-point of each interval, on the interval-start index."""
    mid = index + pd.Timedelta(minutes=RESOLUTION_MIN / 2)
    place = pvlib.location.Location(LATITUDE_DEG, LONGITUDE_DEG, tz="UTC", altitude=ALTITUDE_M)
    sun = place.get_solarposition(mid)
    clear = place.get_clearsky(mid, model="ineichen", solar_position=sun)
    columns = {
        "clear_ghi": clear["ghi"],
        "clear_dni": clear["dni"],
        "clear_dhi": clear["dhi"],
        "zenith": sun["apparent_zenith"],
        "azimuth": sun["azimuth"],
        "dni_extra": pvlib.irradiance.get_extra_radiation(mid),
    }
    return pd.DataFrame({k: v.to_numpy(dtype=float) for k, v in columns.items()}, index=index)


def base_load_kw(
    households: list[dict],
    index: pd.DatetimeIndex,
    seed: int,
    noise_stream: str | None = None,
) -> pd.DataFrame:
    """Household load (kW): BDEW 2025 profile (demandlib, local time, Hesse holidays) x annual
    kWh / 1e6, shifted by up to +-30 min and times smooth lognormal noise (mean 1) per household.

    The shifts always come from `seed`; the noise too, unless `noise_stream` names a stream of its
    own (the meter history uses one, so that it is not a replay of the plan's noise)."""
    rng = _rng(seed, "base_load")
    step = pd.Timedelta(minutes=RESOLUTION_MIN)
    pad = BASE_MAX_SHIFT_STEPS
    needed = sorted({h["profile"] for h in households})
    per_gwh = {p: bdew_per_gwh(p, index[0] - pad * step, len(index) + 2 * pad) for p in needed}
    n = len(households)
    shifts = rng.integers(-pad, pad + 1, n)
    noise_rng = rng if noise_stream is None else _rng(seed, noise_stream)
    noise = np.exp(BASE_NOISE_SIGMA * _ar1(noise_rng, len(index), n, BASE_NOISE_PHI) - BASE_NOISE_SIGMA**2 / 2)
    columns = {}
    for j, home in enumerate(households):
        start = pad + shifts[j]
        profile = per_gwh[home["profile"]][start : start + len(index)]
        columns[home["id"]] = profile * home["annual_kwh"] / DEMANDLIB_ANNUAL_KWH * noise[:, j]
    return pd.DataFrame(columns, index=index)


@functools.lru_cache(maxsize=16)
def bdew_per_gwh(profile: str, first: pd.Timestamp, periods: int) -> np.ndarray:
    """BDEW profile `profile` (kW for 1 GWh per year, demandlib, Hesse holidays) on `periods`
    intervals from `first` (UTC), read at the local clock; kept, because demandlib takes a tenth of a
    second per call and a fleet of sites shares one time axis."""
    wide = pd.date_range(first, periods=periods, freq=pd.Timedelta(minutes=RESOLUTION_MIN), tz="UTC")
    local = wide.tz_convert(TIMEZONE)
    days_off = holidays.Germany(subdiv="HE", years=sorted(set(local.year)))
    values = getattr(bdew, profile)(local, holidays=days_off).to_numpy(dtype=float)
    values.setflags(write=False)  # shared between callers
    return values


def pv_availability_kw_per_kwp(arrays: list[dict], weather: pd.DataFrame) -> pd.DataFrame:
    """PV output per kWp (kW/kWp) from the weather's own GHI, through the forecaster's pvlib path
    (:func:`grid.forecast.pv.split_ghi`: Erbs DNI/DHI; :func:`grid.forecast.pv.plane_kw_per_kwp`:
    Hay-Davies POA, Faiman cell temperature, system factor), so that a PV forecast from the true
    irradiance reproduces the truth."""
    zenith = weather["zenith"].to_numpy()
    ghi = weather["ghi_w_per_m2"].to_numpy(dtype=float)
    dni, dhi = split_ghi(ghi, zenith, pd.DatetimeIndex(weather.index))
    sun = (zenith, weather["azimuth"].to_numpy(), dni, ghi, dhi, weather["dni_extra"].to_numpy())
    temp = weather["temp_degc"].to_numpy()
    by_plane: dict[tuple[float, float], np.ndarray] = {}
    columns = {}
    for arr in arrays:
        plane = (arr["tilt_deg"], arr["azimuth_deg"])
        if plane not in by_plane:
            by_plane[plane] = plane_kw_per_kwp(*plane, *sun, temp)
        columns[arr["id"]] = by_plane[plane]
    return pd.DataFrame(columns, index=weather.index)


def heat_demand_kw(heat_pumps: list[dict], temp_degc: pd.Series, seed: int) -> pd.DataFrame:
    """Thermal demand (kW) per heat pump: space heat = (1 - DHW share) x annual heat x
    max(0, 15 degC - T) / (HDD x 24 h) x daily shape, plus hot water = DHW share x annual heat /
    8760 h x hot-water shape; both shapes have mean 1 and are shifted up to +-30 min per house."""
    rng = _rng(seed, "heat_demand")
    index = pd.DatetimeIndex(temp_degc.index)
    hour = _local_hour(index)
    degrees = np.maximum(0.0, HEAT_BASE_DEGC - temp_degc.to_numpy())
    n = len(heat_pumps)
    shifts = rng.integers(-HEAT_MAX_SHIFT_STEPS, HEAT_MAX_SHIFT_STEPS + 1, n) * DT_H
    noise = np.exp(HEAT_NOISE_SIGMA * _ar1(rng, len(index), n, HEAT_NOISE_PHI) - HEAT_NOISE_SIGMA**2 / 2)
    columns = {}
    for j, pump in enumerate(heat_pumps):
        annual = pump["annual_heat_kwh"]
        space = (1 - DHW_SHARE) * annual * degrees / (HEATING_DEGREE_DAYS_K_D * HOURS_PER_DAY)
        dhw = DHW_SHARE * annual / HOURS_PER_YEAR
        local_h = hour + shifts[j]
        columns[pump["id"]] = (space * _shape(SPACE_HEAT_SHAPE, local_h) + dhw * _shape(DHW_SHAPE, local_h)) * noise[
            :, j
        ]
    return pd.DataFrame(columns, index=index)


def _shape(hourly: tuple[float, ...], hour: np.ndarray) -> np.ndarray:
    """A 24-value daily shape, normalised to mean 1, interpolated periodically at `hour`."""
    values = np.asarray(hourly, dtype=float) / np.mean(hourly)
    return np.interp(hour, np.arange(24) + 0.5, values, period=24)


def make_prices(index: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    """price_eur_per_kwh = day-ahead (EUR/MWh, January-like quarter-hours) / 1000 + supplier adder;
    co2_g_per_kwh rises with the day-ahead price (fossil plants at the margin)."""
    rng = _rng(seed, "prices")
    hour = _local_hour(index)
    whole = np.floor(hour).astype(int)
    quarter = (hour - whole) * 4
    hourly = np.asarray(DAY_AHEAD_EUR_PER_MWH, dtype=float)
    trend = (hourly[(whole + 1) % 24] - hourly[(whole - 1) % 24]) / 2
    day_ahead = hourly[whole] + QUARTER_RAMP_GAIN * trend * (quarter - 1.5) / 4
    day_ahead += _daily_levels(rng, index, -DAY_AHEAD_DAY_SD, DAY_AHEAD_DAY_SD)
    day_ahead += DAY_AHEAD_NOISE_SD * _ar1(rng, len(index), 1, DAY_AHEAD_NOISE_PHI)[:, 0]
    day_ahead = np.clip(day_ahead, *DAY_AHEAD_RANGE)
    low_price, low_co2 = CO2_AT_LOW_PRICE
    co2 = low_co2 + CO2_PER_EUR_PER_MWH * (day_ahead - low_price) + CO2_NOISE * rng.standard_normal(len(index))
    return pd.DataFrame(
        {
            "price_eur_per_kwh": day_ahead * EUR_PER_MWH_TO_EUR_PER_KWH + SUPPLIER_ADDER_EUR_PER_KWH,
            "co2_g_per_kwh": np.clip(co2, *CO2_RANGE_G_PER_KWH),
        },
        index=index,
    )


# --- writing --------------------------------------------------------------------------------------


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` with a ``timestamp`` column in UTC ISO 8601 (+00:00), values rounded."""
    path.write_text(csv_text(frame), encoding="utf-8")


def csv_text(frame: pd.DataFrame) -> str:
    """`frame` as the CSV text of an input file: a ``timestamp`` column in UTC ISO 8601 (+00:00),
    values rounded to ``DECIMALS``."""
    out = frame.astype(float).round(DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    stamps = pd.DatetimeIndex(frame.index).tz_convert("UTC")
    out.index = pd.Index([ts.isoformat() for ts in stamps], name="timestamp")
    return out.to_csv(lineterminator="\n")


# libyaml's emitter where available: the same text, several times faster (a fleet writes hundreds of sites)
class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """SafeDumper writing :class:`_Flow` mappings inline and keeping key order."""


_Dumper.add_representer(
    _Flow,
    lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True),
)


def site_yaml(site: dict[str, Any], seed: int, n_households: int) -> str:
    """The site as YAML text with a header naming the generator and its arguments."""
    header = (
        f"# Synthetic demo quarter, generated by grid.demo (seed {seed}, {n_households} "
        "households).\n# Do not edit by hand: regenerate with "
        "`python -m grid.demo <dir>`; see PROVENANCE.md.\n"
        "# Times are UTC; kW, kWh, kVA, EUR/kWh. Limits of T*: rated_kva x 0.95.\n"
    )
    body = yaml.dump(site, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=200)
    return header + body


# --- checks ---------------------------------------------------------------------------------------


def uncontrolled_ev_kw(site: Site, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Wallbox draw (kW) if every car charges at full power from arrival until its energy is in
    (or it leaves); one column per charger. Charger efficiency counts as losses drawn from the grid.

    In the k-th plugged-in interval the draw is clip(need / dt - k x max_kw, 0, max_kw).
    """
    power = np.zeros((len(index), len(site.ev_chargers)))
    column = {c.id: j for j, c in enumerate(site.ev_chargers)}
    stamps_ns = pd.DatetimeIndex(index).as_unit("ns").asi8
    for ses in site.ev_sessions:
        box = site.ev_chargers[column[ses.charger]]
        arrival, departure = pd.Timestamp(ses.arrival).value, pd.Timestamp(ses.departure).value
        plugged = np.flatnonzero((stamps_ns >= arrival) & (stamps_ns < departure))
        need_kwh = ses.energy_needed_kwh / box.efficiency
        steps = np.arange(len(plugged))
        kw = np.clip(need_kwh / DT_H - steps * box.max_kw, 0.0, box.max_kw)
        power[plugged, column[box.id]] += kw
    return pd.DataFrame(power, index=index, columns=list(column))


def uncontrolled_load_kw(site: Site, inputs: SiteInputs) -> pd.DataFrame:
    """Load (kW) per connection point (and feeder) if nothing is controlled: base load + heat pumps
    following their heat demand (heat / COP(T_out), at most their rating; stores ignored) + EVs
    charging at full power from arrival (:func:`uncontrolled_ev_kw`). PV and batteries are left out
    (on January evenings PV is zero). Columns: connection ids and feeder ids."""
    index = inputs.index
    temp = inputs.temp_degc.to_numpy()
    parts = [inputs.base_load_kw, uncontrolled_ev_kw(site, index)]
    heat = {}
    for hp in site.heat_pumps:
        cop = _cop(hp.cop, temp)
        heat[hp.id] = np.minimum(inputs.heat_demand_kw[hp.id].to_numpy() / cop, hp.electric_kw)
    parts.append(pd.DataFrame(heat, index=index))
    assets = [*site.households, *site.ev_chargers, *site.heat_pumps]
    where = {a.id: (a.connection, a.feeder) for a in assets}
    columns = [c for p in parts for c in p.columns]
    values = np.hstack([p.to_numpy(dtype=float) for p in parts])
    out = {}
    for conn in site.connections:
        out[conn.id] = values[:, [where[c][0] == conn.id for c in columns]].sum(axis=1)
        for feeder in conn.feeders:
            out[feeder.id] = values[:, [where[c][1] == feeder.id for c in columns]].sum(axis=1)
    return pd.DataFrame(out, index=index)


def _cop(curve: COPCurve, temp_degc: np.ndarray) -> np.ndarray:
    """COP(T_out) of a heat pump's linear curve, clipped to [min_cop, max_cop]."""
    return np.clip(curve.intercept + curve.slope_per_degc * temp_degc, curve.min_cop, curve.max_cop)


def summary(site: Site, inputs: SiteInputs) -> str:
    """A few lines with asset counts and, per connection and feeder, the uncontrolled peak (kW),
    its limit and the hours above it."""
    load = uncontrolled_load_kw(site, inputs)
    lines = [
        f"{len(site.households)} households, {len(site.pv_arrays)} PV, {len(site.batteries)} "
        f"batteries, {len(site.ev_chargers)} wallboxes, {len(site.ev_sessions)} EV sessions, "
        f"{len(site.heat_pumps)} heat pumps"
    ]
    for conn in site.connections:
        limits = {conn.id: conn.limit_import_kw} | {f.id: f.import_limit_kw for f in conn.feeders}
        for key, limit in limits.items():
            over = load[key] > limit
            lines.append(
                f"  {key:8s} peak {load[key].max():7.1f} kW, limit {limit:6.1f} kW, {over.sum() * DT_H:4.2f} h above"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m grid.demo OUT_DIR [--households N] [--seed S]``."""
    parser = argparse.ArgumentParser(description="Generate the synthetic demo quarter.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--households", type=int, default=300)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    path = generate_demo(args.out_dir, seed=args.seed, n_households=args.households)
    took = time.perf_counter() - began
    site = load_site(path)
    print(f"wrote {path} in {took:.2f} s")
    print(summary(site, load_inputs(site)))


if __name__ == "__main__":
    main()
