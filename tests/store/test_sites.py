"""Registering a site YAML creates its meters; registering again changes nothing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from grid.domain import site_from_dict
from grid.store.sites import register_site, sensor_frame

SITE = {
    "site": {"id": "q1", "name": "Quartier 1"},
    "connections": [{"id": "trafo", "rated_kva": 400}],
    "households": [{"id": "h1", "connection": "trafo", "meter_id": "M-001", "annual_kwh": 3500}],
    "pv_arrays": [{"id": "pv-h1", "connection": "trafo", "household": "h1", "kwp": 8}],
    "ev_chargers": [{"id": "wb1", "connection": "trafo", "max_kw": 11}],
}


def test_register_site_creates_meters_once(store: Engine, tmp_path: Path) -> None:
    site = site_from_dict(SITE, base_dir=tmp_path)
    assert register_site(store, site) == 7  # h1 x2, pv-h1, wb1, trafo x2, temp_degc
    assert register_site(store, site) == 0
    frame = sensor_frame(store, "q1").set_index("name")
    assert frame.loc["h1.import", ["meter_id", "obis", "kind", "unit"]].tolist() == [
        "M-001",
        "1-0:1.8.0",
        "household_load",
        "kWh",
    ]
    assert frame.loc["pv-h1.export", "direction"] == -1
    assert frame.loc["pv-h1.export", "max_power_kw"] == 12.0
    assert frame.loc["trafo.import", "kind"] == "transformer"
    assert frame.loc["temp_degc", "measure"] == "temperature"
