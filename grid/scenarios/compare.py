"""Results tables and the comparison against the baseline; CSV and Parquet files.

A *results table* has one row per evaluation: ``scenario``, ``status``, ``message``, ``seconds``
(wall) and ``cpu_seconds``, the sweep parameters as ``param.<name>``, and every KPI as a column
(units in the names). The
*comparison* is long: one row per scenario and KPI with ``baseline``, ``value``, ``delta`` (value -
baseline, in the KPI's unit) and ``delta_rel`` (delta / |baseline|; empty when the baseline is 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from grid.errors import InputError

if TYPE_CHECKING:
    from grid.scenarios.evaluate import Evaluation

META = ("scenario", "status", "message", "seconds", "cpu_seconds")
PARAM_PREFIX = "param."
SUFFIXES = (".csv", ".parquet")


def result_row(ev: Evaluation) -> dict[str, object]:
    """One evaluation as a flat row."""
    row: dict[str, object] = {
        "scenario": ev.name,
        "status": ev.status,
        "message": ev.message,
        "seconds": ev.seconds,
        "cpu_seconds": ev.cpu_seconds,
    }
    row.update({f"{PARAM_PREFIX}{k}": _param(v) for k, v in ev.params.items()})
    row.update(ev.kpis)
    return row


def _param(value: object) -> object:
    # Parquet columns need one type; lists or dicts of a case are kept as their text
    return value if isinstance(value, bool | int | float | str) or value is None else str(value)


def results_table(evaluations: Iterable[Evaluation]) -> pd.DataFrame:
    """One row per evaluation (KPI columns in first-seen order)."""
    return pd.DataFrame([result_row(ev) for ev in evaluations])


def kpi_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in META and not c.startswith(PARAM_PREFIX)]


def compare_rows(table: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Every other scenario's KPIs against the row named `baseline` (long format, see module doc).

    Scenarios that did not solve are listed with their status and empty values.
    """
    if "scenario" not in table.columns or baseline not in set(table["scenario"]):
        names = ", ".join(map(str, table.get("scenario", pd.Series(dtype=str)).tolist()))
        raise InputError("--baseline", f"no scenario of that name in the results (have: {names})", baseline)
    base = table[table["scenario"] == baseline].iloc[0]
    kpis = kpi_columns(table)
    rows = []
    for _, row in table.iterrows():
        if row["scenario"] == baseline:
            continue
        for kpi in kpis:
            ref, value = _float(base.get(kpi)), _float(row.get(kpi))
            delta = value - ref
            rows.append(
                {
                    "scenario": row["scenario"],
                    "status": row.get("status", ""),
                    "kpi": kpi,
                    "baseline": ref,
                    "value": value,
                    "delta": delta,
                    "delta_rel": delta / abs(ref) if ref != 0 else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=["scenario", "status", "kpi", "baseline", "value", "delta", "delta_rel"])


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def write_table(table: pd.DataFrame, path: Path) -> Path:
    """Write `table` as CSV or Parquet, chosen by the file's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        table.to_csv(path, index=False, lineterminator="\n")
    else:
        raise InputError(str(path), f"unknown table format (use {' or '.join(SUFFIXES)})", path.suffix)
    return path


def read_table(path: Path) -> pd.DataFrame:
    """A results table from CSV or Parquet."""
    if path.suffix not in SUFFIXES:
        raise InputError(str(path), f"unknown table format (use {' or '.join(SUFFIXES)})", path.suffix)
    if not path.exists():
        raise InputError(str(path), "no such file")
    table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, keep_default_na=False)
    if "scenario" not in table.columns:
        raise InputError(str(path), "is not a results table (no 'scenario' column)")
    if path.suffix == ".csv":
        for col in kpi_columns(table):
            table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def write_results(evaluations: list[Evaluation], out_dir: Path, baseline: str | None) -> list[Path]:
    """results.{csv,parquet} and, with a baseline, comparison.{csv,parquet} in `out_dir`."""
    table = results_table(evaluations)
    paths = [write_table(table, out_dir / f"results{s}") for s in SUFFIXES]
    if baseline is not None and baseline in set(table.get("scenario", [])):
        comparison = compare_rows(table, baseline)
        paths += [write_table(comparison, out_dir / f"comparison{s}") for s in SUFFIXES]
    return paths
