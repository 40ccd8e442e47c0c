"""Command line of fleets: ``grid fleet generate`` and ``grid fleet plan``.

Kept light: the generator (demandlib, pvlib) loads when a command runs, not for ``grid --help``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from grid.fleet import DEFAULT_BUDGET_MB

if TYPE_CHECKING:
    from grid.fleet.round import RoundReport

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Many neighbourhoods: generated fleets.")
out_console = Console(soft_wrap=True)  # paths people copy never wrap
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # errors people copy never wrap


@app.command("generate")
def generate_command(
    sites: Annotated[int, typer.Option("--sites", min=1, help="Number of sites.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write <site id>/site.yaml (+ CSVs) into.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same seed gives the same fleet.")] = 1,
    hours: Annotated[int, typer.Option("--hours", min=1, help="Length of the input series, hours.")] = 48,
    prefix: Annotated[str, typer.Option("--prefix", help="Site ids are <prefix>-0001, ...")] = "fleet",
) -> None:
    """Write N varied synthetic neighbourhoods (50-600 households, 1-3 transformers, different PV,
    battery, EV and heat-pump shares, some congested) as site files `grid plan` reads."""
    from grid.fleet.generate import generate_fleet, write_fleet

    fleet = generate_fleet(sites, seed, hours=hours, prefix=prefix)
    paths = write_fleet(fleet, out, seed)
    congested = sum(bool(s.congested) for s in fleet)
    homes = sum(len(s.description["households"]) for s in fleet)
    out_console.print(
        f"{len(fleet)} sites ({homes} households, {congested} with a congested transformer), seed {seed}",
        highlight=False,
    )
    for path in paths[:3]:
        out_console.print(str(path), highlight=False, markup=False)
    if len(paths) > 3:
        out_console.print(f"... and {len(paths) - 3} more; summary: {Path(out) / 'fleet.json'}", highlight=False)


@app.command("plan")
def plan_command(
    sites_dir: Annotated[
        Path | None, typer.Option("--sites-dir", help="Folder of site YAML files (searched recursively).")
    ] = None,
    generate: Annotated[
        int | None, typer.Option("--generate", min=1, help="Plan a generated fleet of this many sites instead.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated fleet.")] = 1,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (default: local).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Workers of the local Dask cluster.")] = 2,
    hours: Annotated[float, typer.Option("--hours", min=0.25, help="Planning horizon, hours.")] = 24.0,
    start: Annotated[
        str | None, typer.Option("--start", help="Plan from this instant, ISO 8601 with offset (default: first input).")
    ] = None,
    budget_mb: Annotated[
        float, typer.Option("--budget-mb", min=1, help="Memory for kept models per worker, MB.")
    ] = DEFAULT_BUDGET_MB,
    time_limit: Annotated[float, typer.Option("--time-limit", min=1, help="Solver time limit per site, s.")] = 60.0,
    db: Annotated[str | None, typer.Option("--db", help="Store the plans here (default: a scratch SQLite).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="With --generate: write the sites here (default: scratch).")
    ] = None,
) -> None:
    """Plan every site once, all at the same time, on a Dask cluster; print one line per site and
    the totals. Exit status 1 when a site failed (its reason is printed), 2 for bad input."""
    import tempfile

    from grid.errors import InputError, InputErrors
    from grid.timeindex import to_utc

    if (sites_dir is None) == (generate is None):
        err_console.print("[bold red]error:[/] give either --sites-dir or --generate", highlight=False)
        raise typer.Exit(2)
    with tempfile.TemporaryDirectory(prefix="grid-fleet-") as scratch:
        try:
            if generate is not None:
                from grid.fleet.generate import generate_fleet, write_fleet

                write_fleet(generate_fleet(generate, seed), out or Path(scratch) / "sites", seed)
                sites_dir = out or Path(scratch) / "sites"
            assert sites_dir is not None
            from grid.fleet.round import find_sites, first_interval

            sites = find_sites(sites_dir)
            now = to_utc(start).to_pydatetime() if start else first_interval(sites[min(sites)])
        except (InputError, InputErrors) as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
        report = _plan_round(sites, now, scheduler, workers, hours, budget_mb, time_limit, db or _scratch_db(scratch))
    print_round(report)
    if any(r.status == "failed" for r in report.results):
        raise typer.Exit(1)


def _scratch_db(folder: str) -> str:
    return f"sqlite:///{Path(folder) / 'fleet.sqlite'}"


def _plan_round(
    sites: dict[str, Path],
    now: dt.datetime,
    scheduler: str | None,
    workers: int,
    hours: float,
    budget_mb: float,
    time_limit: float,
    db: str,
) -> RoundReport:
    from grid.fleet.executor import DaskExecutor
    from grid.fleet.round import fleet_service, plan_round
    from grid.store.engine import make_engine
    from grid.store.migrate import upgrade

    engine = make_engine(db)
    upgrade(engine)
    service = fleet_service(engine, sites, DaskExecutor.start(scheduler, workers, budget_mb), hours, time_limit)
    try:
        return plan_round(service, now)
    finally:
        service.close()
        engine.dispose()


def print_round(report: RoundReport) -> None:
    """One line per site (80 columns: the message is cut, ids never), the totals, then the reason
    of every failed site in full."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, width=min(console.width, 80))
    table.add_column("site", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("mode", no_wrap=True)
    table.add_column("worker", no_wrap=True)
    table.add_column("run s", justify="right", no_wrap=True)
    table.add_column("wait s", justify="right", no_wrap=True)
    table.add_column("message", overflow="ellipsis", no_wrap=True, ratio=1)
    for result in report.results:
        run = report.runs.get(result.site_id)
        mode = "" if run is None or run.warm is None else ("warm" if run.warm else "cold")
        wait = "" if run is None or run.queue_wait_s is None else f"{run.queue_wait_s:.1f}"
        worker = "" if run is None else run.worker.removeprefix("tcp://")
        table.add_row(
            result.site_id, STATUS_SHORT.get(result.status, result.status), mode, worker,
            f"{result.duration_s:.1f}", wait, result.message,
        )  # fmt: skip
    console.print(table)
    for line in round_totals(report):
        out_console.print(line, highlight=False)
    for result in report.results:
        if result.status == "failed":
            err_console.print(f"[yellow]{result.site_id} failed:[/] {result.message}", highlight=False)


#: statuses as the table shows them (the plan JSON has the long forms)
STATUS_SHORT = {"optimal_with_violations": "violations"}


def round_totals(report: RoundReport) -> list[str]:
    """The totals of a round: sites by status, warm and cold, workers, wall time and throughput."""
    runs = list(report.runs.values())
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts().items()))
    warm = sum(1 for r in runs if r.warm)
    cold = sum(1 for r in runs if r.warm is False)
    waits = [r.queue_wait_s for r in runs if r.queue_wait_s is not None]
    busy = sum(r.duration_s for r in runs)
    workers = len({r.worker for r in runs if r.worker})
    return [
        f"sites {len(report.results)}: {counts}",
        f"warm {warm}, cold {cold}, on {workers} worker(s)",
        f"round {report.seconds:.1f} s wall; runs {busy:.1f} s summed; "
        f"queue wait mean {sum(waits) / len(waits) if waits else 0.0:.1f} s, max {max(waits, default=0.0):.1f} s",
    ]
