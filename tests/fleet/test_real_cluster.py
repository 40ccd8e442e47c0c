"""Fleet planning and ``grid sweep run --scheduler`` on a real cluster: a ``dask scheduler`` and two
``dask worker`` processes started from the command line in another working directory.

Nothing may rely on a shared file system: the workers run with an audit hook (a
``sitecustomize`` on their ``PYTHONPATH``) that refuses to open any file below this test session's
temporary folder, where every site file, input CSV and sweep spec lives. A task that carried a path
instead of its data would fail there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from grid.demo import generate_demo
from grid.fleet.executor import DaskExecutor
from grid.fleet.generate import FleetSite, write_fleet
from grid.fleet.round import plan_round
from grid.fleet.status import GOOD
from grid.private_services import free_port
from grid.series import SiteInputs
from tests.fleet.kit import (
    NOW,
    SEED,
    assert_same_plan,
    dask_service,
    fleet,
    fleet_files,
    fleet_inputs,
    latest_body,
    scratch_engine,
    serial_service,
)
from tests.scenarios.helpers import EVENING, SMALL_START, write_yaml

__all__ = ["fleet", "fleet_files", "fleet_inputs"]  # fixtures

pytestmark = pytest.mark.slow
BOUND_S = 120  # a bound on waiting for the cluster, not a timing
SITES = 3  # sites planned on the real cluster (test time)
FORBIDDEN_ENV = "QUARTIERE_TEST_FORBIDDEN_ROOT"
HOOK = f'''"""Refuse to open files below ${FORBIDDEN_ENV} (the test's data): no shared file system."""
import os
import sys

_root = os.environ.get("{FORBIDDEN_ENV}")


def _no_shared_files(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if path.startswith(_root + os.sep):
            raise PermissionError(f"a worker may not read {{path}}: tasks carry data, not paths")


if _root:
    sys.addaudithook(_no_shared_files)
'''


def _dask(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "dask"), *args]


@pytest.fixture(scope="module")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a scheduler with two workers, all started as commands in a working directory
    outside the test's temporary folder, which the workers may not read."""
    from distributed import Client

    forbidden = tmp_path_factory.getbasetemp().resolve()
    work = Path(tempfile.mkdtemp(prefix="quartiere-dask-"))
    (work / "hook").mkdir()
    (work / "hook" / "sitecustomize.py").write_text(HOOK, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(work / "hook"),
        FORBIDDEN_ENV: str(forbidden),
        "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING": "False",  # as the fleet's own LocalCluster
    }
    address = f"tcp://127.0.0.1:{free_port()}"
    log = (work / "cluster.log").open("wb")
    commands = [_dask("scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard")]
    commands += [
        _dask("worker", address, "--name", name, "--nthreads", "1", "--nworkers", "1", "--no-dashboard")
        for name in ("w1", "w2")
    ]
    processes = [subprocess.Popen(c, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT) for c in commands]
    try:
        with Client(address, timeout=BOUND_S) as client:
            client.wait_for_workers(2, timeout=BOUND_S)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(BOUND_S)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def test_fleet_round_on_a_real_cluster(
    real_cluster: str, fleet_files: dict[str, Path], fleet_inputs: dict[str, SiteInputs], tmp_path: Path
) -> None:
    from distributed import Client

    files = {site_id: fleet_files[site_id] for site_id in sorted(fleet_files)[:SITES]}
    engine = scratch_engine(tmp_path, "real")
    with Client(real_cluster, timeout=BOUND_S) as client:
        with pytest.raises(PermissionError, match="tasks carry data, not paths"):  # the hook is in force
            client.submit(Path.read_text, files[min(files)], pure=False).result()
        service = dask_service(engine, files, fleet_inputs, DaskExecutor(client))
        report = plan_round(service, NOW)
        assert all(r.status in GOOD for r in report.results), [(r.site_id, r.message) for r in report.results]
        workers = client.scheduler_info(n_workers=-1)["workers"]
    assert {run.worker for run in report.runs.values()} <= set(workers)
    reference = serial_service(scratch_engine(tmp_path, "serial"), files, fleet_inputs)
    for site_id in files:
        assert reference.run(site_id, NOW).status in GOOD
        assert_same_plan(latest_body(engine, site_id), latest_body(reference.engine, site_id))


def test_grid_fleet_plan_on_a_real_cluster(real_cluster: str, fleet: list[FleetSite], tmp_path: Path) -> None:
    write_fleet(fleet[:SITES], tmp_path / "sites", SEED)
    command = [
        str(Path(sys.executable).parent / "grid"),
        *("fleet", "plan", "--sites-dir", str(tmp_path / "sites"), "--scheduler", real_cluster),
        *("--hours", "3", "--start", NOW.isoformat(), "--db", f"sqlite:///{tmp_path / 'fleet.sqlite'}"),
    ]
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=BOUND_S * 3, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for fleet_site in fleet[:SITES]:
        (row,) = [line for line in lines if line.split()[:1] == [fleet_site.site_id]]
        # warm or cold: the workers may keep the model of an earlier test's run of the site
        assert row.split()[1] in ("optimal", "violations") and row.split()[2] in ("warm", "cold")
    assert f"sites {SITES}: " in done.stdout and "worker(s)" in done.stdout
    assert max(len(line) for line in lines) <= 80


def test_sweep_on_a_real_cluster(real_cluster: str, tmp_path: Path) -> None:
    site = generate_demo(tmp_path / "small", n_households=30, start=SMALL_START, hours=12)
    spec = write_yaml(
        tmp_path / "sweep.yaml",
        {
            "name": "real_cluster_sweep",
            "baseline": str(site),
            "period": {**EVENING, "hours": 2},
            "edits": [{"kind": "scale_pv", "scale": "${k}"}],
            "parameters": {"k": [0.5, 2.0]},
        },
    )
    command = [str(Path(sys.executable).parent / "grid"), "sweep", "run", str(spec), "--scheduler", real_cluster]
    command += ["--out", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=BOUND_S * 3, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    table: Any = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert len(table) == 3
    assert list(table["status"]) == ["optimal", "optimal", "optimal"], list(table["message"])
