"""``grid forecast``: backtests on any measured series or a site's store, and forecast runs.

Wire into the main CLI with ``app.add_typer(forecast_cli.app, name="forecast")`` where
``from grid.forecast import cli as forecast_cli``.

Exit status 2 means bad input (the message names the file line or the option), 0 success.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from grid.errors import InputError, InputErrors
from grid.forecast.choices import MODELS
from grid.forecast.inputs import read_load_csv
from grid.forecast.weather import Weather, read_weather_csv

if TYPE_CHECKING:  # scikit-learn and pvlib load when a command runs, not for --help
    from grid.forecast.backtest import BacktestResult

app = typer.Typer(help="Load, PV and heat forecasts: backtests and forecast runs.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # errors people copy never wrap

DbOption = Annotated[
    str | None,
    typer.Option("--db", envvar="GRID_DATABASE_URL", help="Database URL (default ./quartiere.sqlite)."),
]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(min|h|d)\s*$")


def parse_hours(text: str, option: str = "--horizon") -> float:
    """'24h', '90min', '2d' or a bare number of hours -> hours."""
    match = _DURATION.match(text)
    if match is None:
        try:
            return float(text)
        except ValueError:
            raise InputError(option, "must look like 24h, 90min or 2d", text) from None
    value, unit = float(match.group(1)), match.group(2)
    return value / 60 if unit == "min" else value * 24 if unit == "d" else value


def _fail(exc: InputError | InputErrors) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(2)


def print_metrics(result: BacktestResult, title: str) -> None:
    """The metrics as a table, then the notes (fallbacks used)."""
    m = result.metrics
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("data", str(m.get("data", "-"))),
        ("model", str(m["model"])),
        ("origins x horizon", f"{m['n_origins']} x {m['horizon_h']:g} h"),
        ("points (skipped)", f"{m['n_points']} ({m['n_skipped']})"),
        ("MAE kW", f"{m['mae']:.4g}"),
        ("RMSE kW", f"{m['rmse']:.4g}"),
        ("MAE seasonal naive kW", f"{m['mae_naive']:.4g}"),
        ("MAE / naive MAE", f"{m['mae_ratio']:.3f}"),
        ("MASE", f"{m['mase']:.3f}"),
        *((f"pinball q{q} kW", f"{v:.4g}") for q, v in m["pinball"].items()),
        (f"coverage {m['band']} (ideal 0.80)", f"{m['coverage_80']:.3f}"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)


@app.command("backtest")
def backtest_command(
    series: Annotated[
        Path | None, typer.Option(help="CSV timestamp,value_kw (ISO 8601 with offset, mean kW per 15 min).")
    ] = None,
    site: Annotated[str | None, typer.Option(help="Site id in the store (its measured household load).")] = None,
    real: Annotated[
        str | None,
        typer.Option(help="A measured series shipped in data/real, e.g. ihepc:total or simbench:H0-A."),
    ] = None,
    temperature: Annotated[
        Path | None, typer.Option(help="CSV timestamp,temp_degc[,ghi_w_per_m2] covering the series.")
    ] = None,
    days: Annotated[float, typer.Option(help="Days of rolling origins.")] = 28,
    horizon: Annotated[str, typer.Option(help="Forecast horizon, e.g. 24h or 48h (<= 48h).")] = "24h",
    step: Annotated[str, typer.Option(help="Time between origins.")] = "24h",
    model: Annotated[str, typer.Option(help=f"One of {', '.join(MODELS)}.")] = "ridge",
    report: Annotated[Path | None, typer.Option(help="Write the metrics as JSON here.")] = None,
    out: Annotated[Path, typer.Option(help="Directory for the points CSV and the PNG chart.")] = Path("out/forecast"),
    kind: Annotated[str, typer.Option(help="Site mode: which measured aggregate (sensor kind).")] = "household_load",
    db: DbOption = None,
) -> None:
    """Rolling-origin backtest against seasonal naive: prints metrics, writes CSV + PNG (+ JSON)."""
    from grid.forecast.backtest import backtest, plot_points, write_points, write_report

    try:
        if sum(x is not None for x in (series, site, real)) != 1:
            raise InputError("--series/--site/--real", "give exactly one of them")
        horizon_h, step_h = parse_hours(horizon), parse_hours(step, "--step")
        weather = read_weather_csv(temperature) if temperature is not None else None
        if series is not None:
            values, info = read_load_csv(series)
            if info.n_missing:
                console.print(f"note: {info.n_missing} missing interval(s) in {series.name} are skipped, not filled")
            name, data = series.stem, f"file {series}"
        elif real is not None:
            from grid.forecast.realdata import describe, real_series

            values = real_series(real)
            name, data = real.replace(":", "-"), describe(real)
        else:
            assert site is not None
            from grid.forecast.site import measured_aggregate, open_store

            engine = open_store(db)
            values = measured_aggregate(engine, site, kind)
            name = f"{site}-{kind}"
            data = f"site {site} in the store: measured {kind}"
            if weather is None:
                from grid.forecast.site import stored_weather

                weather = stored_weather(engine, site, pd.DatetimeIndex(values.index))
        result = backtest(values, days, horizon_h, step_h, weather, model, data=data)
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from None
    print_metrics(result, f"backtest {name}")
    csv_path, png_path = out / f"backtest-{name}.csv", out / f"backtest-{name}.png"
    write_points(result, csv_path)
    plot_points(result, png_path, title=name)
    console.print(f"wrote {csv_path} and {png_path}")
    if report is not None:
        write_report(result, report)
        console.print(f"wrote {report}")


@app.command("run")
def run_command(
    site: Annotated[str, typer.Option(help="Site YAML (or a site id in the store: load forecasts only).")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Forecast origin = issue time, ISO 8601 (default: end of the measured data)."),
    ] = None,
    hours: Annotated[float, typer.Option(help="Horizon in hours (<= 48).")] = 48,
    weather_csv: Annotated[
        Path | None, typer.Option("--weather", help="CSV timestamp,temp_degc[,ghi_w_per_m2] forecast.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Issue and store the forecasts the planner uses (household load per connection and site,
    PV per array, heat demand per heat pump)."""
    from grid.forecast.site import open_store, run_site

    try:
        engine = open_store(db)
        weather: Weather | None = read_weather_csv(weather_csv) if weather_csv is not None else None
        summary = run_site(engine, site, as_of=as_of, hours=hours, weather=weather)
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from None
    table = Table(title=f"forecasts issued at {summary.issued_at.isoformat()} for {summary.site_id}")
    for column in ("target", "quantity", "model", "intervals", "median mean"):
        table.add_column(column)
    groups: dict[tuple[str, str, str], list[float]] = {}
    for row in summary.rows:
        # one line per asset family (pv:*, heat:*) instead of one per array or heat pump
        family = row.target.split(":")[0] + ":*" if row.target.startswith(("pv:", "heat:")) else row.target
        groups.setdefault((family, row.quantity, row.model), []).append(row.mean_median)
    intervals = summary.rows[0].intervals if summary.rows else 0
    for (target, quantity, model), means in groups.items():
        label = f"{target} ({len(means)})" if target.endswith("*") else target
        table.add_row(label, quantity, model, str(intervals), f"{np.mean(means):.3g}")
    console.print(table)
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False)


