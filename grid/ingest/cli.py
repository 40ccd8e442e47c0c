"""Command line: ``grid ingest``, ``grid mqtt-ingest``, ``grid db upgrade``.

The database is ``$GRID_DATABASE_URL`` (or ``--db``), default ``./quartiere.sqlite``; the schema
is migrated to the newest revision before ingesting. ``--site`` is a site id already in the store
or a site YAML, which is then registered (created or updated) first.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from grid.errors import InputError, InputErrors

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from grid.ingest.report import IngestReport

#: the import register's OBIS code (grid.store.catalog.IMPORT_REGISTER; not imported here: the
#: store, the ingest pipeline and MQTT load when a command runs, so that ``grid --help`` is light)
IMPORT_REGISTER = "1-0:1.8.0"

app = typer.Typer(help="Ingest meter readings into the store.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)  # errors people copy never wrap

DbOption = Annotated[
    str | None,
    typer.Option("--db", envvar="GRID_DATABASE_URL", help="Database URL (default ./quartiere.sqlite)."),
]
SiteOption = Annotated[str, typer.Option("--site", help="Site id in the store, or a site YAML to register.")]


def _engine(db: str | None) -> Engine:
    from grid.store.engine import database_url, make_engine
    from grid.store.migrate import upgrade

    engine = make_engine(database_url(db))
    upgrade(engine)
    return engine


def _site_id(engine: Engine, site: str) -> str:
    path = Path(site)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        from grid.domain import load_site
        from grid.store.sites import register_site

        model = load_site(path)
        new = register_site(engine, model)
        console.print(f"site [bold]{model.id}[/] registered from {path} ({new} new sensors)")
        return model.id
    return site


def _fail(exc: InputError | InputErrors) -> typer.Exit:
    # the message quotes the input (brackets and all): printed as text, never as markup
    console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
    return typer.Exit(code=2)


def summary_table(report: IngestReport) -> Table:
    """The counts of a report, and its most frequent rejection reasons."""
    table = Table(title=f"ingest {report.source.name}", show_header=True)
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for label, count in (
        ("read", report.rows_read),
        ("accepted", report.accepted),
        ("duplicates", report.duplicates),
        ("revised", report.revised),
        ("rejected", len(report.rejected)),
    ):
        table.add_row(label, f"{count:,}")
    reasons = Counter(f"{r.field}: {r.reason}" for r in report.rejected)
    for reason, count in reasons.most_common(8):
        table.add_row(f"  [dim]{reason}[/]", f"{count:,}")
    flags = Counter(f.kind for f in report.flags)
    for kind, count in sorted(flags.items()):
        table.add_row(f"flag {kind}", f"{count:,}")
    return table


@app.command("ingest")
def ingest_command(
    file: Annotated[Path, typer.Argument(help="CSV file (.csv or .csv.gz).")],
    site: SiteOption,
    report: Annotated[Path | None, typer.Option("--report", help="Write the JSON report here.")] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="Time zone of offset-less timestamps.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="long or wide (meter readings), or telemetry (device state).")
    ] = "long",
    unit: Annotated[str | None, typer.Option("--unit", help="Unit of a wide file's values.")] = None,
    obis: Annotated[str, typer.Option("--obis", help="OBIS code of wide columns named by meter.")] = IMPORT_REGISTER,
    interpolate: Annotated[bool, typer.Option("--interpolate", help="Fill register gaps as estimated.")] = False,
    db: DbOption = None,
) -> None:
    """Import a CSV of meter readings (or with ``--format telemetry`` of device state:
    ``asset_id,timestamp,quantity,value,unit``): each row is accepted, duplicate, revised or rejected."""
    if fmt not in ("long", "wide", "telemetry"):
        raise typer.BadParameter("must be 'long', 'wide' or 'telemetry'", param_hint="--format")
    from grid.ingest.report import Source

    if fmt == "telemetry":
        from grid.ingest.telemetry import csv_items, ingest_telemetry

        try:
            engine = _engine(db)
            result = ingest_telemetry(engine, _site_id(engine, site), csv_items(file), Source("csv", file.name))
        except (InputError, InputErrors) as exc:
            raise _fail(exc) from exc
        Console().print(summary_table(result))
        if report is not None:
            result.write_json(report)
            console.print(f"report written to {report}")
        return
    from grid.ingest.options import IngestOptions
    from grid.ingest.pipeline import ingest_csv

    layout: Literal["long", "wide"] = "long" if fmt == "long" else "wide"
    try:
        engine = _engine(db)
        site_id = _site_id(engine, site)
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=console, transient=True) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, done: int, total: int) -> None:
                label = f"read {file.name} (bytes)" if stage == "read" else stage
                if label not in tasks:
                    tasks[label] = bar.add_task(label, total=total)
                bar.update(tasks[label], completed=done, total=total)

            # streamed chunk by chunk: memory does not grow with the file
            options = IngestOptions(tz=tz, interpolate=interpolate)
            result = ingest_csv(engine, site_id, file, layout, unit, obis, options, progress)
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from exc
    Console().print(summary_table(result))
    if report is not None:
        result.write_json(report)
        console.print(f"report written to {report}")


@app.command("mqtt-ingest")
def mqtt_ingest_command(
    site: SiteOption,
    host: Annotated[str, typer.Option(help="MQTT broker host.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="MQTT broker port.")] = 1883,
    client_id: Annotated[str | None, typer.Option(help="Stable client id (session).")] = None,
    batch_size: Annotated[int, typer.Option(help="Messages per batch at most.")] = 5000,
    batch_seconds: Annotated[float, typer.Option(help="Seconds a batch collects at most.")] = 0.5,
    tz: Annotated[str | None, typer.Option("--tz", help="Time zone of offset-less timestamps.")] = None,
    db: DbOption = None,
) -> None:
    """Subscribe to quartier/<site>/meters/+/+ (meter readings), quartier/<site>/devices/+/state
    (device telemetry) and quartier/<site>/chargers/+/session (EV session events) and ingest until
    interrupted (Ctrl-C)."""
    from grid.ingest.mqtt import MqttIngestor, MqttSettings
    from grid.ingest.options import IngestOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        engine = _engine(db)
        site_id = _site_id(engine, site)
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from exc
    settings = MqttSettings(
        host=host,
        port=port,
        client_id=client_id,
        batch_size=batch_size,
        batch_seconds=batch_seconds,
    )

    def on_batch(r: IngestReport) -> None:
        console.print(
            f"batch {r.batch_id}: {r.rows_read} read, {r.accepted} accepted, "
            f"{r.duplicates} duplicates, {r.revised} revised, {len(r.rejected)} rejected"
        )

    ingestor = MqttIngestor(engine, site_id, settings, IngestOptions(tz=tz), on_batch)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ingestor.start()
    console.print(f"subscribed to {', '.join(ingestor.topics)} on {host}:{port} as {ingestor.client_id}")
    try:
        ingestor.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        ingestor.close()
    Console().print(summary_table(ingestor.stats.total))


@db_app.command("upgrade")
def db_upgrade_command(db: DbOption = None) -> None:
    """Create or migrate the schema to the newest revision."""
    from grid.store.migrate import current

    engine = _engine(db)
    console.print(f"database at revision {current(engine)}")


app.command("db-upgrade")(db_upgrade_command)
