"""`grid scenario run|compare` and `grid sweep run`, mounted as grid/cli.py will mount them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from grid.scenarios.cli import app, sweep_app
from tests.scenarios.helpers import EVENING, write_yaml

root = typer.Typer()
root.add_typer(app, name="scenario")
root.add_typer(sweep_app, name="sweep")
runner = CliRunner()


def scenario_file(tmp: Path, site: Path, name: str, edits: list[dict[str, Any]]) -> Path:
    return write_yaml(tmp / f"{name}.yaml", {"name": name, "baseline": str(site), "period": EVENING, "edits": edits})


def test_run_then_compare(small_site_path: Path, tmp_path: Path) -> None:
    battery = scenario_file(
        tmp_path, small_site_path, "bat", [{"kind": "add_battery", "connection": "T2", "capacity_kwh": 80}]
    )
    pv = scenario_file(tmp_path, small_site_path, "pv", [{"kind": "scale_pv", "scale": 2}])
    for spec in (battery, pv):
        res = runner.invoke(root, ["scenario", "run", str(spec), "--out", str(tmp_path / spec.stem)])
        assert res.exit_code == 0, res.output
        assert f"{spec.stem} (optimal" in res.output and "vs baseline" in res.output
        assert (tmp_path / spec.stem / "comparison.parquet").exists()
    out = tmp_path / "both.csv"
    res = runner.invoke(
        root,
        [
            "scenario",
            "compare",
            str(tmp_path / "bat" / "results.parquet"),
            str(tmp_path / "pv" / "results.csv"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    both = pd.read_csv(out)
    assert set(both["scenario"]) == {"bat", "pv"}
    pv_rows = both[(both["scenario"] == "pv") & (both["kpi"] == "pv_generation_kwh")]
    assert pv_rows["value"].iloc[0] == 2 * pv_rows["baseline"].iloc[0] or pv_rows["baseline"].iloc[0] == 0


def test_bad_input_exits_2_naming_the_field(small_site_path: Path, tmp_path: Path) -> None:
    bad_value = scenario_file(tmp_path, small_site_path, "neg", [{"kind": "scale_pv", "scale": -1}])
    res = runner.invoke(root, ["scenario", "run", str(bad_value)])
    assert res.exit_code == 2
    assert "edits[0].scale: must be > 0, got -1" in res.output
    bad_ref = scenario_file(
        tmp_path, small_site_path, "t9", [{"kind": "set_transformer", "connection": "T9", "rated_kva": 9}]
    )
    res = runner.invoke(root, ["scenario", "run", str(bad_ref), "--out", str(tmp_path / "t9")])
    assert res.exit_code == 2
    assert "edits[0].connection: unknown connection point 'T9'" in res.output
    # a long path: the error (which people copy) is printed on one line, whatever the width
    missing = tmp_path / ("d" * 90) / "nothing.parquet"
    res = runner.invoke(root, ["scenario", "compare", str(missing)])
    assert res.exit_code == 2
    assert any(f"{missing}: no such file" in line for line in res.output.splitlines()), res.output


def test_sweep_run_on_an_existing_scheduler(small_site_path: Path, tmp_path: Path, client: Any) -> None:
    spec = write_yaml(
        tmp_path / "sweep.yaml",
        {
            "name": "cli_sweep",
            "baseline": str(small_site_path),
            "period": EVENING,
            "edits": [{"kind": "scale_pv", "scale": "${k}"}],
            "parameters": {"k": [0.5, -1]},
        },
    )
    address = client.scheduler.address
    res = runner.invoke(root, ["sweep", "run", str(spec), "--scheduler", address, "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert list(table["status"]) == ["optimal", "optimal", "invalid"]
    assert "edits[0].scale: must be > 0, got -1" in table["message"].iloc[2]
    assert len(list((tmp_path / "out" / "cases").glob("*.parquet"))) == 3


@pytest.mark.parametrize("width", [80, 110])
def test_sweep_table_keeps_case_names_whole(width: int) -> None:
    """The sweep table at 80 and 110 columns: every case name whole on one line (people copy
    them); the KPI headers give way instead."""
    import io

    from rich.console import Console

    from grid.scenarios import cli as scenario_cli

    names = ["baseline", "battery_kwh=120,ev_share=0.6", "battery_kwh=240,ev_share=0.6"]
    table = pd.DataFrame({"scenario": names, "status": "optimal", "cost_eur": [100.0, 90.5, 88.25]})
    buffer = io.StringIO()
    saved = scenario_cli.console
    scenario_cli.console = Console(file=buffer, width=width)
    try:
        scenario_cli.print_sweep_summary(table)
    finally:
        scenario_cli.console = saved
    lines = buffer.getvalue().splitlines()
    for name in names:
        assert any(name in line for line in lines), (name, buffer.getvalue())
