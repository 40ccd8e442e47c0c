"""The main job on the demo neighbourhood, as `grid demo` runs it.

Steps, each skipped when its result is already there:
1. write the demo meter history (12 weeks of 15-min registers with realistic faults, cached in out/);
2. ingest it into the store (SQLite ``./quartiere.sqlite`` unless ``GRID_DATABASE_URL`` says
   otherwise), unless a committed batch with the same file checksum exists for the site;
3. issue and store the load, PV and heat forecasts as known at the first planned interval;
4. plan the next 24 h (``--hours``) on those forecasts (prices and the weather forecast from the site's files),
   write the plan JSON and store the plan;
5. create an API key and serve the API and the scheduler, which re-plans every 15 minutes over the
   same horizon on the stored forecasts (issued for all the demo's input days), on a clock that
   replays the demo days.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa
from rich.console import Console

from grid.demo_history import ensure_history, ingest_history
from grid.domain import load_site
from grid.forecast.site import run_site
from grid.forecast.weather import Weather
from grid.ingest.csvfile import file_checksum
from grid.schedule.inputs import forecast_provider, planning_inputs
from grid.series import load_inputs
from grid.store.apikeys import create_key
from grid.store.engine import make_engine
from grid.store.migrate import upgrade
from grid.store.plans import save_plan
from grid.store.schema import batches
from grid.store.sites import register_site
from grid.timeindex import horizon_index
from models.plan import Plan

if TYPE_CHECKING:
    from api.settings import Settings
from models.solve import plan_site

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"


@dataclass
class DemoPaths:
    site: Path = DEMO_DIR / "site.yaml"
    out: Path = Path("out")
    history_start: str | None = None  # default: >= 8 weeks before the plan, across a DST change

    @property
    def history(self) -> Path:
        return self.out / "history.csv.gz"

    @property
    def plan_json(self) -> Path:
        return self.out / "demo-plan.json"


def already_ingested(database_url: str | None, site_id: str, checksum: str) -> bool:
    """Whether a committed batch of this site has the file's checksum."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            query = (
                sa.select(sa.func.count())
                .select_from(batches)
                .where(
                    batches.c.site_id == site_id, batches.c.checksum == checksum, batches.c.committed_at.is_not(None)
                )
            )
            return bool(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def prepare_history(paths: DemoPaths, database_url: str | None, console: Console) -> None:
    """Steps 1 and 2: the history file and its ingestion (both idempotent)."""
    site = load_site(paths.site)
    paths.out.mkdir(parents=True, exist_ok=True)
    with console.status("writing the demo meter history (cached after the first run) ..."):
        summary = ensure_history(paths.site, paths.history, start=paths.history_start)
    console.print(f"history: {summary.rows:,} rows, {summary.start} .. {summary.end} -> {paths.history}")
    if already_ingested(database_url, site.id, file_checksum(paths.history)):
        console.print("history: already in the store, not ingested again")
        return
    with console.status("ingesting the history (about two minutes on the first run) ..."):
        report = ingest_history(paths.site, paths.history, database_url)
    console.print(
        f"history ingested: accepted {report.accepted:,}, duplicates {report.duplicates:,}, "
        f"revised {report.revised:,}, rejected {len(report.rejected):,}"
    )


def plan_demo(
    paths: DemoPaths, database_url: str | None, hours: float, console: Console, forecast: bool = True
) -> Plan:
    """Steps 3 and 4: forecasts as of the first interval of the demo inputs (skipped without a
    history: the planner then starts cold from standard profiles, and says so), then the plan on
    them; the JSON is written and the plan stored."""
    site = load_site(paths.site)
    start = load_inputs(site).index[0]
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        register_site(engine, site)
        if forecast:
            with console.status("forecasting load, PV and heat demand ..."):
                weather = Weather(load_inputs(site).temp_degc)
                # for every day of the inputs: the scheduler's later re-plans read them from the store
                span_h = len(load_inputs(site).index) * site.site.resolution_min / 60
                summary = run_site(engine, site.id, as_of=start, hours=max(hours, span_h), weather=weather, model=site)
            console.print(f"forecasts issued at {summary.issued_at.isoformat()}: {len(summary.rows)} targets")
            for note in summary.notes:
                console.print(f"  note: {note}")
        inputs = planning_inputs(site, engine, start, hours)
        for key, source in sorted(inputs.sources.items()):
            console.print(f"  input {key}: {source}")
        plan = plan_site(site, inputs, horizon_index(start, hours, site.site.resolution_min))
        paths.out.mkdir(parents=True, exist_ok=True)
        paths.plan_json.write_text(plan.to_json(indent=1), encoding="utf-8")
        save_plan(engine, plan.to_dict(), trigger="demo", duration_s=sum(plan.timings_s.values()))
    finally:
        engine.dispose()
    return plan


def demo_key(database_url: str | None) -> str:
    """A new admin key for the demo site (printed once; only its hash is stored)."""
    engine = make_engine(database_url)
    try:
        _, token = create_key(engine, "admin", ["demo"], label="grid demo")
    finally:
        engine.dispose()
    return token


def demo_settings(plan: Plan, database_url: str | None) -> Settings:
    """The service's settings for the demo: its site and scenario files, the clock starting at the
    plan's first interval so that re-plans run on the demo's inputs (the demo days lie in the past),
    and the demo plan's horizon (the scheduler's re-plans replace it with plans of the same length)."""
    from api.settings import load_settings

    settings = load_settings()
    settings.sites = {"demo": DEMO_DIR / "site.yaml"}
    if settings.scenario_dir is None:  # the example scenarios and sweep, offered on the dashboard
        settings.scenario_dir = DEMO_DIR.parent / "scenarios"
    if database_url:
        settings.database_url = database_url
    settings.clock_start = plan.start.to_pydatetime()
    settings.horizon_hours = (plan.end - plan.start) / pd.Timedelta(hours=1)
    return settings


def serve_demo(plan: Plan, database_url: str | None, port: int, host: str = "127.0.0.1") -> None:
    """Step 5: the API and the scheduler with :func:`demo_settings`."""
    from api.app import create_app
    from api.serving import run_server

    settings = demo_settings(plan, database_url)
    engine = make_engine(settings.database_url)
    app = create_app(settings, engine=engine, inputs_provider=forecast_provider(engine))
    run_server(app, host, port)
