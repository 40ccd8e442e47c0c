"""Small hand-made sites for LP tests: hourly steps (dt = 1 h) so expected numbers are easy to derive."""

from __future__ import annotations

from typing import Any

import pandas as pd

from grid.domain import Site, site_from_dict
from grid.series import SiteInputs
from grid.timeindex import horizon_index
from models.plan import Plan
from models.solve import plan_site

START = pd.Timestamp("2026-01-14T00:00:00+00:00")


def make_site(**parts: Any) -> Site:
    """A site with one 1 MVA connection `T1` at hourly resolution, overridden by `parts`."""
    raw: dict[str, Any] = {
        "site": {"id": "test", "resolution_min": 60},
        "connections": [{"id": "T1", "rated_kva": 1000, "power_factor": 1.0}],
        "tariff": {"import_price_eur_per_kwh": 0.2, "feed_in_price_eur_per_kwh": 0.0, "co2_price_eur_per_t": 0.0},
    }
    raw.update(parts)
    return site_from_dict(raw)


def make_inputs(
    site: Site,
    steps: int,
    load: dict[str, list[float]] | None = None,
    pv: dict[str, list[float]] | None = None,
    heat: dict[str, list[float]] | None = None,
    price: list[float] | None = None,
    temp: float = 5.0,
) -> SiteInputs:
    idx = horizon_index(START, steps * site.site.resolution_min / 60, site.site.resolution_min)
    return SiteInputs(
        base_load_kw=pd.DataFrame(load or {}, index=idx),
        pv_kw_per_kwp=pd.DataFrame(pv or {}, index=idx),
        heat_demand_kw=pd.DataFrame(heat or {}, index=idx),
        temp_degc=pd.Series(temp, index=idx),
        price_eur_per_kwh=None if price is None else pd.Series(price, index=idx, dtype=float),
    )


def run(site: Site, inputs: SiteInputs) -> Plan:
    return plan_site(site, inputs, inputs.index)


def household(hid: str = "h1", connection: str = "T1", **kw: Any) -> dict[str, Any]:
    return {"id": hid, "meter_id": f"m-{hid}", "annual_kwh": 3500, "connection": connection, **kw}


def at(k: int) -> str:
    """ISO start of hourly step k (UTC, as the plan reports it)."""
    return (START + pd.Timedelta(hours=k)).isoformat()
