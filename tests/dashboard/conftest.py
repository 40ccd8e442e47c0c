"""One served app per test module: the real app (tests/api/kit.py make_app) on a SQLite store with
the two small demo sites, planned once, behind uvicorn on a free loopback port; Debian's Chromium
driven by Playwright. Screenshots go to test-artifacts/dashboard/ (gitignored)."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from fastapi import FastAPI

from grid.schedule.performance import evaluate_intervals
from grid.store.apikeys import create_key
from grid.store.forecasts import store_forecast
from grid.store.scenarios import create_run
from grid.store.testing import scratch_store
from tests.api.kit import Clock, demo_sites, make_app

CHROMIUM = "/usr/bin/chromium"
#: T1's import register (kWh) every quarter-hour from 2026-01-13T23:00Z to 2026-01-14T01:00Z
READ_AT = [
    ("13", 23, 0),
    ("13", 23, 15),
    ("13", 23, 30),
    ("13", 23, 45),
    ("14", 0, 0),
    ("14", 0, 15),
    ("14", 0, 30),
    ("14", 0, 45),
    ("14", 1, 0),
]
REGISTER_KWH = [100.0, 102.5, 105.0, 108.5, 111.0, 113.0, 115.0, 117.5, 120.0]
MEASURED_KW = [4 * (b - a) for a, b in itertools.pairwise(REGISTER_KWH)]
FORECAST_ISSUED = pd.Timestamp("2026-01-13T12:00:00Z")


def forecast_quantiles() -> pd.DataFrame:
    """The site load's forecast: a day from 2026-01-14T00:00Z, median 1 kW + 0.01 kW per quarter-hour,
    band median -/+ 0.5 kW."""
    index = pd.date_range("2026-01-14T00:00:00Z", periods=96, freq="15min")
    median = 1.0 + 0.01 * np.arange(96)
    return pd.DataFrame({0.1: median - 0.5, 0.5: median, 0.9: median + 0.5}, index=index)


#: the scenario folder the dashboard offers (GRID_SCENARIO_DIR): two files of demo, one of north
SCENARIO_FILES = {
    "battery.yaml": """name: battery_100
description: a 100 kWh battery on T1
baseline: ../demo/site.yaml
edits:
  - {kind: add_battery, id: CB-T1, connection: T1, capacity_kwh: 100}
""",
    "sweep.yaml": """name: size_sweep
description: battery kWh x PV scale
baseline: ../demo/site.yaml
edits:
  - {kind: add_battery, id: CB-T1, connection: T1, capacity_kwh: "${battery_kwh}"}
  - {kind: scale_pv, scale: "${pv_scale}"}
parameters:
  battery_kwh: [50, 200]
  pv_scale: [1.0, 2.0]
""",
    "north.yaml": """name: north_pv
baseline: ../north/site.yaml
edits:
  - {kind: scale_pv, scale: 2}
""",
    "notes.yaml": "just: a note\n",
}


def write_scenario_files(folder: Path) -> Path:
    folder.mkdir()
    for name, text in SCENARIO_FILES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


@dataclass
class Served:
    url: str
    app: FastAPI
    keys: dict[str, str]

    def api(self, path: str, role: str = "admin", **params: Any) -> Any:
        r = httpx.get(f"{self.url}{path}", headers={"X-API-Key": self.keys[role]}, params=params, timeout=30)
        r.raise_for_status()
        return r.json() if "json" in r.headers["content-type"] else r.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("dashboard")
    sites = demo_sites(directory)
    scenario_dir = write_scenario_files(directory / "scenarios")
    with scratch_store("sqlite", directory) as engine:
        app = make_app(engine, sites, Clock(), scenario_dir=scenario_dir)
        keys = {role: create_key(engine, role, ["demo"])[1] for role in ("operator", "manager", "planner", "admin")}
        keys["north"] = create_key(engine, "admin", ["north"])[1]
        keys["north_manager"] = create_key(engine, "manager", ["north"])[1]
        ctx = app.state.ctx
        for site in ("demo", "north"):
            ctx.service.run(site, ctx.clock())
        store_forecast(engine, "demo", "site", forecast_quantiles(), FORECAST_ISSUED, "standard_profile")
        for site, name in (("demo", "bigger batteries"), ("north", "north only")):  # queued scenario runs
            create_run(engine, f"{site:x<32}", site, name, {"name": name}, FORECAST_ISSUED.to_pydatetime())
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:  # bounded by the thread: it ends when uvicorn fails to start
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        # T1's import register over the 2 h before the plan (see MEASURED_KW), over the API
        items = [
            {
                "meter_id": "T1",
                "obis": "1-0:1.8.0",
                "ts": f"2026-01-{d}T{h:02d}:{m:02d}:00+00:00",
                "value": v,
                "unit": "kWh",
            }
            for (d, h, m), v in zip(READ_AT, REGISTER_KWH, strict=True)
        ]
        r = httpx.post(
            f"{url}/api/v1/sites/demo/readings",
            json={"readings": items},
            headers={"X-API-Key": keys["admin"]},
            timeout=60,
        )
        try:
            assert r.status_code == 200 and r.json()["accepted"] == len(items), r.text
            assert evaluate_intervals(engine, "demo", "2026-01-13T23:00:00Z", "2026-01-14T01:00:00Z") == 8
            yield Served(url, app, keys)
        finally:
            server.should_exit = True
            thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():  # scripts/test.sh installs it; never skip
        raise RuntimeError(f"{CHROMIUM} missing: apt-get install -y chromium")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()
