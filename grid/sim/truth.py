"""What really happens in a simulation: household load, PV, heat demand, weather, prices and the
cars' sessions, from the demo generator (:mod:`grid.demo`) over the simulated days.

The truth is drawn on streams of its own (``sim_*``), so it is neither the shipped 48 h files nor
the meter history, and forecasts never see it ahead of time: the planner only learns it through the
meter readings and telemetry the simulator ingests as the clock passes. What is *known ahead* is
written into the simulation's site directory as the site's input files: day-ahead prices, CO2
intensity and the weather (a perfect weather forecast; load, PV and heat come from the store's
forecasts). Units: kW, kW/kWp, kW thermal, degC, EUR/kWh. A value at t covers [t, t + 15 min).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from grid import demo
from grid.domain import EVSession, Site, load_site
from grid.series import SiteInputs, load_inputs
from grid.timeindex import horizon_index

#: the simulated site's input files (relative to its YAML)
SIM_FILES = {
    "base_load": "truth_base_load.csv",
    "pv_availability": "truth_pv_availability.csv",
    "heat_demand": "truth_heat_demand.csv",
    "weather": "weather.csv",
    "prices": "prices.csv",
}


@dataclass
class Truth:
    """The simulated period's truth: `inputs` cover the simulated days plus one planning horizon
    (the last runs plan past the end); `sessions` are the cars as they will arrive."""

    inputs: SiteInputs
    sessions: list[EVSession]
    start: pd.Timestamp
    steps: int  # simulated intervals

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.inputs.index[: self.steps]


#: the truth runs this long past the simulated days (what the last plans look ahead at), the same
#: for every horizon up to it: the random draws depend on the length, so a longer horizon must not
#: simulate other weather (a 48 h horizon once meant another week)
TRUTH_PADDING_H = 96.0


def make_truth(site: Site, start: pd.Timestamp, days: float, horizon_h: float, seed: int) -> Truth:
    """The truth of `site` from `start` (UTC, on the grid) for `days` plus at least `horizon_h`
    (``TRUTH_PADDING_H`` unless longer), drawn from `seed`."""
    res = site.site.resolution_min
    steps = round(days * 24 * 60 / res)
    index = horizon_index(start, days * 24 + max(horizon_h, TRUTH_PADDING_H), res)
    weather = demo.make_weather(index, _sub_seed(seed, "sim_weather"))
    households = [h.model_dump() for h in site.households]
    arrays = [p.model_dump() for p in site.pv_arrays]
    pumps = [h.model_dump() for h in site.heat_pumps]
    base = demo.base_load_kw(households, index, seed, noise_stream="sim_base_load")
    pv = demo.pv_availability_kw_per_kwp(arrays, weather) if arrays else pd.DataFrame(index=index)
    heat = demo.heat_demand_kw(pumps, weather["temp_degc"], seed) if pumps else pd.DataFrame(index=index)
    prices = demo.make_prices(index, seed)
    chargers = [c.model_dump() for c in site.ev_chargers]
    raw = demo._ev_sessions(demo._rng(seed, "sim_ev_sessions"), chargers, index[:steps]) if chargers else []
    sessions = [EVSession.model_validate(dict(s)) for s in raw]
    inputs = SiteInputs(
        base_load_kw=base,
        pv_kw_per_kwp=pv,
        heat_demand_kw=heat,
        temp_degc=weather["temp_degc"],
        price_eur_per_kwh=prices["price_eur_per_kwh"],
        co2_g_per_kwh=prices["co2_g_per_kwh"],
    )
    return Truth(inputs, sessions, start, steps)


def _sub_seed(seed: int, stream: str) -> int:
    return int(demo._rng(seed, stream).integers(2**31))


def write_sim_site(site_path: Path, truth: Truth, out_dir: Path) -> Path:
    """The site at `site_path` as the simulator plans it: its input files replaced by the truth's
    (the planner reads only prices, CO2 and weather from them: the known-ahead series) and no
    EV sessions in the file (cars announce themselves through the session path)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = yaml.safe_load(Path(site_path).read_text(encoding="utf-8"))
    doc["ev_sessions"] = []
    doc["inputs"] = dict(SIM_FILES)
    inp = truth.inputs
    frames = {
        "base_load": inp.base_load_kw,
        "pv_availability": inp.pv_kw_per_kwp,
        "heat_demand": inp.heat_demand_kw,
        "weather": pd.DataFrame({"temp_degc": inp.temp_degc}),
        "prices": pd.DataFrame({"price_eur_per_kwh": inp.price_eur_per_kwh, "co2_g_per_kwh": inp.co2_g_per_kwh}),
    }
    for key, frame in frames.items():
        demo.write_csv(frame, out_dir / SIM_FILES[key])
    path = out_dir / "site.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def truth_inputs(sim_site_path: Path) -> tuple[Site, SiteInputs]:
    """The simulated site and its truth as read back from its files (rounded as written)."""
    site = load_site(sim_site_path)
    return site, load_inputs(site)
