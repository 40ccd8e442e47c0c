"""Command line of fleets: ``grid fleet generate``.

Kept light: the generator (demandlib, pvlib) loads when a command runs, not for ``grid --help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Many neighbourhoods: generated fleets.")
out_console = Console(soft_wrap=True)  # paths people copy never wrap


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
