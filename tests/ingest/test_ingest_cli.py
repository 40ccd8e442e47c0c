"""The Typer commands, wired as grid.cli wires them: `grid ingest`, `grid mqtt-ingest`,
`grid db upgrade`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from grid.ingest.cli import app, db_app, ingest_command, mqtt_ingest_command
from grid.store.migrate import head

grid = typer.Typer()
grid.command("ingest")(ingest_command)
grid.command("mqtt-ingest")(mqtt_ingest_command)
grid.add_typer(db_app, name="db")

SITE = {
    "site": {"id": "q1"},
    "connections": [{"id": "trafo", "rated_kva": 400}],
    "households": [{"id": "h1", "connection": "trafo", "meter_id": "M-001", "annual_kwh": 3500}],
}


def test_db_upgrade_then_ingest_a_file_with_a_site_yaml(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'q.sqlite'}"
    runner = CliRunner()
    result = runner.invoke(grid, ["db", "upgrade", "--db", db])
    assert result.exit_code == 0, result.output
    assert f"revision {head()}" in result.output
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(SITE))
    data = tmp_path / "meters.csv"
    data.write_text(
        "meter_id,timestamp,obis,value,unit\n"
        "M-001,2026-01-15T00:00:00,1-0:1.8.0,10.0,kWh\n"
        "M-001,2026-01-15T00:15:00,1-0:1.8.0,10.5,kWh\n"
        "M-002,2026-01-15T00:15:00,1-0:1.8.0,1.0,kWh\n"
    )
    report = tmp_path / "report.json"
    args = [
        "ingest",
        str(data),
        "--site",
        str(site),
        "--report",
        str(report),
        "--tz",
        "Europe/Berlin",
        "--db",
        db,
    ]
    result = runner.invoke(grid, args)
    assert result.exit_code == 0, result.output
    assert "accepted" in result.output
    doc = json.loads(report.read_text())
    assert (doc["rows_read"], doc["accepted"], doc["duplicates"], doc["revised"]) == (3, 2, 0, 0)
    assert doc["rejected"][0]["line"] == 4 and doc["rejected"][0]["field"] == "meter_id"
    again = runner.invoke(app, ["ingest", str(data), "--site", "q1", "--tz", "Europe/Berlin", "--db", db])
    assert again.exit_code == 0 and "duplicates" in again.output


def test_file_level_errors_exit_with_2(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'q.sqlite'}"
    bad = tmp_path / "bad.csv"
    bad.write_text("meter,when\nx,y\n")
    result = CliRunner().invoke(app, ["ingest", str(bad), "--site", "nope", "--db", db])
    assert result.exit_code == 2
    assert "missing column" in result.output
    standalone = CliRunner().invoke(app, ["db-upgrade", "--db", db])
    assert standalone.exit_code == 0, standalone.output
