"""Sweeps: expansion of parameters, Dask (2 worker processes) = serial, broken cases reported,
Ctrl-C keeps finished results."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from grid.scenarios.evaluate import Evaluation
from grid.scenarios.spec import SweepSpec, sweep_from_dict
from grid.scenarios.sweep import MALLOC_ENV, SweepCancelled, expand_cases, local_cluster, run_sweep
from tests.scenarios.helpers import EVENING

TEMPLATE = [
    {"kind": "add_battery", "connection": "T2", "capacity_kwh": "${battery_kwh}"},
    {"kind": "add_evs", "count": "${ev_count}", "connection": "T2", "seed": 5},
]


def sweep(site: Path, **parts: Any) -> SweepSpec:
    raw = {"name": "t", "baseline": str(site), "period": EVENING, "edits": TEMPLATE, **parts}
    return sweep_from_dict(raw)


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["seconds", "cpu_seconds"]).reset_index(drop=True)


def test_cases_are_the_cross_product_then_the_list(small_site_path: Path) -> None:
    spec = sweep(
        small_site_path,
        parameters={"battery_kwh": [10, 20], "ev_count": [0, 3]},
        cases=[{"battery_kwh": 99, "ev_count": 1}],
    )
    cases = expand_cases(spec)
    assert [c.name for c in cases] == [
        "battery_kwh=10,ev_count=0",
        "battery_kwh=10,ev_count=3",
        "battery_kwh=20,ev_count=0",
        "battery_kwh=20,ev_count=3",
        "battery_kwh=99,ev_count=1",
    ]
    last = cases[-1].spec
    assert last is not None and last.edits[0].capacity_kwh == 99  # type: ignore[union-attr]


def test_dask_sweep_equals_serial(small_site_path: Path, tmp_path: Path) -> None:
    spec = sweep(small_site_path, parameters={"battery_kwh": [20, 80], "ev_count": [0, 4]})
    serial = run_sweep(spec, serial=True)
    on_dask = run_sweep(spec, n_workers=2, out_dir=tmp_path)  # its own LocalCluster of 2 processes
    assert [e.name for e in on_dask.evaluations] == [e.name for e in serial.evaluations]
    assert all(e.ok for e in serial.evaluations)
    pd.testing.assert_frame_equal(comparable(on_dask.table()), comparable(serial.table()), check_exact=True)
    for a, b in zip(on_dask.evaluations, serial.evaluations, strict=True):
        assert a.kpis == b.kpis  # bit for bit
    assert sorted(p.name for p in (tmp_path / "cases").iterdir()) == [
        "baseline.parquet",
        *(f"case-00{k}.parquet" for k in range(4)),
    ]
    stored = pd.read_parquet(tmp_path / "results.parquet")
    assert list(stored["scenario"]) == [e.name for e in serial.evaluations]


def _malloc_env() -> str | None:
    import os

    return os.environ.get(MALLOC_ENV)


def test_local_cluster_workers_allocate_like_a_plain_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit MALLOC_TRIM_THRESHOLD_ (dask's default worker environment sets one, and a nanny
    copies it into this process's environment) fixes glibc's mmap threshold at 128 KiB, which
    costs the workers ~10 % CPU per scenario; run_sweep's cluster keeps it out of the workers."""
    monkeypatch.setenv(MALLOC_ENV, "65536")  # as left behind by an earlier default LocalCluster
    with local_cluster(1) as client:
        assert list(client.run(_malloc_env).values()) == [None]
    assert _malloc_env() == "65536"


def test_broken_cases_are_reported_and_the_sweep_finishes(small_site_path: Path, tmp_path: Path, client: Any) -> None:
    spec = sweep(
        small_site_path,
        edits=[{"kind": "add_battery", "connection": "${where}", "capacity_kwh": "${kwh}"}],
        parameters={},
        cases=[{"where": "T2", "kwh": 50}, {"where": "T9", "kwh": 50}, {"where": "T1", "kwh": -5}],
    )
    result = run_sweep(spec, client=client, out_dir=tmp_path)
    status = {e.name: e for e in result.evaluations}
    assert status["baseline"].ok and status["where=T2,kwh=50"].ok
    bad_ref, bad_value = status["where=T9,kwh=50"], status["where=T1,kwh=-5"]
    assert bad_ref.status == "invalid" and "edits[0].connection: unknown connection point 'T9'" in bad_ref.message
    assert bad_value.status == "invalid" and "edits[0].capacity_kwh: must be >= 0, got -5" in bad_value.message
    table = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
    assert list(table["status"]) == ["optimal", "optimal", "invalid", "invalid"]
    comparison = result.comparison()
    assert comparison[comparison["scenario"] == "where=T9,kwh=50"]["value"].isna().all()


@pytest.mark.parametrize("on_dask", [False, True])
def test_ctrl_c_keeps_finished_results(small_site_path: Path, tmp_path: Path, client: Any, on_dask: bool) -> None:
    spec = sweep(small_site_path, parameters={"battery_kwh": [20, 40, 60], "ev_count": [0]})

    def interrupt_after_two(ev: Evaluation, done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(SweepCancelled) as stop:
        run_sweep(
            spec,
            client=client if on_dask else None,
            serial=not on_dask,
            out_dir=tmp_path,
            on_result=interrupt_after_two,
        )
    kept = stop.value.result
    assert kept.cancelled and len(kept.evaluations) == 2
    assert len(list((tmp_path / "cases").glob("*.parquet"))) == 2
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == 2


def test_local_cluster_quiets_only_its_closing_nannies() -> None:
    """During the sweep a nanny's warnings show; the level is ERROR only while the cluster closes
    (a worker slow to exit is killed with a warning that carries no information: its results are
    in), and the caller's level is back afterwards."""
    nanny = logging.getLogger("distributed.nanny")
    nanny.setLevel(logging.INFO)
    try:
        with local_cluster(1) as client:
            assert client.submit(sum, [1, 2]).result() == 3
            assert nanny.level == logging.INFO
        assert nanny.level == logging.INFO
    finally:
        nanny.setLevel(logging.NOTSET)
