"""Command line of scenarios and sweeps: ``grid scenario run|compare`` and ``grid sweep run``.

Exit status as in ``grid plan``: 2 bad input (the message names the file and field), 1 a scenario
that could not be evaluated, 130 a sweep cancelled with Ctrl-C (finished results are on disk).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grid.errors import InputError, InputErrors, PlanError
from grid.scenarios.compare import compare_rows, read_table, write_results, write_table
from grid.scenarios.spec import BASELINE, load_scenario, load_sweep

if TYPE_CHECKING:  # the solver and Dask load when a run starts, not for --help
    from grid.scenarios.evaluate import Evaluation

app = typer.Typer(add_completion=False, no_args_is_help=True, help="What-if scenarios against a baseline.")
sweep_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Parameter sweeps of scenarios on Dask.")
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # errors people copy never wrap
OUT_ROOT = Path("out/scenarios")
# the figures a planner looks at first; `--all` shows every KPI
HEADLINE = (
    "cost_eur",
    "objective_eur",
    "import_kwh",
    "peak_import_kw",
    "hours_above_limit_h",
    "energy_above_limit_kwh",
    "uncontrolled_peak_import_kw",
    "uncontrolled_hours_above_limit_h",
    "uncontrolled_energy_above_limit_kwh",
    "self_consumption",
    "self_sufficiency",
    "co2_kg",
    "curtailed_kwh",
    "ev_energy_missed_kwh",
    "dimming_events",
    "dimmed_kwh",
)


def _check_baseline(path: Path) -> None:
    if not path.is_file():
        raise InputError("baseline", "no such site file", str(path))


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(2)


def print_comparison(comparison: pd.DataFrame, show_all: bool) -> None:
    """The comparison as one table per scenario (value, baseline, delta, delta %)."""
    for name, rows in comparison.groupby("scenario", sort=False):
        status = rows["status"].iloc[0]
        table = Table(title=f"{name} ({status}) vs {BASELINE}")
        for col in ("kpi", "baseline", "scenario", "delta", "delta %"):
            table.add_column(col, justify="left" if col == "kpi" else "right")
        shown = rows if show_all else rows[rows["kpi"].isin(HEADLINE) | rows["kpi"].str.startswith("peak_import_kw.")]
        for _, r in shown.iterrows():
            rel = "" if pd.isna(r["delta_rel"]) else f"{100 * r['delta_rel']:+.1f}"
            table.add_row(r["kpi"], f"{r['baseline']:,.3f}", f"{r['value']:,.3f}", f"{r['delta']:+,.3f}", rel)
        console.print(table)


SUMMARY = (
    "cost_eur",
    "peak_import_kw",
    "hours_above_limit_h",
    "uncontrolled_hours_above_limit_h",
    "ev_energy_missed_kwh",
    "dimmed_kwh",
)


def print_sweep_summary(table: pd.DataFrame) -> None:
    """One line per case: status, headline KPIs and the cost difference to the baseline."""
    out = Table(title="sweep results")
    names = [str(n) for n in table["scenario"]] if "scenario" in table else []
    # case names are what people copy: never cut or wrapped (the KPI headers wrap instead)
    out.add_column("scenario", no_wrap=True, min_width=max((len(n) for n in names), default=8))
    out.add_column("status", no_wrap=True)
    for col in (*SUMMARY, "delta cost_eur"):
        out.add_column(col, justify="right")
    base = table[table["scenario"] == BASELINE]
    base_cost = float(base["cost_eur"].iloc[0]) if len(base) and "cost_eur" in table else float("nan")
    for _, row in table.iterrows():
        values = [f"{row[k]:,.2f}" if k in row and pd.notna(row[k]) else "" for k in SUMMARY]
        cost = row.get("cost_eur")
        delta = f"{cost - base_cost:+,.2f}" if cost is not None and pd.notna(cost) else ""
        out.add_row(str(row["scenario"]), str(row["status"]), *values, delta)
    console.print(out)


def _print_failures(evaluations: list[Evaluation]) -> None:
    for ev in evaluations:
        if not ev.ok:
            err_console.print(f"[yellow]{ev.name}: {ev.status}[/] {ev.message}", highlight=False)


@app.command("run")
def scenario_run(
    file: Annotated[Path, typer.Argument(help="Scenario YAML (baseline + edits).")],
    out: Annotated[Path | None, typer.Option(help="Output directory (default out/scenarios/<name>).")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Show every KPI, not only the headline ones.")] = False,
) -> None:
    """Evaluate a scenario and its baseline; print and write the comparison (CSV and Parquet)."""
    try:
        spec = load_scenario(file)
        _check_baseline(spec.baseline_path)
        from grid.scenarios.evaluate import run_scenario  # the solver loads once the input is good

        columns = (TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=err_console, transient=True) as progress:  # a run takes tens of seconds
            progress.add_task(f"evaluating {spec.name} and its baseline on the site's input files", total=None)
            result = run_scenario(spec)
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from None
    except PlanError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    out_dir = out or OUT_ROOT / spec.name
    files = write_results([result.baseline, result.scenario], out_dir, BASELINE)
    _print_failures([result.scenario])
    if result.scenario.ok:
        print_comparison(result.comparison(), show_all)
    console.print(f"written: {', '.join(str(f) for f in files)}")
    if result.scenario.status == "invalid":
        raise typer.Exit(2)
    if not result.scenario.ok:
        raise typer.Exit(1)


@app.command("compare")
def scenario_compare(
    files: Annotated[list[Path], typer.Argument(help="Results tables (results.parquet / .csv) to combine.")],
    baseline: Annotated[str, typer.Option(help="Name of the baseline row.")] = BASELINE,
    out: Annotated[Path | None, typer.Option(help="Write the comparison here (.csv or .parquet).")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Show every KPI.")] = False,
) -> None:
    """Compare stored results against a baseline row (the first file's baseline by default)."""
    try:
        tables = [read_table(f) for f in files]
        combined = pd.concat(tables, ignore_index=True)
        # the same baseline stored by several runs: keep its first copy only
        combined = combined[~(combined["scenario"].duplicated() & (combined["scenario"] == baseline))]
        comparison = compare_rows(combined, baseline)
        print_comparison(comparison, show_all)
        if out is not None:
            write_table(comparison, out)
            console.print(f"written: {out}")
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from None


@sweep_app.command("run")
def sweep_run(
    file: Annotated[Path, typer.Argument(help="Sweep YAML (edit templates + parameters).")],
    workers: Annotated[int, typer.Option(min=1, help="Worker processes of the local Dask cluster.")] = 2,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of an existing Dask scheduler, e.g. tcp://host:8786.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output directory (default out/scenarios/<name>).")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Show every KPI of every case against the baseline.")] = False,
) -> None:
    """Run every case of a sweep on Dask; each finished case is written at once (Ctrl-C keeps them)."""
    try:
        spec = load_sweep(file)
        _check_baseline(spec.baseline_path)
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from None
    from grid.scenarios.sweep import SweepCancelled, run_sweep  # Dask and the solver, once the input is good

    out_dir = out or OUT_ROOT / spec.name
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"sweep {spec.name}", total=None)

        def advance(ev: Evaluation, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)
            progress.console.print(f"{ev.status:>24}  {ev.name}  ({ev.seconds:.1f} s)", highlight=False)

        try:
            result = run_sweep(spec, n_workers=workers, scheduler=scheduler, out_dir=out_dir, on_result=advance)
        except SweepCancelled as stop:
            progress.stop()
            done = stop.result
            err_console.print(
                f"cancelled: {len(done.evaluations)} finished result(s) kept in {out_dir}", highlight=False
            )
            raise typer.Exit(130) from None
    _print_failures(result.evaluations)
    base = result.baseline
    if base is None or not base.ok:
        err_console.print("[bold red]error:[/] the baseline could not be evaluated", highlight=False)
        raise typer.Exit(1)
    if show_all:
        print_comparison(result.comparison(), show_all)
    else:
        print_sweep_summary(result.table())
    console.print(f"written: {', '.join(str(f) for f in result.files)} and {out_dir / 'cases'}/*.parquet")
