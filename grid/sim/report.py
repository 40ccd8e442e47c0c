"""The comparison: per way through the days, what the transformers saw and what it cost.

All three are priced on the same tariff and price series (the truth's), from the measured flows:
cost = sum over connections and intervals of import x (energy price + grid fee + CO2 price) x dt
- paid export x feed-in x dt + peak charge x the period's highest import per connection (EUR).
An overload interval is one in which a transformer is above its import or export limit by more
than :data:`OVERLOAD_TOL_KW`; kWh above = the energy beyond the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from grid.sim.run import Outcome, World
from models.tables import build_tables

OVERLOAD_TOL_KW = 0.01


@dataclass
class Figures:
    mode: str
    overload_intervals: int
    overload_by_transformer: dict[str, int]
    kwh_above_by_transformer: dict[str, float]
    cost_eur: float
    ev_missed_kwh: float
    ev_delivered_kwh: float
    unmet_heat_kwh: float
    dimmings: int
    runs: int
    warm_runs: int
    cold_runs: int
    failed_runs: int
    seconds: float
    plan_seconds: float
    counts: dict[str, int]
    #: the overload intervals (up to 50): local time, transformer, kW above the limit
    overloads: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def figures(world: World, out: Outcome) -> Figures:
    site, index = world.site, world.truth.index
    dt_h = site.site.resolution_min / 60
    tables = build_tables(site.model_copy(update={"ev_sessions": []}), world.inputs.window(index), index)
    p = tables.prices
    flow = out.flow_kw
    imp, exp = np.clip(flow, 0.0, None), np.clip(-flow, 0.0, None)
    energy = float((imp * (p.import_eur_per_kwh + p.co2_eur_per_kwh[None, :])).sum() * dt_h)
    revenue = float((exp * p.feed_in_eur_per_kwh).sum() * dt_h)
    peak = float((p.peak_charge_eur_per_kw * imp.max(axis=1)).sum()) if flow.shape[1] else 0.0
    lim_i = np.array([c.limit_import_kw for c in site.connections])[:, None]
    lim_e = np.array([c.limit_export_kw for c in site.connections])[:, None]
    above = np.clip(imp - lim_i, 0.0, None) + np.clip(exp - lim_e, 0.0, None)
    over = above > OVERLOAD_TOL_KW
    ids = [c.id for c in site.connections]
    return Figures(
        mode=out.mode,
        overload_intervals=int(over.any(axis=0).sum()),
        overload_by_transformer={cid: int(over[i].sum()) for i, cid in enumerate(ids)},
        kwh_above_by_transformer={cid: round(float(above[i].sum() * dt_h), 3) for i, cid in enumerate(ids)},
        cost_eur=round(energy - revenue + peak, 2),
        ev_missed_kwh=round(out.ev_missed_kwh, 3),
        ev_delivered_kwh=round(out.ev_delivered_kwh, 3),
        unmet_heat_kwh=round(out.unmet_heat_kwh, 3),
        dimmings=out.dimmings,
        runs=out.runs,
        warm_runs=out.warm_runs,
        cold_runs=out.cold_runs,
        failed_runs=out.failed_runs,
        seconds=round(out.seconds, 2),
        plan_seconds=round(out.plan_seconds, 2),
        counts=out.counts,
        overloads=[
            {
                "at": index[t].tz_convert(site.site.timezone).isoformat(),
                "transformer": ids[c],
                "kw_above": round(float(above[c, t]), 2),
            }
            for c, t in sorted(zip(*np.nonzero(over), strict=True), key=lambda ct: ct[1])[:50]
        ],
    )


def report(world: World, outcomes: list[Outcome]) -> dict[str, Any]:
    """The JSON report: configuration, figures per way, ratios."""
    cfg = world.config
    figs = {o.mode: figures(world, o) for o in outcomes}
    doc: dict[str, Any] = {
        "site": world.site.id,
        "start": world.truth.start.isoformat(),
        "days": cfg.days,
        "seed": cfg.seed,
        "compliance": cfg.compliance,
        "noise_sd": cfg.noise_sd,
        "forecasts": cfg.forecasts,
        "horizon_h": cfg.horizon_h,
        "replan_every_min": cfg.replan_every_min,
        "sessions": len(world.truth.sessions),
        "results": {m: f.as_dict() for m, f in figs.items()},
    }
    if "closed" in figs and "perfect" in figs and figs["perfect"].cost_eur:
        doc["cost_ratio_vs_perfect"] = round(figs["closed"].cost_eur / figs["perfect"].cost_eur, 4)
    if "closed" in figs and cfg.days:
        doc["cold_builds_per_day"] = round(figs["closed"].cold_runs / cfg.days, 1)
    return doc


ROWS = (
    ("overload intervals", "overload_intervals"),
    ("kWh above limits", "kwh_above"),
    ("cost EUR", "cost_eur"),
    ("EV energy missed kWh", "ev_missed_kwh"),
    ("§14a dimmings", "dimmings"),
    ("heat unmet kWh", "unmet_heat_kwh"),
    ("plan runs (warm/cold)", "runs"),
)


def table(doc: dict[str, Any]) -> str:
    """The report as a plain-text table (one column per way)."""
    modes = list(doc["results"])
    lines = [f"{'':24}" + "".join(f"{m:>16}" for m in modes)]
    for label, key in ROWS:
        cells = []
        for m in modes:
            r = doc["results"][m]
            if key == "kwh_above":
                value: Any = round(sum(r["kwh_above_by_transformer"].values()), 1)
            elif key == "runs":
                value = f"{r['runs']} ({r['warm_runs']}/{r['cold_runs']})"
            else:
                value = r[key]
            cells.append(f"{value!s:>16}")
        lines.append(f"{label:24}" + "".join(cells))
    if "cost_ratio_vs_perfect" in doc:
        lines.append(f"cost ratio closed / perfect: {doc['cost_ratio_vs_perfect']}")
    return "\n".join(lines)
