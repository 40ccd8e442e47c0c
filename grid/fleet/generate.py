"""A fleet of varied synthetic neighbourhoods, for tests and benchmarks of planning many sites.

Each site is built with the demo generator's parts (:mod:`grid.demo`: households and their BDEW load,
PV, batteries, wallboxes and EV sessions, heat pumps and their heat demand, January weather and
prices) but with its own size and mix:

- 50-600 households on 1-3 transformers (two feeders each; at most one per 40 homes), split
  unevenly;
- per site a PV share of 5-60 % of the private homes, batteries on 0-30 % of all homes (only homes
  with PV), wallboxes on 2-35 % and heat pumps on 3-45 %, each varied per transformer by x0.6-1.4;
- transformer limits set from the site's own *uncontrolled* peak (:func:`grid.demo.uncontrolled_load_kw`:
  base load + heat pumps without their stores + cars charging at full power on arrival): a congested
  transformer gets 75-92 % of its peak, any other 115-180 % (its kVA rounded to 5 kVA, down for a
  congested one, up otherwise); feeders get 130 % of their own peak, so that the transformer is
  what binds. A transformer is congested with probability 0.2, and the first transformer of every
  third site (sites 2, 5, 8, ...) always is, so any fleet of two or more sites has congestion;
- a congested transformer gets a community battery with probability 0.5, sized to its excess.

One day-ahead market (prices, CO2) for the whole fleet; weather from one of four regions (seeds),
so sites differ in weather without a clear-sky computation per site. Everything follows from
``(seed, site number)``: the same arguments give the same sites and series, and site k of a fleet
of 10 is site k of a fleet of 200.

``generate_fleet`` returns the sites as data (description and input series) for use in-process;
``write_fleet`` writes each as a site directory (``site.yaml`` + input CSVs) that ``grid plan``
reads. Units: kW, kWh, kVA, kW/kWp, degC, EUR/kWh; series on UTC quarter-hours.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from grid import demo
from grid.domain import Site, site_from_dict
from grid.series import SiteInputs, site_inputs
from grid.timeindex import horizon_index

DEFAULT_SEED = 1
DEFAULT_START = "2026-01-14T00:00:00+01:00"
DEFAULT_HOURS = 48
SITE_PREFIX = "fleet"

HOUSEHOLDS_RANGE = (50, 600)  # inclusive
TRANSFORMERS_RANGE = (1, 3)  # inclusive
MIN_HOMES_PER_TRANSFORMER = 40  # on average: fewer homes, fewer transformers
PV_SHARE_RANGE = (0.05, 0.60)  # of private homes
BATTERY_SHARE_RANGE = (0.0, 0.30)  # of all homes, only homes with PV
EV_SHARE_RANGE = (0.02, 0.35)  # wallboxes per private home
HP_SHARE_RANGE = (0.03, 0.45)  # heat pumps per home
PER_TRANSFORMER_JITTER = (0.6, 1.4)  # each rate x this per transformer
HOME_WEIGHT_RANGE = (0.5, 1.5)  # relative size of each transformer's area
FEEDER_SHARE_RANGE = (0.4, 0.6)  # homes on the first of two feeders
CONGESTED_PROBABILITY = 0.2
ALWAYS_CONGESTED_EVERY = 3  # site k with k % 3 == 1: its first transformer is congested
CONGESTED_LIMIT_SHARE = (0.75, 0.92)  # of the uncontrolled peak
HEADROOM_LIMIT_SHARE = (1.15, 1.80)
FEEDER_LIMIT_SHARE = 1.30
COMMUNITY_BATTERY_PROBABILITY = 0.5
COMMUNITY_BATTERY_ENERGY_FACTOR = 1.5  # capacity = this x the energy above the limit
COMMUNITY_BATTERY_POWER_FACTOR = 1.2  # power = this x the largest excess
WEATHER_REGIONS = 4


@dataclass(frozen=True)
class FleetSite:
    """One generated site as data.

    description : the site in the YAML schema (:class:`grid.domain.Site`), ``inputs`` naming the
                  files that :func:`write_fleet` writes.
    series      : input name (``base_load``, ``pv_availability``, ``heat_demand``, ``weather``,
                  ``prices``) -> its values on a UTC index, rounded as in the files.
    congested   : ids of the transformers whose limit is below their uncontrolled peak.
    peak_kw     : uncontrolled peak (kW) per transformer id.
    """

    site_id: str
    description: dict[str, Any]
    series: dict[str, pd.DataFrame]
    congested: tuple[str, ...] = ()
    peak_kw: dict[str, float] = field(default_factory=dict)

    def site(self) -> Site:
        """The validated site (raises :class:`grid.errors.InputErrors` if it does not validate)."""
        return site_from_dict(self.description, context=f"generated site {self.site_id}")

    def inputs(self, site: Site | None = None) -> SiteInputs:
        """The input series as the planner takes them (the same values as read from the files)."""
        site = site or self.site()
        files = demo.INPUT_FILES
        return site_inputs(site, self.series, {k: f"generated ({files[k]})" for k in self.series})

    def csv_texts(self) -> dict[str, str]:
        """Input name -> the CSV text of its file."""
        return {key: demo.csv_text(frame) for key, frame in self.series.items()}

    def document(self) -> dict[str, Any]:
        """The site document with its series inline as CSV text: what ``PUT /api/v1/sites/{site}``
        and :func:`grid.store.site_versions.put_site_version` take."""
        return {**self.description, "inputs": self.csv_texts()}

    def summary(self) -> dict[str, Any]:
        """Counts, transformers, congestion: one line of ``fleet.json``."""
        d = self.description
        return {
            "site": self.site_id,
            "households": len(d["households"]),
            "transformers": [c["id"] for c in d["connections"]],
            "pv_arrays": len(d["pv_arrays"]),
            "batteries": len(d["batteries"]),
            "ev_chargers": len(d["ev_chargers"]),
            "ev_sessions": len(d["ev_sessions"]),
            "heat_pumps": len(d["heat_pumps"]),
            "congested": list(self.congested),
            "uncontrolled_peak_kw": self.peak_kw,
        }


def generate_fleet(
    n: int,
    seed: int = DEFAULT_SEED,
    start: str = DEFAULT_START,
    hours: int = DEFAULT_HOURS,
    prefix: str = SITE_PREFIX,
) -> list[FleetSite]:
    """`n` varied sites ``<prefix>-0001`` ... (see the module docstring), all on the same
    `hours` of quarter-hours from `start` (ISO 8601 with offset)."""
    if n < 1:
        raise ValueError(f"the number of sites must be >= 1, got {n}")
    index = horizon_index(pd.Timestamp(start), hours, demo.RESOLUTION_MIN)
    prices = demo.make_prices(index, seed)
    regions = [
        Region.of(demo.make_weather(index, _derived(seed, f"fleet_weather_{r}"))) for r in range(WEATHER_REGIONS)
    ]
    width = max(4, len(str(n)))
    return [
        generate_site(f"{prefix}-{k + 1:0{width}d}", k, seed, index, prices, regions[k % WEATHER_REGIONS])
        for k in range(n)
    ]


@dataclass(frozen=True)
class Region:
    """A weather region: its weather (a frame of :func:`grid.demo.make_weather`) and the PV output
    per kWp of every roof plane the generator uses (column ``"<tilt>/<azimuth>"``), computed once
    for all the region's sites."""

    weather: pd.DataFrame
    planes: pd.DataFrame

    @classmethod
    def of(cls, weather: pd.DataFrame) -> Region:
        roofs = [
            {"id": _plane(tilt, azimuth), "tilt_deg": tilt, "azimuth_deg": azimuth}
            for tilt in demo.PV_TILTS_DEG
            for azimuth in demo.PV_AZIMUTHS_DEG
        ]
        return cls(weather, demo.pv_availability_kw_per_kwp(roofs, weather))

    def pv_kw_per_kwp(self, arrays: list[dict[str, Any]]) -> pd.DataFrame:
        """Output per kWp of `arrays` (one column per array id)."""
        columns = [_plane(a["tilt_deg"], a["azimuth_deg"]) for a in arrays]
        return self.planes[columns].set_axis([a["id"] for a in arrays], axis=1)


