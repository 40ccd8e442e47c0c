"""The demo job's history step is idempotent: the second run finds the batch and skips it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from grid.demo import generate_demo
from grid.demo_job import DemoPaths, already_ingested, demo_settings, prepare_history
from grid.ingest.csvfile import file_checksum
from models.plan import Plan


def test_history_is_ingested_once(tmp_path: Path) -> None:
    site = generate_demo(tmp_path / "site", n_households=5)
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    paths = DemoPaths(site=site, out=tmp_path / "out", history_start="2026-01-06T00:00:00+01:00")
    console = Console(record=True, width=200)
    prepare_history(paths, url, console)
    assert already_ingested(url, "demo", file_checksum(paths.history))
    prepare_history(paths, url, console)
    text = console.export_text()
    assert text.count("history ingested: accepted") == 1
    assert "rejected 0" in text
    assert "already in the store, not ingested again" in text


def test_demo_serves_with_the_demo_plans_horizon(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler re-plans over the horizon of the plan `grid demo` printed (24 h by default),
    from its first interval, and the dashboard offers the example scenario files."""
    for name in ("GRID_HORIZON_HOURS", "GRID_SCENARIO_DIR", "GRID_SITES"):
        monkeypatch.delenv(name, raising=False)
    index = pd.date_range("2026-01-13T23:00:00Z", periods=30 * 4, freq="15min")
    plan = Plan("p", "demo", index[0], index, 15, "optimal", 1.0)
    settings = demo_settings(plan, "sqlite:///x.sqlite")
    assert settings.horizon_hours == 30.0 and settings.clock_start == index[0].to_pydatetime()
    assert settings.scenario_dir is not None and (settings.scenario_dir / "demo_sweep.yaml").is_file()
    assert settings.database_url == "sqlite:///x.sqlite" and list(settings.sites) == ["demo"]


def test_demo_plans_the_schedulers_default_horizon() -> None:
    """`grid demo` plans 24 h, the horizon the served scheduler re-plans over (the demo's inputs
    cover 48 h: re-plans of 24 h can follow for a day of replay)."""
    from api.settings import Settings
    from grid.cli import demo_command, plan_command

    default = inspect.signature(demo_command).parameters["hours"].default
    assert default == Settings.model_fields["horizon_hours"].default == 24
    assert inspect.signature(plan_command).parameters["hours"].default == 48  # `grid plan` keeps its own
