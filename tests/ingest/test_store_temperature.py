"""Heat stores that report a temperature: converted to kWh with the store's empty and full
temperatures from the site file, rejected (field named, record kept) outside them or without them."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from grid.domain import HeatPump
from grid.ingest.report import Source
from grid.ingest.telemetry import ingest_telemetry, payload_items
from grid.store.live import latest_states
from grid.store.schema import assets
from grid.store.sites import site_asset_rows
from grid.store.testing import demo_assets, demo_sensors
from tests.models.sites import household, make_site

NOW = pd.Timestamp("2026-01-15T12:00:00Z")


@pytest.fixture
def live(store: Engine) -> Engine:
    demo_sensors(store)
    demo_assets(store)
    row = {"site_id": "s1", "asset_id": "hp2", "kind": "heat_pump", "connection": "T1", "capacity_kwh": 20.0}
    with store.begin() as conn:  # a 20 kWh store, empty at 35 degC and full at 55 degC
        conn.execute(assets.insert(), [{**row, "max_power_kw": 6.0, "temp_empty_degc": 35.0, "temp_full_degc": 55.0}])
    return store


def _ingest(engine: Engine, items: list[dict[str, Any]]) -> Any:
    return ingest_telemetry(engine, "s1", payload_items({"telemetry": items}), Source("api", "payload"), NOW)


def test_a_store_temperature_becomes_its_content_in_kwh(live: Engine) -> None:
    report = _ingest(
        live,
        [
            {"asset_id": "hp2", "ts": "2026-01-15T10:00:00Z", "store_temp_degc": 45.0},  # half: 10 kWh
            {"asset_id": "hp2", "ts": "2026-01-15T11:00:00Z", "quantity": "store", "value": 50, "unit": "degC"},
        ],
    )
    assert (report.accepted, report.rejected) == (2, [])
    assert latest_states(live, "s1", "2026-01-15T10:30:00Z")["hp2"][:2] == (10.0, "kWh")
    assert latest_states(live, "s1", NOW)["hp2"][:2] == (15.0, "kWh")  # 20 x (50 - 35) / 20


@pytest.mark.parametrize(
    ("item", "field", "reason"),
    [
        ({"asset_id": "hp2", "store_temp_degc": 56.0}, "store_temp_degc", "[35, 55] degC"),
        ({"asset_id": "hp2", "store_temp_degc": 30.0}, "store_temp_degc", "[35, 55] degC"),
        ({"asset_id": "hp1", "store_temp_degc": 45.0}, "store_temp_degc", "no store_empty_degc/store_full_degc"),
        ({"asset_id": "bat1", "store_temp_degc": 45.0}, "store_temp_degc", "reports no store_kwh"),
        ({"asset_id": "hp2", "quantity": "store", "value": 60, "unit": "degC"}, "value", "[35, 55] degC"),
    ],
)
def test_a_temperature_outside_the_store_or_without_its_parameters_is_rejected(
    live: Engine, item: dict[str, Any], field: str, reason: str
) -> None:
    report = _ingest(
        live,
        [{"asset_id": "hp2", "ts": "2026-01-15T09:00:00Z", "store_kwh": 4.0}, {**item, "ts": "2026-01-15T10:00:00Z"}],
    )
    assert report.balanced and report.accepted == 1
    assert [(r.where, r.field) for r in report.rejected] == [("payload telemetry[1]", field)]
    assert reason in report.rejected[0].reason
    assert latest_states(live, "s1", NOW)["hp2"][0] == 4.0  # nothing stored from the bad one


def test_the_site_file_gives_both_temperatures_or_neither_and_they_are_registered() -> None:
    base = {"id": "hp", "connection": "T1", "electric_kw": 3.0}
    with pytest.raises(ValidationError, match="go together"):
        HeatPump(**base, store_empty_degc=35.0)
    with pytest.raises(ValidationError, match="must be above"):
        HeatPump(**base, store_empty_degc=55.0, store_full_degc=35.0)
    site = make_site(
        households=[household()],
        heat_pumps=[{**base, "household": "h1", "store_kwh": 12.0, "store_empty_degc": 30.0, "store_full_degc": 60.0}],
    )
    row = next(r for r in site_asset_rows(site) if r["asset_id"] == "hp")
    assert (row["capacity_kwh"], row["temp_empty_degc"], row["temp_full_degc"]) == (12.0, 30.0, 60.0)
    assert sa.inspect(assets).columns["temp_full_degc"] is not None
