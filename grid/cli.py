"""The `grid` command line: plan a site, run the demo, and (from other modules) ingest, forecast,
serve, run scenarios.

This is the composition root: the one module of `grid` that imports `api` (for `grid serve` and
`grid keys`); everything else imports downward only (api -> grid -> models).

Every command validates its input and exits with status 2 and a message naming the place of the
problem (YAML path, file and line) instead of a traceback; status 1 means the plan failed.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from api import cli as api_cli
from grid import sites_cli
from grid.domain import Site, load_site
from grid.errors import InputError, InputErrors
from grid.fleet import cli as fleet_cli
from grid.forecast import cli as forecast_cli
from grid.ingest import cli as ingest_cli
from grid.ingest import live_cli
from grid.scenarios import cli as scenario_cli
from grid.schedule import performance_cli
from grid.series import SiteInputs, load_inputs
from grid.sim import cli as sim_cli
from grid.timeindex import horizon_index, to_utc

if TYPE_CHECKING:  # the solver, forecasting and the demo load only when a command needs them
    import pandas as pd

    from models.plan import Plan

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Quartiere: neighbourhood load management.")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"quartiere {version('quartiere')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Quartiere: neighbourhood load management."""


app.command("ingest")(ingest_cli.ingest_command)
app.command("mqtt-ingest")(ingest_cli.mqtt_ingest_command)
app.add_typer(ingest_cli.db_app, name="db")
app.command("serve")(api_cli.serve_command)
app.add_typer(forecast_cli.app, name="forecast")
app.add_typer(scenario_cli.app, name="scenario")
app.add_typer(scenario_cli.sweep_app, name="sweep")
app.add_typer(api_cli.keys_app, name="keys")
app.add_typer(live_cli.prices_app, name="prices")
app.add_typer(live_cli.weather_app, name="weather")
app.add_typer(live_cli.limits_app, name="limits")
app.command("performance")(performance_cli.performance_command)
app.command("simulate")(sim_cli.simulate_command)
app.add_typer(fleet_cli.app, name="fleet")
app.add_typer(sites_cli.app, name="sites")
console = Console()
out_console = Console(soft_wrap=True)  # keys, URLs and paths people copy never wrap
err_console = Console(stderr=True, soft_wrap=True)  # errors people copy never wrap

DEMO_SITE = Path(__file__).resolve().parent.parent / "data" / "demo" / "site.yaml"


def fail_input(exc: InputError | InputErrors) -> typer.Exit:
    """Print an input error for a person and return the exit to raise (status 2)."""
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(2)


def plan_index(site: Site, inputs: SiteInputs, start: str | None, hours: float) -> pd.DatetimeIndex:
    first = inputs.index[0] if start is None else to_utc(start)
    return horizon_index(first, hours, site.site.resolution_min)


