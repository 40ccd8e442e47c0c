"""``grid performance``: realised against planned over a period, as tables or JSON.

Reads what the scheduler's evaluation stored (``--evaluate`` evaluates the period first). Errors
are printed unwrapped (people copy them) with exit status 2.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from grid.errors import InputError, InputErrors
from grid.ingest.cli import DbOption, _engine, _fail

out = Console(soft_wrap=True)  # ids people copy never wrap


def _instant(text: str, option: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise InputError(option, "not an ISO 8601 time (e.g. 2026-01-15T00:00:00+01:00)", text) from None
    if stamp.tzinfo is None:
        raise InputError(option, "has no UTC offset (write e.g. 2026-01-15T00:00:00+01:00)", text)
    return stamp.tz_convert("UTC")


def _fmt(value: Any, digits: int = 3) -> str:
    """A figure for a table: '-' when undefined (nothing measured), never 0."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, show_header=True)
    table.add_column(columns[0], no_wrap=True, overflow="fold")  # identifiers are never cut
    for col in columns[1:]:
        table.add_column(col, justify="right")
    return table


def print_performance(k: dict[str, Any], console: Console = out) -> None:
    """The KPIs of :func:`grid.schedule.performance.performance_kpis` as tables."""
    console.print(
        f"[bold]Realised against planned[/] for site [bold]{k['site']}[/] {k['start']} .. {k['end']}: "
        f"{k['intervals']} x {k['resolution_min']} min, {k['evaluated_intervals']} evaluated, "
        f"{k['planned_intervals']} with a plan in force",
        highlight=False,
    )
    conns = _table(
        "Connections",
        ["connection", "measured", "missing", "above limit", "kWh above", "import kWh", "planned kWh", "cost EUR"],
    )
    for cid, c in k["connections"].items():
        conns.add_row(
            cid,
            _fmt(c["measured_intervals"]),
            _fmt(c["missing_intervals"]),
            _fmt(c["intervals_above_limit"]),
            _fmt(c["kwh_above_limit"]),
            _fmt(c["import_kwh"]),
            _fmt(c["planned_import_kwh"]),
            _fmt(c["cost_eur"], 2),
        )
    assets = _table("Set-points", ["asset", "type", "set-points", "measured", "missing", "mean |dev| kW", "followed"])
    for aid, a in k["assets"].items():
        share = "-" if a["followed_share"] is None else f"{a['followed_share']:.0%}"
        assets.add_row(
            aid,
            a["type"],
            _fmt(a["setpoint_intervals"]),
            _fmt(a["measured_intervals"]),
            _fmt(a["missing_intervals"]),
            _fmt(a["mean_abs_deviation_kw"]),
            share,
        )
    for table in (conns, assets):
        if table.row_count:
            console.print(table)
    if k["ev_sessions"]:
        ev = _table("EV sessions", ["session", "charger", "requested kWh", "delivered kWh", "missing"])
        for sid, s in k["ev_sessions"].items():
            ev.add_row(
                sid, s["charger"], _fmt(s["requested_kwh"]), _fmt(s["delivered_kwh"]), _fmt(s["missing_intervals"])
            )
        console.print(ev)
    d, t = k["dimming"], k["totals"]
    console.print(
        f"§14a dimmings in force: {d['intervals']} device-intervals, {_fmt(d['dimmed_kwh'])} kWh", highlight=False
    )
    console.print(
        f"total: {t['intervals_above_limit']} intervals above a limit ({_fmt(t['kwh_above_limit'])} kWh), "
        f"import {_fmt(t['import_kwh'])} kWh, cost {_fmt(t['cost_eur'], 2)} EUR",
        highlight=False,
    )
    if k["not_evaluated_intervals"]:
        console.print(
            f"{k['not_evaluated_intervals']} intervals not evaluated yet "
            "(counted as missing; --evaluate evaluates them)",
            highlight=False,
        )


def performance_command(
    site: Annotated[str, typer.Option("--site", help="Site id in the store.")],
    start: Annotated[str, typer.Option("--start", help="First interval, ISO 8601 with offset.")],
    end: Annotated[str, typer.Option("--end", help="End (exclusive), ISO 8601 with offset.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the KPIs as JSON.")] = False,
    evaluate: Annotated[
        bool, typer.Option("--evaluate", help="Evaluate the period first (as the scheduler does).")
    ] = False,
    db: DbOption = None,
) -> None:
    """Realised KPIs of a period: intervals and kWh above each limit, import and its cost, how well
    devices followed their set-points, EV energy delivered against requested, §14a dimmings."""
    from grid.schedule.performance import evaluate_intervals, performance_kpis  # the store, when it runs

    try:
        first, last = _instant(start, "--start"), _instant(end, "--end")
        if last <= first:
            raise InputError("--end", "must be after --start", end)
        engine = _engine(db)
        if evaluate:
            evaluate_intervals(engine, site, first, last)
        kpis = performance_kpis(engine, site, first, last)
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(kpis, indent=1))
    else:
        print_performance(kpis)
