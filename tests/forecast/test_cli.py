"""`grid forecast backtest` on a series CSV, and the messages for bad series files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from grid.forecast.cli import app, parse_hours

from .conftest import quarter_hours, weekly_pattern_kw

runner = CliRunner()


def _write(path: Path, index: pd.DatetimeIndex, values: np.ndarray, column: str = "value_kw") -> Path:
    lines = ["timestamp," + column] + [f"{t.isoformat()},{v:.4f}" for t, v in zip(index, values, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def series_csv(tmp_path: Path) -> Path:
    index = quarter_hours("2026-01-12T00:00:00+01:00", 30)
    rng = np.random.default_rng(1)
    values = weekly_pattern_kw(index).to_numpy() + rng.normal(0, 0.1, len(index))
    keep = np.ones(len(index), bool)
    keep[2000:2010] = False  # a gap: skipped, not filled
    return _write(tmp_path / "load.csv", index[keep], values[keep])


def test_backtest_series_writes_metrics_json(series_csv: Path, tmp_path: Path) -> None:
    temp = tmp_path / "temp.csv"
    index = quarter_hours("2026-01-12T00:00:00+01:00", 30)
    temp.write_text(
        "timestamp,temp_degc\n" + "".join(f"{t.isoformat()},{2 + np.sin(i / 20):.2f}\n" for i, t in enumerate(index)),
        encoding="utf-8",
    )
    report = tmp_path / "metrics.json"
    args = ["backtest", "--series", str(series_csv), "--temperature", str(temp), "--days", "7", "--horizon", "24h"]
    result = runner.invoke(app, [*args, "--report", str(report), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    metrics = json.loads(report.read_text())
    for key in ("mae", "rmse", "mase", "mae_naive", "pinball", "coverage_80", "n_points"):
        assert key in metrics
    assert set(metrics["pinball"]) == {"0.1", "0.5", "0.9"}
    assert metrics["n_points"] + metrics["n_skipped"] == 7 * 96
    assert metrics["n_skipped"] > 0
    assert "missing interval(s)" in result.output and "MAE" in result.output
    assert (tmp_path / "out" / "backtest-load.png").stat().st_size > 1000
    points = pd.read_csv(tmp_path / "out" / "backtest-load.csv")
    assert {"timestamp", "origin", "lead_h", "actual_kw", "naive_kw", "q0.1", "q0.5", "q0.9"} <= set(points.columns)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: lines.__setitem__(5, lines[5].replace("+00:00", "")), "line 6: timestamp has no UTC offset"),
        (lambda lines: lines.insert(6, lines[5]), "line 7: duplicate timestamp"),
        (lambda lines: lines.insert(6, lines[2]), "line 7: timestamp goes backwards"),
        (lambda lines: lines.__setitem__(0, "timestamp,value_kwh"), "column value_kwh: expected value_kw"),
        (lambda lines: lines.__setitem__(9, lines[9].split(",")[0] + ",abc"), "line 10 column value_kw: not a finite"),
        (lambda lines: lines.__setitem__(4, lines[4].replace(":00+", ":07+", 1)), "line 5: not on the 15-minute grid"),
    ],
)
def test_bad_series_names_the_row(series_csv: Path, edit: object, message: str) -> None:
    lines = series_csv.read_text().splitlines()
    edit(lines)  # type: ignore[operator]
    series_csv.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["backtest", "--series", str(series_csv), "--days", "7"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_too_little_history_is_explained(tmp_path: Path) -> None:
    index = quarter_hours("2026-01-12T00:00:00+01:00", 10)
    path = _write(tmp_path / "short.csv", index, weekly_pattern_kw(index).to_numpy())
    result = runner.invoke(app, ["backtest", "--series", str(path), "--days", "28"])
    assert result.exit_code == 2
    assert "too little history" in " ".join(result.output.split())


def test_parse_hours() -> None:
    assert (
        parse_hours("24h") == 24 and parse_hours("90min") == 1.5 and parse_hours("2d") == 48 and parse_hours("6") == 6
    )


def test_backtest_on_a_shipped_real_meter_names_its_data(tmp_path: Path) -> None:
    report = tmp_path / "m.json"
    args = ["backtest", "--real", "ihepc:total", "--model", "recent", "--days", "2"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path), "--report", str(report)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(report.read_text(encoding="utf-8"))
    assert metrics["data"].startswith("real: ihepc:total, UCI household") and "held out" in metrics["data"]
    assert metrics["n_origins"] == 2 and metrics["n_skipped"] == 0
    bad = runner.invoke(app, ["backtest", "--real", "simbench:nope", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "simbench:nope" in bad.output