def _plane(tilt_deg: float, azimuth_deg: float) -> str:
    return f"{tilt_deg:g}/{azimuth_deg:g}"


def _derived(seed: int, stream: str) -> int:
    return int(demo._rng(seed, stream).integers(2**31))


def generate_site(
    site_id: str,
    number: int,
    seed: int,
    index: pd.DatetimeIndex,
    prices: pd.DataFrame,
    region: Region,
) -> FleetSite:
    """Site `number` (0-based) of the fleet of `seed` on `index`, with the fleet's prices and the
    weather of its `region`."""
    site_seed = _derived(seed, f"fleet_site_{number}")
    rng = demo._rng(site_seed, "fleet_design")
    n_homes = int(rng.integers(HOUSEHOLDS_RANGE[0], HOUSEHOLDS_RANGE[1] + 1))
    n_trafos = int(rng.integers(TRANSFORMERS_RANGE[0], TRANSFORMERS_RANGE[1] + 1))
    n_trafos = min(n_trafos, max(1, n_homes // MIN_HOMES_PER_TRANSFORMER))
    rates = {
        "pv_rate": rng.uniform(*PV_SHARE_RANGE),
        "ev_charger_rate": rng.uniform(*EV_SHARE_RANGE),
        "heat_pump_rate": rng.uniform(*HP_SHARE_RANGE),
    }
    battery_share = float(rng.uniform(*BATTERY_SHARE_RANGE))
    congested = rng.random(n_trafos) < CONGESTED_PROBABILITY
    if number % ALWAYS_CONGESTED_EVERY == 1:
        congested[0] = True
    sizes = _split(n_homes, rng.uniform(*HOME_WEIGHT_RANGE, n_trafos))
    assets = demo._rng(site_seed, "assets")
    width = max(3, len(str(n_homes)))
    connections: list[dict[str, Any]] = []
    homes: list[dict[str, Any]] = []
    first = 0
    for t, size in enumerate(sizes):
        cid = f"T{t + 1}"
        feeder_share = float(rng.uniform(*FEEDER_SHARE_RANGE))
        jitter = {k: float(np.clip(v * rng.uniform(*PER_TRANSFORMER_JITTER), 0.0, 1.0)) for k, v in rates.items()}
        design = demo.TransformerDesign(
            rated_kva=0.0,  # set from the uncontrolled peak below
            household_share=size / n_homes,
            feeder_shares=(feeder_share, 1.0 - feeder_share),
            community_battery=False,
            **jitter,
        )
        feeders: list[dict[str, Any]] = [
            demo._Flow(id=f"{cid}-F{j + 1}", import_limit_kw=0.0, export_limit_kw=0.0) for j in range(2)
        ]
        connections.append({"id": cid, "rated_kva": 0.0, "feeders": feeders})
        ids = [f"H{i + 1:0{width}d}" for i in range(first, first + size)]
        homes += demo._homes(assets, cid, design, feeders, ids)
        first += size
    pv_arrays, batteries = demo._pv_and_batteries(assets, homes, battery_share)
    chargers = demo._ev_chargers(assets, homes)
    heat_pumps = demo._heat_pumps(assets, homes)
    demo._ems_groups(assets, homes, chargers, heat_pumps, batteries)
    description: dict[str, Any] = {
        "site": {
            "id": site_id,
            "name": f"Fleet site {number + 1} (synthetic, seed {seed})",
            "timezone": demo.TIMEZONE,
            "latitude": demo.LATITUDE_DEG,
            "longitude": demo.LONGITUDE_DEG,
            "resolution_min": demo.RESOLUTION_MIN,
        },
        "connections": connections,
        "households": [demo._Flow({k: v for k, v in h.items() if not k.startswith("_")}) for h in homes],
        "pv_arrays": pv_arrays,
        "batteries": batteries,
        "ev_chargers": chargers,
        "ev_sessions": demo._ev_sessions(demo._rng(site_seed, "ev_sessions"), chargers, index),
        "heat_pumps": heat_pumps,
        "tariff": copy.deepcopy(demo.TARIFF),
        "inputs": dict(demo.INPUT_FILES),
    }
    series = {
        "base_load": demo.base_load_kw(description["households"], index, site_seed),
        "pv_availability": region.pv_kw_per_kwp(pv_arrays),
        "heat_demand": demo.heat_demand_kw(heat_pumps, region.weather["temp_degc"], site_seed),
        "weather": region.weather[["temp_degc", "ghi_w_per_m2"]],
        "prices": prices,
    }
    # rounded and named as in the files, so that in-process and file-read inputs are equal
    series = {k: (f.astype(float).round(demo.DECIMALS) + 0.0).rename_axis("timestamp") for k, f in series.items()}
    draft = FleetSite(site_id, description, series)
    site = draft.site()
    load = demo.uncontrolled_load_kw(site, draft.inputs(site))
    peaks = _set_limits(rng, description, load, congested)
    return FleetSite(
        site_id,
        description,
        series,
        tuple(c["id"] for c, hot in zip(connections, congested, strict=True) if hot),
        peaks,
    )


def _split(n: int, weights: np.ndarray) -> list[int]:
    """`n` split in proportion to `weights` (each part >= 1), summing to `n`."""
    sizes = np.maximum(1, np.floor(n * weights / weights.sum())).astype(int)
    sizes[-1] = n - sizes[:-1].sum()
    return [int(s) for s in sizes]


def _set_limits(
    rng: np.random.Generator, description: dict[str, Any], load: pd.DataFrame, congested: np.ndarray
) -> dict[str, float]:
    """Transformer kVA and feeder limits from the uncontrolled load (see the module docstring);
    community batteries on some congested transformers. Returns the peak (kW) per transformer."""
    power_factor = demo.DEFAULT_POWER_FACTOR
    step = demo.KVA_ROUNDING
    peaks = {}
    for conn, hot in zip(description["connections"], congested, strict=True):
        peak = float(load[conn["id"]].max())
        peaks[conn["id"]] = round(peak, 1)
        share = rng.uniform(*(CONGESTED_LIMIT_SHARE if hot else HEADROOM_LIMIT_SHARE))
        kva = peak * share / power_factor / step
        conn["rated_kva"] = float(max(1, math.floor(kva) if hot else math.ceil(kva)) * step)
        for feeder in conn["feeders"]:
            limit = float(math.ceil(load[feeder["id"]].max() * FEEDER_LIMIT_SHARE))
            feeder.update(import_limit_kw=limit, export_limit_kw=limit)
        if hot and rng.random() < COMMUNITY_BATTERY_PROBABILITY:
            excess = np.maximum(load[conn["id"]].to_numpy() - conn["rated_kva"] * power_factor, 0.0)
            description["batteries"].append(
                demo._Flow(
                    id=f"CB-{conn['id']}",
                    connection=conn["id"],
                    capacity_kwh=float(math.ceil(COMMUNITY_BATTERY_ENERGY_FACTOR * excess.sum() * demo.DT_H)),
                    charge_kw=float(math.ceil(COMMUNITY_BATTERY_POWER_FACTOR * excess.max())),
                    discharge_kw=float(math.ceil(COMMUNITY_BATTERY_POWER_FACTOR * excess.max())),
                    charge_efficiency=demo.BATTERY_EFFICIENCY,
                    discharge_efficiency=demo.BATTERY_EFFICIENCY,
                    initial_soc=demo.COMMUNITY_BATTERY_SOC,
                    terminal_soc=demo.COMMUNITY_BATTERY_SOC,
                    flex_contract=True,
                )
            )
    return peaks


def site_yaml(fleet_site: FleetSite, seed: int) -> str:
    """The site's YAML text with a header naming the generator."""
    header = (
        f"# Synthetic fleet site {fleet_site.site_id}, generated by grid.fleet.generate (seed {seed}).\n"
        "# Do not edit by hand: regenerate with `grid fleet generate`.\n"
        "# Times are UTC; kW, kWh, kVA, EUR/kWh. Transformer limits: rated_kva x 0.95.\n"
    )
    return header + yaml.dump(fleet_site.description, Dumper=demo._Dumper, sort_keys=False, width=200)


def write_fleet(sites: list[FleetSite], out_dir: Path, seed: int) -> list[Path]:
    """Write each site to ``out_dir/<site id>/`` (``site.yaml`` and its input CSVs) and a
    ``fleet.json`` summary; returns the paths of the site files."""
    out_dir = Path(out_dir)
    paths = []
    for fleet_site in sites:
        where = out_dir / fleet_site.site_id
        where.mkdir(parents=True, exist_ok=True)
        for key, frame in fleet_site.series.items():
            demo.write_csv(frame, where / demo.INPUT_FILES[key])
        path = where / "site.yaml"
        path.write_text(site_yaml(fleet_site, seed), encoding="utf-8")
        paths.append(path)
    summary = {"seed": seed, "sites": [s.summary() for s in sites]}
    (out_dir / "fleet.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return paths
