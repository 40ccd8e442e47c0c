"""``grid performance``: the hand case of test_performance.py evaluated and printed (tables and
JSON) from a store file; a bad option is named on one line at 80 columns (exit status 2)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from grid.cli import app
from grid.store.engine import make_engine
from grid.store.migrate import upgrade
from tests.schedule.test_performance import populate

runner = CliRunner()
PERIOD = ["--site", "s1", "--start", "2026-01-15T01:00:00+01:00", "--end", "2026-01-15T02:00:00Z"]


def _store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'perf.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    populate(engine)
    engine.dispose()
    return url


def test_performance_command(tmp_path: Path) -> None:
    url = _store(tmp_path)
    first = runner.invoke(app, ["performance", *PERIOD, "--db", url], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "8 intervals not evaluated yet" in first.output
    table = runner.invoke(app, ["performance", *PERIOD, "--evaluate", "--db", url], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "total: 3 intervals above a limit (1.250 kWh), import 27.500 kWh, cost 8.00 EUR" in table.output
    assert "§14a dimmings in force: 1 device-intervals, 0.300 kWh" in table.output
    hp_row = next(line for line in table.output.splitlines() if "hp1" in line)
    assert "0%" in hp_row and "1.500" in hp_row
    as_json = runner.invoke(app, ["performance", *PERIOD, "--json", "--db", url])
    assert as_json.exit_code == 0, as_json.output
    k = json.loads(as_json.output)
    assert k["assets"]["hp1"]["followed_share"] == 0.0 and k["ev_sessions"]["car1"]["delivered_kwh"] == 8.0


def test_bad_options_are_named_unwrapped(tmp_path: Path) -> None:
    url = _store(tmp_path)
    naive = [*PERIOD[:3], "2026-01-15T00:00:00", *PERIOD[4:]]
    r = runner.invoke(app, ["performance", *naive, "--db", url], env={"COLUMNS": "80"})
    assert r.exit_code == 2
    assert (
        "error: --start: has no UTC offset (write e.g. 2026-01-15T00:00:00+01:00), got '2026-01-15T00:00:00'"
        in r.output
    )
    backwards = [*PERIOD[:5], "2026-01-14T00:00:00Z"]
    r = runner.invoke(app, ["performance", *backwards, "--db", url], env={"COLUMNS": "80"})
    assert r.exit_code == 2 and "--end: must be after --start" in r.output
    r = runner.invoke(app, ["performance", *PERIOD[2:], "--site", "nowhere", "--db", url], env={"COLUMNS": "80"})
    assert r.exit_code == 2 and "site: unknown site" in r.output
