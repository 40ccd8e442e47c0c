"""Parameter sweeps on Dask distributed: expand a sweep into cases, run them, store each result.

By default a ``LocalCluster`` of ``n_workers`` processes with one thread each (and HiGHS with one
thread, from the spec's ``solver.threads``) is started and closed again; ``scheduler`` connects to
an existing cluster (``tcp://host:8786``) instead, or a ready ``distributed.Client`` can be passed.
The baseline is always evaluated as one more task. The baseline site and its input series are read
here once and sent to every worker as data (a scattered future), so the workers need no file of
this machine (a price file named in an edit is still read where the case runs).

Each finished case is written at once to ``<out_dir>/cases/<case id>.parquet`` (one results row),
so Ctrl-C (:class:`SweepCancelled`) leaves every finished result on disk; the combined
``results.{csv,parquet}`` and ``comparison.{csv,parquet}`` are written at the end, after a
cancellation too. A case that is invalid, fails to solve or raises is reported in the results
(status and message) and the sweep goes on. Case files of an earlier run in the same ``out_dir``
are removed when a sweep starts.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from grid.cluster import LOCAL_CLUSTER_CONFIG, MALLOC_ENV, dask_client, local_cluster
from grid.errors import InputError, InputErrors
from grid.scenarios.compare import compare_rows, results_table, write_results, write_table
from grid.scenarios.evaluate import Baseline, Evaluation, evaluate, load_baseline, records
from grid.scenarios.spec import BASELINE, ScenarioSpec, SweepSpec, fill, scenario_from_dict

__all__ = ["LOCAL_CLUSTER_CONFIG", "MALLOC_ENV", "local_cluster", "run_sweep"]
ResultCallback = Callable[[Evaluation, int, int], None]  # (result, finished so far, total)


@dataclass
class Case:
    """One combination of parameter values: its scenario, or why it has none (``error``)."""

    case_id: str
    name: str
    params: dict[str, Any]
    spec: ScenarioSpec | None
    error: str = ""


@dataclass
class SweepResult:
    """Every evaluation of a sweep (baseline first, then the cases in their order)."""

    name: str
    evaluations: list[Evaluation]
    cancelled: bool = False
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def baseline(self) -> Evaluation | None:
        return next((e for e in self.evaluations if e.name == BASELINE), None)

    def table(self) -> pd.DataFrame:
        return results_table(self.evaluations)

    def comparison(self) -> pd.DataFrame:
        return compare_rows(self.table(), BASELINE)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every evaluation and, with a baseline, the comparison rows."""
        base = self.baseline
        return {
            "name": self.name,
            "cancelled": self.cancelled,
            "evaluations": [e.to_dict() for e in self.evaluations],
            "comparison": records(self.comparison()) if base is not None and base.ok else [],
        }


class SweepCancelled(KeyboardInterrupt):
    """Ctrl-C during a sweep; ``result`` holds what had finished (also written to disk)."""

    def __init__(self, result: SweepResult) -> None:
        super().__init__(f"sweep {result.name} cancelled after {len(result.evaluations)} result(s)")
        self.result = result


def case_label(params: dict[str, Any]) -> str:
    """``battery_kwh=500,ev_count=30``."""
    return ",".join(f"{k}={v}" for k, v in params.items())


def combinations(spec: SweepSpec) -> list[dict[str, Any]]:
    """The cross product of ``parameters`` (last varying fastest), then the explicit ``cases``."""
    out: list[dict[str, Any]] = []
    if spec.parameters:
        names = list(spec.parameters)
        out += [dict(zip(names, values, strict=True)) for values in itertools.product(*spec.parameters.values())]
    out += [dict(case) for case in spec.cases]
    return out


def expand_cases(spec: SweepSpec) -> list[Case]:
    """One :class:`Case` per combination; a combination whose filled-in edits do not validate
    becomes a case with an ``error`` (reported as ``invalid``), not an exception."""
    common = _common(spec)
    cases = []
    seen: set[str] = {BASELINE}
    for k, params in enumerate(combinations(spec)):
        case_id = f"case-{k:03d}"
        label = case_label(params)
        label = label if label not in seen else f"{label}#{k}"
        seen.add(label)
        raw = {**common, "name": f"{spec.name}-{case_id}", "edits": fill(spec.edits, params)}
        try:
            scenario: ScenarioSpec | None = scenario_from_dict(raw, base_dir=spec.base_dir.resolve(), context=label)
            error = ""
        except (InputError, InputErrors) as exc:
            scenario, error = None, str(exc)
        cases.append(Case(case_id, label, params, scenario, error))
    return cases


def _common(spec: SweepSpec) -> dict[str, Any]:
    """What every case shares; paths made absolute so that any worker can read them."""
    common = spec.model_dump(include={"period", "representative_days", "solver"}, exclude_none=True)
    return {**common, "baseline": spec.baseline_path.resolve()}


