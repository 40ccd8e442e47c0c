"""Solve the dispatch LP with HiGHS through Pyomo's persistent interface and turn it into a Plan.

`plan_site` is the library entry point used by the CLI, the scheduler and the scenario runner:
plain data in (a Site and its inputs), a plain :class:`~models.plan.Plan` out, no web or database.
A failed solve still returns a Plan (status ``failed`` with the solver's reason), never raises for
solver trouble, so that callers can keep serving their last good plan.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import highspy
import pandas as pd
from pyomo.common.gc_manager import PauseGC
from pyomo.contrib.solver.common.results import TerminationCondition

from grid.domain import Site
from grid.series import SiteInputs
from models.dispatch import DispatchModel, build_model, refresh_model
from models.extract import extract_plan
from models.highs import PersistentHighs
from models.plan import Plan
from models.tables import Tables, build_tables


@dataclass
class SolveOptions:
    """HiGHS settings. ``time_limit_s`` bounds the solve; ``threads`` 1 suits parallel sweeps."""

    time_limit_s: float | None = None
    threads: int | None = None
    highs_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SolveOutcome:
    ok: bool
    termination: str
    objective_eur: float | None
    solver: PersistentHighs
    handover_s: float  # Pyomo -> HiGHS (model load or parameter update, the basis shifted)
    solve_s: float  # HiGHS itself
    shifted: bool = False  # the solve started from the last basis shifted in time


def solve_model(
    dm: DispatchModel, options: SolveOptions | None = None, solver: PersistentHighs | None = None, shift: int = 0
) -> SolveOutcome:
    """Hand the model to a (new or given persistent) HiGHS instance and solve it.

    Re-using `solver` on the model it holds only pushes changed mutable parameters to HiGHS and
    warm starts from the previous basis, shifted `shift` steps forward in time when the horizon
    starts that many steps after the last solve's (``PersistentHighs.shift_basis``).
    """
    options = options or SolveOptions()
    _use_threads(options.threads)
    opt = solver or PersistentHighs()
    t0 = time.perf_counter()
    shifted = False
    if opt.model is dm:
        opt.update()
        shifted = shift > 0 and opt.shift_basis(shift)
    else:
        opt.load(dm)
    t1 = time.perf_counter()
    opt.run(options.time_limit_s, options.threads, options.highs_options)
    term = opt.termination()
    if term in _PRESOLVE_VERDICTS and "presolve" not in options.highs_options:
        # The model is always feasible by construction (penalised slacks); an "infeasible" verdict is
        # presolve misjudging tiny numbers: solve once more without presolve before giving up.
        opt.run(options.time_limit_s, options.threads, {**options.highs_options, "presolve": "off"})
        term = opt.termination()
        opt.highs.setOptionValue("presolve", "choose")  # HiGHS keeps options: later solves as usual
    solve_s = time.perf_counter() - t1
    ok = term == TerminationCondition.convergenceCriteriaSatisfied
    return SolveOutcome(
        ok=ok,
        termination=term.name,
        objective_eur=opt.objective() if ok else None,
        solver=opt,
        handover_s=t1 - t0,
        solve_s=solve_s,
        shifted=shifted,
    )


_PRESOLVE_VERDICTS = (
    TerminationCondition.provenInfeasible,
    TerminationCondition.locallyInfeasible,
    TerminationCondition.infeasibleOrUnbounded,
    TerminationCondition.unbounded,
)

_threads_in_use: list[int] = [0]  # HiGHS's process-wide task scheduler is sized by the first run


def _use_threads(threads: int | None) -> None:
    """HiGHS refuses to run (status unknown) when `threads` differs from the size its global task
    scheduler was started with in this process; restart the scheduler when the request changes."""
    wanted = threads or 0
    if wanted != _threads_in_use[0]:
        highspy.Highs.resetGlobalScheduler(True)
        _threads_in_use[0] = wanted


def plan_tables(tables: Tables, options: SolveOptions | None = None) -> Plan:
    """Build, solve and extract a plan for prepared tables."""
    return solve_tables(tables, options)[0]


def solve_tables(
    tables: Tables,
    options: SolveOptions | None = None,
    warm: tuple[DispatchModel, PersistentHighs] | None = None,
    shift: int = 0,
) -> tuple[Plan, DispatchModel, SolveOutcome]:
    """Plan `tables`: build the model, or with `warm` = (model, its solver) re-use a model of the
    same structure (see ``models.warm``): refresh its mutable parameters from `tables` and re-solve
    from the solver's last basis (shifted `shift` steps forward in time, see `solve_model`).
    Returns the plan, the model and the solve outcome."""
    computed_at = pd.Timestamp.now(tz="UTC").floor("s")
    # Building and loading ~10^5 Pyomo objects triggers the cyclic garbage collector again and
    # again for nothing (they are all alive); pausing it halves build and hand-over time.
    with PauseGC():
        t0 = time.perf_counter()
        if warm is None:
            dm, solver = build_model(tables), None
        else:
            dm, solver = warm
            refresh_model(dm, tables)
        build_s = time.perf_counter() - t0
        outcome = solve_model(dm, options, solver, shift)
        t1 = time.perf_counter()
        plan = _result_plan(dm, outcome, computed_at)
    plan.solver["warm_start"] = warm is not None
    plan.timings_s = {
        "build_s": build_s,
        "handover_s": outcome.handover_s,
        "solve_s": outcome.solve_s,
        "extract_s": time.perf_counter() - t1,
    }
    return plan, dm, outcome


def plan_site(site: Site, inputs: SiteInputs, index: pd.DatetimeIndex, options: SolveOptions | None = None) -> Plan:
    """Plan `site` over `index` (UTC interval starts) on the given inputs (forecasts or truth)."""
    t0 = time.perf_counter()
    tables = build_tables(site, inputs, index)
    tables_s = time.perf_counter() - t0
    plan = plan_tables(tables, options)
    plan.timings_s = {"tables_s": tables_s, **plan.timings_s}
    return plan


def _result_plan(dm: DispatchModel, outcome: SolveOutcome, computed_at: pd.Timestamp) -> Plan:
    tables = dm.tables
    solver_info = {
        "name": "highs",
        "version": ".".join(map(str, outcome.solver.version())),
        "termination": outcome.termination,
        "interface": "highspy (persistent, models.highs)",
    }
    if not outcome.ok:
        return Plan(
            plan_id=uuid.uuid4().hex,
            site=tables.site_id,
            computed_at=computed_at,
            index=tables.index,
            resolution_min=round(tables.dt_h * 60),
            status="failed",
            objective_eur=None,
            solver=solver_info,
            message=f"HiGHS ended with {outcome.termination}; no set-points from this run",
        )
    plan = extract_plan(dm, outcome.solver, computed_at)
    plan.objective_eur = outcome.objective_eur
    plan.solver = solver_info
    return plan
