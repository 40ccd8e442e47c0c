"""Command line for the signals from outside: ``grid prices import``, ``grid weather import``,
``grid limits add|list|cancel`` (device telemetry comes in with ``grid ingest --format telemetry``).

Errors name the file line and field and are printed unwrapped (people copy them); the exit
status is 2 for bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape

from grid.errors import InputError, InputErrors
from grid.ingest.cli import DbOption, SiteOption, _engine, _fail, _site_id, console
from grid.timeindex import iso

if TYPE_CHECKING:  # the store and the signal readers load when a command runs (grid --help stays light)
    from sqlalchemy.engine import Engine

prices_app = typer.Typer(help="Day-ahead prices (publications).", no_args_is_help=True)
weather_app = typer.Typer(help="Weather forecasts (publications).", no_args_is_help=True)
limits_app = typer.Typer(help="Grid-operator limit orders.", no_args_is_help=True)
out = Console(soft_wrap=True)  # ids and paths people copy never wrap

#: price column -> its unit
PRICE_COLUMNS = {
    "price_eur_per_mwh": "EUR/MWh",
    "price_eur_per_kwh": "EUR/kWh",
    "price_ct_per_kwh": "ct/kWh",
    "price": "",
}
PublishedOption = Annotated[
    str | None, typer.Option("--published-at", help="When the file was published, ISO 8601 with offset (default: now).")
]
SourceOption = Annotated[str | None, typer.Option("--source", help="Who published it (default: the file name).")]
ResolutionOption = Annotated[
    int | None, typer.Option("--resolution", help="15 or 60 minutes for rows without end (default: their spacing).")
]


def _now() -> pd.Timestamp:
    return pd.Timestamp.now("UTC").floor("s")


def _area(engine: Engine, site: str | None, area: str | None) -> str:
    if (site is None) == (area is None):
        raise InputError("--site/--area", "give exactly one: the site, or a market area such as DE-LU")
    if area is not None:
        return area
    assert site is not None
    from grid.store.sites import get_site

    site_id = _site_id(engine, site)
    get_site(engine, site_id)
    return site_id


@prices_app.command("import")
def prices_import(
    file: Annotated[Path, typer.Argument(help="CSV: start (or timestamp), optional end, one price column.")],
    site: Annotated[str | None, typer.Option("--site", help="Site id in the store, or a site YAML.")] = None,
    area: Annotated[str | None, typer.Option("--area", help="A market area (e.g. DE-LU) instead of a site.")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="EUR/MWh, EUR/kWh or ct/kWh for a 'price' column.")] = None,
    published_at: PublishedOption = None,
    source: SourceOption = None,
    resolution: ResolutionOption = None,
    db: DbOption = None,
) -> None:
    """Import one publication of day-ahead prices (15-minute or hourly): stored whole or not at all;
    every bad line is named. The price column is price_eur_per_mwh, price_eur_per_kwh,
    price_ct_per_kwh, or price with --unit."""
    from grid.ingest.signals import csv_points, import_prices

    try:
        engine = _engine(db)
        where = _area(engine, site, area)
        now = _now()
        points, column = csv_points(file, list(PRICE_COLUMNS))
        given = PRICE_COLUMNS[column] or unit
        if PRICE_COLUMNS[column] and unit is not None and unit != PRICE_COLUMNS[column]:
            raise InputError("--unit", f"the column {column} says {PRICE_COLUMNS[column]}", unit)
        if not given:
            raise InputError("--unit", "is needed for a 'price' column (EUR/MWh, EUR/kWh or ct/kWh)")
        for p in points:
            p.data["price"] = p.data.pop("value")
        frame = import_prices(
            engine, where, points, given, published_at or now.isoformat(), source or file.name, now, resolution
        )
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from exc
    out.print(
        f"{len(frame)} prices for {where} stored ({iso(frame['start'].min())} to {iso(frame['end'].max())}, EUR/kWh)"
    )


@weather_app.command("import")
def weather_import(
    file: Annotated[Path, typer.Argument(help="CSV: start (or timestamp), optional end, one quantity column.")],
    site: SiteOption,
    published_at: PublishedOption = None,
    source: SourceOption = None,
    resolution: ResolutionOption = None,
    db: DbOption = None,
) -> None:
    """Import one publication of a weather forecast; the value column names the quantity
    (temp_degc, ghi_w_per_m2, wind_m_per_s)."""
    from grid.ingest.signals import WEATHER_QUANTITIES, csv_points, import_weather

    try:
        engine = _engine(db)
        where = _area(engine, site, None)
        now = _now()
        points, quantity = csv_points(file, list(WEATHER_QUANTITIES))
        frame = import_weather(
            engine, where, quantity, points, published_at or now.isoformat(), source or file.name, now, resolution
        )
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from exc
    out.print(
        f"{len(frame)} {quantity} points for {where} stored ({iso(frame['start'].min())} to {iso(frame['end'].max())})"
    )


@limits_app.command("add")
def limits_add(
    site: SiteOption,
    connection: Annotated[str, typer.Option("--connection", help="Connection (transformer) id.")],
    start: Annotated[str, typer.Option("--start", help="ISO 8601 with offset.")],
    end: Annotated[str, typer.Option("--end", help="ISO 8601 with offset.")],
    reason: Annotated[str, typer.Option("--reason", help="Why: §14a, congestion, ...")],
    import_kw: Annotated[float | None, typer.Option("--import-kw", help="Import cap, kW.")] = None,
    export_kw: Annotated[float | None, typer.Option("--export-kw", help="Export cap, kW.")] = None,
    db: DbOption = None,
) -> None:
    """Store a limit order. A running service on the same database re-plans the site within
    10 s (it watches the stored orders); POST /api/v1/sites/{site}/limits re-plans at once."""
    from grid.ingest.signals import place_order

    body: dict[str, object] = {"connection": connection, "start": start, "end": end, "reason": reason}
    if import_kw is not None:
        body["import_kw"] = import_kw
    if export_kw is not None:
        body["export_kw"] = export_kw
    try:
        engine = _engine(db)
        order = place_order(engine, _site_id(engine, site), body, _now())
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from exc
    out.print(f"limit order {order.id} stored", markup=False)


@limits_app.command("list")
def limits_list(
    site: SiteOption,
    include_cancelled: Annotated[bool, typer.Option("--all", help="Include cancelled orders.")] = False,
    db: DbOption = None,
) -> None:
    """The site's limit orders by start (UTC)."""
    from grid.store.live import list_orders

    try:
        engine = _engine(db)
        orders = list_orders(engine, _site_id(engine, site), include_cancelled)
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from exc
    if not orders:
        out.print(f"no limit orders at site {site}")
    for o in orders:  # one line each, never wrapped: ids and times are copied
        caps = ", ".join(
            f"{name} <= {kw:g} kW" for name, kw in (("import", o.import_kw), ("export", o.export_kw)) if kw is not None
        )
        cancelled = "" if o.cancelled_at is None else f"  cancelled {iso(o.cancelled_at)}"
        out.print(
            f"{o.id}  {o.connection}  {iso(o.start)} .. {iso(o.end)}  {caps}  {o.reason}{cancelled}",
            markup=False,
            highlight=False,
        )


@limits_app.command("cancel")
def limits_cancel(
    order_id: Annotated[str, typer.Argument(help="The order id (from add or list).")],
    site: SiteOption,
    db: DbOption = None,
) -> None:
    """Cancel an order from now on."""
    from grid.store.live import cancel_order

    try:
        engine = _engine(db)
        order = cancel_order(engine, _site_id(engine, site), order_id, _now())
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from exc
    if order is None:
        console.print(f"[red]error:[/] no limit order {escape(order_id)} at site {escape(site)}", highlight=False)
        raise typer.Exit(2)
    out.print(f"limit order {order.id} cancelled at {iso(order.cancelled_at or _now())}", markup=False)
