"""Shared pieces of the fleet planning tests: a generated fleet as data, a 2-worker LocalCluster,
services over it, and the comparison of two plans.

The sites are site YAML files only, without their input CSVs: the inputs are served from memory
(:class:`MemoryInputs`) and travel to the workers as data, so a worker that tried to read a site's
files would fail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from grid.cluster import local_cluster
from grid.domain import Site
from grid.fleet.executor import FLEET_CLUSTER_CONFIG, DaskExecutor
from grid.fleet.generate import FleetSite, generate_fleet, site_yaml
from grid.schedule.runner import Planner, PlanningConfig, PlanningService
from grid.series import SiteInputs
from grid.store import plans as plan_store
from grid.store.engine import make_engine
from grid.store.migrate import upgrade
from grid.timeindex import horizon_index
from models.solve import plan_site

SEED = 16
N_SITES = 20
#: the generated series cover 6 h from 2026-01-13T23:00Z; runs plan 3 h from the quarter of NOW
NOW = dt.datetime(2026, 1, 13, 23, 7, tzinfo=dt.UTC)
CONFIG = PlanningConfig(horizon_hours=3.0, time_limit_s=60)
#: HiGHS's default primal/dual feasibility tolerance is 1e-7; objectives in EUR over 3 h
OBJECTIVE_RTOL = 1e-6
#: set-points are stored rounded to 1e-4 kW
SETPOINT_ATOL_KW = 1e-3


class MemoryInputs:
    """An inputs provider over series held in memory (site id -> SiteInputs)."""

    def __init__(self, inputs: dict[str, SiteInputs]) -> None:
        self.inputs = inputs

    def __call__(self, site: Site, start: pd.Timestamp, hours: float) -> SiteInputs:
        return self.inputs[site.id].window(horizon_index(start, hours, site.site.resolution_min))


@pytest.fixture(scope="session")
def fleet() -> list[FleetSite]:
    return generate_fleet(N_SITES, SEED, hours=6)


@pytest.fixture(scope="session")
def fleet_files(fleet: list[FleetSite], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Site id -> its site.yaml (no CSV files beside it)."""
    root = tmp_path_factory.mktemp("fleet")
    out = {}
    for fleet_site in fleet:
        path = root / fleet_site.site_id / "site.yaml"
        path.parent.mkdir()
        path.write_text(site_yaml(fleet_site, SEED), encoding="utf-8")
        out[fleet_site.site_id] = path
    return out


@pytest.fixture(scope="session")
def fleet_inputs(fleet: list[FleetSite]) -> dict[str, SiteInputs]:
    return {s.site_id: s.inputs() for s in fleet}


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """A client of a LocalCluster of 2 worker processes, as ``grid fleet plan`` starts it."""
    with local_cluster(2, FLEET_CLUSTER_CONFIG) as client:
        yield client


def scratch_engine(folder: Path, name: str) -> Engine:
    engine = make_engine(f"sqlite:///{folder / name}.sqlite")
    upgrade(engine)
    return engine


def dask_service(
    engine: Engine,
    files: dict[str, Path],
    inputs: dict[str, SiteInputs],
    executor: DaskExecutor,
) -> PlanningService:
    return PlanningService(engine, files, CONFIG, inputs_provider=MemoryInputs(inputs), executor=executor)


def serial_service(
    engine: Engine, files: dict[str, Path], inputs: dict[str, SiteInputs], planner: Planner = plan_site
) -> PlanningService:
    """The same sites planned one after the other in this process, each model built anew."""
    return PlanningService(engine, files, CONFIG, inputs_provider=MemoryInputs(inputs), planner=planner)


def latest_body(engine: Engine, site_id: str) -> dict[str, Any]:
    row = plan_store.list_plans(engine, site_id, limit=1)[0]
    return plan_store.plan_body(engine, row.plan_id)


def assert_same_plan(got: dict[str, Any], want: dict[str, Any], setpoints: bool = True) -> None:
    """Same status and objective (within the solver's tolerance) and, with `setpoints`, the same
    power of every asset in every interval."""
    site = want["site"]
    assert got["status"] == want["status"], site
    assert got["start"] == want["start"], site
    assert got["objective_eur"] == pytest.approx(want["objective_eur"], rel=OBJECTIVE_RTOL, abs=1e-6), site
    if not setpoints:
        return
    assert got["assets"].keys() == want["assets"].keys(), site
    for asset_id, asset in want["assets"].items():
        assert got["assets"][asset_id]["power_kw"] == pytest.approx(asset["power_kw"], abs=SETPOINT_ATOL_KW), (
            site,
            asset_id,
        )


def stored_plans(engine: Engine, site_id: str) -> list[str]:
    return [row.plan_id for row in plan_store.list_plans(engine, site_id)]