@app.command("train")
def train_command(
    site: Annotated[str, typer.Option(help="Site YAML or a site id in the store.")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Train as of this instant, ISO 8601 (default: end of the measured data)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Train and store the site's global LightGBM load model now (the service does it daily),
    on its measured load up to two weeks before `--as-of` (scored by the next forecasts' rolling
    backtest) and on all of it up to `--as-of` (it makes their LightGBM part)."""
    from grid.forecast.gbm import TRAIN_SKIP_DAYS
    from grid.forecast.site import (
        GLOBAL_HOLDOUT_DAYS,
        MIN_TRAIN_DAYS,
        global_model_path,
        open_store,
        resolve_site,
        train_global_model,
    )

    try:
        engine = open_store(db)
        site_id, _ = resolve_site(engine, site)
        stamp = _instant(as_of, "--as-of") if as_of is not None else None
        model = train_global_model(engine, site_id, stamp)
    except InputError as exc:
        raise _fail(exc) from None
    if model is None:
        days = GLOBAL_HOLDOUT_DAYS + TRAIN_SKIP_DAYS + MIN_TRAIN_DAYS
        console.print(
            f"site {site_id}: too little measured load to train (needs {days} days); "
            "forecasts choose among the other models"
        )
        raise typer.Exit(1)
    console.print(
        f"site {site_id}: global load model trained on {model.n_series} series up to "
        f"{model.trained_until.isoformat() if model.trained_until is not None else '?'}; "
        f"stored in {global_model_path(site_id)} (and {global_model_path(site_id, latest=True).name}, "
        "trained up to the end)"
    )


def _instant(text: str, option: str) -> pd.Timestamp:
    """ISO 8601 with a UTC offset -> UTC timestamp; InputError naming `option` otherwise."""
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise InputError(option, "not an ISO 8601 timestamp (e.g. 2026-01-14T00:00:00+01:00)", text) from None
    if stamp.tzinfo is None:
        raise InputError(option, "needs a UTC offset (e.g. 2026-01-14T00:00:00+01:00)", text)
    return stamp.tz_convert("UTC")


@app.command("accuracy")
def accuracy_command(
    site: Annotated[str, typer.Option(help="Site id in the store.")],
    start: Annotated[str, typer.Option(help="Period start, ISO 8601 with offset.")],
    end: Annotated[str, typer.Option(help="Period end (exclusive), ISO 8601 with offset.")],
    target: Annotated[str, typer.Option(help="site or connection:<id> (household load, kW).")] = "site",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    db: DbOption = None,
) -> None:
    """How good the stored forecasts were: MAE, bias and 10-90 % coverage of every stored run
    against the measurements, by day and by horizon hour."""
    import json

    from grid.forecast.accuracy import forecast_accuracy
    from grid.forecast.site import open_store

    try:
        first, last = _instant(start, "--start"), _instant(end, "--end")
        result = forecast_accuracy(open_store(db), site, target, first, last)
    except (InputError, InputErrors) as exc:
        raise _fail(exc) from None

    def rows(frame: pd.DataFrame, key: str) -> list[dict[str, object]]:
        return [{key: k, **_accuracy_row(r)} for k, r in frame.iterrows()]

    if as_json:
        body = {
            "site": result.site,
            "target": result.target,
            "quantity": result.quantity,
            "unit": result.unit,
            "start": result.start.isoformat(),
            "end": result.end.isoformat(),
            "runs": result.runs,
            "overall": _accuracy_row(result.overall),
            "by_day": rows(result.by_day, "day"),
            "by_horizon": [{**r, "horizon_h": int(str(r["horizon_h"]))} for r in rows(result.by_horizon, "horizon_h")],
        }
        typer.echo(json.dumps(body, indent=2))
        return
    title = (
        f"{result.site} {result.target}: {result.runs} run(s), {result.start.isoformat()} .. {result.end.isoformat()}"
    )
    console.print(title, highlight=False)
    for key, frame in (("day", result.by_day), ("horizon h", result.by_horizon)):
        table = Table(title=f"by {key}")
        for column in (key, "n", f"MAE {result.unit}", f"bias {result.unit}", "coverage 10-90 %"):
            table.add_column(column, justify="right")
        for label, r in [*frame.iterrows(), ("all", result.overall)]:
            values = _accuracy_row(r)
            table.add_row(str(label), str(values["n"]), *(_fmt(values[c]) for c in ("mae", "bias", "coverage")))
        console.print(table)
    if result.overall["n"] == 0:
        console.print("note: no stored forecast of this target has a measured interval in the period")


def _accuracy_row(values: pd.Series) -> dict[str, object]:
    def number(v: object) -> float | None:
        x = float(v)  # type: ignore[arg-type]
        return x if np.isfinite(x) else None

    return {"n": int(values["n"]), **{c: number(values[c]) for c in ("mae", "bias", "coverage")}}


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.3f}"
