"""A small demo quarter (50 households, 12 h from 14:00 local, so that the evening peak on T2 is
inside) generated once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grid.demo import generate_demo
from grid.domain import Site, load_site
from grid.series import SiteInputs, load_inputs
from tests.scenarios.helpers import SMALL_START


@pytest.fixture(scope="session")
def small_site_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo(tmp_path_factory.mktemp("small"), n_households=50, start=SMALL_START, hours=12)


@pytest.fixture(scope="session")
def small(small_site_path: Path) -> tuple[Site, SiteInputs]:
    site = load_site(small_site_path)
    return site, load_inputs(site)


@pytest.fixture(scope="session")
def client() -> Iterator[Any]:
    """A Dask LocalCluster as the sweeps use it: 2 worker processes with one thread each."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as c,
    ):
        yield c
