"""Evaluate a scenario: load the baseline, apply the edits, plan every window, collect KPIs.

:func:`evaluate` never raises for a broken scenario: bad edits give status ``invalid``, a solve
that fails gives ``failed``, anything unexpected gives ``error`` with the exception's type and
message, so that a sweep can report one broken case and carry on. :func:`run_scenario` is the
library entry point (baseline and scenario side by side) that the CLI and the API call.

Windows: the spec's ``period`` (default: all inputs) is one window of weight 1; otherwise
``representative_days`` are windows with weights. The shipped demo has 48 h of January inputs,
so its only meaningful representative window is that one winter period.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from grid.domain import Site, load_site
from grid.errors import InputError, InputErrors, PlanError
from grid.scenarios.edits import apply_edits
from grid.scenarios.kpis import aggregate, uncontrolled_import_kw, window_kpis
from grid.scenarios.spec import BASELINE, ScenarioSpec, scenario_from_dict
from grid.series import SiteInputs, load_inputs
from grid.timeindex import horizon_index, to_utc
from models.solve import SolveOptions
from models.solve import plan_tables as solve_tables
from models.tables import build_tables


@dataclass
class Evaluation:
    """The outcome of one scenario (or the baseline).

    status: ``optimal`` / ``optimal_with_violations`` (worst over windows), ``invalid`` (the edits
    or period cannot be applied), ``failed`` (a solve failed), ``error`` (unexpected exception).
    kpis: aggregated over windows (see :mod:`grid.scenarios.kpis`); windows: per-window KPIs with
    ``start`` and ``weight``; params: the sweep parameters of this case; seconds: wall time;
    cpu_seconds: CPU time of the evaluating process meanwhile (much less than ``seconds`` means
    the process waited for a core).
    """

    name: str
    status: str
    message: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    kpis: dict[str, float] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "optimal_with_violations")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers become None)."""
        return {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "params": self.params,
            "kpis": {k: _num(v) for k, v in self.kpis.items()},
            "windows": [{k: _num(v) if isinstance(v, float) else v for k, v in w.items()} for w in self.windows],
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
        }


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a table as JSON-ready dicts (NaN becomes None)."""
    return [
        {str(k): (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        for row in table.to_dict("records")
    ]


#: a baseline site and its input series
Baseline = tuple[Site, SiteInputs]


@functools.lru_cache(maxsize=4)
def _cached_baseline(path: str, mtime_ns: int) -> tuple[Site, SiteInputs]:
    site = load_site(path)
    return site, load_inputs(site)


def load_baseline(path: Path) -> tuple[Site, SiteInputs]:
    """The baseline site and its inputs, read once per process and file version (edits copy them,
    never mutate them)."""
    resolved = path.resolve()
    try:
        mtime_ns = resolved.stat().st_mtime_ns
    except OSError as exc:
        raise InputError("baseline", f"cannot read site file ({exc.strerror})", str(path)) from exc
    return _cached_baseline(str(resolved), mtime_ns)


def windows_of(spec: ScenarioSpec, site: Site, inputs: SiteInputs) -> list[tuple[pd.DatetimeIndex, float]]:
    """(UTC interval starts, weight) per evaluation window; raises InputError naming the window
    that the inputs do not cover."""
    res = site.site.resolution_min
    out = []
    if spec.representative_days is not None:
        for i, win in enumerate(spec.representative_days):
            where = f"representative_days[{i}]"
            index = _index(to_utc(win.start), win.hours, res, where)
            out.append((_covered(index, inputs, where), win.weight))
        return out
    period = spec.period
    start = inputs.index[0] if period is None or period.start is None else to_utc(period.start)
    if period is None or period.hours is None:
        step = pd.Timedelta(minutes=res)
        hours = (inputs.index[-1] + step - start) / pd.Timedelta(hours=1)
    else:
        hours = period.hours
    index = _index(start, hours, res, "period")
    return [(_covered(index, inputs, "period"), 1.0)]


def _index(start: pd.Timestamp, hours: float, res: int, where: str) -> pd.DatetimeIndex:
    try:
        return horizon_index(start, hours, res)
    except InputError as err:
        raise InputError(f"{where}.{err.where}", err.what, err.value if err.has_value else hours) from None


def _covered(index: pd.DatetimeIndex, inputs: SiteInputs, where: str) -> pd.DatetimeIndex:
    missing = index.difference(inputs.index)
    if len(missing):
        raise InputError(
            where,
            f"not covered by the inputs ({len(missing)} interval(s) missing, first {missing[0].isoformat()};"
            f" inputs span {inputs.index[0].isoformat()} .. {inputs.index[-1].isoformat()})",
        )
    return index


def evaluate_site(
    site: Site, inputs: SiteInputs, windows: list[tuple[pd.DatetimeIndex, float]], options: SolveOptions
) -> tuple[str, str, dict[str, float], list[dict[str, Any]]]:
    """Plan every window: (status, message, aggregated KPIs, per-window KPIs)."""
    per_window: list[tuple[dict[str, float], float]] = []
    rows: list[dict[str, Any]] = []
    status = "optimal"
    for index, weight in windows:
        tables = build_tables(site, inputs, index)
        plan = solve_tables(tables, options)
        if plan.status == "failed":
            return "failed", f"window {index[0].isoformat()}: {plan.message}", {}, rows
        if plan.status == "optimal_with_violations":
            status = plan.status
        kpis = window_kpis(plan, tables, uncontrolled_import_kw(site, inputs.window(index), tables))
        per_window.append((kpis, weight))
        rows.append({"start": index[0].isoformat(), "weight": weight, **kpis})
    return status, "", aggregate(per_window), rows


def evaluate(
    spec: ScenarioSpec,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    baseline: Baseline | None = None,
) -> Evaluation:
    """Apply the spec's edits to its baseline (`baseline` as data, else read from the spec's path)
    and evaluate every window; never raises for a broken scenario (see the module docstring)."""
    began, began_cpu = time.perf_counter(), time.process_time()
    result = Evaluation(name=name or spec.name, status="error", params=dict(params or {}))
    try:
        site, inputs = baseline if baseline is not None else load_baseline(spec.baseline_path)
        edited, edited_inputs = apply_edits(site, inputs, list(spec.edits), spec.base_dir)
        windows = windows_of(spec, edited, edited_inputs)
        options = SolveOptions(threads=spec.solver.threads, time_limit_s=spec.solver.time_limit_s)
        result.status, result.message, result.kpis, result.windows = evaluate_site(
            edited, edited_inputs, windows, options
        )
    except (InputError, InputErrors) as exc:
        result.status, result.message = "invalid", str(exc)
    except Exception as exc:  # reported in the results (status error), not swallowed: a sweep goes on
        result.status, result.message = "error", f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - began
    result.cpu_seconds = time.process_time() - began_cpu
    return result


def baseline_spec(spec: ScenarioSpec) -> ScenarioSpec:
    """The same evaluation without edits."""
    return spec.model_copy(update={"edits": []})


@dataclass
class ScenarioResult:
    """A scenario and its baseline, evaluated over the same windows."""

    baseline: Evaluation
    scenario: Evaluation

    def table(self) -> pd.DataFrame:
        """One row per evaluation (see :func:`grid.scenarios.compare.results_table`)."""
        from grid.scenarios.compare import results_table

        return results_table([self.baseline, self.scenario])

    def comparison(self) -> pd.DataFrame:
        """KPIs against the baseline with absolute and relative deltas."""
        from grid.scenarios.compare import compare_rows

        return compare_rows(self.table(), BASELINE)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: both evaluations and the comparison rows (what the API will return)."""
        return {
            "baseline": self.baseline.to_dict(),
            "scenario": self.scenario.to_dict(),
            "comparison": records(self.comparison()) if self.scenario.ok else [],
        }


def run_scenario(spec: ScenarioSpec | dict[str, Any], base_dir: Path | None = None) -> ScenarioResult:
    """Evaluate the baseline and the scenario (a spec, or plain data as the API receives it;
    relative paths then resolve against `base_dir`). Raises :class:`InputErrors` for a spec that
    does not validate or a baseline that cannot be evaluated (PlanError if its solve fails); a
    scenario whose edits do not apply comes back with status ``invalid``."""
    if not isinstance(spec, ScenarioSpec):
        spec = scenario_from_dict(spec, base_dir=base_dir)
    baseline = evaluate(baseline_spec(spec), name=BASELINE)
    if baseline.status == "invalid":
        raise InputError("baseline", f"cannot be evaluated: {baseline.message}")
    if not baseline.ok:
        raise PlanError(f"baseline {baseline.status}: {baseline.message}")
    return ScenarioResult(baseline=baseline, scenario=evaluate(spec))
