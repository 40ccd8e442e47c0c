"""The `grid plan` command end to end on the demo neighbourhood, and its input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from grid.cli import DEMO_SITE, app
from grid.domain import load_site
from grid.series import load_inputs
from grid.timeindex import horizon_index
from models.solve import plan_site
from models.tables import build_tables
from tests.models.invariants import check_plan

runner = CliRunner()
PLAN_KEYS = {
    "plan_id",
    "site",
    "computed_at",
    "start",
    "end",
    "resolution_min",
    "status",
    "objective_eur",
    "kpis",
    "violations",
    "intervals",
    "connections",
    "assets",
}


def test_plan_command_writes_the_documented_json(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", "--site", str(DEMO_SITE), "--hours", "48", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "KPIs" in result.output and "timings" in result.output
    plan = json.loads(out.read_text())
    assert plan.keys() >= PLAN_KEYS
    assert plan["status"] in ("optimal", "optimal_with_violations")
    assert len(plan["intervals"]) == 192 and plan["resolution_min"] == 15
    assert pd.Timestamp(plan["start"]) == pd.Timestamp(plan["intervals"][0])
    for v in plan["violations"]:
        assert {"kind", "asset", "start", "amount", "unit"} <= v.keys()
    for cid, conn in plan["connections"].items():
        assert set(conn) >= {
            "import_kw",
            "export_kw",
            "limit_import_kw",
            "limit_export_kw",
            "marginal_price_eur_per_kwh",
        }
        drawn = [0.0] * 192
        for asset in plan["assets"].values():
            if asset["connection"] == cid:
                drawn = [d + p for d, p in zip(drawn, asset["power_kw"], strict=True)]
        for t in range(192):  # balance as written in the JSON (values are rounded to 1e-6)
            assert conn["import_kw"][t] - conn["export_kw"][t] == pytest.approx(drawn[t], abs=1e-3)
    storage = [a for a in plan["assets"].values() if a["type"] in ("battery", "heat_pump")]
    assert storage and all(len(a["soc_kwh"]) == 193 for a in storage)
    par14a = [a for a in plan["assets"].values() if "requested_kw" in a]
    assert par14a and all(len(a["dimmed_kw"]) == 192 for a in par14a)


def test_demo_plan_keeps_every_invariant_and_relieves_the_congested_transformer() -> None:
    site = load_site(DEMO_SITE)
    inputs = load_inputs(site)
    index = horizon_index(inputs.index[0], 48, 15)
    plan = plan_site(site, inputs, index)
    check_plan(plan, build_tables(site, inputs, index))
    # T2 is over its limit in the uncontrolled case (see data/demo/PROVENANCE.md); the plan keeps it within
    t2 = plan.connections["T2"]
    assert max(t2["import_kw"]) <= t2["limit_import_kw"][0] + 1e-6
    assert not [v for v in plan.violations if v.kind.endswith("limit_exceeded")]


def test_plan_csv_format(tmp_path: Path) -> None:
    out = tmp_path / ("a-folder-with-a-long-name-" * 3) / "plan.csv"  # "written: <path>" > 80 columns
    out.parent.mkdir()
    result = runner.invoke(
        app,
        ["plan", "--site", str(DEMO_SITE), "--hours", "2", "--out", str(out), "--format", "csv"],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"written: {out}" in lines  # paths people copy never wrap
    assert any(line.startswith("Plan ") and line.endswith(": optimal") for line in lines)
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["interval", "entity", "type", "quantity", "value"]
    assert set(frame["interval"].unique()) == set(
        pd.date_range(frame["interval"].min(), periods=8, freq="15min").map(lambda t: t.isoformat())
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--site", "nope.yaml"], "nope.yaml: cannot read site file"),
        (["--site", str(DEMO_SITE), "--format", "xml"], "--format: must be json or csv, got 'xml'"),
        (["--site", str(DEMO_SITE), "--start", "2026-01-14T00:00:00"], "has no UTC offset"),
        (["--site", str(DEMO_SITE), "--start", "2026-01-14T00:07:00+00:00"], "not on the 15-minute grid"),
        (["--site", str(DEMO_SITE), "--hours", "400"], "inputs: do not cover the horizon"),
    ],
)
def test_plan_input_errors_exit_2_with_the_place(args: list[str], expected: str) -> None:
    result = runner.invoke(app, ["plan", *args])
    assert result.exit_code == 2
    assert expected in result.output.replace("\n", " ") or expected in (result.stderr or "")


def test_bad_input_file_names_file_and_line(tmp_path: Path) -> None:
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    for f in DEMO_SITE.parent.iterdir():
        (site_dir / f.name).write_bytes(f.read_bytes())
    prices = site_dir / "prices.csv"
    lines = prices.read_text().splitlines()
    head, cells = lines[39].split(",", 1)
    lines[39] = head + "," + "x" + cells[1:]  # line 40 of the file gets a bad number
    prices.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["plan", "--site", str(site_dir / "site.yaml")])
    assert result.exit_code == 2
    assert "prices.csv line 40 column price_eur_per_kwh: not a finite number" in (result.stderr or result.output)


def test_demo_command_plans_stores_and_the_api_serves_the_plan(tmp_path: Path) -> None:
    import datetime as dt
    import re

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from grid.store.engine import make_engine

    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    result = runner.invoke(
        app, ["demo", "--no-history", "--no-serve", "--hours", "6", "--out", str(tmp_path / "out"), "--db", url]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads((tmp_path / "out" / "demo-plan.json").read_text())
    key = re.search(r"(qk_\S+)", result.output)
    assert key is not None, result.output
    engine = make_engine(url)
    settings = Settings(database_url=url, sites={"demo": DEMO_SITE}, scheduler_enabled=False, mqtt_enabled=False)
    clock_now = dt.datetime.fromisoformat(plan["start"]) + dt.timedelta(minutes=20)
    with TestClient(create_app(settings, engine=engine, clock=lambda: clock_now)) as client:
        response = client.get("/api/v1/sites/demo/setpoints?horizon=2", headers={"X-API-Key": key.group(1)})
    engine.dispose()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["plan_id"] == plan["plan_id"]
    assert body["stale"] is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GRID_PORT": "80000"}, "GRID_PORT (environment): Input should be less than or equal to 65535"),
        ({"GRID_REPLAN_EVERY_MIN": "often"}, "GRID_REPLAN_EVERY_MIN (environment): Input should be a valid integer"),
    ],
)
def test_demo_names_a_bad_setting_before_its_work(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    """`grid demo` serves with the GRID_* settings: one that does not parse stops it at once (exit 2,
    nothing written), not after the history, the forecasts and the plan."""
    out = tmp_path / "out"
    result = runner.invoke(app, ["demo", "--out", str(out), "--db", f"sqlite:///{tmp_path / 'd.sqlite'}"], env=env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert expected in " ".join((result.stderr or result.output).split())
    assert not out.exists() and not (tmp_path / "d.sqlite").exists()


def test_demo_port_out_of_range_is_refused() -> None:
    result = runner.invoke(app, ["demo", "--port", "70000", "--no-history", "--no-serve"])
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in (text := " ".join((result.stderr or result.output).split()))
    assert "65535" in text
