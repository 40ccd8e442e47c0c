"""Scenario runs in the background, results kept in the store (what the API's scenario routes use).

:class:`ScenarioRunner` stores a submitted scenario as a queued run, evaluates it (baseline and
scenario, :func:`grid.scenarios.run_scenario`) in a worker process and stores the result once.
The worker process (``spawn``, started with the first run) keeps the LP and the GIL away from
the service's request threads and has its own HiGHS task scheduler (1 thread); one process
evaluates one run at a time, so runs queue. Results survive a restart; a run that was queued or
running when the service stopped is marked failed when the next runner starts
(:meth:`ScenarioRunner.recover`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from grid.errors import InputError, InputErrors, PlanError
from grid.scenarios.compare import compare_rows, results_table
from grid.scenarios.evaluate import Evaluation, run_scenario
from grid.scenarios.spec import BASELINE, ScenarioSpec
from grid.schedule.workers import worker_pool
from grid.store import scenarios as store

log = logging.getLogger(__name__)
INTERRUPTED = "interrupted: the service stopped before the run finished; submit it again"


def evaluate_in_worker(spec: ScenarioSpec) -> dict[str, Any]:
    """``{"result": baseline and scenario, JSON-ready}`` or ``{"error": why the baseline could not
    be evaluated}`` (runs in the worker process; the domain's exceptions do not cross it)."""
    try:
        return {"result": run_scenario(spec).to_dict()}
    except (InputError, InputErrors, PlanError) as exc:
        return {"error": str(exc)}


class ScenarioRunner:
    """Queue, run and store scenario runs; see the module docstring.

    Parameters
    ----------
    engine : the store.
    clock : the service's clock (timestamps of the runs, UTC).
    evaluate : the evaluation run in the worker process (tests may pass another picklable one).
    """

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], dt.datetime],
        evaluate: Callable[[ScenarioSpec], dict[str, Any]] = evaluate_in_worker,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.evaluate = evaluate
        self._threads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scenario")
        self._processes: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def recover(self) -> int:
        """Mark runs left queued or running by an earlier process failed; how many."""
        count = store.interrupt_active(self.engine, self.clock(), INTERRUPTED)
        if count:
            log.warning("%d scenario run(s) of an earlier service process marked failed", count)
        return count

    def submit(self, site_id: str, spec: ScenarioSpec, submitted: dict[str, Any]) -> str:
        """Store a queued run of `spec` (`submitted`: the scenario as the client sent it) and start
        it when the worker is free; returns the run id."""
        run_id = uuid.uuid4().hex
        store.create_run(self.engine, run_id, site_id, spec.name, submitted, self.clock())
        with self._lock:
            self._futures[run_id] = self._threads.submit(self._run, run_id, spec)
        return run_id

    def _worker(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._processes is None:
                self._processes = worker_pool()  # dies with this process
            return self._processes

    def _run(self, run_id: str, spec: ScenarioSpec) -> None:
        try:
            if not store.start_run(self.engine, run_id, self.clock()):
                return
            try:
                answer = self._worker().submit(self.evaluate, spec).result()
            except Exception as exc:  # a crashed worker process, or a bug: recorded on the run
                log.exception("scenario run %s failed", run_id)
                with self._lock:  # a broken pool cannot take more work; the next run starts a new one
                    self._processes = None
                store.finish_run(self.engine, run_id, "failed", self.clock(), message=f"{type(exc).__name__}: {exc}")
                return
            if "error" in answer:  # the baseline cannot be evaluated
                store.finish_run(self.engine, run_id, "failed", self.clock(), message=answer["error"])
                return
            result = answer["result"]
            scenario = result["scenario"]
            ok = scenario["status"] in ("optimal", "optimal_with_violations")
            store.finish_run(
                self.engine,
                run_id,
                "succeeded" if ok else "failed",
                self.clock(),
                message=scenario["message"],
                scenario_status=scenario["status"],
                result=result,
            )
        except Exception:  # the store went away (shutdown): nothing left to record it in
            log.exception("scenario run %s could not be recorded", run_id)

    def wait(self, run_id: str, timeout_s: float | None = None) -> None:
        """Block until the run is done (tests, the CLI)."""
        future = self._futures.get(run_id)
        if future is not None:
            future.result(timeout_s)

    def shutdown(self) -> None:
        """Drop queued runs (marked failed by the next :meth:`recover`), let the current one end."""
        self._threads.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            if self._processes is not None:
                self._processes.shutdown(wait=True, cancel_futures=True)
                self._processes = None


def evaluation_from_dict(data: dict[str, Any]) -> Evaluation:
    """The inverse of :meth:`Evaluation.to_dict` (None KPIs become NaN)."""
    return Evaluation(
        name=data["name"],
        status=data["status"],
        message=data.get("message", ""),
        params=dict(data.get("params", {})),
        kpis={k: math.nan if v is None else float(v) for k, v in data.get("kpis", {}).items()},
        windows=list(data.get("windows", [])),
        seconds=float(data.get("seconds", 0.0)),
        cpu_seconds=float(data.get("cpu_seconds", 0.0)),
    )


def result_tables(result: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """``results`` (one row per evaluation) and ``comparison`` (long, against the baseline) of a
    stored result, as ``grid scenario run`` writes them."""
    table = results_table([evaluation_from_dict(result["baseline"]), evaluation_from_dict(result["scenario"])])
    return {"results": table, "comparison": compare_rows(table, BASELINE)}
