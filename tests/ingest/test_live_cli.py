"""`grid prices import`, `grid weather import`, `grid limits add|list|cancel` and
`grid ingest --format telemetry` through grid.cli; errors name the line and field and never wrap
at 80 columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from grid.cli import app
from grid.store.engine import make_engine
from grid.store.live import active_orders, latest_states, prices_as_of, weather_as_of

SITE = {
    "site": {"id": "q1"},
    "connections": [{"id": "trafo", "rated_kva": 400}],
    "households": [{"id": "h1", "connection": "trafo", "meter_id": "M-001", "annual_kwh": 3500}],
    "batteries": [
        {"id": "bat-1", "connection": "trafo", "capacity_kwh": 10, "charge_kw": 5, "discharge_kw": 5},
    ],
}
TOMORROW = (pd.Timestamp.now("UTC") + pd.Timedelta(days=1)).floor("D")


def _setup(tmp_path: Path) -> tuple[str, Path]:
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(SITE))
    return f"sqlite:///{tmp_path / 'q.sqlite'}", site


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})
    return result.exit_code, result.output


def test_prices_and_weather_import(tmp_path: Path) -> None:
    db, site = _setup(tmp_path)
    prices = tmp_path / "prices.csv"
    rows = [f"{(TOMORROW + pd.Timedelta(hours=h)).isoformat()},{90 + h}" for h in range(24)]
    prices.write_text("start,price_eur_per_mwh\n" + "\n".join(rows) + "\n")
    code, output = _run("prices", "import", str(prices), "--site", str(site), "--db", db)
    assert code == 0, output
    assert "24 prices for q1 stored" in output
    index = pd.date_range(TOMORROW, periods=8, freq="15min", tz="UTC")
    frame = prices_as_of(make_engine(db), "q1", pd.Timestamp.now("UTC"), index)
    assert list(frame["source"]) == ["published"] * 8 and frame["price_eur_per_kwh"].iloc[4] == 0.091

    bad = tmp_path / "bad-prices-with-a-rather-long-file-name-so-that-the-error-passes-80-columns.csv"
    bad.write_text(f"start,price\n{TOMORROW.isoformat()},12\n2026-13-01T00:00:00+01:00,5\n")
    code, output = _run("prices", "import", str(bad), "--site", "q1", "--unit", "EUR/MWh", "--db", db)
    assert code == 2
    line = next(x for x in output.splitlines() if "line 3" in x)
    assert f"{bad.name} line 3: start: is not an ISO 8601 time" in line  # whole, on one line
    code, output = _run("prices", "import", str(bad), "--site", "q1", "--db", db)
    assert code == 2 and "--unit: is needed" in output

    weather = tmp_path / "weather.csv"
    weather.write_text(
        f"timestamp,temp_degc\n{TOMORROW.isoformat()},-2.5\n{(TOMORROW + pd.Timedelta(hours=1)).isoformat()},-3\n"
    )
    code, output = _run("weather", "import", str(weather), "--site", "q1", "--db", db, "--source", "dwd")
    assert code == 0, output
    temps = weather_as_of(make_engine(db), "q1", pd.Timestamp.now("UTC"), index)
    assert list(temps["value"]) == [-2.5] * 4 + [-3.0] * 4


def test_limits_add_list_cancel(tmp_path: Path) -> None:
    db, site = _setup(tmp_path)
    start, end = TOMORROW.isoformat(), (TOMORROW + pd.Timedelta(hours=2)).isoformat()
    base = ["limits", "add", "--site", str(site), "--db", db, "--start", start, "--end", end]
    code, output = _run(*base, "--connection", "trafo", "--import-kw", "120", "--reason", "§14a [dimming]")
    assert code == 0, output
    order_id = output.split("limit order ")[1].split()[0]
    code, output = _run(*base, "--connection", "T9", "--reason", "congestion")
    assert code == 2
    assert "connection: unknown connection of site 'q1', got 'T9'" in output
    assert "import_kw: give import_kw or export_kw (or both)" in output
    code, output = _run("limits", "list", "--site", "q1", "--db", db)
    line = next(x for x in output.splitlines() if order_id in x)
    assert "import <= 120 kW" in line and "§14a [dimming]" in line and start.replace("+00:00", "") in line
    code, output = _run("limits", "cancel", order_id, "--site", "q1", "--db", db)
    assert code == 0 and f"limit order {order_id} cancelled" in output
    assert active_orders(make_engine(db), "q1", TOMORROW, TOMORROW + pd.Timedelta(days=1)) == []
    code, output = _run("limits", "cancel", "nope", "--site", "q1", "--db", db)
    assert code == 2 and "no limit order nope at site q1" in output


def test_ingest_telemetry_csv(tmp_path: Path) -> None:
    db, site = _setup(tmp_path)
    data = tmp_path / "telemetry.csv"
    data.write_text(
        "asset_id,timestamp,quantity,value,unit\n"
        "bat-1,2026-01-15T10:00:00+01:00,soc,60,%\n"
        "bat-1,2026-01-15T10:15:00+01:00,soc,11,kWh\n"
        "bat-1,2026-01-15T10:30:00,power,2,kW\n"
    )
    code, output = _run("ingest", str(data), "--site", str(site), "--format", "telemetry", "--db", db)
    assert code == 0, output
    assert "accepted" in output and "rejected" in output
    state = latest_states(make_engine(db), "q1", "2026-01-16T00:00:00Z")
    assert state["bat-1"][0] == 6.0
