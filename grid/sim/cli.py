"""``grid simulate``: the closed loop against simulated devices, compared with no control and with
perfect foresight; a table on the terminal and a JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from grid.errors import InputError, InputErrors

if TYPE_CHECKING:  # the simulator (solver, forecasts, demo generator) loads when the command runs
    from grid.sim.run import Outcome, SimConfig, World

DEMO_SITE = Path(__file__).resolve().parents[2] / "data" / "demo" / "site.yaml"


def run_all(config: SimConfig) -> tuple[World, list[Outcome]]:
    """Uncontrolled, closed loop and perfect foresight over the same days."""
    from grid.sim.run import closed_loop, open_store, perfect, prepare, uncontrolled

    world = prepare(config)
    outcomes = [uncontrolled(world)]
    engine = open_store(world)
    try:
        closed = closed_loop(world, engine)
    finally:
        engine.dispose()
    outcomes += [closed, perfect(world, closed)]
    return world, outcomes


def simulate_command(
    site: Annotated[Path, typer.Option(help="site YAML (a demo site: its generator makes the truth)")] = DEMO_SITE,
    days: Annotated[float, typer.Option(help="simulated days")] = 7.0,
    seed: Annotated[
        int | None, typer.Option(help="seed of the truth, the faults and the devices [default: the demo's]")
    ] = None,
    compliance: Annotated[float, typer.Option(help="share of devices that follow their set-points")] = 0.95,
    noise: Annotated[float, typer.Option(help="sd of the multiplicative noise on followed set-points")] = 0.02,
    forecasts: Annotated[str, typer.Option(help="stored (forecasts from the store) or perfect (the truth)")] = "stored",
    replan_every_min: Annotated[int, typer.Option(help="minutes between planning runs")] = 15,
    horizon_hours: Annotated[float, typer.Option(help="planning horizon (h)")] = 24.0,
    history: Annotated[bool, typer.Option(help="ingest the demo meter history first (cached)")] = True,
    out: Annotated[Path, typer.Option(help="working directory (store, truth files, report)")] = Path("out/sim"),
    report_path: Annotated[Path | None, typer.Option("--report", help="JSON report (default OUT/report.json)")] = None,
) -> None:
    """Run the scheduler, store, ingest path and set-points against simulated devices on a
    simulated clock; compare with no control and with one LP on the truth."""
    from grid.demo import DEFAULT_SEED
    from grid.sim.report import report, table
    from grid.sim.run import SimConfig

    if forecasts not in ("stored", "perfect"):
        raise typer.BadParameter("must be 'stored' or 'perfect'", param_hint="--forecasts")
    mode: Literal["stored", "perfect"] = "stored" if forecasts == "stored" else "perfect"
    config = SimConfig(
        site_path=site,
        days=days,
        seed=DEFAULT_SEED if seed is None else seed,
        compliance=compliance,
        noise_sd=noise,
        forecasts=mode,
        horizon_h=horizon_hours,
        replan_every_min=replan_every_min,
        history=history,
        out_dir=out,
    )
    try:
        world, outcomes = run_all(config)
    except (InputError, InputErrors) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    doc: dict[str, Any] = report(world, outcomes)
    path = report_path or out / "report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    typer.echo(table(doc))
    typer.echo(f"report: {path}")