def baseline_case(spec: SweepSpec) -> Case:
    """The baseline as one more case (no edits)."""
    raw = {**_common(spec), "name": f"{spec.name}-{BASELINE}"}
    return Case(BASELINE, BASELINE, {}, scenario_from_dict(raw, base_dir=spec.base_dir.resolve()))


def run_case(case: Case, baseline: Baseline | None = None) -> Evaluation:
    """Evaluate one case (runs on a worker) on `baseline` (the site and its inputs as data; None:
    read from the spec's path); never raises for a broken case."""
    if case.spec is None:
        return Evaluation(name=case.name, status="invalid", message=case.error, params=dict(case.params))
    return evaluate(case.spec, name=case.name, params=case.params, baseline=baseline)


def read_baseline(spec: SweepSpec) -> Baseline | None:
    """The baseline site and its inputs, read here once (None when they do not load: every case
    then reports why)."""
    try:
        return load_baseline(spec.baseline_path)
    except (InputError, InputErrors):
        return None


def run_sweep(
    spec: SweepSpec,
    client: Any = None,
    *,
    n_workers: int = 2,
    scheduler: str | None = None,
    out_dir: Path | None = None,
    on_result: ResultCallback | None = None,
    serial: bool = False,
) -> SweepResult:
    """Run every case of `spec` and the baseline; see the module docstring.

    Parameters
    ----------
    spec : the sweep.
    client : a ``distributed.Client`` to use (not closed afterwards).
    n_workers : worker processes of the LocalCluster started when neither `client` nor `scheduler`.
    scheduler : address of an existing Dask scheduler, e.g. ``tcp://host:8786``.
    out_dir : where to write ``cases/<id>.parquet`` as results arrive, and the combined tables.
    on_result : called as ``on_result(evaluation, finished, total)`` after each result.
    serial : run in this process, one case after the other (same results; for tests and benchmarks).

    Raises
    ------
    SweepCancelled : on Ctrl-C, after cancelling the remaining tasks and writing what finished.
    """
    cases = [baseline_case(spec), *expand_cases(spec)]
    order = {c.name: k for k, c in enumerate(cases)}
    case_ids = {c.name: c.case_id for c in cases}
    results: list[Evaluation] = []
    if out_dir is not None:
        # results of an earlier run in the same directory would mix with this one's
        for old in (out_dir / "cases").glob("*.parquet"):
            old.unlink()

    def store(ev: Evaluation) -> None:
        results.append(ev)
        if out_dir is not None:
            write_table(results_table([ev]), out_dir / "cases" / f"{case_ids[ev.name]}.parquet")
        if on_result is not None:
            on_result(ev, len(results), len(cases))

    def finish(cancelled: bool) -> SweepResult:
        results.sort(key=lambda e: order[e.name])
        result = SweepResult(spec.name, results, cancelled=cancelled, out_dir=out_dir)
        if out_dir is not None and results:
            result.files = write_results(results, out_dir, BASELINE)
        return result

    baseline = read_baseline(spec)
    runnable = []
    for case in cases:
        if case.spec is None:
            store(run_case(case))
        else:
            runnable.append(case)
    try:
        if serial:
            for case in runnable:
                store(run_case(case, baseline))
        else:
            _run_on_dask(runnable, baseline, client, n_workers, scheduler, spec.name, store)
    except KeyboardInterrupt:
        raise SweepCancelled(finish(cancelled=True)) from None
    return finish(cancelled=False)


def _run_on_dask(
    cases: list[Case],
    baseline: Baseline | None,
    client: Any,
    n_workers: int,
    scheduler: str | None,
    name: str,
    store: Callable[[Evaluation], None],
) -> None:
    from distributed import as_completed

    with dask_client(client, n_workers, scheduler) as dask:
        token = uuid.uuid4().hex[:8]
        # the baseline goes to every worker once, as data: workers need not see this file system
        # ([baseline]: one object; a bare tuple would be scattered element by element)
        data = dask.scatter([baseline], broadcast=True, hash=False)[0] if baseline is not None else None
        futures = {dask.submit(run_case, c, data, key=f"{name}-{c.case_id}-{token}", pure=False): c for c in cases}
        try:
            for future in as_completed(futures):
                case = futures[future]
                if future.status in ("error", "cancelled"):  # a worker died, or the cluster dropped the task
                    exc = future.exception() if future.status == "error" else None
                    message = f"{type(exc).__name__}: {exc}" if exc is not None else "task cancelled by the cluster"
                    store(Evaluation(name=case.name, status="error", message=message, params=case.params))
                else:
                    store(future.result())
        except KeyboardInterrupt:
            dask.cancel(list(futures))
            raise