@app.command("plan")
def plan_command(
    site_path: Annotated[Path, typer.Option("--site", help="Site YAML file.")],
    hours: Annotated[float, typer.Option(help="Horizon in hours.")] = 48,
    start: Annotated[
        str | None, typer.Option(help="First interval, ISO 8601 with offset (default: first input interval).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the plan here.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
    time_limit: Annotated[float | None, typer.Option(help="Solver time limit in seconds.")] = None,
) -> None:
    """Optimise the site's dispatch over the horizon and print a summary."""
    if fmt not in ("json", "csv"):
        raise fail_input(InputError("--format", "must be json or csv", fmt))
    try:
        site = load_site(site_path)
        inputs = load_inputs(site)
        index = plan_index(site, inputs, start, hours)
        from models.solve import SolveOptions, plan_site  # the solver loads once the input is good

        plan = plan_site(site, inputs, index, SolveOptions(time_limit_s=time_limit))
    except (InputError, InputErrors) as exc:
        raise fail_input(exc) from None
    if out is not None:
        out.write_text(plan.to_json(indent=1) if fmt == "json" else plan.to_csv(), encoding="utf-8")
    print_summary(plan, out)
    if plan.status == "failed":
        raise typer.Exit(1)


@app.command("demo")
def demo_command(
    hours: Annotated[
        float, typer.Option(help="Horizon in hours (the scheduler's re-plans use the same; inputs cover 48 h).")
    ] = 24,
    out: Annotated[Path, typer.Option(help="Output folder (history file, plan JSON).")] = Path("out"),
    db: Annotated[str | None, typer.Option(help="Database URL.", envvar="GRID_DATABASE_URL")] = None,
    history: Annotated[bool, typer.Option(help="Write and ingest the meter history first.")] = True,
    serve: Annotated[bool, typer.Option(help="Serve the API and scheduler afterwards (Ctrl-C stops).")] = True,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the API.")] = 8000,
    host: Annotated[str, typer.Option(help="Address the API listens on (127.0.0.1: this machine only).")] = "127.0.0.1",
    simulate_days: Annotated[
        float, typer.Option(help="Serve the closed-loop simulator (grid simulate) for this many days instead.")
    ] = 0.0,
    pace_s: Annotated[float, typer.Option(help="With --simulate-days: wall seconds per simulated 15 min.")] = 1.0,
) -> None:
    """The main job on the demo neighbourhood: ingest its meter history, plan the next 24 h, store and
    print the plan, then serve it (API, dashboard data, scheduler) on a clock replaying the demo days.
    With --simulate-days the API is served on the simulator's clock with the closed loop behind it."""
    if serve or simulate_days > 0:  # a GRID_* setting that does not parse: say so now, not minutes later
        from api.settings import load_settings

        try:
            load_settings()
        except InputErrors as exc:
            raise fail_input(exc) from None
    if simulate_days > 0:
        from grid.sim.run import SimConfig, prepare
        from grid.sim.serve import serve_simulation

        world = prepare(SimConfig(DEMO_SITE, days=simulate_days, history=history, out_dir=out / "sim"))
        serve_simulation(world, port, pace_s)
        return
    from grid.demo_job import DemoPaths, demo_key, plan_demo, prepare_history, serve_demo

    paths = DemoPaths(out=out)
    try:
        if history:
            prepare_history(paths, db, out_console)  # paths in its lines: never wrapped
        plan = plan_demo(paths, db, hours, out_console, forecast=history)
    except (InputError, InputErrors) as exc:
        raise fail_input(exc) from None
    print_summary(plan, paths.plan_json)
    if plan.status == "failed":
        raise typer.Exit(1)
    key = demo_key(db)
    for line in demo_key_lines(key, host, port):
        out_console.print(line, highlight=False, markup=False)
    if serve:
        serve_demo(plan, db, port, host)


def demo_key_lines(key: str, host: str, port: int) -> list[str]:
    """What `grid demo` prints about its key: each line whole (never wrapped), the key alone on its
    line so that a double click copies it."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}"
    return [
        "admin key for site demo (shown once; `grid keys list` shows it as admin):",
        key,
        f"dashboard: {url}/dashboard",
        f"try: curl -H 'X-API-Key: {key}' {url}/api/v1/sites/demo/setpoints",
    ]


def print_summary(plan: Plan, out: Path | None) -> None:
    status_style = {"optimal": "green", "optimal_with_violations": "yellow", "failed": "red"}[plan.status]
    out_console.print(  # the plan id and its period are copied: never wrapped
        f"[bold]Plan {plan.plan_id}[/] for site [bold]{plan.site}[/] "
        f"{plan.start.isoformat()} .. {plan.end.isoformat()} ({len(plan.index)} x {plan.resolution_min} min): "
        f"[{status_style}]{plan.status}[/]"
    )
    if plan.message:
        console.print(plan.message)
    kpis = Table(title="KPIs", show_header=True)
    kpis.add_column("figure")
    kpis.add_column("value", justify="right")
    for key, value in plan.kpis.items():
        kpis.add_row(key, f"{value:,.3f}")
    if plan.objective_eur is not None:
        kpis.add_row("objective_eur", f"{plan.objective_eur:,.3f}")
    console.print(kpis)
    conns = Table(title="Connections")
    for col in ("connection", "households", "peak import kW", "limit kW", "mean marginal EUR/kWh"):
        conns.add_column(col, justify="right")
    for cid, c in plan.connections.items():
        conns.add_row(
            cid,
            str(c["households"]),
            f"{c['peak_import_kw']:.1f}",
            f"{c['limit_import_kw'][0]:.1f}",
            f"{sum(c['marginal_price_eur_per_kwh']) / len(plan.index):.4f}",
        )
    if plan.connections:
        console.print(conns)
    if plan.violations:
        viol = Table(title=f"Violations ({len(plan.violations)})")
        for col in ("kind", "asset", "intervals", "total", "unit"):
            viol.add_column(col)
        counts: Counter[tuple[str, str, str]] = Counter()
        totals: dict[tuple[str, str, str], float] = {}
        for v in plan.violations:
            counts[v.kind, v.asset, v.unit] += 1
            totals[v.kind, v.asset, v.unit] = totals.get((v.kind, v.asset, v.unit), 0.0) + v.amount
        for (kind, asset, unit), n in counts.most_common(20):
            viol.add_row(kind, asset, str(n), f"{totals[kind, asset, unit]:.3f}", unit)
        console.print(viol)
    timings = ", ".join(f"{k} {v:.3f}" for k, v in plan.timings_s.items())
    console.print(f"timings (s): {timings}; solver: {plan.solver.get('termination', '?')}")
    if out is not None:
        out_console.print(f"written: {out}", highlight=False)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
